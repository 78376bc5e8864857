"""Flow routes: assets, plans and runs (trigger, list, get, cancel, rerun, logs).

Definitions come from the project the server was started with (``arco serve
--module M``, the ``arco.toml`` in its working directory, or ``arco dev``).
Runs triggered here are queued (``QUEUED``) and executed by a run worker
(``arco worker``, or the one inside ``arco dev``). Run state is the fold of the
run's ledger events: the compacted ``system.runs``/``system.tasks`` plus the
events the compactor has not reached yet, so a run is seen as it is now.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Query, Request, status

from arco.api.deps import Reader, Writer, project_definitions, runs_reader
from arco.api.schemas import (
    AssetsOut,
    LogsOut,
    PlanIn,
    PlanOut,
    RerunIn,
    RunAccepted,
    RunDetailOut,
    RunIn,
    RunPage,
)
from arco.core.errors import ConflictError, InvalidArgumentError, NotFoundError
from arco.core.keys import validate_ulid
from arco.flow.states import RUN_STATES, RUN_TERMINAL
from arco.workspace import Workspace

if TYPE_CHECKING:
    # The flow package is imported on first use: the API (and ``arco dev``) start faster.
    from arco.flow.definitions import Definitions
    from arco.flow.planner import Plan
    from arco.flow.runview import RunsView
    from arco.flow.status import PlanRequest

router = APIRouter(prefix="/api/v1", tags=["flow"])


# ------------------------------------------------------------------ helpers


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _run_out(view: RunsView, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "state": row["state"],
        "selection": row["selection"],
        "parent_run_id": row["parent_run_id"],
        "plan_fingerprint": row["plan_fingerprint"],
        "reason": row["reason"],
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "ended_at": _iso(row["finished_at"]),
        "task_counts": view.task_counts(row["run_id"]),
    }


def _run_row(view: RunsView, run_id: str) -> dict[str, Any]:
    row = view.run(validate_ulid(run_id))
    if row is None:
        raise NotFoundError(f"run {run_id} does not exist")
    return row


def _plan(request: Request, svc: Workspace, defs: Definitions, asked: PlanRequest) -> Plan:
    from arco.flow.status import plan_request

    # A reader plans too: pending materializations are folded in memory, never compacted.
    return plan_request(defs, asked, runs_reader(request, svc))


def _accepted(request: Any, state: str = "QUEUED") -> dict[str, Any]:
    return {
        "run_id": request.run_id,
        "state": state,
        "selection": request.plan.selection,
        "parent_run_id": request.parent_run_id,
        "plan_fingerprint": request.plan.fingerprint,
        "task_count": len(request.plan.tasks),
        "created_at": request.requested_at,
    }


# ------------------------------------------------------------------- routes


@router.get("/assets", response_model=AssetsOut)
def list_assets(request: Request, svc: Reader) -> Any:
    """The project's assets with their last materialization and whether they are stale."""
    from arco.flow.status import asset_statuses

    defs = project_definitions(request)
    reader = runs_reader(request, svc)
    statuses = asset_statuses(defs, reader.latest(reader.view()))
    out = []
    for key, st in statuses.items():
        a = defs[key]
        last = st.last
        out.append(
            {
                "key": key,
                "namespace": a.namespace,
                "name": a.name,
                "group": a.group,
                "description": a.description,
                "deps": sorted({u.key for u in defs.upstreams[key]}),
                "partitioned": a.partitions is not None,
                "tags": dict(a.tags),
                "owners": list(a.owners),
                "code_version": a.code_version,
                "last_materialization": {
                    "run_id": last["run_id"],
                    "partition": last["partition"],
                    "materialized_at": _iso(last["recorded_at"]),
                    "row_count": last["row_count"],
                }
                if last is not None
                else None,
                "stale": st.stale,
                "stale_reasons": st.stale_reasons,
                "freshness": st.freshness["state"] if st.freshness is not None else None,
            }
        )
    return {"assets": out}


@router.post("/plans", response_model=PlanOut)
def make_plan(request: Request, body: PlanIn, svc: Reader) -> Any:
    """The deterministic plan for a selection (with its fingerprint and explanations)."""
    from arco.flow.status import PlanRequest

    asked = PlanRequest(
        body.selection, tuple(body.partitions or ()), body.from_, body.to, body.stale_only
    )
    return _plan(request, svc, project_definitions(request), asked).to_dict()


@router.post("/runs", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted)
def trigger_run(
    request: Request,
    body: RunIn,
    svc: Writer,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Any:
    """Plan the selection and queue it as a run (``QUEUED``) for a run worker."""
    from arco.flow.queue import enqueue
    from arco.flow.status import PlanRequest

    parts = list(body.partitions or [])
    if body.partition is not None:
        parts.append(body.partition)
    asked = PlanRequest(body.selection, tuple(parts), body.from_, body.to, body.stale_only)
    the_plan = _plan(request, svc, project_definitions(request), asked)
    queued = enqueue(
        request.app.state.store,
        svc.scope,
        the_plan,
        max_concurrency=body.max_concurrency,
        requested_by=request.state.principal.sub,
        idempotency_key=idempotency_key,
    )
    return _accepted(queued)


@router.get("/runs", response_model=RunPage)
def list_runs(
    request: Request,
    svc: Reader,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: Annotated[str | None, Query(max_length=26)] = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
) -> Any:
    """Runs, newest first; ``page_token`` is the last run id of the previous page."""
    after = validate_ulid(page_token) if page_token else None
    if state is not None and state.upper() not in RUN_STATES:
        # An unknown state would match nothing and look like "no runs".
        raise InvalidArgumentError(
            f"unknown run state {state!r}; known: {', '.join(sorted(RUN_STATES))}"
        )
    view = runs_reader(request, svc).view()
    ids = sorted(view.runs, reverse=True)
    if after is not None:
        ids = [r for r in ids if r < after]
    if state is not None:
        ids = [r for r in ids if view.runs[r]["state"] == state.upper()]
    page = ids[:page_size]
    return {
        "runs": [_run_out(view, view.runs[r]) for r in page],
        "next_page_token": page[-1] if len(ids) > page_size else None,
    }


@router.get("/runs/{run_id}", response_model=RunDetailOut)
def get_run(request: Request, run_id: str, svc: Reader) -> Any:
    """One run with its tasks (state, attempts, times and errors)."""
    view = runs_reader(request, svc).view()
    row = _run_row(view, run_id)
    tasks = [
        {
            "task_id": t["task_id"],
            "asset_key": t["asset"],
            "partition": t["partition"],
            "state": t["state"],
            "attempt": int(t["attempt"] or 0),
            # Tasks are queued with their run; the fold keeps no per-task queue time.
            "queued_at": _iso(row["created_at"]),
            "started_at": _iso(t["started_at"]),
            "ended_at": _iso(t["finished_at"]),
            "error": t["error"],
        }
        for t in view.tasks_of(row["run_id"])
    ]
    return {**_run_out(view, row), "tasks": tasks}


@router.post(
    "/runs/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted
)
def cancel_run(request: Request, run_id: str, svc: Writer) -> Any:
    """Cancel a run: a queued one at once, a running one by its worker (running
    tasks are stopped, pending ones become ``CANCELLED``)."""
    from arco.flow.queue import request_cancel

    reader = runs_reader(request, svc)
    row = _run_row(reader.view(), run_id)
    if row["state"] in RUN_TERMINAL:
        raise ConflictError(f"run {run_id} already ended ({row['state']})")
    state = request_cancel(request.app.state.store, svc.scope, row["run_id"], "cancelled via API")
    return {
        "run_id": row["run_id"],
        "state": state,
        "selection": row["selection"],
        "parent_run_id": row["parent_run_id"],
        "plan_fingerprint": row["plan_fingerprint"],
        "created_at": _iso(row["created_at"]),
    }


@router.post(
    "/runs/{run_id}/rerun", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted
)
def rerun(
    request: Request,
    run_id: str,
    svc: Writer,
    body: RerunIn | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Any:
    """Queue a new run of this run's tasks (``from_failure``: only those that did not
    succeed; the outputs of the others are reused)."""
    from arco.flow.planner import rerun_plan
    from arco.flow.queue import enqueue

    body = body or RerunIn()
    defs = project_definitions(request)
    view = runs_reader(request, svc).view()
    row = _run_row(view, run_id)
    if row["state"] not in RUN_TERMINAL:
        raise ConflictError(f"run {run_id} is still {row['state']}; cancel it or let it finish")
    tasks = view.tasks_of(row["run_id"])
    keep = [t for t in tasks if not body.from_failure or t["state"] != "SUCCEEDED"]
    if not keep:
        raise ConflictError(f"run {run_id} has nothing to re-run: every task succeeded")
    the_plan = rerun_plan(
        defs, [(t["asset"], t["partition"]) for t in keep], row["selection"] or "*"
    )
    if not the_plan.tasks:
        raise ConflictError(f"none of the tasks of run {run_id} exists in the project any more")
    queued = enqueue(
        request.app.state.store,
        svc.scope,
        the_plan,
        parent_run_id=row["run_id"],
        max_concurrency=body.max_concurrency,
        requested_by=request.state.principal.sub,
        idempotency_key=f"rerun:{row['run_id']}:{idempotency_key}" if idempotency_key else None,
    )
    return _accepted(queued)


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@router.get("/runs/{run_id}/logs", response_model=LogsOut)
def run_logs(
    request: Request,
    run_id: str,
    svc: Reader,
    task_id: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Any:
    """The run's log lines in order (what assets logged through ``context.log``)."""
    reader = runs_reader(request, svc)
    view = reader.view()
    row = _run_row(view, run_id)
    lines = []
    for entry in reader.logs(view, row["run_id"]):
        if task_id is not None and entry["task_id"] != task_id:
            continue
        level, message = entry["level"], entry["line"]
        # Executors capture lines as "LEVEL message": split the level back out.
        head, _, rest = message.partition(" ")
        if head in _LEVELS and rest:
            level, message = head, rest
        lines.append(
            {
                "ts": _iso(entry["logged_at"]),
                "task_id": entry["task_id"],
                "level": level,
                "message": message,
            }
        )
    return {"lines": lines[-limit:]}
