"""Ledger pruning: compacted ledger objects and dedup records older than a horizon go.

What must hold: the folded state never changes, nothing is quarantined by a later
audit, duplicates inside the horizon are still recognised, a crash at any storage
call leaves a store that the next prune (and compaction) finishes, and a prune
racing a compactor loses no event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arco.cli.main import app
from arco.core import Keys, ObjectStore, open_store
from arco.core.errors import InvalidArgumentError
from arco.core.storage import FaultInjectingStore, SimulatedCrash
from arco.domain.verify import verify
from arco.ledger.compactor import Compactor
from arco.ledger.log import Ledger
from conftest import repeating_in_background

from ._support import SCOPE, memory_store, meta_of, state_of, table_rows, write_event

MAT = "materialization.recorded"
KEYS = Keys(SCOPE)
DAYS_AGO = (12, 11, 10, 9, 8, 3, 2, 1, 0)


def ledger_keys(store: ObjectStore, domain: str = "executions") -> set[str]:
    return {m.key for m in store.list(KEYS.ledger_prefix(domain))}


def seed(store: ObjectStore, now: datetime) -> dict[int, str]:
    """One materialization a day at each of ``DAYS_AGO``; idempotency key per day."""
    keys = {}
    for days in DAYS_AGO:
        _env, key = write_event(
            store,
            SCOPE,
            "executions",
            MAT,
            {"asset": f"a.day{days}"},
            at=now - timedelta(days=days),
            idempotency_key=f"day-{days}",
        )
        keys[days] = key
    return keys


def mats(store: ObjectStore) -> list[str]:
    return sorted(r["asset"] for r in table_rows(store, SCOPE, "executions", "materializations"))


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def compacted(now: datetime) -> tuple[ObjectStore, dict[int, str], Compactor]:
    store = memory_store()
    keys = seed(store, now)
    compactor = Compactor(store, SCOPE, clock=lambda: now)
    assert compactor.compact("executions").events == len(DAYS_AGO)
    return store, keys, compactor


def test_prune_drops_old_objects_and_keys_and_keeps_the_state(
    compacted: tuple[ObjectStore, dict[int, str], Compactor], now: datetime
) -> None:
    store, keys, compactor = compacted
    before = state_of(store)
    report = compactor.prune("executions", timedelta(days=7))
    old = {d for d in DAYS_AGO if d > 7}
    assert (report.ledger_objects, report.event_keys) == (len(old), len(old))
    assert (report.kept_objects, report.kept_keys) == (len(DAYS_AGO) - len(old),) * 2
    assert report.committed
    assert ledger_keys(store) == {keys[d] for d in DAYS_AGO if d not in old}
    assert state_of(store) == before
    assert verify(store, SCOPE).ok
    meta = meta_of(store, SCOPE, "executions")
    assert meta["pruned_objects_total"] == len(old)
    # A later compaction (a full audit listing included) finds nothing to do and
    # keeps prune's counters.
    audit = Compactor(store, SCOPE, clock=lambda: now, audit_interval=timedelta(0))
    again = audit.compact("executions")
    assert (again.events, again.quarantined) == (0, 0)
    assert state_of(store) == before
    assert meta_of(store, SCOPE, "executions")["pruned_objects_total"] == len(old)
    # Pruning again is a no-op.
    assert compactor.prune("executions", timedelta(days=7)).ledger_objects == 0


def test_duplicates_inside_the_horizon_are_still_recognised(
    compacted: tuple[ObjectStore, dict[int, str], Compactor], now: datetime
) -> None:
    store, _, compactor = compacted
    compactor.prune("executions", timedelta(days=7))
    ledger = Ledger(store, SCOPE)
    ledger.append("executions", MAT, {"asset": "a.day2"}, idempotency_key="day-2")
    report = compactor.compact("executions")
    assert (report.events, report.duplicates) == (0, 1)
    # Beyond the horizon the key is forgotten (the documented trade-off): it folds again.
    ledger.append("executions", MAT, {"asset": "a.day10"}, idempotency_key="day-10")
    assert compactor.compact("executions").events == 1
    assert mats(store).count("a.day10") == 2


def test_dry_run_and_bad_horizons(
    compacted: tuple[ObjectStore, dict[int, str], Compactor],
) -> None:
    store, _, compactor = compacted
    before = ledger_keys(store)
    dry = compactor.prune("executions", timedelta(days=7), dry_run=True)
    assert (dry.ledger_objects, dry.committed) == (5, False)
    assert ledger_keys(store) == before
    with pytest.raises(InvalidArgumentError, match="look-back"):
        compactor.prune("executions", timedelta(hours=1))
    # A domain compacted with a wider window needs a longer horizon, whoever prunes it.
    Ledger(store, SCOPE).append("executions", MAT, {"asset": "a.wide"})
    assert Compactor(store, SCOPE, window=timedelta(days=7)).compact("executions").commits == 1
    with pytest.raises(InvalidArgumentError, match="look-back"):
        compactor.prune("executions", timedelta(days=7))
    with pytest.raises(InvalidArgumentError, match="unknown Tier-2 domain"):
        compactor.prune("catalog", timedelta(days=7))
    empty = Compactor(memory_store(), SCOPE).prune("lineage", timedelta(days=7))
    assert (empty.cutoff, empty.ledger_objects) == (None, 0)


def test_crash_at_every_storage_call_of_a_prune(now: datetime) -> None:
    probe = memory_store()
    seed(probe, now)
    Compactor(probe, SCOPE, clock=lambda: now).compact("executions")
    spy = FaultInjectingStore(probe)
    Compactor(spy, SCOPE, clock=lambda: now).prune("executions", timedelta(days=7))
    total = len(spy.calls)
    assert total > 5
    expected = mats(probe)
    for n in range(total):
        store = memory_store()
        keys = seed(store, now)
        Compactor(store, SCOPE, clock=lambda: now).compact("executions")
        faulty = FaultInjectingStore(store)
        faulty.arm("crash", call=n)
        with pytest.raises(SimulatedCrash):
            Compactor(faulty, SCOPE, clock=lambda: now).prune("executions", timedelta(days=7))
        assert verify(store, SCOPE).ok, n
        assert mats(store) == expected, n
        # The next compaction (with a full audit) quarantines nothing; the next prune
        # finishes the job.
        audit = Compactor(store, SCOPE, clock=lambda: now, audit_interval=timedelta(0))
        assert audit.compact("executions").quarantined == 0, n
        Compactor(store, SCOPE, clock=lambda: now).prune("executions", timedelta(days=7))
        assert ledger_keys(store) == {keys[d] for d in DAYS_AGO if d <= 7}, n
        assert mats(store) == expected, n
        assert table_rows(store, SCOPE, "executions", "quarantine") == []


def test_prune_racing_a_compactor_loses_no_event(now: datetime) -> None:
    store = memory_store()
    seed(store, now)
    Compactor(store, SCOPE).compact("executions")
    pruner = Compactor(store, SCOPE)
    ledger = Ledger(store, SCOPE)
    compactor = Compactor(store, SCOPE)
    with repeating_in_background(lambda: pruner.prune("executions", timedelta(days=7))):
        for i in range(40):
            ledger.append("executions", MAT, {"asset": f"b.{i:02d}"}, idempotency_key=f"b{i}")
            if i % 4 == 3:
                compactor.compact("executions")
        compactor.compact("executions")
    assert verify(store, SCOPE).ok
    got = mats(store)
    assert got == sorted([f"a.day{d}" for d in DAYS_AGO] + [f"b.{i:02d}" for i in range(40)])
    assert table_rows(store, SCOPE, "executions", "quarantine") == []


def test_cli_events_prune(tmp_path: Path, now: datetime) -> None:
    url = f"file://{tmp_path}/store"
    store = open_store(url)
    seed(store, now)
    Compactor(store, SCOPE).compact("executions")
    runner = CliRunner()
    base = ["--store", url, "--tenant", SCOPE.tenant, "--workspace", SCOPE.workspace]
    got = runner.invoke(app, [*base, "events", "prune", "--keep-days", "7", "--dry-run"])
    assert got.exit_code == 0, got.output
    assert "executions: would prune 5 ledger objects and 5 dedup records older than" in got.output
    assert "lineage: nothing compacted yet" in got.output
    got = runner.invoke(app, [*base, "--json", "events", "prune", "executions"])
    assert got.exit_code == 0, got.output
    assert '"committed": true' in got.output
    assert len(ledger_keys(store)) == len(DAYS_AGO) - 5
    bad = runner.invoke(app, [*base, "events", "prune", "--keep-days", "0.01"])
    assert bad.exit_code != 0
    assert "look-back" in bad.output
