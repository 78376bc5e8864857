"""Arco's own runs emitted as OpenLineage to a second Arco that is down, then up.

No run fails or waits while the sink is down; once it is up every event arrives,
and nothing is duplicated in the sink's state (retries re-send the same run id,
event type and time, which the sink counts once).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa

from arco import asset
from arco.core import Scope, open_store
from arco.flow.definitions import Definitions
from arco.flow.executors import InlineExecutor
from arco.flow.planner import plan
from arco.flow.runner import Scheduler
from arco.openlineage.emit import EmitStats, OpenLineageEmitter, RunTranslator
from conftest import free_port, start_logged, stop_process, wait_for_http

from .conftest import SECRET, Tokens

SCOPE = Scope("default", "default")


@asset(namespace="shop")
def orders() -> pa.Table:
    return pa.table({"id": [1, 2, 3], "amount": [5.0, 7.5, 1.0]})


@asset(namespace="shop")
def revenue(orders: pa.Table) -> pa.Table:
    return pa.table({"total": [sum(orders.column("amount").to_pylist())]})


@contextlib.contextmanager
def _sink(port: int, store_url: str, workdir: Path) -> Iterator[str]:
    """An Arco API server on a chosen port (the emitter was pointed at it before it ran)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    env.update(ARCO_STORE=store_url, ARCO_JWT_SECRET=SECRET)
    proc = start_logged(
        [
            *(sys.executable, "-m", "uvicorn", "arco.api.app:create_app", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        workdir / f"sink-{port}.log",
        cwd=workdir,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_for_http(base + "/healthz", proc, 30):
            raise AssertionError("sink server did not start")
        yield base
    finally:
        stop_process(proc)


def _run(store_url: str, translator: RunTranslator) -> str:
    defs = Definitions([orders, revenue])
    sched = Scheduler(
        open_store(store_url),
        SCOPE,
        defs,
        store_url=store_url,
        executor=InlineExecutor(),
        on_events=translator,
    )
    started = time.monotonic()
    result = sched.run(plan(defs, "*"))
    assert result.state == "SUCCEEDED"
    # The endpoint being down costs the run nothing (no connect attempt in its path).
    assert time.monotonic() - started < 10
    return result.run_id


def test_emit_to_a_sink_that_is_down_then_up(tmp_path: Path) -> None:
    tokens = Tokens()
    sink_tenant = f"sink{uuid.uuid4().hex[:8]}"
    token = tokens(tenant=sink_tenant, workspace="main", roles=["writer"])
    port = free_port()
    stats = EmitStats()
    emitter = OpenLineageEmitter(
        f"http://127.0.0.1:{port}", api_key=token, timeout=2.0, max_backoff=0.5, stats=stats
    )
    store_url = f"file://{tmp_path / 'arco'}"
    translator = RunTranslator(
        emitter, SCOPE, upstreams=lambda a: ["shop.orders"] if a == "shop.revenue" else []
    )
    try:
        first = _run(store_url, translator)  # the sink is down
        time.sleep(0.5)
        assert stats.sent == 0
        assert stats.failures >= 1
        assert emitter.pending() == 6  # run START/COMPLETE + 2 tasks x START/COMPLETE
        with _sink(port, f"file://{tmp_path / 'sink'}", tmp_path) as base:
            assert emitter.flush(30), "queued events were not delivered once the sink was up"
            second = _run(store_url, translator)
            assert emitter.flush(30)
            assert stats.sent == 12
            assert stats.dropped == 0
            # A retried event reaching the sink twice must count once: re-send one.
            h = {"Authorization": f"Bearer {token}"}
            stored = httpx.get(base + "/api/v1/events/lineage?limit=1", headers=h).json()
            again = httpx.post(
                base + "/api/v1/lineage",
                content=stored[0]["payload"]["raw_json"],
                headers={**h, "Content-Type": "application/json"},
            )
            assert again.status_code == 201
            r = httpx.post(base + "/api/v1/compaction", json={"domain": "lineage"}, headers=h)
            assert r.status_code == 200
            report = r.json()["reports"][0]
            assert (report["events"], report["duplicates"]) == (12, 1)
            runs = httpx.get(base + "/api/v1/openlineage/runs", headers=h).json()["items"]
            assert len(runs) == 6  # 2 Arco runs + 4 task runs, one row each
            assert {r["state"] for r in runs} == {"COMPLETE"}
            tops = [r for r in runs if r["parent_run_id"] is None]
            assert len(tops) == 2
            for top in tops:
                assert top["job_name"] == "run.*"
                assert "arco://default/default::shop.revenue" in top["outputs"]
            ids = {r["run_id"] for r in tops}
            from ulid import ULID

            assert ids == {
                str(ULID.from_str(first).to_uuid()),
                str(ULID.from_str(second).to_uuid()),
            }
            children = [r for r in runs if r["parent_run_id"] is not None]
            assert {r["job_name"] for r in children} == {"shop.orders", "shop.revenue"}
            edges = httpx.get(base + "/api/v1/lineage/edges", headers=h).json()["items"]
            assert [(e["source"], e["target"]) for e in edges] == [("shop.orders", "shop.revenue")]
            ds = httpx.get(base + "/api/v1/openlineage/datasets", headers=h).json()["items"]
            rev = next(d for d in ds if d["name"] == "shop.revenue")
            assert rev["row_count"] == 1
            assert rev["schema"] == [{"name": "total", "type": "float64"}]
        from arco.discovery.lineage import lineage_coverage

        arco_cov = lineage_coverage(open_store(store_url), SCOPE)[0]
        assert (arco_cov.source, arco_cov.finished, arco_cov.share) == ("arco", 2, 1.0)
    finally:
        emitter.close(timeout=1)


def test_a_full_buffer_drops_and_counts_never_blocks(tmp_path: Path) -> None:
    stats = EmitStats()
    emitter = OpenLineageEmitter(
        f"http://127.0.0.1:{free_port()}", buffer=3, timeout=0.5, max_backoff=0.2, stats=stats
    )
    translator = RunTranslator(emitter, SCOPE)
    try:
        started = time.monotonic()
        _run(f"file://{tmp_path / 'arco'}", translator)
        assert time.monotonic() - started < 10
        assert stats.dropped == 3  # 6 events, room for 3
        assert emitter.pending() == 3
    finally:
        emitter.close(timeout=0.2)
    assert stats.dropped == 6  # what was still queued at close is counted too


def test_metrics_count_drops(tmp_path: Path) -> None:
    from arco.openlineage.emit import STATS

    from .conftest import in_process_client, make_app

    before = STATS.dropped
    emitter = OpenLineageEmitter(f"http://127.0.0.1:{free_port()}", buffer=1, max_backoff=0.2)
    try:
        assert emitter.emit(object()) is True
        assert emitter.emit(object()) is False
    finally:
        emitter.close(timeout=0.1)
    with in_process_client(make_app()) as client:
        text = client.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("arco_openlineage_dropped_total"))
    assert float(line.split()[-1]) == before + 2  # one refused, one still queued at close


PROJECT = """
import pyarrow as pa
from arco import asset


@asset(namespace="shop")
def orders() -> pa.Table:
    return pa.table({"id": [1, 2, 3], "amount": [5.0, 7.5, 1.0]})


@asset(namespace="shop")
def revenue(orders: pa.Table) -> pa.Table:
    return pa.table({"total": [sum(orders.column("amount").to_pylist())]})
"""


def test_runs_queued_through_the_api_emit_from_arco_worker(tmp_path: Path) -> None:
    """``arco worker`` executes queued runs (the API's and the UI's) and emits them too."""
    from arco.flow.queue import enqueue

    tokens = Tokens()
    sink_tenant = f"sink{uuid.uuid4().hex[:8]}"
    token = tokens(tenant=sink_tenant, workspace="main", roles=["writer"])
    port = free_port()
    store_url = f"file://{tmp_path / 'arco'}"
    (tmp_path / "olproject.py").write_text(PROJECT)
    queued = enqueue(open_store(store_url), SCOPE, plan(Definitions([orders, revenue]), "*"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    env.update(
        ARCO_OPENLINEAGE_URL=f"http://127.0.0.1:{port}",
        ARCO_OPENLINEAGE_API_KEY=token,
        PYTHONPATH=os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")]),
    )
    with _sink(port, f"file://{tmp_path / 'sink'}", tmp_path) as base:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "arco.cli.main", "--store", store_url, "--json"),
                *("worker", "--once", "--executor", "inline", "--module", "olproject"),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert '"SUCCEEDED"' in done.stdout
        h = {"Authorization": f"Bearer {token}"}
        r = httpx.post(base + "/api/v1/compaction", json={"domain": "lineage"}, headers=h)
        assert r.status_code == 200
        # The worker flushed before exiting: every event is in the sink.
        assert r.json()["reports"][0]["events"] == 6
        runs = httpx.get(base + "/api/v1/openlineage/runs", headers=h).json()["items"]
    from ulid import ULID

    top = [r for r in runs if r["parent_run_id"] is None]
    assert [(r["run_id"], r["job_name"], r["state"]) for r in top] == [
        (str(ULID.from_str(queued.run_id).to_uuid()), "run.*", "COMPLETE")
    ]
    children = {r["job_name"]: r for r in runs if r["parent_run_id"] is not None}
    assert set(children) == {"shop.orders", "shop.revenue"}
    assert {r["state"] for r in children.values()} == {"COMPLETE"}
    assert {r["parent_run_id"] for r in children.values()} == {top[0]["run_id"]}
    assert children["shop.revenue"]["inputs"] == ["arco://default/default::shop.orders"]
