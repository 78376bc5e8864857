"""The shapes of the API's requests and answers, as :class:`typing.TypedDict`."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict


class ColumnIn(TypedDict):
    """A column to create: ``{"name": "id", "type": "int64"}``."""

    name: str
    type: str
    nullable: NotRequired[bool]
    description: NotRequired[str | None]


class Column(TypedDict):
    """A column of a table."""

    name: str
    type: str
    nullable: bool
    ordinal: int
    description: str | None
    column_id: int


class Namespace(TypedDict):
    """A namespace."""

    id: str
    name: str
    description: str | None
    properties: dict[str, str]
    created_at: str
    updated_at: str


class Table(TypedDict):
    """A table with its columns."""

    id: str
    namespace: str
    name: str
    format: str
    location: str | None
    description: str | None
    properties: dict[str, str]
    columns: list[Column]
    created_at: str
    updated_at: str
    schema_version: int
    metadata_location: NotRequired[str | None]


class NamespacePage(TypedDict):
    """A page of namespaces; ``next_page_token`` is None on the last page."""

    items: list[Namespace]
    next_page_token: str | None


class TablePage(TypedDict):
    """A page of tables; ``next_page_token`` is None on the last page."""

    items: list[Table]
    next_page_token: str | None


class EdgeIn(TypedDict):
    """A lineage edge to declare."""

    source: str
    target: str
    edge_type: NotRequired[str]
    columns: NotRequired[list[str]]


class Edge(TypedDict):
    """A lineage edge (declared and/or observed)."""

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


class EdgePage(TypedDict):
    """A page of lineage edges."""

    items: list[Edge]
    next_page_token: str | None


class TraversalNode(TypedDict):
    """A node reached by a lineage traversal."""

    name: str
    depth: int
    direction: str


class Traversal(TypedDict):
    """Upstream and/or downstream lineage of a node."""

    root: str
    direction: str
    depth: int
    nodes: list[TraversalNode]
    edges: list[Edge]


class SearchHit(TypedDict):
    """One search hit."""

    kind: str
    name: str
    qualified_name: str
    namespace: str
    description: str | None
    score: float
    matched: list[str]


class SearchResult(TypedDict):
    """A page of search hits."""

    hits: list[SearchHit]
    total: int
    next_page_token: str | None
    catalog_version: int


class EventIn(TypedDict):
    """An event to append (``payload`` is validated against the event type's schema)."""

    type: str
    payload: dict[str, Any]
    version: NotRequired[int]
    idempotency_key: NotRequired[str]
    occurred_at: NotRequired[str]
    trace_id: NotRequired[str]


class Event(TypedDict):
    """A stored event envelope."""

    event_id: str
    event_type: str
    event_version: int
    idempotency_key: str
    occurred_at: str
    source: str
    actor: str | None
    trace_id: str | None
    payload: dict[str, Any]


class EventsAccepted(TypedDict):
    """The answer to an event append (HTTP 202)."""

    accepted: int
    event_ids: list[str]


class CompactionReport(TypedDict):
    """What compacting one domain did."""

    domain: str
    objects: int
    events: int
    duplicates: int
    quarantined: int
    commits: int
    version: int
    watermark: str | None


class CompactionResult(TypedDict):
    """The answer to a compaction request."""

    reports: list[CompactionReport]
    search_catalog_version: int


class QueryColumn(TypedDict):
    """A result column of a SQL query."""

    name: str
    type: str


class QueryResult(TypedDict):
    """A SQL query result in JSON form."""

    columns: list[QueryColumn]
    rows: list[list[Any]]
    row_count: int
    elapsed_ms: float
    #: True when ``max_rows`` cut the result.
    truncated: bool


class HistoryEntry(TypedDict):
    """One commit of the catalog."""

    version: int
    commit_id: str
    committed_at: str
    writer: str
    actor: str | None
    operation: dict[str, Any]


class Health(TypedDict):
    """``/healthz`` and ``/readyz``."""

    status: str
    detail: NotRequired[str | None]


class VersionInfo(TypedDict):
    """``/version``."""

    name: str
    version: str
    api: str


class LastMaterialization(TypedDict):
    """The newest materialization of an asset."""

    run_id: str | None
    partition: str | None
    materialized_at: str
    row_count: int | None


class Asset(TypedDict):
    """An asset of the server's project (``GET /assets``)."""

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
    last_materialization: LastMaterialization | None
    stale: bool
    stale_reasons: list[str]
    #: ``fresh`` or ``overdue`` under the asset's freshness policy; None without one.
    freshness: str | None


class FlowPlan(TypedDict):
    """A plan (``POST /plans``), as ``arco --json plan`` prints it."""

    selection: str
    mode: str
    partitions: list[str]
    tasks: list[dict[str, Any]]
    explanations: list[dict[str, Any]]
    fingerprint: str


class RunAccepted(TypedDict):
    """Answer of a run trigger, rerun or cancel."""

    run_id: str
    state: str
    selection: str | None
    parent_run_id: str | None
    plan_fingerprint: str | None
    task_count: int | None
    created_at: str | None


class Run(TypedDict):
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


class RunTask(TypedDict):
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


class RunDetail(Run):
    """A run with its tasks (``GET /runs/{run_id}``)."""

    tasks: list[RunTask]


class RunPage(TypedDict):
    """A page of runs, newest first."""

    runs: list[Run]
    next_page_token: str | None


class LogLine(TypedDict):
    """One log line of a run."""

    ts: str
    task_id: str | None
    level: str
    message: str


class Unset(enum.Enum):
    UNSET = 0


UNSET = Unset.UNSET
"""Marks an optional update field as "leave unchanged" (``None`` clears it)."""

Direction = Literal["upstream", "downstream", "both"]
SearchKind = Literal["namespace", "table", "column"]
ColumnArg = ColumnIn | Mapping[str, Any] | tuple[str, str]
EdgeArg = EdgeIn | Mapping[str, Any] | tuple[str, str]
