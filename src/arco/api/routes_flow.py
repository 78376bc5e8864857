"""Flow routes: assets, plans and runs (trigger, list, get, cancel, rerun, logs).

Definitions come from the project the server was started with (``arco serve
--module M``, the ``arco.toml`` in its working directory, or ``arco dev``).
Runs triggered here are queued (``QUEUED``) and executed by a run worker
(``arco worker``, or the one inside ``arco dev``). Run state is the fold of the
run's ledger events: the compacted ``system.runs``/``system.tasks`` plus the
events the compactor has not reached yet, so a run is seen as it is now.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from arco.api.deps import Reader, Writer
from arco.core.errors import ConflictError, InvalidArgumentError, NotFoundError
from arco.core.keys import validate_ulid
from arco.flow.states import RUN_STATES, RUN_TERMINAL
from arco.workspace import Workspace

if TYPE_CHECKING:
    # The flow package is imported on first use: the API (and ``arco dev``) start faster.
    from arco.flow.definitions import Definitions
    from arco.flow.planner import Materialization, Plan
    from arco.flow.runview import RunsReader, RunsView

router = APIRouter(prefix="/api/v1", tags=["flow"])


class NoProjectError(NotFoundError):
    """The server was started without an asset project."""

    code = "no-project"


# ------------------------------------------------------------------ bodies


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PlanIn(_In):
    """Body of ``POST /plans``."""

    selection: str = Field(default="*", min_length=1, max_length=4096)
    partitions: list[str] | None = Field(default=None, max_length=10_000)
    from_: str | None = Field(default=None, alias="from", max_length=1024)
    to: str | None = Field(default=None, max_length=1024)
    stale_only: bool = False


class RunIn(_In):
    """Body of ``POST /runs``."""

    selection: str = Field(default="*", min_length=1, max_length=4096)
    partition: str | None = Field(default=None, max_length=1024)
    partitions: list[str] | None = Field(default=None, max_length=10_000)
    from_: str | None = Field(default=None, alias="from", max_length=1024)
    to: str | None = Field(default=None, max_length=1024)
    stale_only: bool = False
    max_concurrency: int | None = Field(default=None, ge=1, le=1024)


class RerunIn(_In):
    """Body of ``POST /runs/{run_id}/rerun``."""

    from_failure: bool = True
    max_concurrency: int | None = Field(default=None, ge=1, le=1024)


class LastMaterializationOut(BaseModel):
    """The newest materialization of an asset (any partition)."""

    run_id: str | None
    partition: str | None
    materialized_at: str
    row_count: int | None


class AssetOut(BaseModel):
    """An asset of the project, with its last materialization and staleness."""

    key: str
    namespace: str
    name: str
    group: str
    description: str | None
    deps: list[str]
    partitioned: bool
    tags: dict[str, str]
    owners: list[str]
    code_version: str | None
    last_materialization: LastMaterializationOut | None
    stale: bool
    stale_reasons: list[str]
    #: ``fresh`` or ``overdue`` under the asset's freshness policy; None without one.
    freshness: str | None = None


class AssetsOut(BaseModel):
    """Answer of ``GET /assets``."""

    assets: list[AssetOut]


class PlannedTaskOut(BaseModel):
    """One task of a plan."""

    task_id: str
    asset: str
    partition: str | None
    deps: list[str]
    inputs: list[list[str | None]]
    reason: str
    code_version: str | None


class ExplanationOut(BaseModel):
    """Why an asset partition is in or out of a plan."""

    asset: str
    partition: str | None
    included: bool
    reason: str


class PlanOut(BaseModel):
    """A plan, as ``arco --json plan`` prints it."""

    selection: str
    mode: str
    partitions: list[str]
    tasks: list[PlannedTaskOut]
    explanations: list[ExplanationOut]
    fingerprint: str


class RunOut(BaseModel):
    """A run's summary."""

    run_id: str
    state: str
    selection: str | None
    parent_run_id: str | None
    plan_fingerprint: str | None
    reason: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    task_counts: dict[str, int]


class RunAccepted(BaseModel):
    """Answer of a run trigger, rerun or cancel (202)."""

    run_id: str
    state: str
    selection: str | None = None
    parent_run_id: str | None = None
    plan_fingerprint: str | None = None
    task_count: int | None = None
    created_at: str | None = None


class RunPage(BaseModel):
    """Answer of ``GET /runs``: newest first."""

    runs: list[RunOut]
    next_page_token: str | None


class TaskOut(BaseModel):
    """One task of a run."""

    task_id: str
    asset_key: str | None
    partition: str | None
    state: str
    attempt: int
    queued_at: str | None
    started_at: str | None
    ended_at: str | None
    error: str | None


class RunDetailOut(RunOut):
    """Answer of ``GET /runs/{run_id}``."""

    tasks: list[TaskOut]


class LogLineOut(BaseModel):
    """One log line of a run."""

    ts: str
    task_id: str | None
    level: str
    message: str


class LogsOut(BaseModel):
    """Answer of ``GET /runs/{run_id}/logs``."""

    lines: list[LogLineOut]


# ------------------------------------------------------------------ helpers

_project_mutex = threading.Lock()


def project_definitions(request: Request) -> Definitions:
    """The server's project definitions, loaded once (``NoProjectError`` if none)."""
    state = request.app.state
    found: Definitions | None = getattr(state, "flow_definitions", None)
    if found is not None:
        return found
    with _project_mutex:
        found = getattr(state, "flow_definitions", None)
        if found is None:
            found = load_server_project(state.settings)
            state.flow_definitions = found
    return found


def load_server_project(settings: Any) -> Definitions:
    """Definitions of ``settings.project_module``, else of the ``arco.toml`` project."""
    from arco.flow.project import find_project, load_project

    start = Path(settings.project_dir) if settings.project_dir else None
    try:
        project = find_project(start, module=settings.project_module)
    except InvalidArgumentError as exc:
        raise NoProjectError(
            "this server has no asset project: start it with 'arco serve --module M', "
            f"from a folder with arco.toml, or with 'arco dev' ({exc})"
        ) from exc
    return load_project(project)


def _reader(request: Request, svc: Workspace) -> RunsReader:
    from arco.flow.runview import RunsReader

    # One reader per scope, kept with the scope's workspace so read caches live on.
    return svc.extension(
        RunsReader,
        lambda ws: RunsReader(ws.store, ws.scope, domain=ws.compactor.domain_store("executions")),
    )


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


def _materializations(
    reader: RunsReader, view: RunsView
) -> dict[tuple[str, str | None], Materialization]:
    from arco.flow.planner import Materialization

    return {
        key: Materialization(
            row["asset"], row["partition"], row["code_version"], row["recorded_at"], row["run_id"]
        )
        for key, row in reader.latest(view).items()
    }


def _plan(
    defs: Definitions,
    reader: RunsReader,
    selection: str,
    partitions: list[str] | None,
    start: str | None,
    end: str | None,
    stale_only: bool,
) -> Plan:
    if (start is None) != (end is None):
        raise InvalidArgumentError("'from' and 'to' go together")
    if partitions and start is not None:
        raise InvalidArgumentError("give partitions, or a 'from'/'to' range, not both")
    from arco.flow.planner import plan

    return plan(
        defs,
        selection,
        partitions=partitions or None,
        partition_range=(start, end) if start is not None and end is not None else None,
        mode="stale" if stale_only else "all",
        materializations=_materializations(reader, reader.view()),
    )


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
    from arco.flow.planner import plan

    defs = project_definitions(request)
    reader = _reader(request, svc)
    view = reader.view()
    latest = reader.latest(view)
    mats = _materializations(reader, view)
    reasons: dict[str, set[str]] = {}
    for e in plan(defs, "*", mode="stale", materializations=mats).explanations:
        reasons.setdefault(e.asset, set()).add(e.reason)
    fresh = _freshness(defs, latest)
    out = []
    for key in defs.order:
        a = defs[key]
        rows = [row for (asset, _), row in latest.items() if asset == key]
        last = max(rows, key=lambda r: (r["recorded_at"], r["materialization_id"]), default=None)
        why = sorted(reasons.get(key, set()) - {"up to date"})
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
                "stale": bool(why),
                "stale_reasons": why,
                "freshness": fresh[key]["state"] if key in fresh else None,
            }
        )
    return {"assets": out}


def _freshness(
    defs: Definitions, latest: dict[tuple[str, str | None], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each policy's verdict now, from the newest materialization of each asset."""
    if not defs.freshness:
        return {}
    from arco.flow.automation.views import freshness

    newest: dict[str, datetime] = {}
    for (asset, _), row in latest.items():
        if asset not in newest or row["recorded_at"] > newest[asset]:
            newest[asset] = row["recorded_at"]
    return freshness(defs, newest)


@router.post("/plans", response_model=PlanOut)
def make_plan(request: Request, body: PlanIn, svc: Reader) -> Any:
    """The deterministic plan for a selection (with its fingerprint and explanations)."""
    defs = project_definitions(request)
    the_plan = _plan(
        defs,
        _reader(request, svc),
        body.selection,
        body.partitions,
        body.from_,
        body.to,
        body.stale_only,
    )
    return the_plan.to_dict()


@router.post("/runs", status_code=status.HTTP_202_ACCEPTED, response_model=RunAccepted)
def trigger_run(
    request: Request,
    body: RunIn,
    svc: Writer,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Any:
    """Plan the selection and queue it as a run (``QUEUED``) for a run worker."""
    from arco.flow.queue import enqueue

    defs = project_definitions(request)
    parts = list(body.partitions or [])
    if body.partition is not None:
        parts.append(body.partition)
    the_plan = _plan(
        defs, _reader(request, svc), body.selection, parts, body.from_, body.to, body.stale_only
    )
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
    view = _reader(request, svc).view()
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
    view = _reader(request, svc).view()
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

    reader = _reader(request, svc)
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
    view = _reader(request, svc).view()
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
    reader = _reader(request, svc)
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
