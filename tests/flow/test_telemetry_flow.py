"""A run is one trace: the run's span is the parent of every task attempt's span,
also across processes (issue #16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flowassets

from arco.core import metrics
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.flow.definitions import Definitions
from arco.flow.executors import Handle, Job, make_executor
from arco.flow.planner import plan
from arco.flow.runner import Scheduler

SCOPE = Scope("acme", "main")


def _tree(finished: Any) -> dict[str, list[str]]:
    by_id = {s.context.span_id: s for s in finished}
    out: dict[str, list[str]] = {}
    for s in sorted(finished, key=lambda s: s.start_time):
        parent = by_id.get(s.parent.span_id) if s.parent is not None else None
        out.setdefault(parent.name if parent else "<root>", []).append(s.name)
    return out


def _count(name: str, labels: dict[str, str]) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_run_span_tree_and_run_task_metrics(spans: Any, tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    defs = Definitions([flowassets.orders, flowassets.broken])
    failed_runs = _count("arco_runs_total", {"state": "FAILED"})
    ok_tasks = _count("arco_tasks_total", {"state": "SUCCEEDED"})
    failed_tasks = _count("arco_tasks_total", {"state": "FAILED"})
    result = Scheduler(open_store(url), SCOPE, defs, store_url=url).run(plan(defs, "*"))
    assert result.state == "FAILED"
    finished = spans.get_finished_spans()
    tree = _tree(finished)
    assert tree["<root>"] == ["run"]
    assert tree["run"].count("task") == 2
    run = next(s for s in finished if s.name == "run")
    tasks = [s for s in finished if s.name == "task"]
    assert {s.context.trace_id for s in tasks} == {run.context.trace_id}
    assert sorted((s.attributes["arco.asset"], s.attributes["arco.ok"]) for s in tasks) == [
        ("shop.broken", False),
        ("shop.orders", True),
    ]
    assert run.attributes["arco.run.state"] == "FAILED"
    # The run's events, its value writes and its commits are inside the run's trace.
    assert "ledger.append" in tree["run"]
    ok_task = next(s for s in tasks if s.attributes["arco.ok"])
    assert tree["task"] == ["value.write"]  # only the succeeded attempt stores a value
    write = next(s for s in finished if s.name == "value.write")
    assert write.parent is not None
    assert write.parent.span_id == ok_task.context.span_id
    assert write.attributes["arco.storage.put.calls"] == 1
    assert write.attributes["arco.storage.put.bytes"] == write.attributes["arco.bytes"] > 0
    # No span per storage call: the run's reads are counted on it.
    assert not any(s.name.startswith("storage.") for s in finished)
    assert run.attributes["arco.storage.get.calls"] >= 1
    assert _count("arco_runs_total", {"state": "FAILED"}) == failed_runs + 1
    assert _count("arco_tasks_total", {"state": "SUCCEEDED"}) == ok_tasks + 1
    assert _count("arco_tasks_total", {"state": "FAILED"}) == failed_tasks + 1
    assert (
        metrics.REGISTRY.get_sample_value("arco_task_seconds_count", {"state": "FAILED"}) or 0
    ) >= 1


def test_jobs_carry_the_run_trace_to_worker_processes(spans: Any, tmp_path: Path) -> None:
    """A process pool's worker continues the run's trace from the job's traceparent."""
    url = f"file://{tmp_path}/store"
    defs = Definitions([flowassets.orders])
    seen: list[str | None] = []
    executor = make_executor("process")
    start = executor.start

    def spy(job: Job) -> Handle:
        seen.append(job.traceparent)
        return start(job)

    executor.start = spy  # type: ignore[method-assign]
    sched = Scheduler(open_store(url), SCOPE, defs, store_url=url, executor=executor)
    try:
        result = sched.run(plan(defs, "*"))
    finally:
        sched.executor.close()
    assert result.state == "SUCCEEDED"
    run = next(s for s in spans.get_finished_spans() if s.name == "run")
    trace_id = format(run.context.trace_id, "032x")
    span_id = format(run.context.span_id, "016x")
    assert [p.rsplit("-", 1)[0] if p else p for p in seen] == [f"00-{trace_id}-{span_id}"]
