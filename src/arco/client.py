"""A typed Python client for the Arco REST API (``/api/v1``).

::

    from arco.client import ArcoClient

    with ArcoClient("http://127.0.0.1:8484", token) as arco:
        arco.create_namespace("sales")
        arco.create_table("sales", "orders", [{"name": "id", "type": "int64"}])
        for table in arco.iter_tables("sales"):
            print(table["name"])

Results are plain dicts typed with :class:`typing.TypedDict`. Failures raise
:class:`ArcoAPIError` subclasses carrying the problem ``type``, ``status``,
``detail`` and ``request_id`` of the server's ``application/problem+json`` answer.

Retries: 429 (honouring ``Retry-After``, capped) and 503 are retried with
exponential backoff; so are connection failures before the request was sent.
Failures after the request may have reached the server (read errors, timeouts)
are retried only for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE),
read-only POSTs (query) and requests that carry an ``Idempotency-Key``.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, cast
from urllib.parse import quote

import httpx

from arco import __version__

if TYPE_CHECKING:
    import pyarrow

__all__ = [
    "ARROW_STREAM_MEDIA_TYPE",
    "PROBLEM_TYPE_PREFIX",
    "ArcoAPIError",
    "ArcoClient",
    "ArcoConnectionError",
    "AsyncArcoClient",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "Unauthenticated",
    "error_from_response",
]

PROBLEM_TYPE_PREFIX = "urn:arco:problem:"
ARROW_STREAM_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRY_STATUSES = frozenset({429, 503})
_API = "/api/v1"


# --------------------------------------------------------------------------- types


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


class HistoryEntry(TypedDict):
    """One commit of the catalog."""

    version: int
    commit_id: str
    committed_at: str
    writer: str
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


class _Unset(enum.Enum):
    UNSET = 0


UNSET = _Unset.UNSET
"""Marks an optional update field as "leave unchanged" (``None`` clears it)."""

Direction = Literal["upstream", "downstream", "both"]
SearchKind = Literal["namespace", "table", "column"]
ColumnArg = ColumnIn | Mapping[str, Any] | tuple[str, str]
EdgeArg = EdgeIn | Mapping[str, Any] | tuple[str, str]


# -------------------------------------------------------------------------- errors


class ArcoAPIError(Exception):
    """An error answer of the Arco API (``application/problem+json``)."""

    def __init__(
        self,
        status: int,
        type: str,
        detail: str,
        *,
        title: str | None = None,
        request_id: str | None = None,
        instance: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.detail = detail
        self.title = title
        self.request_id = request_id
        self.instance = instance
        self.body: dict[str, Any] = dict(body or {})
        rid = f" [request {request_id}]" if request_id else ""
        super().__init__(f"{status} {self.code}: {detail}{rid}")

    @property
    def code(self) -> str:
        """The problem type without the ``urn:arco:problem:`` prefix (e.g. ``not-found``)."""
        if self.type.startswith(PROBLEM_TYPE_PREFIX):
            return self.type[len(PROBLEM_TYPE_PREFIX) :]
        return self.type


class BadRequest(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """400 (bad name, bad type string...) or 422 (the request does not match the schema)."""


class Unauthenticated(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """401: the bearer token is missing, malformed, expired or not accepted."""


class Forbidden(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """403: the token lacks the role the operation needs."""


class NotFound(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """404: the object (or route) does not exist in the caller's scope."""


class Conflict(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """409: already exists, not empty, or an Idempotency-Key reused for another request."""


class PayloadTooLarge(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """413: the request body (or a query result) is larger than the server accepts."""


class RateLimited(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """429: the tenant's rate limit is exhausted; retry after ``retry_after`` seconds."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(ArcoAPIError):
    """5xx: the server failed or is unavailable (503 is retried before this is raised)."""


class ArcoConnectionError(ArcoAPIError):
    """The server could not be reached (``status`` is 0); the cause is chained."""


_CLASSES: dict[int, type[ArcoAPIError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: BadRequest,
    429: RateLimited,
}


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(response: httpx.Response) -> ArcoAPIError:
    """The typed exception for an error ``response`` (problem+json or anything else)."""
    status = response.status_code
    body: dict[str, Any] = {}
    try:
        parsed = response.json()
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    problem_type = body.get("type")
    if not isinstance(problem_type, str):
        problem_type = "about:blank"
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = response.text[:500] if not body else str(detail or response.reason_phrase)
    request_id = body.get("request_id") or response.headers.get("x-request-id")
    cls = _CLASSES.get(status) or (ServerError if status >= 500 else ArcoAPIError)
    kwargs: dict[str, Any] = {
        "title": body.get("title") if isinstance(body.get("title"), str) else None,
        "request_id": request_id if isinstance(request_id, str) else None,
        "instance": body.get("instance") if isinstance(body.get("instance"), str) else None,
        "body": body,
    }
    if cls is RateLimited:
        return RateLimited(
            status, problem_type, detail, retry_after=_retry_after(response), **kwargs
        )
    return cls(status, problem_type, detail, **kwargs)


# ----------------------------------------------------------------- request building


Decode = Literal["json", "none", "text", "arrow"]


@dataclass(frozen=True)
class _Call:
    """One HTTP request, built independently of the sync/async transport."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    decode: Decode = "json"
    #: Safe to resend after it may have reached the server.
    safe_to_resend: bool | None = None

    def resendable(self) -> bool:
        """True if a failure after sending may be retried."""
        if self.safe_to_resend is not None:
            return self.safe_to_resend
        return self.method in _IDEMPOTENT_METHODS or "Idempotency-Key" in self.headers


def _seg(value: str) -> str:
    """One path segment, percent-encoded (``/``, ``.``-only names and ``%`` included)."""
    if not isinstance(value, str) or value == "":
        raise ValueError("path values must be non-empty strings")
    encoded = quote(value, safe="")
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return encoded


def _idem(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def _column(col: ColumnArg) -> dict[str, Any]:
    if isinstance(col, tuple):
        name, type_ = col
        return {"name": name, "type": type_}
    return dict(col)


def _edge(edge: EdgeArg) -> dict[str, Any]:
    if isinstance(edge, tuple):
        source, target = edge
        return {"source": source, "target": target}
    return dict(edge)


def _when(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")
        return value.isoformat()
    return value


class _Calls:
    """Builders of every API request (shared by the sync and async clients)."""

    @staticmethod
    def health() -> _Call:
        return _Call("GET", "/healthz")

    @staticmethod
    def ready() -> _Call:
        return _Call("GET", "/readyz")

    @staticmethod
    def version() -> _Call:
        return _Call("GET", "/version")

    @staticmethod
    def metrics() -> _Call:
        return _Call("GET", "/metrics", decode="text")

    @staticmethod
    def create_namespace(
        name: str,
        description: str | None,
        properties: Mapping[str, str] | None,
        idempotency_key: str | None,
    ) -> _Call:
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if properties:
            body["properties"] = dict(properties)
        return _Call("POST", f"{_API}/namespaces", json=body, headers=_idem(idempotency_key))

    @staticmethod
    def get_namespace(name: str) -> _Call:
        return _Call("GET", f"{_API}/namespaces/{_seg(name)}")

    @staticmethod
    def list_namespaces(prefix: str | None, page_size: int | None, page_token: str | None) -> _Call:
        params = _clean({"prefix": prefix, "page_size": page_size, "page_token": page_token})
        return _Call("GET", f"{_API}/namespaces", params=params)

    @staticmethod
    def update_namespace(
        name: str,
        description: str | _Unset | None,
        set_properties: Mapping[str, str] | None,
        remove_properties: Sequence[str] | None,
        idempotency_key: str | None,
    ) -> _Call:
        body: dict[str, Any] = {}
        if description is not UNSET:
            body["description"] = description
        if set_properties:
            body["set_properties"] = dict(set_properties)
        if remove_properties:
            body["remove_properties"] = list(remove_properties)
        return _Call(
            "PATCH",
            f"{_API}/namespaces/{_seg(name)}",
            json=body,
            headers=_idem(idempotency_key),
        )

    @staticmethod
    def drop_namespace(name: str, cascade: bool, idempotency_key: str | None) -> _Call:
        return _Call(
            "DELETE",
            f"{_API}/namespaces/{_seg(name)}",
            params=_clean({"cascade": cascade or None}),
            headers=_idem(idempotency_key),
            decode="none",
        )

    @staticmethod
    def create_table(
        namespace: str,
        name: str,
        columns: Sequence[ColumnArg],
        format: str | None,
        location: str | None,
        description: str | None,
        properties: Mapping[str, str] | None,
        idempotency_key: str | None,
    ) -> _Call:
        body: dict[str, Any] = {"name": name, "columns": [_column(c) for c in columns]}
        for key, value in (
            ("format", format),
            ("location", location),
            ("description", description),
        ):
            if value is not None:
                body[key] = value
        if properties:
            body["properties"] = dict(properties)
        return _Call(
            "POST",
            f"{_API}/namespaces/{_seg(namespace)}/tables",
            json=body,
            headers=_idem(idempotency_key),
        )

    @staticmethod
    def get_table(namespace: str, name: str) -> _Call:
        return _Call("GET", f"{_API}/namespaces/{_seg(namespace)}/tables/{_seg(name)}")

    @staticmethod
    def list_tables(
        namespace: str | None, prefix: str | None, page_size: int | None, page_token: str | None
    ) -> _Call:
        if namespace is None:
            if prefix is not None:
                raise ValueError("prefix needs a namespace")
            params = _clean({"page_size": page_size, "page_token": page_token})
            return _Call("GET", f"{_API}/tables", params=params)
        params = _clean({"prefix": prefix, "page_size": page_size, "page_token": page_token})
        return _Call("GET", f"{_API}/namespaces/{_seg(namespace)}/tables", params=params)

    @staticmethod
    def update_table(
        namespace: str,
        name: str,
        *,
        description: str | _Unset | None,
        location: str | _Unset | None,
        set_properties: Mapping[str, str] | None,
        remove_properties: Sequence[str] | None,
        add_columns: Sequence[ColumnArg] | None,
        drop_columns: Sequence[str] | None,
        rename_columns: Mapping[str, str] | None,
        column_descriptions: Mapping[str, str | None] | None,
        idempotency_key: str | None,
    ) -> _Call:
        body: dict[str, Any] = {}
        if description is not UNSET:
            body["description"] = description
        if location is not UNSET:
            body["location"] = location
        if set_properties:
            body["set_properties"] = dict(set_properties)
        if remove_properties:
            body["remove_properties"] = list(remove_properties)
        if add_columns:
            body["add_columns"] = [_column(c) for c in add_columns]
        if drop_columns:
            body["drop_columns"] = list(drop_columns)
        if rename_columns:
            body["rename_columns"] = dict(rename_columns)
        if column_descriptions:
            body["column_descriptions"] = dict(column_descriptions)
        return _Call(
            "PATCH",
            f"{_API}/namespaces/{_seg(namespace)}/tables/{_seg(name)}",
            json=body,
            headers=_idem(idempotency_key),
        )

    @staticmethod
    def rename_table(
        namespace: str,
        name: str,
        new_name: str,
        new_namespace: str | None,
        idempotency_key: str | None,
    ) -> _Call:
        body: dict[str, Any] = {"new_name": new_name}
        if new_namespace is not None:
            body["new_namespace"] = new_namespace
        return _Call(
            "POST",
            f"{_API}/namespaces/{_seg(namespace)}/tables/{_seg(name)}/rename",
            json=body,
            headers=_idem(idempotency_key),
        )

    @staticmethod
    def drop_table(namespace: str, name: str, idempotency_key: str | None) -> _Call:
        return _Call(
            "DELETE",
            f"{_API}/namespaces/{_seg(namespace)}/tables/{_seg(name)}",
            headers=_idem(idempotency_key),
            decode="none",
        )

    @staticmethod
    def add_columns(
        namespace: str, name: str, columns: Sequence[ColumnArg], idempotency_key: str | None
    ) -> _Call:
        return _Call(
            "POST",
            f"{_API}/namespaces/{_seg(namespace)}/tables/{_seg(name)}/columns",
            json=[_column(c) for c in columns],
            headers=_idem(idempotency_key),
        )

    @staticmethod
    def drop_column(namespace: str, name: str, column: str, idempotency_key: str | None) -> _Call:
        return _Call(
            "DELETE",
            f"{_API}/namespaces/{_seg(namespace)}/tables/{_seg(name)}/columns/{_seg(column)}",
            headers=_idem(idempotency_key),
        )

    @staticmethod
    def declare_edges(edges: Sequence[EdgeArg]) -> _Call:
        # Declaring an edge twice changes nothing: safe to resend.
        return _Call(
            "POST",
            f"{_API}/lineage/edges",
            json={"edges": [_edge(e) for e in edges]},
            safe_to_resend=True,
        )

    @staticmethod
    def remove_edge(source: str, target: str, edge_type: str) -> _Call:
        params = {"source": source, "target": target, "edge_type": edge_type}
        return _Call("DELETE", f"{_API}/lineage/edges", params=params, decode="none")

    @staticmethod
    def list_edges(page_size: int | None, page_token: str | None) -> _Call:
        params = _clean({"page_size": page_size, "page_token": page_token})
        return _Call("GET", f"{_API}/lineage/edges", params=params)

    @staticmethod
    def lineage(node: str, direction: Direction, depth: int) -> _Call:
        params = {"direction": direction, "depth": depth}
        return _Call("GET", f"{_API}/lineage/{_seg(node)}", params=params)

    @staticmethod
    def search(
        q: str,
        kind: SearchKind | None,
        namespace: str | None,
        limit: int | None,
        page_token: str | None,
    ) -> _Call:
        params = _clean(
            {"q": q, "kind": kind, "namespace": namespace, "limit": limit, "page_token": page_token}
        )
        return _Call("GET", f"{_API}/search", params=params)

    @staticmethod
    def append_event(
        domain: str,
        type: str,
        payload: Mapping[str, Any],
        version: int | None,
        idempotency_key: str | None,
        occurred_at: datetime | str | None,
        trace_id: str | None,
    ) -> _Call:
        body: dict[str, Any] = {"type": type, "payload": dict(payload)}
        if version is not None:
            body["version"] = version
        when = _when(occurred_at)
        if when is not None:
            body["occurred_at"] = when
        if trace_id is not None:
            body["trace_id"] = trace_id
        return _Call(
            "POST", f"{_API}/events/{_seg(domain)}", json=body, headers=_idem(idempotency_key)
        )

    @staticmethod
    def append_events(domain: str, events: Sequence[EventIn | Mapping[str, Any]]) -> _Call:
        items = [dict(e) for e in events]
        # A batch is resendable when every event names its idempotency key.
        keyed = bool(items) and all(e.get("idempotency_key") for e in items)
        return _Call(
            "POST",
            f"{_API}/events/{_seg(domain)}/batch",
            json={"events": items},
            safe_to_resend=keyed,
        )

    @staticmethod
    def tail_events(domain: str, limit: int | None) -> _Call:
        return _Call("GET", f"{_API}/events/{_seg(domain)}", params=_clean({"limit": limit}))

    @staticmethod
    def compact(domain: str | None) -> _Call:
        body = {"domain": domain} if domain is not None else {}
        # Compaction folds whatever is pending; running it twice is harmless.
        return _Call("POST", f"{_API}/compaction", json=body, safe_to_resend=True)

    @staticmethod
    def query(sql: str, as_of_version: int | None, arrow: bool) -> _Call:
        body: dict[str, Any] = {"sql": sql}
        if as_of_version is not None:
            body["as_of_version"] = as_of_version
        headers = {"Accept": ARROW_STREAM_MEDIA_TYPE} if arrow else {}
        return _Call(
            "POST",
            f"{_API}/query",
            json=body,
            headers=headers,
            decode="arrow" if arrow else "json",
            safe_to_resend=True,
        )

    @staticmethod
    def catalog_history(limit: int | None) -> _Call:
        return _Call("GET", f"{_API}/catalog/history", params=_clean({"limit": limit}))

    @staticmethod
    def list_assets() -> _Call:
        return _Call("GET", f"{_API}/assets")

    @staticmethod
    def plan(
        selection: str,
        partitions: Sequence[str] | None,
        start: str | None,
        end: str | None,
        stale_only: bool,
    ) -> _Call:
        body: dict[str, Any] = {"selection": selection, "stale_only": stale_only}
        if partitions is not None:
            body["partitions"] = list(partitions)
        if start is not None or end is not None:
            body.update({"from": start, "to": end})
        # Planning writes nothing: safe to resend.
        return _Call("POST", f"{_API}/plans", json=body, safe_to_resend=True)

    @staticmethod
    def trigger_run(
        selection: str,
        partition: str | None,
        start: str | None,
        end: str | None,
        stale_only: bool,
        max_concurrency: int | None,
        idempotency_key: str | None,
    ) -> _Call:
        body: dict[str, Any] = {"selection": selection, "stale_only": stale_only}
        if partition is not None:
            body["partition"] = partition
        if start is not None or end is not None:
            body.update({"from": start, "to": end})
        if max_concurrency is not None:
            body["max_concurrency"] = max_concurrency
        return _Call("POST", f"{_API}/runs", json=body, headers=_idem(idempotency_key))

    @staticmethod
    def list_runs(page_size: int | None, page_token: str | None, state: str | None) -> _Call:
        params = _clean({"page_size": page_size, "page_token": page_token, "state": state})
        return _Call("GET", f"{_API}/runs", params=params)

    @staticmethod
    def get_run(run_id: str) -> _Call:
        return _Call("GET", f"{_API}/runs/{_seg(run_id)}")

    @staticmethod
    def cancel_run(run_id: str) -> _Call:
        # Cancelling twice asks for the same thing: safe to resend.
        return _Call("POST", f"{_API}/runs/{_seg(run_id)}/cancel", safe_to_resend=True)

    @staticmethod
    def rerun(
        run_id: str, from_failure: bool, max_concurrency: int | None, idempotency_key: str | None
    ) -> _Call:
        body: dict[str, Any] = {"from_failure": from_failure}
        if max_concurrency is not None:
            body["max_concurrency"] = max_concurrency
        return _Call(
            "POST", f"{_API}/runs/{_seg(run_id)}/rerun", json=body, headers=_idem(idempotency_key)
        )

    @staticmethod
    def run_logs(run_id: str, task_id: str | None, limit: int | None) -> _Call:
        params = _clean({"task_id": task_id, "limit": limit})
        return _Call("GET", f"{_API}/runs/{_seg(run_id)}/logs", params=params)


# ------------------------------------------------------------------------ retrying


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to wait before resending a request."""

    max_retries: int = 3
    backoff_base: float = 0.2
    backoff_cap: float = 10.0
    #: ``Retry-After`` is honoured up to this many seconds (longer waits are capped).
    max_retry_after: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter for retry number ``attempt`` (0-based)."""
        ceiling: float = min(self.backoff_cap, self.backoff_base * 2.0**attempt)
        return ceiling * (0.5 + random.random() / 2)

    def status_wait(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before resending after ``response``; None: do not retry."""
        if attempt >= self.max_retries or response.status_code not in _RETRY_STATUSES:
            return None
        after = _retry_after(response)
        if after is None or after <= 0:
            return self.backoff(attempt)
        return min(after, self.max_retry_after)

    def error_wait(self, attempt: int, exc: httpx.TransportError, call: _Call) -> float | None:
        """Seconds to wait before resending after a transport error; None: raise."""
        if attempt >= self.max_retries:
            return None
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        if never_sent or call.resendable():
            return self.backoff(attempt)
        return None


def _decode(call: _Call, response: httpx.Response) -> Any:
    if call.decode == "none":
        return None
    if call.decode == "text":
        return response.text
    if call.decode == "arrow":
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != ARROW_STREAM_MEDIA_TYPE:
            raise ArcoAPIError(
                response.status_code,
                PROBLEM_TYPE_PREFIX + "not-acceptable",
                f"the server answered {media or 'no content type'} instead of an Arrow stream",
                request_id=response.headers.get("x-request-id"),
            )
        import pyarrow.ipc

        return pyarrow.ipc.open_stream(response.content).read_all()
    return response.json()


def _connection_error(exc: httpx.TransportError, call: _Call) -> ArcoConnectionError:
    return ArcoConnectionError(
        0, PROBLEM_TYPE_PREFIX + "connection", f"{call.method} {call.path}: {exc!r}"
    )


def _headers(token: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"arco-client/{__version__}", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


# ---------------------------------------------------------------------- sync client


class ArcoClient:
    """A synchronous client of the Arco REST API.

    ``token`` is a bearer JWT (``arco token`` mints one for local use); it may be
    None for the unauthenticated ops routes. ``transport`` is passed to
    :class:`httpx.Client` (tests use ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 10,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self._sleep: Callable[[float], None] = time.sleep
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ArcoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: _Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params or None,
                    json=call.json,
                    headers={**_headers(self.token), **call.headers},
                )
            except httpx.TransportError as exc:
                wait = self.retry.error_wait(attempt, exc, call)
                if wait is None:
                    raise _connection_error(exc, call) from exc
            else:
                if not response.is_error:
                    return response
                wait = self.retry.status_wait(attempt, response)
                if wait is None:
                    raise error_from_response(response)
            self._sleep(wait)
            attempt += 1

    def _run(self, call: _Call) -> Any:
        return _decode(call, self._send(call))

    # ops
    def health(self) -> Health:
        """``GET /healthz``: the process answers."""
        return cast(Health, self._run(_Calls.health()))

    def ready(self) -> Health:
        """``GET /readyz``: the store answers (raises :class:`ServerError` when not)."""
        return cast(Health, self._run(_Calls.ready()))

    def version(self) -> VersionInfo:
        """``GET /version``."""
        return cast(VersionInfo, self._run(_Calls.version()))

    def metrics(self) -> str:
        """``GET /metrics``: Prometheus text."""
        return cast(str, self._run(_Calls.metrics()))

    # namespaces
    def create_namespace(
        self,
        name: str,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Namespace:
        """Create a namespace (dotted names nest; the parent must exist)."""
        call = _Calls.create_namespace(name, description, properties, idempotency_key)
        return cast(Namespace, self._run(call))

    def get_namespace(self, name: str) -> Namespace:
        """One namespace; :class:`NotFound` if it does not exist."""
        return cast(Namespace, self._run(_Calls.get_namespace(name)))

    def list_namespaces(
        self,
        prefix: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> NamespacePage:
        """One page of namespaces sorted by name."""
        call = _Calls.list_namespaces(prefix, page_size, page_token)
        return cast(NamespacePage, self._run(call))

    def iter_namespaces(
        self, prefix: str | None = None, *, page_size: int | None = None
    ) -> Iterator[Namespace]:
        """Every namespace, following ``next_page_token``."""
        token: str | None = None
        while True:
            page = self.list_namespaces(prefix, page_size=page_size, page_token=token)
            yield from page["items"]
            token = page["next_page_token"]
            if not token:
                return

    def update_namespace(
        self,
        name: str,
        *,
        description: str | _Unset | None = UNSET,
        set_properties: Mapping[str, str] | None = None,
        remove_properties: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Namespace:
        """Change a namespace's description (None clears it) or properties."""
        call = _Calls.update_namespace(
            name, description, set_properties, remove_properties, idempotency_key
        )
        return cast(Namespace, self._run(call))

    def drop_namespace(
        self, name: str, *, cascade: bool = False, idempotency_key: str | None = None
    ) -> None:
        """Drop a namespace; a non-empty one only with ``cascade=True``."""
        self._run(_Calls.drop_namespace(name, cascade, idempotency_key))

    # tables
    def create_table(
        self,
        namespace: str,
        name: str,
        columns: Sequence[ColumnArg] = (),
        *,
        format: str | None = None,
        location: str | None = None,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Table:
        """Register a table; columns are dicts or ``(name, type)`` pairs."""
        call = _Calls.create_table(
            namespace,
            name,
            columns,
            format,
            location,
            description,
            properties,
            idempotency_key,
        )
        return cast(Table, self._run(call))

    def get_table(self, namespace: str, name: str) -> Table:
        """One table with its columns; :class:`NotFound` if it does not exist."""
        return cast(Table, self._run(_Calls.get_table(namespace, name)))

    def list_tables(
        self,
        namespace: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> TablePage:
        """One page of the tables of ``namespace`` (of every namespace if None)."""
        call = _Calls.list_tables(namespace, prefix, page_size, page_token)
        return cast(TablePage, self._run(call))

    def iter_tables(
        self,
        ns: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[Table]:
        """Every table of ``ns`` (of the workspace if None), following ``next_page_token``."""
        token: str | None = None
        while True:
            page = self.list_tables(ns, prefix=prefix, page_size=page_size, page_token=token)
            yield from page["items"]
            token = page["next_page_token"]
            if not token:
                return

    def update_table(
        self,
        namespace: str,
        name: str,
        *,
        description: str | _Unset | None = UNSET,
        location: str | _Unset | None = UNSET,
        set_properties: Mapping[str, str] | None = None,
        remove_properties: Sequence[str] | None = None,
        add_columns: Sequence[ColumnArg] | None = None,
        drop_columns: Sequence[str] | None = None,
        rename_columns: Mapping[str, str] | None = None,
        column_descriptions: Mapping[str, str | None] | None = None,
        idempotency_key: str | None = None,
    ) -> Table:
        """Change a table's description, location, properties or columns in one commit."""
        call = _Calls.update_table(
            namespace,
            name,
            description=description,
            location=location,
            set_properties=set_properties,
            remove_properties=remove_properties,
            add_columns=add_columns,
            drop_columns=drop_columns,
            rename_columns=rename_columns,
            column_descriptions=column_descriptions,
            idempotency_key=idempotency_key,
        )
        return cast(Table, self._run(call))

    def rename_table(
        self,
        namespace: str,
        name: str,
        new_name: str,
        *,
        new_namespace: str | None = None,
        idempotency_key: str | None = None,
    ) -> Table:
        """Rename a table, optionally moving it to ``new_namespace``."""
        call = _Calls.rename_table(namespace, name, new_name, new_namespace, idempotency_key)
        return cast(Table, self._run(call))

    def drop_table(self, namespace: str, name: str, *, idempotency_key: str | None = None) -> None:
        """Remove a table from the catalog."""
        self._run(_Calls.drop_table(namespace, name, idempotency_key))

    def add_columns(
        self,
        namespace: str,
        name: str,
        columns: Sequence[ColumnArg],
        *,
        idempotency_key: str | None = None,
    ) -> Table:
        """Append columns to a table."""
        call = _Calls.add_columns(namespace, name, columns, idempotency_key)
        return cast(Table, self._run(call))

    def drop_column(
        self, namespace: str, name: str, column: str, *, idempotency_key: str | None = None
    ) -> Table:
        """Drop one column of a table."""
        call = _Calls.drop_column(namespace, name, column, idempotency_key)
        return cast(Table, self._run(call))

    def catalog_history(self, limit: int | None = None) -> list[HistoryEntry]:
        """The newest catalog commits, newest first."""
        return cast(list[HistoryEntry], self._run(_Calls.catalog_history(limit)))

    # lineage
    def declare_edges(self, edges: Sequence[EdgeArg]) -> list[Edge]:
        """Declare lineage edges (dicts or ``(source, target)`` pairs); idempotent."""
        page = cast(EdgePage, self._run(_Calls.declare_edges(edges)))
        return page["items"]

    def remove_edge(self, source: str, target: str, edge_type: str = "derives") -> None:
        """Withdraw a declared edge."""
        self._run(_Calls.remove_edge(source, target, edge_type))

    def list_edges(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> EdgePage:
        """One page of lineage edges sorted by (source, target, type)."""
        return cast(EdgePage, self._run(_Calls.list_edges(page_size, page_token)))

    def iter_edges(self, *, page_size: int | None = None) -> Iterator[Edge]:
        """Every lineage edge, following ``next_page_token``."""
        token: str | None = None
        while True:
            page = self.list_edges(page_size=page_size, page_token=token)
            yield from page["items"]
            token = page["next_page_token"]
            if not token:
                return

    def lineage(self, node: str, direction: Direction = "both", depth: int = 5) -> Traversal:
        """Upstream and/or downstream lineage of ``node`` up to ``depth`` hops."""
        return cast(Traversal, self._run(_Calls.lineage(node, direction, depth)))

    # search
    def search(
        self,
        q: str,
        kind: SearchKind | None = None,
        namespace: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> SearchResult:
        """Ranked search over names, descriptions and properties."""
        call = _Calls.search(q, kind, namespace, limit, page_token)
        return cast(SearchResult, self._run(call))

    # events
    def append_event(
        self,
        domain: str,
        type: str,
        payload: Mapping[str, Any],
        version: int | None = None,
        idempotency_key: str | None = None,
        *,
        occurred_at: datetime | str | None = None,
        trace_id: str | None = None,
    ) -> EventsAccepted:
        """Append one event to ``domain``'s ledger (HTTP 202; folded by compaction)."""
        call = _Calls.append_event(
            domain, type, payload, version, idempotency_key, occurred_at, trace_id
        )
        return cast(EventsAccepted, self._run(call))

    def append_events(
        self, domain: str, events: Sequence[EventIn | Mapping[str, Any]]
    ) -> EventsAccepted:
        """Append many events as one ledger object (all or nothing)."""
        return cast(EventsAccepted, self._run(_Calls.append_events(domain, events)))

    def tail_events(self, domain: str, limit: int | None = None) -> list[Event]:
        """The newest events of ``domain``'s ledger."""
        return cast(list[Event], self._run(_Calls.tail_events(domain, limit)))

    def compact(self, domain: str | None = None) -> CompactionResult:
        """Fold pending events (of ``domain``, or of every domain) and refresh search."""
        return cast(CompactionResult, self._run(_Calls.compact(domain)))

    # SQL
    def query(self, sql: str, as_of_version: int | None = None) -> QueryResult:
        """Run a read-only SQL query over the ``system.*`` tables; JSON result."""
        return cast(QueryResult, self._run(_Calls.query(sql, as_of_version, arrow=False)))

    def query_arrow(self, sql: str, as_of_version: int | None = None) -> pyarrow.Table:
        """Run a read-only SQL query and return the result as a :class:`pyarrow.Table`."""
        return self._run(_Calls.query(sql, as_of_version, arrow=True))

    # flow
    def list_assets(self) -> list[Asset]:
        """The assets of the server's project, with last materialization and staleness."""
        return cast(list[Asset], self._run(_Calls.list_assets())["assets"])

    def plan(
        self,
        selection: str = "*",
        *,
        partitions: Sequence[str] | None = None,
        start: str | None = None,
        end: str | None = None,
        stale_only: bool = False,
    ) -> FlowPlan:
        """The deterministic plan of ``selection`` (nothing runs)."""
        call = _Calls.plan(selection, partitions, start, end, stale_only)
        return cast(FlowPlan, self._run(call))

    def trigger_run(
        self,
        selection: str = "*",
        *,
        partition: str | None = None,
        start: str | None = None,
        end: str | None = None,
        stale_only: bool = False,
        max_concurrency: int | None = None,
        idempotency_key: str | None = None,
    ) -> RunAccepted:
        """Queue a run of ``selection`` (state ``QUEUED``) for a run worker."""
        call = _Calls.trigger_run(
            selection, partition, start, end, stale_only, max_concurrency, idempotency_key
        )
        return cast(RunAccepted, self._run(call))

    def list_runs(
        self,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        state: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first."""
        return cast(RunPage, self._run(_Calls.list_runs(page_size, page_token, state)))

    def iter_runs(self, *, page_size: int | None = None, state: str | None = None) -> Iterator[Run]:
        """Every run, newest first, following ``next_page_token``."""
        token: str | None = None
        while True:
            page = self.list_runs(page_size=page_size, page_token=token, state=state)
            yield from page["runs"]
            token = page["next_page_token"]
            if not token:
                return

    def get_run(self, run_id: str) -> RunDetail:
        """One run with its tasks; :class:`NotFound` if it does not exist."""
        return cast(RunDetail, self._run(_Calls.get_run(run_id)))

    def cancel_run(self, run_id: str) -> RunAccepted:
        """Cancel a run (:class:`Conflict` if it already ended)."""
        return cast(RunAccepted, self._run(_Calls.cancel_run(run_id)))

    def rerun(
        self,
        run_id: str,
        *,
        from_failure: bool = True,
        max_concurrency: int | None = None,
        idempotency_key: str | None = None,
    ) -> RunAccepted:
        """Queue a new run of a finished run's tasks (``from_failure``: the failed ones)."""
        call = _Calls.rerun(run_id, from_failure, max_concurrency, idempotency_key)
        return cast(RunAccepted, self._run(call))

    def run_logs(
        self, run_id: str, *, task_id: str | None = None, limit: int | None = None
    ) -> list[LogLine]:
        """The log lines of a run, in order."""
        return cast(list[LogLine], self._run(_Calls.run_logs(run_id, task_id, limit))["lines"])


# --------------------------------------------------------------------- async client


class AsyncArcoClient:
    """An asyncio client with the most used calls of :class:`ArcoClient`.

    Same errors, retries and results; use :meth:`request` for the other routes.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 10,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self._sleep: Callable[[float], Any] = asyncio.sleep
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncArcoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: _Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.params or None,
                    json=call.json,
                    headers={**_headers(self.token), **call.headers},
                )
            except httpx.TransportError as exc:
                wait = self.retry.error_wait(attempt, exc, call)
                if wait is None:
                    raise _connection_error(exc, call) from exc
            else:
                if not response.is_error:
                    return response
                wait = self.retry.status_wait(attempt, response)
                if wait is None:
                    raise error_from_response(response)
            await self._sleep(wait)
            attempt += 1

    async def _run(self, call: _Call) -> Any:
        return _decode(call, await self._send(call))

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Any API call; the decoded JSON answer (None for an empty body)."""
        call = _Call(
            method.upper(),
            path,
            params=_clean(params or {}),
            json=json,
            headers=_idem(idempotency_key),
        )
        response = await self._send(call)
        return response.json() if response.content else None

    async def health(self) -> Health:
        """``GET /healthz``."""
        return cast(Health, await self._run(_Calls.health()))

    async def create_namespace(
        self,
        name: str,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Namespace:
        """Create a namespace."""
        call = _Calls.create_namespace(name, description, properties, idempotency_key)
        return cast(Namespace, await self._run(call))

    async def get_namespace(self, name: str) -> Namespace:
        """One namespace."""
        return cast(Namespace, await self._run(_Calls.get_namespace(name)))

    async def list_namespaces(
        self,
        prefix: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> NamespacePage:
        """One page of namespaces."""
        call = _Calls.list_namespaces(prefix, page_size, page_token)
        return cast(NamespacePage, await self._run(call))

    async def create_table(
        self,
        namespace: str,
        name: str,
        columns: Sequence[ColumnArg] = (),
        *,
        format: str | None = None,
        location: str | None = None,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Table:
        """Register a table."""
        call = _Calls.create_table(
            namespace,
            name,
            columns,
            format,
            location,
            description,
            properties,
            idempotency_key,
        )
        return cast(Table, await self._run(call))

    async def get_table(self, namespace: str, name: str) -> Table:
        """One table."""
        return cast(Table, await self._run(_Calls.get_table(namespace, name)))

    async def list_tables(
        self,
        namespace: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> TablePage:
        """One page of tables."""
        call = _Calls.list_tables(namespace, prefix, page_size, page_token)
        return cast(TablePage, await self._run(call))

    async def iter_tables(
        self, ns: str | None = None, *, page_size: int | None = None
    ) -> AsyncIterator[Table]:
        """Every table of ``ns`` (of the workspace if None), following ``next_page_token``."""
        token: str | None = None
        while True:
            page = await self.list_tables(ns, page_size=page_size, page_token=token)
            for item in page["items"]:
                yield item
            token = page["next_page_token"]
            if not token:
                return

    async def drop_table(
        self, namespace: str, name: str, *, idempotency_key: str | None = None
    ) -> None:
        """Remove a table."""
        await self._run(_Calls.drop_table(namespace, name, idempotency_key))

    async def lineage(self, node: str, direction: Direction = "both", depth: int = 5) -> Traversal:
        """Lineage of ``node``."""
        return cast(Traversal, await self._run(_Calls.lineage(node, direction, depth)))

    async def search(
        self,
        q: str,
        kind: SearchKind | None = None,
        namespace: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> SearchResult:
        """Ranked search."""
        call = _Calls.search(q, kind, namespace, limit, page_token)
        return cast(SearchResult, await self._run(call))

    async def append_event(
        self,
        domain: str,
        type: str,
        payload: Mapping[str, Any],
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> EventsAccepted:
        """Append one event."""
        call = _Calls.append_event(domain, type, payload, version, idempotency_key, None, None)
        return cast(EventsAccepted, await self._run(call))

    async def append_events(
        self, domain: str, events: Sequence[EventIn | Mapping[str, Any]]
    ) -> EventsAccepted:
        """Append many events as one ledger object."""
        return cast(EventsAccepted, await self._run(_Calls.append_events(domain, events)))

    async def query(self, sql: str, as_of_version: int | None = None) -> QueryResult:
        """Run a read-only SQL query; JSON result."""
        return cast(QueryResult, await self._run(_Calls.query(sql, as_of_version, arrow=False)))

    # flow
    async def list_assets(self) -> list[Asset]:
        """The assets of the server's project."""
        return cast(list[Asset], (await self._run(_Calls.list_assets()))["assets"])

    async def plan(
        self,
        selection: str = "*",
        *,
        partitions: Sequence[str] | None = None,
        start: str | None = None,
        end: str | None = None,
        stale_only: bool = False,
    ) -> FlowPlan:
        """The deterministic plan of ``selection``."""
        call = _Calls.plan(selection, partitions, start, end, stale_only)
        return cast(FlowPlan, await self._run(call))

    async def trigger_run(
        self,
        selection: str = "*",
        *,
        partition: str | None = None,
        start: str | None = None,
        end: str | None = None,
        stale_only: bool = False,
        max_concurrency: int | None = None,
        idempotency_key: str | None = None,
    ) -> RunAccepted:
        """Queue a run of ``selection`` for a run worker."""
        call = _Calls.trigger_run(
            selection, partition, start, end, stale_only, max_concurrency, idempotency_key
        )
        return cast(RunAccepted, await self._run(call))

    async def list_runs(
        self,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        state: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first."""
        return cast(RunPage, await self._run(_Calls.list_runs(page_size, page_token, state)))

    async def iter_runs(
        self, *, page_size: int | None = None, state: str | None = None
    ) -> AsyncIterator[Run]:
        """Every run, newest first."""
        token: str | None = None
        while True:
            page = await self.list_runs(page_size=page_size, page_token=token, state=state)
            for run in page["runs"]:
                yield run
            token = page["next_page_token"]
            if not token:
                return

    async def get_run(self, run_id: str) -> RunDetail:
        """One run with its tasks."""
        return cast(RunDetail, await self._run(_Calls.get_run(run_id)))

    async def cancel_run(self, run_id: str) -> RunAccepted:
        """Cancel a run."""
        return cast(RunAccepted, await self._run(_Calls.cancel_run(run_id)))

    async def rerun(
        self,
        run_id: str,
        *,
        from_failure: bool = True,
        max_concurrency: int | None = None,
        idempotency_key: str | None = None,
    ) -> RunAccepted:
        """Queue a new run of a finished run's tasks."""
        call = _Calls.rerun(run_id, from_failure, max_concurrency, idempotency_key)
        return cast(RunAccepted, await self._run(call))

    async def run_logs(
        self, run_id: str, *, task_id: str | None = None, limit: int | None = None
    ) -> list[LogLine]:
        """The log lines of a run, in order."""
        data = await self._run(_Calls.run_logs(run_id, task_id, limit))
        return cast(list[LogLine], data["lines"])
