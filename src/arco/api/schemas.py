"""Request and response bodies of the REST API (they make up the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Field(min_length=1, max_length=255)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NamespaceCreate(_In):
    """Body of ``POST /namespaces``."""

    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=16_384)
    properties: dict[str, str] = Field(default_factory=dict)


class NamespacePatch(_In):
    """Body of ``PATCH /namespaces/{ns}``; absent fields stay unchanged."""

    description: str | None = Field(default=None, max_length=16_384)
    set_properties: dict[str, str] = Field(default_factory=dict)
    remove_properties: list[str] = Field(default_factory=list)


class ColumnIn(_In):
    """A column in a create or add-columns request."""

    name: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=4096)
    nullable: bool = True
    description: str | None = Field(default=None, max_length=16_384)


class TableCreate(_In):
    """Body of ``POST /namespaces/{ns}/tables``."""

    name: str = Field(min_length=1, max_length=255)
    columns: list[ColumnIn] = Field(default_factory=list, max_length=4096)
    format: Literal["delta", "iceberg", "parquet", "csv", "json"] = "parquet"
    location: str | None = Field(default=None, max_length=2048)
    description: str | None = Field(default=None, max_length=16_384)
    properties: dict[str, str] = Field(default_factory=dict)


class TablePatch(_In):
    """Body of ``PATCH /namespaces/{ns}/tables/{name}``; absent fields stay unchanged."""

    description: str | None = Field(default=None, max_length=16_384)
    location: str | None = Field(default=None, max_length=2048)
    set_properties: dict[str, str] = Field(default_factory=dict)
    remove_properties: list[str] = Field(default_factory=list)
    add_columns: list[ColumnIn] = Field(default_factory=list, max_length=4096)
    drop_columns: list[str] = Field(default_factory=list)
    rename_columns: dict[str, str] = Field(default_factory=dict)
    column_descriptions: dict[str, str | None] = Field(default_factory=dict)


class TableRename(_In):
    """Body of ``POST /namespaces/{ns}/tables/{name}/rename``."""

    new_name: str = Field(min_length=1, max_length=255)
    new_namespace: str | None = Field(default=None, min_length=1, max_length=255)


class ColumnOut(BaseModel):
    """A column."""

    name: str
    type: str
    nullable: bool
    ordinal: int
    description: str | None
    column_id: int


class NamespaceOut(BaseModel):
    """A namespace."""

    id: str
    name: str
    description: str | None
    properties: dict[str, str]
    created_at: str
    updated_at: str


class TableOut(BaseModel):
    """A table with its columns."""

    id: str
    namespace: str
    name: str
    format: str
    location: str | None
    description: str | None
    properties: dict[str, str]
    columns: list[ColumnOut]
    created_at: str
    updated_at: str
    schema_version: int
    #: An Iceberg table's current metadata file; None for every other format.
    metadata_location: str | None = None


class NamespacePage(BaseModel):
    """A page of namespaces."""

    items: list[NamespaceOut]
    next_page_token: str | None


class TablePage(BaseModel):
    """A page of tables."""

    items: list[TableOut]
    next_page_token: str | None


class EdgeIn(_In):
    """A declared lineage edge."""

    source: str = Field(min_length=1, max_length=512)
    target: str = Field(min_length=1, max_length=512)
    edge_type: str = Field(default="derives", min_length=1, max_length=64)
    columns: list[str] = Field(default_factory=list, max_length=4096)


class EdgesIn(_In):
    """Body of ``POST /lineage/edges``."""

    edges: list[EdgeIn] = Field(min_length=1, max_length=1000)


class EdgeOut(BaseModel):
    """A lineage edge."""

    source: str
    target: str
    edge_type: str
    declared: bool
    observed: bool
    observations: int
    first_seen: str | None
    last_seen: str | None
    run_id: str | None
    columns: list[str]


class EdgePage(BaseModel):
    """A page of edges."""

    items: list[EdgeOut]
    next_page_token: str | None


class TraversalNodeOut(BaseModel):
    """A node reached by a traversal."""

    name: str
    depth: int
    direction: str


class TraversalOut(BaseModel):
    """Upstream/downstream lineage of a node."""

    root: str
    direction: str
    depth: int
    nodes: list[TraversalNodeOut]
    edges: list[EdgeOut]


class SearchHitOut(BaseModel):
    """One search hit."""

    kind: str
    name: str
    qualified_name: str
    namespace: str
    description: str | None
    score: float
    matched: list[str]


class SearchOut(BaseModel):
    """A page of search hits."""

    hits: list[SearchHitOut]
    total: int
    next_page_token: str | None
    catalog_version: int


class EventIn(_In):
    """One event to append."""

    type: str = Field(min_length=1, max_length=128)
    payload: dict[str, Any]
    version: int | None = Field(default=None, ge=1, le=1_000)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    occurred_at: str | None = Field(default=None, max_length=64)
    trace_id: str | None = Field(default=None, max_length=128)


class EventBatchIn(_In):
    """Body of ``POST /events/{domain}/batch``."""

    events: list[EventIn] = Field(min_length=1, max_length=10_000)


class EventOut(BaseModel):
    """A stored event envelope."""

    event_id: str
    event_type: str
    event_version: int
    idempotency_key: str
    occurred_at: str
    source: str
    #: Who wrote the event; null for events written before actors were recorded.
    actor: str | None = None
    trace_id: str | None
    payload: dict[str, Any]


class EventsAccepted(BaseModel):
    """Answer to an event append (202)."""

    accepted: int
    event_ids: list[str]


class CompactionIn(_In):
    """Body of ``POST /compaction``."""

    domain: Literal["executions", "lineage"] | None = None


class CompactionOut(BaseModel):
    """The result of compacting one domain."""

    domain: str
    objects: int
    events: int
    duplicates: int
    quarantined: int
    commits: int
    version: int
    watermark: str | None


class CompactionsOut(BaseModel):
    """Results of a compaction request."""

    reports: list[CompactionOut]
    search_catalog_version: int


class QueryIn(_In):
    """Body of ``POST /query``."""

    sql: str = Field(min_length=1, max_length=100_000)
    as_of_version: int | None = Field(default=None, ge=0)


class QueryColumn(BaseModel):
    """A result column."""

    name: str
    type: str


class QueryOut(BaseModel):
    """A query result (JSON form)."""

    columns: list[QueryColumn]
    rows: list[list[Any]]
    row_count: int
    elapsed_ms: float
    truncated: bool = False


class HistoryEntry(BaseModel):
    """One commit of a domain."""

    version: int
    commit_id: str
    committed_at: str
    writer: str
    #: Who committed (token subject or OS user); null for commits made before actors
    #: were recorded.
    actor: str | None = None
    operation: dict[str, Any]


class VersionOut(BaseModel):
    """``GET /version``."""

    name: str
    version: str
    api: str


class ProblemFieldError(BaseModel):
    """One field of a request that failed validation."""

    location: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 ``application/problem+json`` error; ``type`` is stable per failure."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["urn:arco:problem:not-found"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemFieldError] | None = None


class HealthOut(BaseModel):
    """``GET /healthz`` and ``/readyz``."""

    status: str
    detail: str | None = None


# ------------------------------------------------------------------ flow: assets, plans, runs


class _FlowIn(_In):
    # ``from`` is a keyword: the field is ``from_`` with an alias, settable by either name.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PlanIn(_FlowIn):
    """Body of ``POST /plans``."""

    selection: str = Field(default="*", min_length=1, max_length=4096)
    partitions: list[str] | None = Field(default=None, max_length=10_000)
    from_: str | None = Field(default=None, alias="from", max_length=1024)
    to: str | None = Field(default=None, max_length=1024)
    stale_only: bool = False


class RunIn(_FlowIn):
    """Body of ``POST /runs``."""

    selection: str = Field(default="*", min_length=1, max_length=4096)
    partition: str | None = Field(default=None, max_length=1024)
    partitions: list[str] | None = Field(default=None, max_length=10_000)
    from_: str | None = Field(default=None, alias="from", max_length=1024)
    to: str | None = Field(default=None, max_length=1024)
    stale_only: bool = False
    max_concurrency: int | None = Field(default=None, ge=1, le=1024)


class RerunIn(_FlowIn):
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
