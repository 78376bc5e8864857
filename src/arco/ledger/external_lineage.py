"""External lineage: the ``openlineage.event`` Tier-2 payload and its state tables.

An OpenLineage event (from dbt-ol, Airflow, Spark, openlineage-python...) is
validated and normalised at ingest (``arco.openlineage``) into the payload defined
here: the event's identity, its run, job and parent, and its datasets already
mapped to Arco qualified names. The compactor folds it (:mod:`arco.ledger.external_folds`,
where the rule each field follows is stated), in the ``lineage`` domain, into four
tables:

* ``external_runs``: one row per OpenLineage run id;
* ``datasets``: one row per OpenLineage dataset (namespace, name), mapped or not;
* ``column_edges``: column-to-column edges (from ``columnLineage`` facets, or
  declared through :class:`arco.discovery.lineage.LineageGraph`);
* and the existing ``edges`` table: one observed edge per input -> output.

Every field of these tables is a function of the set of events folded, whatever
their order and however compactions split them; the columns named in
:data:`BOOKKEEPING` record which event set a field, so that a later compaction can
tell whether a new event beats it.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal

import pyarrow as pa
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from typing_extensions import TypedDict

from arco.core.scope import validate_dotted
from arco.domain.tableset import TableDef

_TS = pa.timestamp("ms", tz="UTC")

#: OpenLineage run event types, in the order a run moves through them.
OL_EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
OL_TERMINAL = frozenset({"COMPLETE", "ABORT", "FAIL"})
#: The order of run states when two events have the same time (``OTHER``: none).
OL_RANK = {"START": 0, "RUNNING": 1, "COMPLETE": 2, "ABORT": 2, "FAIL": 2}
OlEventType = Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@lru_cache(maxsize=65_536)
def dotted_node(value: str) -> str:
    """``value`` validated as a dotted lineage node name (cached)."""
    # The same few thousand dataset names recur in every event: validate each once.
    return validate_dotted("lineage node", value)


def _qualified(value: str | None) -> str | None:
    if value is None:
        return None
    return dotted_node(value)


class OlColumn(_Model):
    """A column of a dataset's ``schema`` facet."""

    name: str = Field(min_length=1, max_length=256)
    type: str | None = Field(default=None, max_length=4096)


class OlDataset(_Model):
    """A dataset of an event, with the Arco table it maps to (None: unmapped)."""

    namespace: str = Field(min_length=1, max_length=1024)
    name: str = Field(min_length=1, max_length=1024)
    qualified_name: str | None = Field(default=None, max_length=128)
    schema_: list[OlColumn] | None = Field(default=None, alias="schema", max_length=4096)
    row_count: int | None = Field(default=None, ge=0)

    @field_validator("qualified_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _qualified(value)


class OlColumnEdge(_Model):
    """One column of one input feeding one column of one output (``columnLineage``)."""

    source: str = Field(min_length=1, max_length=128)
    source_column: str = Field(min_length=1, max_length=256)
    target: str = Field(min_length=1, max_length=128)
    target_column: str = Field(min_length=1, max_length=256)
    transformation: str | None = Field(default=None, max_length=1024)

    @field_validator("source", "target")
    @classmethod
    def _node(cls, value: str) -> str:
        return dotted_node(value)


class _OpenLineageEventFields(_Model):
    """The normalised fields every version of ``openlineage.event`` carries."""

    kind: Literal["run", "dataset", "job"]
    event_type: OlEventType | None = None
    event_time: datetime
    producer: str = Field(min_length=1, max_length=2048)
    run_id: str | None = Field(default=None, max_length=64)
    job_namespace: str | None = Field(default=None, max_length=1024)
    job_name: str | None = Field(default=None, max_length=1024)
    parent_run_id: str | None = Field(default=None, max_length=64)
    parent_job_namespace: str | None = Field(default=None, max_length=1024)
    parent_job_name: str | None = Field(default=None, max_length=1024)
    error_message: str | None = Field(default=None, max_length=65_536)
    inputs: list[OlDataset] = Field(default_factory=list, max_length=10_000)
    outputs: list[OlDataset] = Field(default_factory=list, max_length=10_000)
    column_edges: list[OlColumnEdge] = Field(default_factory=list, max_length=100_000)


class OpenLineageEventV1(_OpenLineageEventFields):
    """An OpenLineage RunEvent, DatasetEvent or JobEvent, normalised at ingest."""

    #: The event as received, when it fits the ledger's size limit (for replay).
    raw: dict[str, Any] | None = None


#: Longest ``raw_json`` kept (characters); larger events keep only the normalised fields.
MAX_RAW_JSON = 128 * 1024


class OpenLineageEventV2(_OpenLineageEventFields):
    """v2: the event as received is kept as compact JSON text (``raw_json``), not a tree.

    The text is opaque to validation and folds: checking and copying a parsed tree of
    every event cost more than all the fields the folds read (ADR 013).
    """

    #: No free-form JSON and no self-nesting: the model's shape bounds a payload's depth,
    #: so the registry skips its depth walk (keep it true only while that holds).
    FIXED_DEPTH: ClassVar[bool] = True

    raw_json: str | None = Field(default=None, max_length=MAX_RAW_JSON)


def openlineage_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """Upcast: a v1 event's parsed ``raw`` becomes ``raw_json`` (dropped if too long)."""
    out = {k: v for k, v in payload.items() if k != "raw"}
    raw = payload.get("raw")
    text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False) if raw else None
    out["raw_json"] = text if text is not None and len(text) <= MAX_RAW_JSON else None
    return out


# The fast path of the compactor (ADR 013): a ledger object exactly as the ingest route
# writes it - every envelope an ``openlineage.event`` v2 with all of its keys, no extra
# key, strict JSON types - is decoded and validated in one pydantic-core call. These
# shapes accept a subset of what the models above accept (same bounds, same name
# checks, strict types); anything else takes the general path, which validates with
# the models and quarantines what they refuse.
_FAST = ConfigDict(extra="forbid", strict=True)


_Node = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(dotted_node)]
_Name = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
_Col = Annotated[str, StringConstraints(min_length=1, max_length=256)]
_Id = Annotated[str, StringConstraints(max_length=64)]
_Text = Annotated[str, StringConstraints(max_length=1024)]
_Producer = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
_Type = Annotated[str, StringConstraints(max_length=4096)]
_Error = Annotated[str, StringConstraints(max_length=65_536)]
_Raw = Annotated[str, StringConstraints(max_length=MAX_RAW_JSON)]


class _FastColumn(TypedDict):
    __pydantic_config__ = _FAST  # type: ignore[misc]
    name: _Col
    type: _Type | None


class _FastDataset(TypedDict):
    __pydantic_config__ = _FAST  # type: ignore[misc]
    namespace: _Name
    name: _Name
    qualified_name: _Node | None
    schema: Annotated[list[_FastColumn], Field(max_length=4096)] | None
    row_count: Annotated[int, Field(ge=0)] | None


class _FastColumnEdge(TypedDict):
    __pydantic_config__ = _FAST  # type: ignore[misc]
    source: _Node
    source_column: _Col
    target: _Node
    target_column: _Col
    transformation: _Text | None


class _FastPayload(TypedDict):
    __pydantic_config__ = _FAST  # type: ignore[misc]
    kind: Literal["run", "dataset", "job"]
    event_type: OlEventType | None
    event_time: datetime
    producer: _Producer
    run_id: _Id | None
    job_namespace: _Text | None
    job_name: _Text | None
    parent_run_id: _Id | None
    parent_job_namespace: _Text | None
    parent_job_name: _Text | None
    error_message: _Error | None
    inputs: Annotated[list[_FastDataset], Field(max_length=10_000)]
    outputs: Annotated[list[_FastDataset], Field(max_length=10_000)]
    column_edges: Annotated[list[_FastColumnEdge], Field(max_length=100_000)]
    raw_json: _Raw | None


class FastEnvelope(TypedDict):
    """An ``openlineage.event`` v2 envelope as the ingest route stores it."""

    __pydantic_config__ = _FAST  # type: ignore[misc]
    event_id: Annotated[str, StringConstraints(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]
    event_type: Literal["openlineage.event"]
    event_version: Literal[2]
    idempotency_key: str
    occurred_at: str
    source: str
    actor: str | None
    trace_id: str | None
    payload: _FastPayload


class _FastBatch(TypedDict):
    __pydantic_config__ = _FAST  # type: ignore[misc]
    events: list[FastEnvelope]


_FAST_BATCH: TypeAdapter[_FastBatch] = TypeAdapter(_FastBatch)
_FAST_ONE: TypeAdapter[FastEnvelope] = TypeAdapter(FastEnvelope)


def decode_fast(data: bytes, is_batch: bool) -> list[FastEnvelope] | None:
    """The envelopes of a ledger object in the ingest route's exact shape, decoded and
    validated at once; None when the object has any other shape (the caller then
    takes the general path, which decides between folding and quarantine)."""
    try:
        if is_batch:
            return _FAST_BATCH.validate_json(data)["events"]
        return [_FAST_ONE.validate_json(data)]
    except ValidationError:
        return None


EXTERNAL_RUNS = TableDef(
    "external_runs",
    pa.schema(
        [
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("job_namespace", pa.string()),
            pa.field("job_name", pa.string()),
            pa.field("parent_run_id", pa.string()),
            pa.field("parent_job_namespace", pa.string()),
            pa.field("parent_job_name", pa.string()),
            pa.field("state", pa.string(), nullable=False),
            pa.field("producer", pa.string()),
            pa.field("started_at", _TS),
            pa.field("finished_at", _TS),
            pa.field("error_message", pa.string()),
            pa.field("inputs", pa.list_(pa.string())),
            pa.field("outputs", pa.list_(pa.string())),
            pa.field("events", pa.int64(), nullable=False),
            pa.field("last_event_time", _TS),
            pa.field("last_rank", pa.int32(), nullable=False),
            pa.field("last_event_id", pa.string(), nullable=False),
            pa.field("updated_at", _TS, nullable=False),
            # Provenance of the fields only some events carry (see external_folds):
            # nullable, so that states written before they existed still load.
            pa.field("job_seen", _TS),
            pa.field("job_event_id", pa.string()),
            pa.field("parent_seen", _TS),
            pa.field("parent_event_id", pa.string()),
            pa.field("fail_message", pa.string()),
            pa.field("fail_seen", _TS),
            pa.field("fail_event_id", pa.string()),
        ]
    ),
    ("run_id",),
)
DATASETS = TableDef(
    "datasets",
    pa.schema(
        [
            pa.field("namespace", pa.string(), nullable=False),
            pa.field("name", pa.string(), nullable=False),
            pa.field("qualified_name", pa.string()),
            pa.field("roles", pa.list_(pa.string())),
            pa.field("observations", pa.int64(), nullable=False),
            pa.field("first_seen", _TS),
            pa.field("last_seen", _TS),
            pa.field("last_run_id", pa.string()),
            pa.field("last_event_id", pa.string()),
            pa.field("schema_json", pa.string()),
            pa.field("schema_seen", _TS),
            pa.field("schema_event_id", pa.string()),
            pa.field("row_count", pa.int64()),
            pa.field("row_count_seen", _TS),
            pa.field("row_count_event_id", pa.string()),
        ]
    ),
    ("namespace", "name"),
)
COLUMN_EDGES = TableDef(
    "column_edges",
    pa.schema(
        [
            pa.field("source", pa.string(), nullable=False),
            pa.field("source_column", pa.string(), nullable=False),
            pa.field("target", pa.string(), nullable=False),
            pa.field("target_column", pa.string(), nullable=False),
            pa.field("transformation", pa.string()),
            pa.field("declared", pa.bool_(), nullable=False),
            pa.field("observations", pa.int64(), nullable=False),
            pa.field("first_seen", _TS),
            pa.field("last_seen", _TS),
            pa.field("last_run_id", pa.string()),
            pa.field("last_event_id", pa.string()),
            pa.field("updated_at", _TS, nullable=False),
            pa.field("transformation_seen", _TS),
            pa.field("transformation_event_id", pa.string()),
        ]
    ),
    ("source", "source_column", "target", "target_column"),
)
EXTERNAL_TABLES = (EXTERNAL_RUNS, DATASETS, COLUMN_EDGES)

#: The columns each fold keeps for itself (which event set which field), left out of
#: the ``system.*`` tables.
BOOKKEEPING: dict[str, tuple[str, ...]] = {
    "external_runs": (
        "last_event_time",
        "last_rank",
        "last_event_id",
        "job_seen",
        "job_event_id",
        "parent_seen",
        "parent_event_id",
        "fail_message",
        "fail_seen",
        "fail_event_id",
    ),
    "datasets": (
        "last_event_id",
        "schema_seen",
        "schema_event_id",
        "row_count_seen",
        "row_count_event_id",
    ),
    "column_edges": ("last_event_id", "transformation_seen", "transformation_event_id"),
}


def dataset_label(namespace: str, name: str) -> str:
    """How a dataset is named in run rows: ``namespace::name``."""
    return f"{namespace}::{name}"
