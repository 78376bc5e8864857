"""Tier-2 event envelope, event types and their registry.

An event is validated against the pydantic model registered for its
``(event_type, event_version)`` before anything is written; older versions are
upcast to the latest one when folded, so the compactor only ever sees the
current shape of each type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from arco.core.actor import clean_actor, current_actor
from arco.core.errors import InvalidArgumentError
from arco.core.ids import (
    MAX_JSON_DEPTH,
    canonical_json,
    check_idempotency_key,
    json_depth_over,
    new_ulid,
    sha256_hex,
)
from arco.core.keys import validate_domain, validate_ulid
from arco.ledger.automation_events import AUTOMATION_EVENT_TYPES
from arco.ledger.external_lineage import (
    OpenLineageEventV1,
    OpenLineageEventV2,
    openlineage_v1_to_v2,
)

MAX_EVENT_BYTES = 256 * 1024
MAX_BATCH_EVENTS = 10_000

TASK_STATES = (
    "PLANNED",
    "BLOCKED",
    "READY",
    "RUNNING",
    "RETRY_WAIT",
    "SUCCEEDED",
    "FAILED",
    "SKIPPED",
    "CANCELLED",
)
RUN_STATES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
TaskState = Literal[
    "PLANNED",
    "BLOCKED",
    "READY",
    "RUNNING",
    "RETRY_WAIT",
    "SUCCEEDED",
    "FAILED",
    "SKIPPED",
    "CANCELLED",
]
RunState = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]


class InvalidEventError(InvalidArgumentError):
    """An event was refused before being written: unknown type, bad payload, too big."""

    code = "invalid-event"


class EventTooLargeError(InvalidEventError):
    """An event whose stored form is over :data:`MAX_EVENT_BYTES`."""


def surrogate_path(value: Any, path: str = "") -> str | None:
    """Where in ``value`` a string holds a lone UTF-16 surrogate (``\\ud800`` from a
    JSON escape: text that UTF-8, Parquet and the compactor cannot hold), or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "."
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = surrogate_path(k, path) or surrogate_path(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = surrogate_path(v, f"{path}[{i}]")
            if found:
                return found
    return None


def refuse_surrogates(raw: dict[str, Any], what: str = "event") -> None:
    """Raise :class:`InvalidEventError` naming the field of ``raw`` whose text holds a
    lone surrogate. Stored, such an event is valid JSON that the compactor refuses,
    and it would take every event of its ledger object into quarantine with it."""
    where = surrogate_path(raw)
    if where is not None:
        raise InvalidEventError(
            f"{what} field {where.lstrip('.') or '.'} holds text that is not valid Unicode "
            "(a lone UTF-16 surrogate such as \\ud800)"
        )


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSchema(_Payload):
    """A column of a materialized output."""

    name: str = Field(min_length=1, max_length=256)
    type: str = Field(min_length=1, max_length=4096)


class MaterializationInput(_Payload):
    """An upstream asset or table a materialization actually read."""

    asset: str = Field(min_length=1, max_length=512)
    partition: str | None = None


class MaterializationRecordedV1(_Payload):
    """v1: the original, minimal shape."""

    asset: str = Field(min_length=1, max_length=512)
    partition: str | None = Field(default=None, max_length=1024)
    run_id: str | None = None
    location: str | None = Field(default=None, max_length=4096)
    row_count: int | None = Field(default=None, ge=0)


class MaterializationRecordedV2(_Payload):
    """A materialization of an asset or table partition, as written by a run."""

    asset: str = Field(min_length=1, max_length=512)
    partition: str | None = Field(default=None, max_length=1024)
    run_id: str | None = None
    task_id: str | None = None
    location: str | None = Field(default=None, max_length=4096)
    row_count: int | None = Field(default=None, ge=0)
    byte_size: int | None = Field(default=None, ge=0)
    schema_: list[ColumnSchema] | None = Field(default=None, alias="schema")
    code_version: str | None = Field(default=None, max_length=256)
    data_version: str | None = Field(default=None, max_length=256)
    inputs: list[MaterializationInput] = Field(default_factory=list, max_length=10_000)
    metadata: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LineageEdge(_Payload):
    """One observed edge between two nodes (``namespace.table`` or asset keys)."""

    source: str = Field(min_length=1, max_length=512)
    target: str = Field(min_length=1, max_length=512)
    edge_type: str = Field(default="derives", min_length=1, max_length=64)
    run_id: str | None = None
    columns: list[str] | None = Field(default=None, max_length=4096)

    @field_validator("source", "target")
    @classmethod
    def _node(cls, value: str) -> str:
        from arco.core.scope import validate_dotted

        return validate_dotted("lineage node", value)


class LineageEdgesObservedV1(_Payload):
    """Edges observed by a run (or any other reader/writer of data)."""

    edges: list[LineageEdge] = Field(min_length=1, max_length=10_000)


class RunCreatedV1(_Payload):
    """A run was created from a plan."""

    run_id: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=0)
    selection: str = Field(default="", max_length=4096)
    plan_fingerprint: str | None = None
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    parent_run_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class RunStateChangedV1(_Payload):
    """A run moved to a new state."""

    run_id: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=0)
    state: RunState
    reason: str | None = Field(default=None, max_length=4096)


class TaskStateChangedV1(_Payload):
    """A task of a run moved to a new state."""

    run_id: str = Field(min_length=1, max_length=128)
    task_id: str = Field(min_length=1, max_length=1024)
    seq: int = Field(ge=0)
    state: TaskState
    asset: str | None = None
    partition: str | None = None
    attempt: int = Field(default=0, ge=0)
    error: str | None = Field(default=None, max_length=65_536)
    retry_at: datetime | None = None


class RunLogV1(_Payload):
    """Log lines emitted by a task."""

    run_id: str = Field(min_length=1, max_length=128)
    task_id: str | None = None
    lines: list[str] = Field(min_length=1, max_length=10_000)
    level: str = "INFO"


AUDIT_OUTCOMES = ("ok", "denied", "rejected", "error")


class AuditRecordedV1(_Payload):
    """One audited action: a write, a signed-URL mint, a run launch, an admin's request.

    Written by the API (and the CLI's admin commands) into the ``audit`` ledger
    domain; never holds a token, a signature or a signed URL.
    """

    #: Every field is a scalar, a list of strings or a map of strings: the shape bounds
    #: the depth, so the registry skips its depth walk (the API audits every write).
    FIXED_DEPTH: ClassVar[bool] = True

    action: str = Field(min_length=1, max_length=512)
    outcome: Literal["ok", "denied", "rejected", "error"]
    actor: str = Field(min_length=1, max_length=256)
    tenant: str = Field(min_length=1, max_length=128)
    workspace: str = Field(min_length=1, max_length=128)
    request_id: str | None = Field(default=None, max_length=128)
    target: str | None = Field(default=None, max_length=4096)
    status: int | None = Field(default=None, ge=100, le=599)
    roles: list[str] = Field(default_factory=list, max_length=16)
    duration_ms: float | None = Field(default=None, ge=0)
    detail: dict[str, str] = Field(default_factory=dict, max_length=32)


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class EventType:
    """One event type: a model per version, upcasters between versions, its domain."""

    name: str
    domain: str
    models: dict[int, type[BaseModel]]
    upcasters: dict[int, Upcaster] = field(default_factory=dict)

    @property
    def latest(self) -> int:
        """The newest version."""
        return max(self.models)


class EventRegistry:
    """The known event types; validation and upcasting go through here."""

    def __init__(self) -> None:
        self._types: dict[str, EventType] = {}
        self._domains: set[str] = set()

    def register(
        self,
        name: str,
        domain: str,
        models: dict[int, type[BaseModel]],
        upcasters: dict[int, Upcaster] | None = None,
    ) -> None:
        """Register a type; ``upcasters[v]`` turns a v payload into a v+1 payload."""
        validate_domain(domain)
        if not models or min(models) < 1:
            raise ValueError("event versions start at 1")
        self._types[name] = EventType(name, domain, dict(models), dict(upcasters or {}))
        self._domains.add(domain)

    @property
    def domains(self) -> set[str]:
        """Domains that have at least one event type."""
        return set(self._domains)

    def get(self, name: str) -> EventType:
        """The registered type ``name``."""
        if not isinstance(name, str):
            raise InvalidEventError(f"event type must be a string, got {type(name).__name__}")
        found = self._types.get(name)
        if found is None:
            known = ", ".join(sorted(self._types))
            raise InvalidEventError(f"unknown event type {name!r}; known types: {known}")
        return found

    def names(self) -> list[str]:
        """Every registered type name."""
        return sorted(self._types)

    def check_domain(self, domain: str) -> str:
        """Validate a ledger domain name."""
        if not isinstance(domain, str) or domain not in self._domains:
            raise InvalidEventError(
                f"unknown event domain {domain!r}; known: {', '.join(sorted(self._domains))}"
            )
        return domain

    def validate(self, domain: str, name: str, version: int, payload: Any) -> dict[str, Any]:
        """Validate ``payload`` for ``(name, version)`` in ``domain``; returns it normalised."""
        etype = self.get(name)
        if etype.domain != domain:
            raise InvalidEventError(
                f"event type {name!r} belongs to domain {etype.domain!r}, not {domain!r}"
            )
        if not isinstance(version, int) or isinstance(version, bool) or version not in etype.models:
            raise InvalidEventError(
                f"event type {name!r} has no version {version!r}; known versions: "
                f"{', '.join(map(str, sorted(etype.models)))}"
            )
        if not isinstance(payload, dict):
            raise InvalidEventError(f"payload of {name!r} must be a JSON object")
        model_cls = etype.models[version]
        # A model with no free-form JSON field that does not nest itself bounds the depth
        # of what it accepts (``FIXED_DEPTH``); the walk is for the others (it was a sixth
        # of the cost of compacting OpenLineage events).
        if not getattr(model_cls, "FIXED_DEPTH", False) and json_depth_over(
            payload, MAX_JSON_DEPTH
        ):
            raise InvalidEventError(
                f"payload of {name!r} is nested deeper than {MAX_JSON_DEPTH} levels"
            )
        try:
            model = etype.models[version].model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
            raise InvalidEventError(
                f"invalid {name} v{version} payload at {where}: {first.get('msg')}"
            ) from exc
        return model.model_dump(mode="json", by_alias=True, exclude_none=False)

    def upcast(self, name: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        """Bring a validated payload from ``version`` to the latest version of its type."""
        etype = self.get(name)
        while version < etype.latest:
            upcaster = etype.upcasters.get(version)
            payload = upcaster(payload) if upcaster is not None else payload
            version += 1
            payload = (
                etype.models[version]
                .model_validate(payload)
                .model_dump(mode="json", by_alias=True, exclude_none=False)
            )
        return payload


def _materialization_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "inputs": [], "metadata": {}}


REGISTRY = EventRegistry()
REGISTRY.register(
    "materialization.recorded",
    "executions",
    {1: MaterializationRecordedV1, 2: MaterializationRecordedV2},
    {1: _materialization_v1_to_v2},
)
REGISTRY.register("run.created", "executions", {1: RunCreatedV1})
REGISTRY.register("run.state_changed", "executions", {1: RunStateChangedV1})
REGISTRY.register("task.state_changed", "executions", {1: TaskStateChangedV1})
REGISTRY.register("run.log", "executions", {1: RunLogV1})
REGISTRY.register("lineage.edges_observed", "lineage", {1: LineageEdgesObservedV1})
REGISTRY.register("audit.recorded", "audit", {1: AuditRecordedV1})
# OpenLineage events, normalised at ingest (arco.openlineage); folded into external runs,
# datasets, edges and column edges of the lineage domain.
REGISTRY.register(
    "openlineage.event",
    "lineage",
    {1: OpenLineageEventV1, 2: OpenLineageEventV2},
    {1: openlineage_v1_to_v2},
)
# Schedules, sensors, backfills, asset checks, freshness and alerts (ADR 016).
for _name, _models in AUTOMATION_EVENT_TYPES:
    REGISTRY.register(_name, "executions", _models)


@dataclass(frozen=True)
class Envelope:
    """A versioned event as stored in the ledger."""

    event_id: str
    event_type: str
    event_version: int
    idempotency_key: str
    occurred_at: str
    source: str
    payload: dict[str, Any]
    trace_id: str | None = None
    #: Who wrote the event (token subject or OS user; see :mod:`arco.core.actor`),
    #: next to ``source``, the component. None in events written before actors were.
    actor: str | None = None

    def with_payload(self, payload: dict[str, Any]) -> Envelope:
        """This envelope with another payload (its upcast form, when folded)."""
        # A copy of the fields, not dataclasses.replace: the compactor calls this once
        # per event, and replace() cost 5x as much.
        clone = object.__new__(Envelope)
        clone.__dict__.update(self.__dict__)
        clone.__dict__["payload"] = payload
        return clone

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "event_version": self.event_version,
            "idempotency_key": self.idempotency_key,
            "occurred_at": self.occurred_at,
            "source": self.source,
            "actor": self.actor,
            "trace_id": self.trace_id,
            "payload": self.payload,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Envelope:
        """Decode a stored envelope (structure only; payload validation is separate)."""
        if not isinstance(raw, dict):
            raise InvalidEventError("event envelope must be a JSON object")
        try:
            version = raw["event_version"]
            if not isinstance(version, int) or version < 1:
                raise InvalidEventError("event_version must be an integer >= 1")
            return cls(
                event_id=validate_ulid(raw["event_id"]),
                event_type=str(raw["event_type"]),
                event_version=version,
                idempotency_key=str(raw["idempotency_key"]),
                occurred_at=str(raw["occurred_at"]),
                source=str(raw.get("source") or ""),
                payload=dict(raw["payload"]),
                trace_id=raw.get("trace_id"),
                actor=clean_actor(raw.get("actor")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEventError(f"malformed event envelope: {exc}") from exc


def derive_idempotency_key(event_type: str, version: int, payload: dict[str, Any]) -> str:
    """``auto:`` + a hash of type, version and canonical payload."""
    digest = sha256_hex(canonical_json({"t": event_type, "v": version, "p": payload}))
    return f"auto:{digest[:32]}"


def parse_occurred_at(value: object) -> datetime | None:
    """An event's ``occurred_at`` as given by a caller: None, or an ISO 8601 string
    with a time zone (``InvalidEventError`` otherwise). Every surface parses it here,
    so the API, the CLI and :meth:`Ledger.append_batch` refuse the same values."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEventError("occurred_at must be an ISO 8601 timestamp")
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidEventError("occurred_at must be an ISO 8601 timestamp") from exc
    if when.tzinfo is None:
        raise InvalidEventError("occurred_at must carry a time zone")
    return when


def build_envelope(
    domain: str,
    event_type: str,
    payload: Any,
    *,
    version: int | None = None,
    idempotency_key: str | None = None,
    source: str = "arco",
    trace_id: str | None = None,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
    registry: EventRegistry = REGISTRY,
    check_size: bool = True,
) -> Envelope:
    """Validate an event and wrap it in an envelope; nothing is written here.

    The envelope's ``actor`` is the current one (:func:`arco.core.actor.current_actor`):
    it comes from who is acting, never from the event's submitter-supplied fields.
    ``check_size=False``: the caller encodes the envelope with :func:`encode_envelope`,
    which checks its size then (one encoding instead of two).
    """
    registry.check_domain(domain)
    etype = registry.get(event_type)
    use_version = etype.latest if version is None else version
    normalised = registry.validate(domain, event_type, use_version, payload)
    if idempotency_key is not None:
        try:
            check_idempotency_key(idempotency_key)
        except InvalidArgumentError as exc:
            raise InvalidEventError(str(exc)) from exc
    if not isinstance(source, str) or len(source) > 256:
        raise InvalidEventError("source must be a string of at most 256 characters")
    key = idempotency_key or derive_idempotency_key(event_type, use_version, normalised)
    when = occurred_at or datetime.now(UTC)
    if when.tzinfo is None:
        raise InvalidEventError("occurred_at must carry a time zone")
    env = Envelope(
        event_id=event_id or new_ulid(),
        event_type=event_type,
        event_version=use_version,
        idempotency_key=key,
        occurred_at=when.astimezone(UTC).isoformat(),
        source=source,
        payload=normalised,
        trace_id=trace_id,
        actor=current_actor(),
    )
    if check_size:
        _check_size(env.to_dict())
    return env


def _check_size(raw: dict[str, Any]) -> None:
    size = len(json.dumps(raw))
    if size > MAX_EVENT_BYTES:
        raise EventTooLargeError(f"event is {size} bytes; the limit is {MAX_EVENT_BYTES}")


def encode_envelope(env: Envelope) -> bytes:
    """An envelope as stored (compact JSON), refused if :func:`build_envelope` would
    refuse its size: that is measured on the spaced JSON form, at most twice as long
    as the compact one, so it is computed only for an envelope near the limit."""
    raw = env.to_dict()
    data = json.dumps(raw, separators=(",", ":")).encode()
    if b"\\ud" in data:  # ASCII output escapes astral letters as pairs, lone ones alone
        refuse_surrogates(raw)
    if 2 * len(data) > MAX_EVENT_BYTES:
        _check_size(raw)
    return data
