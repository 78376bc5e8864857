"""Automation routes against a real uvicorn process sharing a file store with this
test: schedules (next tick, history, on/off), sensors (cursor, evaluations,
errors), backfills (create, progress, actions), check results (a run's, and
checks run on their own) and freshness; roles, bad input and tenant isolation.

The server serves ``tests/flow/automation/apiassets.py``; runs and ticks happen
in this process with the library, as a worker and a daemon would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from arco.core import Scope
from arco.core.storage import ObjectStore, open_store
from arco.flow.automation.config import build
from arco.flow.definitions import Definitions, load_definitions
from arco.flow.planner import plan
from arco.flow.runner import RunOptions, Scheduler

from .conftest import PROBLEM_JSON, LiveServer, run_server

AUTO_TESTS = Path(__file__).resolve().parents[1] / "flow" / "automation"
TENANT, WORKSPACE = "autoco", "main"
SCOPE = Scope(TENANT, WORKSPACE)
T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)


@dataclass
class Env:
    server: LiveServer
    store: ObjectStore
    store_url: str
    state: Path
    defs: Definitions
    run_id: str

    def url(self, path: str) -> str:
        return f"{self.server.base_url}/api/v1{path}"

    def headers(self, roles: tuple[str, ...] = ("writer",), tenant: str = TENANT) -> dict[str, str]:
        return self.server.tokens.headers(tenant, WORKSPACE, roles)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url(path), headers=self.headers(("reader",)), timeout=30, **kw)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("autoapi")
    state = workdir / "state"
    state.mkdir()
    (state / "blocked_days").write_text("2024-02-02")
    store_url = f"file://{workdir / 'store'}"
    old_state = os.environ.get("ARCO_TEST_STATE")
    os.environ["ARCO_TEST_STATE"] = str(state)
    project = {
        "ARCO_PROJECT_MODULE": "apiassets",
        "ARCO_PROJECT_DIR": str(AUTO_TESTS),
        "ARCO_TEST_STATE": str(state),
        "PYTHONPATH": os.pathsep.join([str(AUTO_TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    for name in ("apiassets", "autoassets"):
        sys.modules.pop(name, None)
    try:
        defs = load_definitions("apiassets", path=AUTO_TESTS)
        store = open_store(store_url)
        # A run whose blocking check fails on one day: check results to read back.
        result = Scheduler(
            store, SCOPE, defs, store_url=store_url, options=RunOptions(register_tables=False)
        ).run(plan(defs, "auto.daily+", partitions=["2024-02-01", "2024-02-02"]))
        with run_server(store_url, workdir, env=project) as server:
            yield Env(server, store, store_url, state, defs, result.run_id)
    finally:
        sys.path.remove(str(AUTO_TESTS)) if str(AUTO_TESTS) in sys.path else None
        for name in ("apiassets", "autoassets"):
            sys.modules.pop(name, None)
        if old_state is None:
            os.environ.pop("ARCO_TEST_STATE", None)
        else:
            os.environ["ARCO_TEST_STATE"] = old_state


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    return body


def test_schedules_show_next_tick_history_with_run_states_and_turn_off(env: Env) -> None:
    auto = build(env.store, SCOPE, env.defs)
    auto.sensors = {}
    auto.tick(T0)  # first sight: cursors start now
    before = {s["name"]: s for s in env.get("/schedules").json()["schedules"]}
    assert set(before) == {"nightly", "quarterly"}
    assert before["nightly"]["next_tick"].startswith("2024-05-02T00:00:00")  # 02:00 Berlin
    assert before["nightly"]["history"] == []
    report = auto.tick(datetime(2024, 5, 2, 0, 0, 30, tzinfo=UTC))
    launched = {r["run_key"]: r["run_id"] for r in report.launched}
    nightly = env.get("/schedules/nightly").json()
    assert nightly["enabled"] is True
    assert nightly["last_tick"].startswith("2024-05-02T00:00:00")
    tick = nightly["history"][0]
    assert tick["run_key"] == "schedule:nightly:2024-05-02T00:00:00Z"
    assert tick["status"] == "requested"
    assert tick["runs"] == [
        {"run_id": launched[tick["run_key"]], "run_key": None, "state": "QUEUED"}
    ]
    # quarterly ran every 15 minutes since 10:00 the day before: one caught up, the rest missed.
    quarterly = env.get("/schedules/quarterly").json()
    statuses = [h["status"] for h in quarterly["history"]]
    assert statuses[0] == "requested"
    assert set(statuses[1:]) == {"missed"}
    assert len(statuses) == 10  # bounded history

    off = httpx.patch(
        env.url("/schedules/nightly"), json={"enabled": False}, headers=env.headers(), timeout=30
    )
    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False
    later = auto.tick(datetime(2024, 5, 3, 0, 0, 30, tzinfo=UTC))
    assert later.launched  # quarterly still runs
    assert not [r for r in later.launched if r["run_key"].startswith("schedule:nightly")]
    assert (
        env.get("/schedules/nightly").json()["history"][0]["scheduled_at"].startswith("2024-05-02")
    )
    on = httpx.patch(
        env.url("/schedules/nightly"), json={"enabled": True}, headers=env.headers(), timeout=30
    )
    assert on.json()["enabled"] is True


def test_schedule_and_sensor_errors_are_problems(env: Env) -> None:
    _problem(env.get("/schedules/nope"), 404)
    _problem(env.get("/sensors/nope"), 404)
    # A reader cannot turn things off; a body that is not a bool is refused.
    _problem(
        httpx.patch(
            env.url("/schedules/nightly"),
            json={"enabled": False},
            headers=env.headers(("reader",)),
            timeout=30,
        ),
        403,
    )
    _problem(
        httpx.patch(
            env.url("/sensors/files"),
            json={"enabled": "sometimes"},
            headers=env.headers(),
            timeout=30,
        ),
        422,
    )
    _problem(
        httpx.patch(
            env.url("/sensors/files"), json={"on": True}, headers=env.headers(), timeout=30
        ),
        422,
    )


def test_sensors_show_cursor_evaluations_and_errors(env: Env) -> None:
    auto = build(env.store, SCOPE, env.defs)
    auto.schedules = {}
    inbox = env.state / "inbox"
    inbox.mkdir(exist_ok=True)
    (inbox / "a.csv").write_text("x")
    t = datetime(2024, 6, 1, 12, tzinfo=UTC)
    auto.tick(t)
    files = env.get("/sensors/files").json()
    assert files["cursor"] == "a.csv"
    assert files["kind"] == "custom"
    assert files["history"][0]["status"] == "requested"
    assert files["history"][0]["runs"][0]["run_key"] == "sensor:files:a.csv"
    assert files["history"][0]["runs"][0]["state"] == "QUEUED"
    (env.state / "sensor_raises").write_text("1")
    try:
        auto.tick(datetime(2024, 6, 1, 12, 5, tzinfo=UTC))
    finally:
        (env.state / "sensor_raises").unlink()
    failing = env.get("/sensors").json()["sensors"][0]
    assert failing["name"] == "files"
    assert failing["failures"] == 1
    assert "the inbox is unreachable" in failing["last_error"]
    assert failing["history"][0]["status"] == "failed"
    assert "the inbox is unreachable" in failing["history"][0]["error"]
    assert failing["cursor"] == "a.csv"  # a failed evaluation keeps the cursor
    off = httpx.patch(
        env.url("/sensors/files"), json={"enabled": False}, headers=env.headers(), timeout=30
    )
    assert off.status_code == 200
    assert off.json()["enabled"] is False


def test_backfills_are_created_followed_and_acted_on(env: Env) -> None:
    made = httpx.post(
        env.url("/backfills"),
        json={"selection": "auto.daily", "from": "2024-03-01", "to": "2024-03-05", "chunk_size": 2},
        headers=env.headers(),
        timeout=30,
    )
    assert made.status_code == 201, made.text
    bf = made.json()
    assert (bf["partitions"], bf["chunks"], bf["state"]) == (5, 3, "RUNNING")
    assert (bf["first_partition"], bf["last_partition"]) == ("2024-03-01", "2024-03-05")
    listed = env.get("/backfills").json()["backfills"]
    assert listed[0]["backfill_id"] == bf["backfill_id"]
    shown = env.get(f"/backfills/{bf['backfill_id']}").json()
    assert shown["assets"]["auto.daily"] == {f"2024-03-0{i}": "missing" for i in range(1, 6)}
    paused = httpx.post(
        env.url(f"/backfills/{bf['backfill_id']}/pause"), headers=env.headers(), timeout=30
    )
    assert paused.status_code == 200
    assert paused.json()["state"] == "PAUSED"
    again = httpx.post(
        env.url(f"/backfills/{bf['backfill_id']}/pause"), headers=env.headers(), timeout=30
    )
    assert "is PAUSED" in _problem(again, 409)["detail"]
    _problem(
        httpx.post(
            env.url(f"/backfills/{bf['backfill_id']}/explode"), headers=env.headers(), timeout=30
        ),
        422,
    )
    _problem(env.get("/backfills/01HZZZZZZZZZZZZZZZZZZZZZZZ"), 404)
    _problem(env.get("/backfills/not-an-id"), 404)
    bad = httpx.post(
        env.url("/backfills"),
        json={"selection": "auto.source", "from": "2024-03-01", "to": "2024-03-05"},
        headers=env.headers(),
        timeout=30,
    )
    _problem(bad, 400)
    # Another tenant sees none of it.
    other = httpx.get(
        env.url("/backfills"), headers=env.headers(("reader",), tenant="otherco"), timeout=30
    )
    assert other.json() == {"backfills": []}
    _problem(
        httpx.get(
            env.url(f"/backfills/{bf['backfill_id']}"),
            headers=env.headers(("reader",), tenant="otherco"),
            timeout=30,
        ),
        404,
    )


def test_check_results_of_a_run_and_checks_run_on_their_own(env: Env) -> None:
    results = env.get("/asset-checks", params={"asset": "auto.daily"}).json()["results"]
    got = sorted((r["partition"], r["check"], r["passed"]) for r in results)
    assert got == [
        ("2024-02-01", "looks_fine", True),
        ("2024-02-01", "not_blocked", True),
        ("2024-02-02", "looks_fine", True),
        ("2024-02-02", "not_blocked", False),
    ]
    failed = next(r for r in results if not r["passed"])
    assert failed["run_id"] == env.run_id
    assert failed["blocking"] is True
    assert failed["metadata"] == {"day": "2024-02-02"}
    by_run = env.get("/asset-checks", params={"run_id": env.run_id}).json()["results"]
    assert {r["asset"] for r in by_run} == {"auto.daily", "auto.daily_total"}
    _problem(env.get("/asset-checks", params={"run_id": "nope"}), 400)

    # The blocklist is cleared: the check passes when run on its own.
    (env.state / "blocked_days").write_text("")
    ran = httpx.post(
        env.url("/assets/auto.daily/checks"),
        json={"partition": "2024-02-02"},
        headers=env.headers(),
        timeout=30,
    )
    assert ran.status_code == 200, ran.text
    assert {(r["check"], r["passed"]) for r in ran.json()["results"]} == {
        ("not_blocked", True),
        ("looks_fine", True),
    }
    latest = env.get(
        "/asset-checks", params={"asset": "auto.daily", "partition": "2024-02-02", "latest": True}
    ).json()["results"]
    assert {(r["check"], r["passed"], r["run_id"]) for r in latest} == {
        ("not_blocked", True, None),
        ("looks_fine", True, None),
    }
    _problem(
        httpx.post(env.url("/assets/auto.source/checks"), headers=env.headers(), timeout=30), 400
    )
    _problem(
        httpx.post(env.url("/assets/auto.nope/checks"), headers=env.headers(), timeout=30), 404
    )
    never = httpx.post(
        env.url("/assets/auto.daily/checks"),
        json={"partition": "2029-01-01"},
        headers=env.headers(),
        timeout=30,
    )
    assert "never been materialized" in _problem(never, 404)["detail"]
    _problem(
        httpx.post(
            env.url("/assets/auto.daily/checks"), headers=env.headers(("reader",)), timeout=30
        ),
        403,
    )


def test_freshness_marks_overdue_assets(env: Env) -> None:
    rows = env.get("/freshness").json()["assets"]
    assert [(r["asset"], r["state"]) for r in rows] == [("auto.source", "overdue")]
    assert rows[0]["last_materialized_at"] is None
    assets = {a["key"]: a for a in env.get("/assets").json()["assets"]}
    assert assets["auto.source"]["freshness"] == "overdue"
    assert assets["auto.daily"]["freshness"] is None
    Scheduler(
        env.store,
        SCOPE,
        env.defs,
        store_url=env.store_url,
        options=RunOptions(register_tables=False),
    ).run(plan(env.defs, "auto.source"))
    assert env.get("/freshness").json()["assets"][0]["state"] == "fresh"
    assets = {a["key"]: a for a in env.get("/assets").json()["assets"]}
    assert assets["auto.source"]["freshness"] == "fresh"
