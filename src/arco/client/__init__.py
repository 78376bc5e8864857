"""A typed Python client for the Arco REST API (``/api/v1``).

::

    from arco.client import ArcoClient

    with ArcoClient("http://127.0.0.1:8484", token) as arco:
        arco.create_namespace("sales")
        arco.create_table("sales", "orders", [{"name": "id", "type": "int64"}])
        for table in arco.iter_tables("sales"):
            print(table["name"])

:class:`AsyncArcoClient` has every method of :class:`ArcoClient`, as coroutines
(``iter_*`` as async iterators): it is generated from the sync client, so the two
cannot drift.

Results are plain dicts typed with :class:`typing.TypedDict`. Failures raise
:class:`ArcoAPIError` subclasses carrying the problem ``type``, ``status``,
``detail`` and ``request_id`` of the server's ``application/problem+json`` answer.

Retries: 429 (honouring ``Retry-After``, capped) and 503 are retried with
exponential backoff; so are connection failures before the request was sent.
Failures after the request may have reached the server (read errors, timeouts)
are retried only for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE),
read-only POSTs (query) and requests that carry an ``Idempotency-Key``.

Layout (the httpx pattern): ``_types`` (request and answer shapes), ``_errors``
(exceptions), ``_calls`` (every request as data, decoding, retry policy),
``_sync`` (the client) and ``_async`` (generated from ``_sync``).
"""

from arco.client._async import AsyncArcoClient
from arco.client._calls import ARROW_STREAM_MEDIA_TYPE, RetryPolicy
from arco.client._errors import (
    PROBLEM_TYPE_PREFIX,
    ArcoAPIError,
    ArcoConnectionError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthenticated,
    error_from_response,
)
from arco.client._sync import ArcoClient
from arco.client._types import (
    UNSET,
    Asset,
    Column,
    ColumnIn,
    CompactionReport,
    CompactionResult,
    Direction,
    Edge,
    EdgeIn,
    EdgePage,
    Event,
    EventIn,
    EventsAccepted,
    FlowPlan,
    Health,
    HistoryEntry,
    LastMaterialization,
    LogLine,
    Namespace,
    NamespacePage,
    QueryColumn,
    QueryResult,
    Run,
    RunAccepted,
    RunDetail,
    RunPage,
    RunTask,
    SearchHit,
    SearchKind,
    SearchResult,
    Table,
    TablePage,
    Traversal,
    TraversalNode,
    VersionInfo,
)

__all__ = [
    "ARROW_STREAM_MEDIA_TYPE",
    "PROBLEM_TYPE_PREFIX",
    "UNSET",
    "ArcoAPIError",
    "ArcoClient",
    "ArcoConnectionError",
    "Asset",
    "AsyncArcoClient",
    "BadRequest",
    "Column",
    "ColumnIn",
    "CompactionReport",
    "CompactionResult",
    "Conflict",
    "Direction",
    "Edge",
    "EdgeIn",
    "EdgePage",
    "Event",
    "EventIn",
    "EventsAccepted",
    "FlowPlan",
    "Forbidden",
    "Health",
    "HistoryEntry",
    "LastMaterialization",
    "LogLine",
    "Namespace",
    "NamespacePage",
    "NotFound",
    "PayloadTooLarge",
    "QueryColumn",
    "QueryResult",
    "RateLimited",
    "RetryPolicy",
    "Run",
    "RunAccepted",
    "RunDetail",
    "RunPage",
    "RunTask",
    "SearchHit",
    "SearchKind",
    "SearchResult",
    "ServerError",
    "Table",
    "TablePage",
    "Traversal",
    "TraversalNode",
    "Unauthenticated",
    "VersionInfo",
    "error_from_response",
]
