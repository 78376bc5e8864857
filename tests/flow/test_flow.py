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
from arco.ledger.compactor import tier2_store

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
    from arco.discovery.lineage import LineageGraph

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
    from arco.ledger.events import build_envelope
    from arco.ledger.folds import ExecutionsState, Folder

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


# ------------------------------------------------------------- performance work
def _layered(n: int, layers: int, *, namespace: str = "bench", pause: float = 0.0) -> Definitions:
    """The benchmark's graph: ``layers`` layers; each asset below the first sums two
    assets of the layer above."""
    from arco import asset

    per = n // layers
    out = []
    for layer in range(layers):
        for i in range(per):
            name = f"a{layer}_{i}"
            if layer == 0:

                def leaf() -> int:
                    time.sleep(pause)
                    return 1

                leaf.__name__ = leaf.__qualname__ = name
                out.append(asset(name=name, namespace=namespace)(leaf))
            else:

                def inner(a: int, b: int) -> int:
                    time.sleep(pause)
                    return a + b

                inner.__name__ = inner.__qualname__ = name
                ins = {"a": f"a{layer - 1}_{i}", "b": f"a{layer - 1}_{(i + 1) % per}"}
                out.append(asset(name=name, namespace=namespace, ins=ins)(inner))
    return Definitions(out)


def test_plan_fingerprints_are_pinned() -> None:
    """Plans serialise exactly as before the planner was optimised: these
    fingerprints were computed by the original implementation."""
    d = _layered(200, 10)
    assert plan(d, "*").fingerprint == (
        "sha256:173d105dac400c9567c7d3644c3b3c938ba5b4d2d3e500e7b91b396dab2fb577"
    )
    assert plan(d, "+bench.a9_3").fingerprint == (
        "sha256:d201ce46d3a82ba5a80d4ff7cd7fc5ceefe6fa4b1a0fcf9eef73119d53b02c14"
    )
    assert plan(_defs(), "*").fingerprint == (
        "sha256:b9993a553e601c61eb267c5af9774c9b7af3872a7369219189e70d066b453e6f"
    )
    assert plan(_defs(), "+report", partitions=["2024-01-02"]).fingerprint == (
        "sha256:e464bee7c745ef9c0a659dcd3d2a91de3a2a422abd6ae18fbe5d4e7970be5578"
    )


def test_fingerprint_covers_the_canonical_json_of_odd_values() -> None:
    """The hand-built canonical JSON equals the generic encoder's, including
    escapes, non-ASCII keys and a non-string code version (which falls back)."""
    from arco import StaticPartitions, asset
    from arco.core.ids import canonical_json, sha256_hex

    keys = StaticPartitions(["é", 'a"b', "x\\y", "\x01z", "\u2028", "plain"])

    @asset(namespace="odd", partitions=keys, code_version=3)  # type: ignore[arg-type]
    def weird() -> int:
        return 1

    @asset(namespace="odd", code_version='ü"')
    def after_weird(weird: int) -> int:
        return weird

    d = Definitions([weird, after_weird])
    for p in (plan(d, "*"), plan(d, "weird+", partitions=['a"b', "é"])):
        assert p.fingerprint == "sha256:" + sha256_hex(canonical_json(p.body()))
        assert json.loads(p.to_json())["tasks"] == p.to_dict()["tasks"]
    assert {t.partition for t in plan(d, "*").tasks} == set(keys.keys()) | {None}


def test_stale_plan_reasons_follow_upstream_order() -> None:
    """In stale mode the first upstream (in declaration order) that is in the plan
    or newer decides the reason; unchanged assets are out and say why."""
    from datetime import UTC, datetime, timedelta

    from arco.flow.planner import Materialization

    d = _layered(20, 4)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    mats = {
        (key, None): Materialization(key, None, None, t0 + timedelta(seconds=i), "r")
        for i, key in enumerate(d.order)
    }
    # a0_0 never materialized: it is in, and so is everything downstream of it.
    del mats[("bench.a0_0", None)]
    # a1_3 is older than its second upstream only.
    mats[("bench.a1_3", None)] = Materialization("bench.a1_3", None, None, t0, "r")
    p = plan(d, "*", mode="stale", materializations=mats)
    why = {e.asset: (e.included, e.reason) for e in p.explanations}
    assert why["bench.a0_0"] == (True, "never materialized")
    assert why["bench.a1_4"] == (True, "upstream in plan")  # reads a0_4 and a0_0
    assert why["bench.a1_3"] == (True, "upstream materialized since")
    assert why["bench.a0_1"] == (False, "up to date")
    assert {t.asset for t in p.tasks} == {k for k, (inc, _) in why.items() if inc}


def test_inline_run_batches_writes_ahead_of_their_effects(tmp_path: Path) -> None:
    """An inline run writes a few ledger objects, not several per task; a task's
    RUNNING is never written before its upstreams' SUCCEEDED, and every event keeps
    the time of its own transition."""
    from arco.ledger.log import Ledger

    url = f"file://{tmp_path}/store"
    store = open_store(url)
    d = _layered(40, 4, pause=0.02)
    result = Scheduler(store, SCOPE, d, store_url=url, options=RunOptions()).run(plan(d, "*"))
    assert result.state == "SUCCEEDED"
    ledger = Ledger(store, SCOPE)
    objects = sorted(ledger.list_objects("executions"), key=lambda o: o.object_id)
    assert len(objects) <= len(result.tasks) // 2
    where: dict[tuple[str, str], int] = {}
    for i, obj in enumerate(objects):
        for env in ledger.read(obj):
            if env.event_type == "task.state_changed":
                where[(env.payload["task_id"], env.payload["state"])] = i
    for tid, tr in result.tasks.items():
        for dep in tr.task.deps:
            assert where[(dep, "SUCCEEDED")] < where[(tid, "RUNNING")], (dep, tid)
    rows = {
        r["task_id"]: r
        for r in tier2_store(store, SCOPE, "executions").read().state.rows("tasks")
        if r["run_id"] == result.run_id
    }
    for tid, tr in result.tasks.items():
        row = rows[tid]
        # Each attempt sleeps 20 ms: RUNNING and SUCCEEDED carry their own times
        # even though they were written in one batch.
        assert (row["finished_at"] - row["started_at"]).total_seconds() >= 0.015, tid
        for dep in tr.task.deps:
            assert row["started_at"] >= rows[dep]["finished_at"], (dep, tid)


def test_inline_attempt_fails_when_its_value_cannot_be_stored(tmp_path: Path) -> None:
    """The value is written after the asset's code ran; a failed write fails the
    attempt (and is retried) instead of recording a materialization."""
    from arco import asset
    from arco.core.keys import Keys
    from arco.flow.assets import RetryPolicy

    @asset(namespace="io", retries=RetryPolicy(max_retries=1, backoff_seconds=0.01))
    def blocked() -> dict[str, int]:
        return {"x": 1}

    url = f"file://{tmp_path}/store"
    store = open_store(url)
    # A file where the asset's output folder should be: every write under it fails.
    where = tmp_path / "store" / Keys(SCOPE).asset_prefix("io.blocked").rstrip("/")
    where.parent.mkdir(parents=True)
    where.write_text("in the way")
    d = Definitions([blocked])
    result = Scheduler(store, SCOPE, d, store_url=url).run(plan(d, "*"))
    task = result.tasks["io.blocked"]
    assert (result.state, task.state, task.attempt) == ("FAILED", "FAILED", 2)
    assert task.error is not None
    assert task.error.startswith("storing the value failed")
    assert ("io.blocked", None) not in latest_materializations(store, SCOPE)
