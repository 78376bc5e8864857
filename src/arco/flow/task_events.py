"""One attempt of a task: the job the executor runs, and the events its outcome sets off.

The :class:`~arco.flow.runner.Scheduler` decides when an attempt starts and what
its outcome moves; these functions build what it hands the executor and the
payloads of the events it writes. Every payload is :class:`_Stamped` with the
time it was made, which is the time of the transition it records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from arco.core.scope import Scope
from arco.core.telemetry import traceparent
from arco.flow.automation.checks import blocks
from arco.flow.definitions import Definitions
from arco.flow.executors import Job, Outcome
from arco.flow.hooks import Event
from arco.flow.taskrun import TaskRun


class _Stamped(dict[str, Any]):
    """An event payload that remembers when its transition happened: events wait in
    a batch, and the ledger should record the transition's time, not the write's."""

    __slots__ = ("at",)

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.at = datetime.now(UTC).isoformat()


def job_for(
    defs: Definitions,
    scope: Scope,
    store_url: str,
    checks: Mapping[str, tuple[tuple[str, str], ...]],
    run_id: str,
    tr: TaskRun,
    locations: Mapping[tuple[str, str | None], str | None],
) -> Job:
    """The job of ``tr``'s next attempt: its function, and where each input's value is."""
    asset = defs[tr.task.asset]
    by_param: dict[str, list[tuple[str | None, str | None]]] = {}
    params = {up.key: up.param for up in defs.upstreams[asset.key] if up.param}
    for up_key, up_part in tr.task.inputs:
        param = params.get(up_key)
        if param is None:
            continue
        by_param.setdefault(param, []).append((up_part, locations.get((up_key, up_part))))
    return Job(
        run_id=run_id,
        task_id=tr.task.task_id,
        asset_key=asset.key,
        partition=tr.task.partition,
        attempt=tr.attempt,
        module=asset.fn.__module__,
        qualname=asset.fn.__qualname__,
        inputs=tuple((p, tuple(v)) for p, v in sorted(by_param.items())),
        io=asset.io,
        store_url=store_url,
        tenant=scope.tenant,
        workspace=scope.workspace,
        timeout=asset.timeout,
        checks=checks.get(asset.key, ()),
        traceparent=traceparent(),
    )


def log_event(run_id: str, tr: TaskRun, outcome: Outcome) -> Event:
    """The ``run.log`` event of the attempt's log lines (the first 10,000)."""
    return (
        "run.log",
        _Stamped(
            {
                "run_id": run_id,
                "task_id": tr.task.task_id,
                "lines": outcome.logs[:10_000],
            }
        ),
    )


def materialization_event(defs: Definitions, run_id: str, tr: TaskRun, outcome: Outcome) -> Event:
    """The ``materialization.recorded`` event of a stored value."""
    asset = defs[tr.task.asset]
    metadata = outcome.metadata
    return (
        "materialization.recorded",
        _Stamped(
            {
                "asset": tr.task.asset,
                "partition": tr.task.partition,
                "run_id": run_id,
                "task_id": tr.task.task_id,
                "location": outcome.location,
                "row_count": outcome.row_count,
                "byte_size": outcome.byte_size,
                "schema": outcome.schema,
                "code_version": asset.code_version,
                "inputs": [{"asset": a, "partition": p} for a, p in tr.task.inputs],
                "metadata": (json.loads(json.dumps(metadata, default=str)) if metadata else {}),
            }
        ),
    )


def observed_edges(defs: Definitions, run_id: str, tr: TaskRun) -> Event | None:
    """The lineage edges the attempt observed (from every upstream asset), if any."""
    asset = defs[tr.task.asset]
    upstream_assets = sorted(
        {a for a, _ in tr.task.inputs} | {u.key for u in defs.upstreams[asset.key]}
    )
    if not upstream_assets:
        return None
    edges = [
        {"source": a, "target": asset.key, "edge_type": "derives", "run_id": run_id}
        for a in upstream_assets
    ]
    return ("lineage.edges_observed", _Stamped({"edges": edges}))


def check_events(run_id: str, tr: TaskRun, outcome: Outcome, out: list[Event]) -> str | None:
    """Append the attempt's check results to ``out`` as events; the reason to stop the
    downstream of the partition if a blocking check failed, else None."""
    failed = []
    for res in outcome.checks:
        out.append(
            (
                "asset_check.evaluated",
                _Stamped(
                    {
                        **res,
                        "asset": tr.task.asset,
                        "partition": tr.task.partition,
                        "run_id": run_id,
                        "task_id": tr.task.task_id,
                    }
                ),
            )
        )
        if blocks(res):
            failed.append(res["check"])
    if not failed:
        return None
    return f"blocking check {', '.join(failed)} of {tr.task.task_id} failed"
