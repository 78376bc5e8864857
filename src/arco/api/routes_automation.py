"""Automation routes: schedules, sensors, backfills, asset check results and freshness.

Reads come from the automation state document (cursors, next ticks, recent
history) and the runs view (run states, check results not compacted yet);
turning a schedule or sensor on or off and acting on a backfill are
compare-and-swap writes of that document, carried out by the next tick
(``arco daemon``, ``arco tick`` or the loop inside ``arco dev``). See ADR 016.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from arco.api.deps import Reader, Writer, project_definitions, runs_reader
from arco.core.errors import NotFoundError
from arco.workspace import Workspace

if TYPE_CHECKING:
    from arco.flow.automation.tick import Automation

router = APIRouter(prefix="/api/v1", tags=["automation"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EnabledIn(_In):
    """Body of ``PATCH /schedules/{name}`` and ``PATCH /sensors/{name}``."""

    enabled: bool


class BackfillIn(_In):
    """Body of ``POST /backfills``."""

    selection: str = Field(min_length=1, max_length=4096)
    from_: str = Field(alias="from", min_length=1, max_length=1024)
    to: str = Field(min_length=1, max_length=1024)
    chunk_size: int = Field(default=1, ge=1, le=10_000)
    max_runs: int = Field(default=4, ge=1, le=1000)


class CheckRunIn(_In):
    """Body of ``POST /assets/{key}/checks``."""

    partition: str | None = Field(default=None, max_length=1024)


class RunRefOut(BaseModel):
    """A run launched by a tick or an evaluation, and its state now."""

    run_id: str
    run_key: str | None = None
    state: str | None


class TickOut(BaseModel):
    """One tick of a schedule."""

    scheduled_at: str
    run_key: str
    status: str
    reason: str | None
    runs: list[RunRefOut]


class ScheduleOut(BaseModel):
    """A schedule with its next tick and recent ticks (newest first)."""

    name: str
    cron: str
    timezone: str
    selection: str
    partitions: str | None
    max_catchup: int
    default_enabled: bool
    enabled: bool
    description: str | None
    next_tick: str | None
    last_tick: str | None
    history: list[TickOut]


class SchedulesOut(BaseModel):
    """Answer of ``GET /schedules``."""

    schedules: list[ScheduleOut]


class EvaluationOut(BaseModel):
    """One evaluation of a sensor."""

    evaluation: int
    evaluated_at: str
    status: str
    error: str | None
    runs: list[RunRefOut]


class SensorOut(BaseModel):
    """A sensor with its cursor, next evaluation, errors and recent evaluations."""

    name: str
    kind: str
    interval_seconds: float
    selection: str | None
    assets: list[str]
    run_states: list[str]
    default_enabled: bool
    enabled: bool
    description: str | None
    cursor: str | None
    next_evaluation: str | None
    last_evaluated_at: str | None
    evaluations: int
    failures: int
    last_error: str | None
    history: list[EvaluationOut]


class SensorsOut(BaseModel):
    """Answer of ``GET /sensors``."""

    sensors: list[SensorOut]


class BackfillSummaryOut(BaseModel):
    """A backfill's summary."""

    backfill_id: str
    selection: str
    state: str
    created_at: str
    finished_at: str | None
    partitions: int
    first_partition: str
    last_partition: str
    chunks: int
    chunks_launched: int
    chunk_counts: dict[str, int]
    max_runs: int


class BackfillsOut(BaseModel):
    """Answer of ``GET /backfills``: newest first."""

    backfills: list[BackfillSummaryOut]


class ChunkOut(BaseModel):
    """One launched chunk of a backfill."""

    attempt: int
    run_id: str
    status: str


class BackfillOut(BaseModel):
    """Answer of ``GET /backfills/{id}``: state and the status of every partition."""

    backfill_id: str
    selection: str
    state: str
    created_at: str
    finished_at: str | None
    partitions: int
    chunks: int
    chunks_launched: int
    max_runs: int
    counts: dict[str, int]
    #: asset -> partition -> materialized | failed | in progress | missing
    assets: dict[str, dict[str, str]]
    runs: dict[str, ChunkOut]


class CheckResultOut(BaseModel):
    """One asset check result."""

    event_id: str
    check: str
    asset: str
    partition: str | None
    run_id: str | None
    passed: bool
    severity: str
    blocking: bool
    description: str | None
    metadata: dict[str, Any]
    error: str | None
    evaluated_at: str


class CheckResultsOut(BaseModel):
    """Answer of ``GET /asset-checks``: newest first."""

    results: list[CheckResultOut]


class CheckRunResultOut(BaseModel):
    """A check run on its own."""

    check: str
    asset: str
    partition: str | None
    materialization_id: str
    passed: bool
    severity: str
    blocking: bool
    description: str | None
    metadata: dict[str, Any]
    error: str | None


class CheckRunOut(BaseModel):
    """Answer of ``POST /assets/{key}/checks``."""

    results: list[CheckRunResultOut]


class FreshnessOut(BaseModel):
    """An asset's freshness under its policy, now."""

    asset: str
    state: Literal["fresh", "overdue"]
    deadline: str
    last_materialized_at: str | None
    policy: dict[str, Any]


class FreshnessListOut(BaseModel):
    """Answer of ``GET /freshness``."""

    assets: list[FreshnessOut]


# ------------------------------------------------------------------ helpers


def _automation(request: Request, svc: Workspace) -> Automation:
    from arco.flow.automation.config import build, load_config

    defs = project_definitions(request)
    state = request.app.state
    config = getattr(state, "automation_config", None)
    if config is None:
        settings = state.settings
        config = load_config(Path(settings.project_dir) if settings.project_dir else None)
        state.automation_config = config
    return build(state.store, svc.scope, defs, config, holder="api", workspace=svc)


# ------------------------------------------------------------------- routes


@router.get("/schedules", response_model=SchedulesOut)
def list_schedules(request: Request, svc: Reader) -> Any:
    """Schedules with their on/off state, next tick and recent ticks."""
    from arco.flow.automation.views import schedules

    auto = _automation(request, svc)
    return {"schedules": schedules(auto, runs_reader(request, svc).view())}


@router.get("/schedules/{name}", response_model=ScheduleOut)
def get_schedule(request: Request, name: str, svc: Reader) -> Any:
    """One schedule."""
    from arco.flow.automation.views import schedule_row

    auto = _automation(request, svc)
    state, _ = auto.states.load()
    return schedule_row(auto, state, name, runs_reader(request, svc).view())


@router.patch("/schedules/{name}", response_model=ScheduleOut)
def patch_schedule(request: Request, name: str, body: EnabledIn, svc: Writer) -> Any:
    """Turn a schedule on (from now: the time it was off is not caught up) or off."""
    from arco.flow.automation.views import schedule_row

    auto = _automation(request, svc)
    auto.set_schedule_enabled(name, body.enabled)
    state, _ = auto.states.load()
    return schedule_row(auto, state, name, runs_reader(request, svc).view())


@router.get("/sensors", response_model=SensorsOut)
def list_sensors(request: Request, svc: Reader) -> Any:
    """Sensors with their cursor, next evaluation, failures and recent evaluations."""
    from arco.flow.automation.views import sensors

    auto = _automation(request, svc)
    return {"sensors": sensors(auto, runs_reader(request, svc).view())}


@router.get("/sensors/{name}", response_model=SensorOut)
def get_sensor(request: Request, name: str, svc: Reader) -> Any:
    """One sensor."""
    from arco.flow.automation.views import sensor_row

    auto = _automation(request, svc)
    state, _ = auto.states.load()
    return sensor_row(auto, state, name, runs_reader(request, svc).view())


@router.patch("/sensors/{name}", response_model=SensorOut)
def patch_sensor(request: Request, name: str, body: EnabledIn, svc: Writer) -> Any:
    """Turn a sensor on (evaluated at the next tick) or off."""
    from arco.flow.automation.views import sensor_row, set_sensor_enabled

    auto = _automation(request, svc)
    set_sensor_enabled(auto, name, body.enabled)
    state, _ = auto.states.load()
    return sensor_row(auto, state, name, runs_reader(request, svc).view())


@router.get("/backfills", response_model=BackfillsOut)
def list_backfills(request: Request, svc: Reader) -> Any:
    """Backfills, newest first."""
    from arco.flow.automation.views import backfills

    return {"backfills": backfills(request.app.state.store, svc.scope)}


@router.post("/backfills", status_code=status.HTTP_201_CREATED, response_model=BackfillSummaryOut)
def create_backfill(request: Request, body: BackfillIn, svc: Writer) -> Any:
    """Plan a backfill of a selection over a partition range; the next tick
    launches its chunks (at most ``max_runs`` at once)."""
    from arco.flow.automation.backfills import create_backfill as create
    from arco.flow.automation.views import backfills

    defs = project_definitions(request)
    store = request.app.state.store
    made = create(
        store,
        svc.scope,
        defs,
        body.selection,
        body.from_,
        body.to,
        chunk_size=body.chunk_size,
        max_runs=body.max_runs,
    )
    found = [b for b in backfills(store, svc.scope) if b["backfill_id"] == made.backfill_id]
    return found[0]


@router.get("/backfills/{backfill_id}", response_model=BackfillOut)
def get_backfill(request: Request, backfill_id: str, svc: Reader) -> Any:
    """A backfill's state and the status of every partition per asset."""
    from arco.flow.automation.backfills import progress

    return progress(request.app.state.store, svc.scope, backfill_id)


@router.post("/backfills/{backfill_id}/{action}", response_model=BackfillSummaryOut)
def act_on_backfill(
    request: Request,
    backfill_id: str,
    action: Literal["pause", "resume", "cancel", "retry"],
    svc: Writer,
) -> Any:
    """Pause, resume, cancel (its unfinished runs are asked to stop) or retry (the
    failed chunks, as new attempts) a backfill."""
    from arco.flow.automation.backfills import change_backfill
    from arco.flow.automation.views import backfills

    store = request.app.state.store
    change_backfill(store, svc.scope, backfill_id, action, f"{action} via API")
    found = [b for b in backfills(store, svc.scope) if b["backfill_id"] == backfill_id]
    if not found:
        raise NotFoundError(f"no backfill {backfill_id}")
    return found[0]


@router.get("/asset-checks", response_model=CheckResultsOut)
def list_check_results(
    request: Request,
    svc: Reader,
    asset: Annotated[str | None, Query(max_length=512)] = None,
    run_id: Annotated[str | None, Query(max_length=26)] = None,
    partition: Annotated[str | None, Query(max_length=1024)] = None,
    latest: bool = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> Any:
    """Asset check results, newest first (``latest``: the newest of each asset,
    partition and check), including those not compacted yet."""
    from arco.flow.automation.views import check_results

    reader = runs_reader(request, svc)
    rows = check_results(
        reader, reader.view(), asset=asset, run_id=run_id, partition=partition, latest=latest
    )
    return {"results": rows[:limit]}


@router.post("/assets/{key}/checks", response_model=CheckRunOut)
def run_asset_checks(
    request: Request, key: str, svc: Writer, body: CheckRunIn | None = None
) -> Any:
    """Run an asset's declared checks on its newest stored value (of ``partition``),
    without materializing it; the results are recorded like a run's."""
    from arco.flow.automation.check_run import check_asset

    defs = project_definitions(request)
    results = check_asset(
        request.app.state.store,
        svc.scope,
        defs,
        key,
        partition=(body or CheckRunIn()).partition,
    )
    return {"results": results}


@router.get("/freshness", response_model=FreshnessListOut)
def list_freshness(request: Request, svc: Reader) -> Any:
    """Every asset with a freshness policy: ``fresh`` or ``overdue`` now."""
    defs = project_definitions(request)
    return {"assets": freshness_rows(request, svc, defs)}


def freshness_rows(request: Request, svc: Workspace, defs: Any) -> list[dict[str, Any]]:
    """The freshness of the project's assets (also shown by ``GET /assets``)."""
    from arco.flow.status import freshness_now

    if not defs.freshness:
        return []
    reader = runs_reader(request, svc)
    return [{"asset": k, **v} for k, v in freshness_now(defs, reader.latest(reader.view())).items()]
