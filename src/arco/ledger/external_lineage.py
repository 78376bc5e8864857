"""External lineage: the ``openlineage.event`` Tier-2 payload, its state tables and folds.

An OpenLineage event (from dbt-ol, Airflow, Spark, openlineage-python...) is
validated and normalised at ingest (``arco.openlineage``) into the payload defined
here: the event's identity, its run, job and parent, and its datasets already
mapped to Arco qualified names. The compactor folds it, in the ``lineage``
domain, into four tables:

* ``external_runs``: one row per OpenLineage run id;
* ``datasets``: one row per OpenLineage dataset (namespace, name), mapped or not;
* ``column_edges``: column-to-column edges (from ``columnLineage`` facets, or
  declared through :class:`arco.discovery.lineage.LineageGraph`);
* and the existing ``edges`` table: one observed edge per input -> output.

Every fold is deterministic in the set of events: rows follow the event with the
greatest ``(event time, state rank, event id)``, counts add up and sets union.
Qualified names were validated at ingest and are validated again here, since a
ledger object is only as trustworthy as whoever could write it.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

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

from arco.core.errors import InvalidNameError
from arco.core.scope import validate_dotted
from arco.domain.tableset import TableDef

if TYPE_CHECKING:
    from arco.ledger.events import Envelope
    from arco.ledger.folds import Folder

_TS = pa.timestamp("ms", tz="UTC")

#: OpenLineage run event types, in the order a run moves through them.
OL_EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
OL_TERMINAL = frozenset({"COMPLETE", "ABORT", "FAIL"})
_RANK = {"START": 0, "RUNNING": 1, "COMPLETE": 2, "ABORT": 2, "FAIL": 2}
OlEventType = Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@lru_cache(maxsize=65_536)
def _dotted(value: str) -> str:
    # The same few thousand dataset names recur in every event: validate each once.
    return validate_dotted("lineage node", value)


def _qualified(value: str | None) -> str | None:
    if value is None:
        return None
    return _dotted(value)


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
        return _dotted(value)


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


_Node = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_dotted)]
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
        ]
    ),
    ("source", "source_column", "target", "target_column"),
)
EXTERNAL_TABLES = (EXTERNAL_RUNS, DATASETS, COLUMN_EDGES)


def dataset_label(namespace: str, name: str) -> str:
    """How a dataset is named in run rows: ``namespace::name``."""
    return f"{namespace}::{name}"


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _node_or_none(value: str | None) -> str | None:
    """A stored qualified name re-validated; an invalid one is treated as unmapped."""
    if value is None:
        return None
    try:
        return _dotted(value)
    except InvalidNameError:
        return None


def fold_openlineage(folder: Folder, env: Envelope, when: datetime) -> None:
    """Fold one ``openlineage.event`` into runs, datasets, edges and column edges."""
    fold_openlineage_payload(folder, env.event_id, env.payload, when)


def fold_openlineage_payload(
    folder: Folder, event_id: str, p: dict[str, Any], when: datetime
) -> None:
    """:func:`fold_openlineage` of a validated (v2) payload and its event id."""
    # Hot: 100,000 events touch the same few thousand rows half a million times, so
    # the folds below inline their small helpers (each call was a tenth of the fold).
    kind = p["kind"]
    run_id = p.get("run_id") if kind == "run" else None
    if run_id:
        _fold_run(folder, event_id, p, when)
    inputs, outputs = p["inputs"], p["outputs"]
    if inputs or outputs:
        datasets = folder.owned("datasets")
        for ds in inputs:
            _fold_dataset(folder, datasets, event_id, ds, "input", run_id, when)
        for ds in outputs:
            _fold_dataset(folder, datasets, event_id, ds, "output", run_id, when)
    if inputs and outputs and kind in ("run", "job"):
        sources = sorted({q for d in inputs if (q := _node_or_none(d.get("qualified_name")))})
        targets = sorted({q for d in outputs if (q := _node_or_none(d.get("qualified_name")))})
        for target in targets:
            for source in sources:
                if source != target:
                    folder.observe_edge((source, target, "derives"), run_id, None, event_id, when)
    for ce in p.get("column_edges") or ():
        col_source, col_target = _node_or_none(ce["source"]), _node_or_none(ce["target"])
        if col_source is None or col_target is None:
            continue
        fold_column_edge(
            folder,
            (col_source, ce["source_column"], col_target, ce["target_column"]),
            ce.get("transformation"),
            run_id,
            event_id,
            when,
        )


def fold_column_edge(
    folder: Folder,
    key: tuple[str, str, str, str],
    transformation: str | None,
    run_id: str | None,
    event_id: str,
    when: datetime,
) -> None:
    """Count one observation of a column edge (``source.col -> target.col``)."""
    row = folder.row(
        "column_edges",
        key,
        lambda: {
            "source": key[0],
            "source_column": key[1],
            "target": key[2],
            "target_column": key[3],
            "transformation": None,
            "declared": False,
            "observations": 0,
            "first_seen": None,
            "last_seen": None,
            "last_run_id": None,
            "last_event_id": None,
            "updated_at": when,
        },
    )
    row["observations"] = int(row["observations"]) + 1
    row["first_seen"] = _min(row["first_seen"], when)
    if row["last_seen"] is None or (when, event_id) > (
        row["last_seen"],
        row["last_event_id"] or "",
    ):
        row["last_seen"] = when
        row["last_event_id"] = event_id
        row["last_run_id"] = run_id
        if transformation:
            row["transformation"] = transformation
    row["updated_at"] = max(row["updated_at"], when)


def _fold_run(folder: Folder, event_id: str, p: dict[str, Any], when: datetime) -> None:
    key = (p["run_id"],)
    row = folder.owned("external_runs").get(key)
    if row is None:
        row = folder.row(
            "external_runs",
            key,
            lambda: {
                "run_id": p["run_id"],
                "job_namespace": None,
                "job_name": None,
                "parent_run_id": None,
                "parent_job_namespace": None,
                "parent_job_name": None,
                "state": "OTHER",
                "producer": None,
                "started_at": None,
                "finished_at": None,
                "error_message": None,
                "inputs": [],
                "outputs": [],
                "events": 0,
                "last_event_time": None,
                "last_rank": -1,
                "last_event_id": "",
                "updated_at": when,
            },
        )
    etype = p.get("event_type") or "OTHER"
    row["events"] = int(row["events"]) + 1
    if etype in ("START", "RUNNING"):
        started_at = row["started_at"]
        if started_at is None or when < started_at:
            row["started_at"] = when
    rank = _RANK.get(etype)
    if rank is None:
        newer = False
    else:
        last_time = row["last_event_time"]
        # (when, rank, event_id) > the row's (last_event_time, last_rank, last_event_id)
        newer = (
            last_time is None
            or when > last_time
            or (
                when == last_time
                and (
                    rank > int(row["last_rank"])
                    or (rank == int(row["last_rank"]) and event_id > row["last_event_id"])
                )
            )
        )
    if newer or row["job_name"] is None:
        for field in ("job_namespace", "job_name", "producer"):
            row[field] = p.get(field) or row[field]
        if p.get("parent_run_id"):
            row["parent_run_id"] = p["parent_run_id"]
            row["parent_job_namespace"] = p.get("parent_job_namespace")
            row["parent_job_name"] = p.get("parent_job_name")
    if newer:
        row["state"] = etype
        row["last_event_time"], row["last_rank"], row["last_event_id"] = when, rank, event_id
        row["finished_at"] = when if etype in OL_TERMINAL else None
        row["error_message"] = p.get("error_message") if etype == "FAIL" else None
    elif etype == "FAIL" and row["state"] == "FAIL" and row["error_message"] is None:
        row["error_message"] = p.get("error_message")
    for role in ("inputs", "outputs"):
        datasets = p[role]
        have = row[role]
        if not have:
            if datasets:
                row[role] = sorted({f"{d['namespace']}::{d['name']}" for d in datasets})
            continue
        labels = {f"{d['namespace']}::{d['name']}" for d in datasets}
        if not labels.issubset(have):
            row[role] = sorted(labels.union(have))
    if when > row["updated_at"]:
        row["updated_at"] = when


def _fold_dataset(
    folder: Folder,
    datasets: dict[tuple[Any, ...], dict[str, Any]],
    event_id: str,
    ds: dict[str, Any],
    role: str,
    run_id: str | None,
    when: datetime,
) -> None:
    key = (ds["namespace"], ds["name"])
    row = datasets.get(key)
    if row is None:
        row = folder.row(
            "datasets",
            key,
            lambda: {
                "namespace": key[0],
                "name": key[1],
                "qualified_name": None,
                "roles": [],
                "observations": 0,
                "first_seen": None,
                "last_seen": None,
                "last_run_id": None,
                "last_event_id": None,
                "schema_json": None,
                "schema_seen": None,
                "schema_event_id": None,
                "row_count": None,
            },
        )
    row["observations"] = int(row["observations"]) + 1
    roles = row["roles"] or ()
    if role not in roles:
        row["roles"] = sorted({*roles, role})
    first_seen = row["first_seen"]
    if first_seen is None or when < first_seen:
        row["first_seen"] = when
    last_seen = row["last_seen"]
    if (
        last_seen is None
        or when > last_seen
        or (when == last_seen and event_id > (row["last_event_id"] or ""))
    ):
        row["last_seen"] = when
        row["last_event_id"] = event_id
        row["last_run_id"] = run_id
        row["qualified_name"] = _node_or_none(ds.get("qualified_name"))
        if ds.get("row_count") is not None:
            row["row_count"] = ds["row_count"]
    schema = ds.get("schema")
    if schema:
        schema_seen = row["schema_seen"]
        if (
            schema_seen is None
            or when > schema_seen
            or (when == schema_seen and event_id > (row["schema_event_id"] or ""))
        ):
            row["schema_json"] = json.dumps(schema, sort_keys=True)
            row["schema_seen"] = when
            row["schema_event_id"] = event_id
