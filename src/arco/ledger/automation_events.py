"""Payload models of the automation events (schedules, sensors, backfills, asset
checks, freshness, alerts), registered in the ``executions`` domain of the Tier-2
registry by :mod:`arco.ledger.events`.

They live in the ``executions`` domain because every one of them is about runs —
a tick requests a run, a sensor launches runs, a check judges a materialization —
and so one compaction folds them with the runs they name (ADR 016). Each decision
of the automation layer is one of these events, written before it takes effect,
under an idempotency key derived from the decision itself (a schedule and its
scheduled time, a sensor and its evaluation number), so a retried or duplicated
decision folds once.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

_NAME = Field(min_length=1, max_length=256)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: No free-form JSON and no self-nesting: the model's shape bounds a payload's
    #: depth, so the registry skips its depth walk (a tick writes ~1,000 of these).
    #: A model with a free-form field sets it to False.
    FIXED_DEPTH: ClassVar[bool] = True


class ScheduleTickedV1(_Payload):
    """A schedule's tick was decided: a run requested, skipped, missed or failed."""

    schedule: str = _NAME
    scheduled_at: str = Field(min_length=1, max_length=64)
    run_key: str = Field(min_length=1, max_length=255)
    status: Literal["requested", "skipped", "missed", "failed"]
    run_id: str | None = None
    partitions: list[str] = Field(default_factory=list, max_length=10_000)
    reason: str | None = Field(default=None, max_length=4096)


class SensorEvaluatedV1(_Payload):
    """One evaluation of a sensor: its new cursor and the runs it asked for, or its error."""

    sensor: str = _NAME
    evaluation: int = Field(ge=0)
    status: Literal["requested", "skipped", "failed"]
    cursor: str | None = Field(default=None, max_length=65_536)
    run_keys: list[str] = Field(default_factory=list, max_length=10_000)
    run_ids: list[str] = Field(default_factory=list, max_length=10_000)
    error: str | None = Field(default=None, max_length=16_384)
    failures: int = Field(default=0, ge=0)
    retry_at: str | None = None


class BackfillCreatedV1(_Payload):
    """A backfill was created over a partition range and a selection."""

    backfill_id: str = Field(min_length=1, max_length=128)
    selection: str = Field(min_length=1, max_length=4096)
    partitions: list[str] = Field(min_length=1, max_length=1_000_000)
    chunk_size: int = Field(ge=1)
    max_runs: int = Field(ge=1)
    chunks: int = Field(ge=1)


class BackfillStateChangedV1(_Payload):
    """A backfill was paused, resumed, cancelled, retried or completed."""

    backfill_id: str = Field(min_length=1, max_length=128)
    state: Literal["RUNNING", "PAUSED", "CANCELLED", "COMPLETED", "FAILED"]
    reason: str | None = Field(default=None, max_length=4096)
    retried_chunks: list[int] = Field(default_factory=list)


class BackfillChunkLaunchedV1(_Payload):
    """One chunk of a backfill was launched as a run."""

    backfill_id: str = Field(min_length=1, max_length=128)
    chunk: int = Field(ge=0)
    attempt: int = Field(ge=1)
    run_key: str = Field(min_length=1, max_length=255)
    run_id: str = Field(min_length=1, max_length=128)
    partitions: list[str] = Field(default_factory=list, max_length=100_000)


class AssetCheckEvaluatedV1(_Payload):
    """The result of one asset check on one materialized partition."""

    FIXED_DEPTH: ClassVar[bool] = False  # ``metadata`` is free-form

    check: str = _NAME
    asset: str = Field(min_length=1, max_length=512)
    partition: str | None = Field(default=None, max_length=1024)
    run_id: str | None = None
    task_id: str | None = None
    passed: bool
    severity: Literal["warn", "error"] = "error"
    blocking: bool = False
    description: str | None = Field(default=None, max_length=4096)
    metadata: dict[str, Any] = Field(default_factory=dict)
    error: str | None = Field(default=None, max_length=16_384)


class FreshnessEvaluatedV1(_Payload):
    """An asset's freshness changed (fresh -> overdue or back)."""

    asset: str = Field(min_length=1, max_length=512)
    state: Literal["fresh", "overdue", "unknown"]
    evaluated_at: str = Field(min_length=1, max_length=64)
    last_materialized_at: str | None = None
    deadline: str | None = None
    reason: str | None = Field(default=None, max_length=4096)


class AlertDeliveredV1(_Payload):
    """A notification was sent to a webhook, or gave up after its retries."""

    alert_key: str = Field(min_length=1, max_length=255)
    channel: str = _NAME
    kind: Literal["run_failed", "check_failed", "freshness_overdue"]
    subject: str = Field(min_length=1, max_length=1024)
    status: Literal["sent", "failed"]
    attempts: int = Field(ge=1)
    http_status: int | None = None
    error: str | None = Field(default=None, max_length=4096)


#: ``(event type, {version: model})`` of every automation event.
AUTOMATION_EVENT_TYPES: tuple[tuple[str, dict[int, type[BaseModel]]], ...] = (
    ("schedule.ticked", {1: ScheduleTickedV1}),
    ("sensor.evaluated", {1: SensorEvaluatedV1}),
    ("backfill.created", {1: BackfillCreatedV1}),
    ("backfill.state_changed", {1: BackfillStateChangedV1}),
    ("backfill.chunk_launched", {1: BackfillChunkLaunchedV1}),
    ("asset_check.evaluated", {1: AssetCheckEvaluatedV1}),
    ("freshness.evaluated", {1: FreshnessEvaluatedV1}),
    ("alert.delivered", {1: AlertDeliveredV1}),
)
