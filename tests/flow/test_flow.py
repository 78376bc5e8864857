"""Orchestration: states, planning determinism, runs end to end with real executors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arco.catalog import Catalog
from arco.catalog.compactor import tier2_store
from arco.core import Scope
from arco.core.storage import open_store
from arco.flow.definitions import DefinitionError, Definitions
from arco.flow.executors import make_executor
from arco.flow.partitions import (
    DailyPartitions,
    HourlyPartitions,
    MultiPartitions,
    StaticPartitions,
    TimeWindowMapping,
)
from arco.flow.planner import plan, rerun_plan
from arco.flow.runner import RunOptions, Scheduler, latest_materializations, request_cancel
from arco.flow.states import (
    TASK_STATES,
    TASK_TRANSITIONS,
    IllegalTransitionError,
    task_transition,
)

sys.path.insert(0, str(Path(__file__).parent))
import flowassets

SCOPE = Scope("default", "default")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("ARCO_TEST_STATE", str(d))
    monkeypatch.setattr(flowassets, "STATE_DIR", d)
    return d


def _defs() -> Definitions:
    return Definitions(
        [
            flowassets.orders,
            flowassets.flaky,
            flowassets.broken,
            flowassets.after_broken,
            flowassets.daily,
            flowassets.report,
        ]
    )


@given(st.lists(st.sampled_from(TASK_STATES), min_size=1, max_size=12))
def test_task_state_machine_accepts_only_legal_transitions(path: list[str]) -> None:
    state = "PLANNED"
    for target in path:
        if target in TASK_TRANSITIONS[state]:
            state = task_transition(state, target)
        else:
            with pytest.raises(IllegalTransitionError):
                task_transition(state, target)


def test_partitions_canonical_keys_and_mappings() -> None:
    days = DailyPartitions("2024-01-01", "2024-01-03")
    hours = HourlyPartitions("2024-01-01", "2024-01-03")
    assert days.keys() == ["2024-01-01", "2024-01-02"]
    assert hours.keys()[:2] == ["2024-01-01T00:00", "2024-01-01T01:00"]
    ups = TimeWindowMapping().upstream("2024-01-02", days, hours)
    assert len(ups) == 24
    assert ups[0] == "2024-01-02T00:00"
    multi = MultiPartitions({"region": StaticPartitions(["eu", "us"]), "date": days})
    assert multi.keys()[0] == "date=2024-01-01|region=eu"
    assert multi.validate("region=us|date=2024-01-02") == "date=2024-01-02|region=us"
    with pytest.raises(Exception, match="not"):
        days.validate("2024-13-01")


def test_definition_errors_name_asset_and_line() -> None:
    from arco import asset

    @asset(namespace="x")
    def a(b: int) -> int:
        return b

    @asset(namespace="x")
    def b(a: int) -> int:
        return a

    with pytest.raises(DefinitionError, match=r"cycle.*test_flow.py:\d+"):
        Definitions([a, b])

    @asset(namespace="x")
    def c(missing: int) -> int:
        return missing

    with pytest.raises(DefinitionError, match="unknown upstream asset 'missing'"):
        Definitions([c])
    with pytest.raises(DefinitionError, match=r"duplicate asset key x\.c"):
        Definitions([c, c])


def test_plan_is_deterministic_across_processes() -> None:
    here = str(Path(__file__).parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import flowassets as f;"
        "from arco.flow.definitions import Definitions; from arco.flow.planner import plan;"
        "d = Definitions([f.orders, f.flaky, f.broken, f.after_broken, f.daily, f.report]);"
        "sys.stdout.buffer.write(plan(d, '+report', partitions=['2024-01-02']).to_json())"
    )
    outs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
        for _ in range(2)
    ]
    local = plan(_defs(), "+report", partitions=["2024-01-02"]).to_json()
    assert outs[0] == outs[1] == local
    body = json.loads(local)
    assert body["fingerprint"].startswith("sha256:")
    assert [t["task_id"] for t in body["tasks"]][-1] == "shop.report"


def test_selection_syntax() -> None:
    d = _defs()
    ids = {t.asset for t in plan(d, "flaky+").tasks}
    assert ids == {"shop.flaky", "shop.daily", "shop.report"}
    ids = {t.asset for t in plan(d, "+after_broken").tasks}
    assert ids == {"shop.orders", "shop.broken", "shop.after_broken"}


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_run_end_to_end(executor: str, tmp_path: Path, state_dir: Path) -> None:
    url = f"file://{tmp_path}/store"
    store = open_store(url)
    d = _defs()
    ex = make_executor(executor)
    try:
        sched = Scheduler(
            store, SCOPE, d, store_url=url, executor=ex, options=RunOptions(max_concurrency=2)
        )
        result = sched.run(plan(d, "*"))
    finally:
        ex.close()
    states = {t: r.state for t, r in result.tasks.items()}
    assert result.state == "FAILED"
    assert states["shop.flaky"] == "SUCCEEDED"
    assert result.tasks["shop.flaky"].attempt == 2
    assert states["shop.broken"] == "FAILED"
    assert states["shop.after_broken"] == "SKIPPED"
    assert states["shop.report"] == "SUCCEEDED"
    # The compacted ledger reproduces the scheduler's own state exactly.
    domain = tier2_store(store, SCOPE, "executions")
    snap = domain.read()
    folded = {
        r["task_id"]: r["state"] for r in snap.state.rows("tasks") if r["run_id"] == result.run_id
    }
    assert folded == states
    run_row = snap.state.table("runs")[(result.run_id,)]
    assert run_row["state"] == "FAILED"
    mats = latest_materializations(store, SCOPE)
    assert ("shop.daily", "2024-01-02") in mats
    assert ("shop.broken", None) not in mats
    tables = {t.qualified_name for t in Catalog(store, SCOPE).list_tables().items}
    assert {"shop.orders", "shop.flaky"} <= tables
    from arco.catalog.lineage import LineageGraph

    up = LineageGraph(store, SCOPE).traverse("shop.report", direction="upstream")
    assert {n.name for n in up.nodes} == {"shop.daily", "shop.flaky", "shop.orders"}
    # Re-run from failure: only the failed and skipped tasks, reusing earlier outputs.
    parent = {r["task_id"]: r for r in snap.state.rows("tasks") if r["run_id"] == result.run_id}
    redo = [(r["asset"], r["partition"]) for r in parent.values() if r["state"] != "SUCCEEDED"]
    rp = rerun_plan(d, redo, "*")
    assert {t.task_id for t in rp.tasks} == {"shop.broken", "shop.after_broken"}


def test_killed_worker_is_retried(tmp_path: Path, state_dir: Path) -> None:
    url = f"file://{tmp_path}/store"
    d = Definitions([flowassets.dies_once])
    ex = make_executor("process")
    try:
        result = Scheduler(open_store(url), SCOPE, d, store_url=url, executor=ex).run(plan(d, "*"))
    finally:
        ex.close()
    task = result.tasks["crash.dies_once"]
    assert task.state == "SUCCEEDED"
    assert task.attempt == 2


def test_cancel_running_run(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    store = open_store(url)
    d = Definitions([flowassets.sleepy, flowassets.after_sleepy])
    ex = make_executor("process")
    run_id = "01J0000000000000000000CANC"
    timer = threading.Timer(1.5, lambda: request_cancel(store, SCOPE, run_id))
    timer.start()
    start = time.monotonic()
    try:
        result = Scheduler(store, SCOPE, d, store_url=url, executor=ex).run(
            plan(d, "*"), run_id=run_id
        )
    finally:
        ex.close()
        timer.cancel()
    assert time.monotonic() - start < 20
    assert result.state == "CANCELLED"
    assert result.tasks["slow.sleepy"].state == "CANCELLED"
    assert result.tasks["slow.after_sleepy"].state == "CANCELLED"


def test_init_and_run_from_the_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": ""}
    arco = [sys.executable, "-m", "arco.cli.main"]
    subprocess.run([*arco, "init", "demo"], cwd=tmp_path, check=True, env=env)
    run = subprocess.run(
        [*arco, "--json", "run", "*"],
        cwd=tmp_path / "demo",
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["state"] == "SUCCEEDED"
    runs = subprocess.run(
        [*arco, "--json", "runs", "list"],
        cwd=tmp_path / "demo",
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(runs.stdout)[0]["state"] == "SUCCEEDED"
    stale = subprocess.run(
        [*arco, "--json", "plan", "*", "--stale-only"],
        cwd=tmp_path / "demo",
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(stale.stdout)["tasks"] == []


@settings(max_examples=15, deadline=None)
@given(st.permutations(list(range(6))), st.integers(min_value=0, max_value=3))
def test_fold_of_run_events_is_order_independent(order: list[int], dup: int) -> None:
    from arco.catalog.events import build_envelope
    from arco.catalog.tier2state import ExecutionsState, Folder

    seq = [
        ("READY", 1),
        ("RUNNING", 2),
        ("RETRY_WAIT", 3),
        ("READY", 4),
        ("RUNNING", 5),
        ("SUCCEEDED", 6),
    ]
    envs = [
        build_envelope(
            "executions",
            "task.state_changed",
            {"run_id": "r", "task_id": "t", "seq": s, "state": st_, "attempt": s // 3},
        )
        for st_, s in seq
    ]
    events = [envs[i] for i in order] + [envs[dup]]
    folder = Folder(ExecutionsState.empty())
    seen: set[str] = set()
    for env in events:
        if env.idempotency_key in seen:
            continue
        seen.add(env.idempotency_key)
        from datetime import UTC, datetime

        folder.fold(env, datetime(2024, 1, 1, tzinfo=UTC))
    row = folder.upserts["tasks"][("r", "t")]
    assert row["state"] == "SUCCEEDED"
    assert row["seq"] == 6
