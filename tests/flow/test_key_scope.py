"""Issue #10 item 2: a key named by an event must lie in the writer's own scope.

A writer of tenant ``alpha`` could append ``materialization.recorded`` with a
``location`` of tenant ``beta``; the run worker then loaded beta's object as an
input. Keys from outside are now refused when the event is appended, and again
when the worker is about to read them (for events already in storage).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from arco.core import Keys, Scope
from arco.core.errors import InvalidArgumentError, InvalidNameError, ObjectNotFoundError
from arco.core.storage import ObjectStore, open_store
from arco.flow.definitions import Definitions
from arco.flow.executors import make_executor
from arco.flow.io import load_value
from arco.flow.planner import plan
from arco.flow.runner import Scheduler
from arco.ledger.compactor import Compactor
from arco.ledger.events import InvalidEventError, build_envelope
from arco.ledger.log import Ledger, ulid_time

sys.path.insert(0, str(Path(__file__).parent))
import scopeassets

ALPHA = Scope("alpha", "main")
BETA = Scope("beta", "main")
BAD_KEYS = [
    "tenant=beta/workspace=main/assets/vault.secret/_/x.json",
    "tenant=alpha/workspace=main/../../tenant=beta/workspace=main/assets/x.json",
    "tenant=alpha/workspace=main/assets/%2e%2e/x.json",
    "tenant=alpha/workspace=main/assets/..%2Fx.json",
    "/etc/passwd",
    "tenant=alpha/workspace=main//x.json",
    "tenant=alpha/workspace=main/./x.json",
    "tenant=alpha/workspace=main/assets/x\\..\\y.json",
    "tenant=alpha/workspace=main/assets/x\x00.json",
    "tenant=alpha/workspace=main/assets/x\u202e.json",
    "tenant=alpha/workspace=mainx/assets/x.json",
]


def _materialize_beta_secret(store: ObjectStore, url: str) -> str:
    defs = Definitions([scopeassets.secret, scopeassets.reader])
    executor = make_executor("inline")
    try:
        result = Scheduler(store, BETA, defs, store_url=url, executor=executor).run(
            plan(defs, "vault.secret")
        )
    finally:
        executor.close()
    outcome = result.tasks["vault.secret"].outcome
    assert outcome is not None
    assert outcome.location is not None
    assert outcome.location.startswith(Keys(BETA).root)
    return outcome.location


@pytest.mark.parametrize("key", BAD_KEYS)
def test_the_scope_check_refuses_every_escape(key: str) -> None:
    with pytest.raises(InvalidNameError):
        Keys(ALPHA).require_within(key)
    assert not Keys(ALPHA).is_within(key)


def test_the_scope_check_accepts_the_scopes_own_keys() -> None:
    keys = Keys(ALPHA)
    good = keys.asset_output("vault.secret", None, "01J0000000000000000000000A", "json")
    assert keys.require_within(good) == good
    assert not Keys(BETA).is_within(good)


@pytest.mark.parametrize("key", BAD_KEYS)
def test_appending_an_event_with_a_foreign_location_is_refused(key: str) -> None:
    store = open_store("memory://")
    ledger = Ledger(store, ALPHA)
    payload = {"asset": "vault.secret", "location": key}
    with pytest.raises(InvalidEventError, match="location"):
        ledger.append("executions", "materialization.recorded", payload)
    with pytest.raises(InvalidEventError, match=r"event 1: .*location"):
        ledger.append_batch(
            "executions",
            [
                {"type": "materialization.recorded", "payload": {"asset": "a.b"}},
                {"type": "materialization.recorded", "payload": payload},
            ],
        )
    assert list(store.list("")) == []


def test_own_keys_and_external_urls_are_accepted() -> None:
    store = open_store("memory://")
    ledger = Ledger(store, ALPHA)
    own = f"{Keys(ALPHA).root}assets/vault.secret/_/01J0000000000000000000000A.json"
    ledger.append("executions", "materialization.recorded", {"asset": "a.b", "location": own})
    # An external URL is recorded but never read through Arco's store.
    ledger.append(
        "executions",
        "materialization.recorded",
        {"asset": "a.b", "location": "s3://lake/events/2024/part-0.parquet"},
    )
    with pytest.raises(InvalidArgumentError, match="not a stored value of scope"):
        load_value(store, "s3://lake/events/2024/part-0.parquet", Keys(ALPHA))


def test_the_worker_refuses_a_foreign_location_already_in_the_ledger(tmp_path: Path) -> None:
    """An event written before the append-time check (or straight into storage)."""
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    beta_key = _materialize_beta_secret(store, url)
    # Forge alpha's record that vault.secret is materialized at beta's key.
    env = build_envelope(
        "executions",
        "materialization.recorded",
        {"asset": "vault.secret", "location": beta_key, "code_version": "1"},
    )
    raw_key = Keys(ALPHA).ledger_event("executions", ulid_time(env.event_id), env.event_id)
    store.put(raw_key, json.dumps(env.to_dict()).encode(), "create")
    Compactor(store, ALPHA).compact("executions")

    defs = Definitions([scopeassets.secret, scopeassets.reader])
    executor = make_executor("inline")
    try:
        result = Scheduler(store, ALPHA, defs, store_url=url, executor=executor).run(
            plan(defs, "vault.reader")
        )
    finally:
        executor.close()
    task = result.tasks["vault.reader"]
    assert task.state == "FAILED"
    assert task.outcome is not None
    error = task.outcome.error or ""
    assert "outside this scope" in error
    assert str(tmp_path) not in error
    # Nothing of beta's reached alpha's scope.
    for meta in store.list(Keys(ALPHA).root):
        assert b"beta-payroll-secret" not in store.get(meta.key)[0], meta.key


def test_file_store_errors_do_not_name_the_server_folder(tmp_path: Path) -> None:
    root = tmp_path / "secret-server-folder"
    store = open_store(f"file://{root}")
    store.put("tenant=a/workspace=b/x.json", b"1")
    with pytest.raises(ObjectNotFoundError) as missing:
        store.get("tenant=a/workspace=b/x.json/y.json")
    assert str(root) not in str(missing.value)
    with pytest.raises(Exception) as failed:  # noqa: PT011 - any error, but no folder in it
        store.put("tenant=a/workspace=b/x.json/y.json", b"2")
    assert str(root) not in str(failed.value)
    assert "<store>" in str(failed.value)
    assert list(store.list("tenant=a/workspace=b/x.json/")) == []
