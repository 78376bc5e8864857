"""The asyncio client. GENERATED from ``_sync.py`` by ``tools/gen_async_client.py``.

Do not edit: change ``_sync.py`` and regenerate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import httpx

from arco.client._calls import (
    Call,
    Calls,
    RetryPolicy,
    clean_params,
    connection_error,
    decode_response,
    default_headers,
    idempotency_header,
)
from arco.client._errors import error_from_response
from arco.client._types import (
    UNSET,
    Asset,
    ColumnArg,
    CompactionResult,
    Direction,
    Edge,
    EdgeArg,
    EdgePage,
    Event,
    EventIn,
    EventsAccepted,
    FlowPlan,
    Health,
    HistoryEntry,
    LogLine,
    Namespace,
    NamespacePage,
    QueryResult,
    Run,
    RunAccepted,
    RunDetail,
    RunPage,
    SearchKind,
    SearchResult,
    Table,
    TablePage,
    Traversal,
    Unset,
    VersionInfo,
)

if TYPE_CHECKING:
    import pyarrow

__all__ = ["AsyncArcoClient"]


class AsyncArcoClient:
    """An asyncio client of the Arco REST API.

    ``token`` is a bearer JWT (``arco token`` mints one for local use); it may be
    None for the unauthenticated ops routes. ``transport`` is passed to
    :class:`httpx.AsyncClient` (tests use ``httpx.MockTransport``).
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
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncArcoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.params or None,
                    json=call.json,
                    headers={**default_headers(self.token), **call.headers},
                )
            except httpx.TransportError as exc:
                wait = self.retry.error_wait(attempt, exc, call)
                if wait is None:
                    raise connection_error(exc, call) from exc
            else:
                if not response.is_error:
                    return response
                wait = self.retry.status_wait(attempt, response)
                if wait is None:
                    raise error_from_response(response)
            await self._sleep(wait)
            attempt += 1

    async def _run(self, call: Call) -> Any:
        return decode_response(call, await self._send(call))

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
        call = Call(
            method.upper(),
            path,
            params=clean_params(params or {}),
            json=json,
            headers=idempotency_header(idempotency_key),
        )
        response = await self._send(call)
        return response.json() if response.content else None

    # ops
    async def health(self) -> Health:
        """``GET /healthz``: the process answers."""
        return cast(Health, await self._run(Calls.health()))

    async def ready(self) -> Health:
        """``GET /readyz``: the store answers (raises :class:`ServerError` when not)."""
        return cast(Health, await self._run(Calls.ready()))

    async def version(self) -> VersionInfo:
        """``GET /version``."""
        return cast(VersionInfo, await self._run(Calls.version()))

    async def metrics(self) -> str:
        """``GET /metrics``: Prometheus text."""
        return cast(str, await self._run(Calls.metrics()))

    # namespaces
    async def create_namespace(
        self,
        name: str,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Namespace:
        """Create a namespace (dotted names nest; the parent must exist)."""
        call = Calls.create_namespace(name, description, properties, idempotency_key)
        return cast(Namespace, await self._run(call))

    async def get_namespace(self, name: str) -> Namespace:
        """One namespace; :class:`NotFound` if it does not exist."""
        return cast(Namespace, await self._run(Calls.get_namespace(name)))

    async def list_namespaces(
        self,
        prefix: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> NamespacePage:
        """One page of namespaces sorted by name."""
        call = Calls.list_namespaces(prefix, page_size, page_token)
        return cast(NamespacePage, await self._run(call))

    async def iter_namespaces(
        self, prefix: str | None = None, *, page_size: int | None = None
    ) -> AsyncIterator[Namespace]:
        """Every namespace, following ``next_page_token``."""
        token: str | None = None
        while True:
            page = await self.list_namespaces(prefix, page_size=page_size, page_token=token)
            for item in page["items"]:
                yield item
            token = page["next_page_token"]
            if not token:
                return

    async def update_namespace(
        self,
        name: str,
        *,
        description: str | Unset | None = UNSET,
        set_properties: Mapping[str, str] | None = None,
        remove_properties: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Namespace:
        """Change a namespace's description (None clears it) or properties."""
        call = Calls.update_namespace(
            name, description, set_properties, remove_properties, idempotency_key
        )
        return cast(Namespace, await self._run(call))

    async def drop_namespace(
        self, name: str, *, cascade: bool = False, idempotency_key: str | None = None
    ) -> None:
        """Drop a namespace; a non-empty one only with ``cascade=True``."""
        await self._run(Calls.drop_namespace(name, cascade, idempotency_key))

    # tables
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
        """Register a table; columns are dicts or ``(name, type)`` pairs."""
        call = Calls.create_table(
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
        """One table with its columns; :class:`NotFound` if it does not exist."""
        return cast(Table, await self._run(Calls.get_table(namespace, name)))

    async def list_tables(
        self,
        namespace: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> TablePage:
        """One page of the tables of ``namespace`` (of every namespace if None)."""
        call = Calls.list_tables(namespace, prefix, page_size, page_token)
        return cast(TablePage, await self._run(call))

    async def iter_tables(
        self,
        ns: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Table]:
        """Every table of ``ns`` (of the workspace if None), following ``next_page_token``."""
        token: str | None = None
        while True:
            page = await self.list_tables(ns, prefix=prefix, page_size=page_size, page_token=token)
            for item in page["items"]:
                yield item
            token = page["next_page_token"]
            if not token:
                return

    async def update_table(
        self,
        namespace: str,
        name: str,
        *,
        description: str | Unset | None = UNSET,
        location: str | Unset | None = UNSET,
        set_properties: Mapping[str, str] | None = None,
        remove_properties: Sequence[str] | None = None,
        add_columns: Sequence[ColumnArg] | None = None,
        drop_columns: Sequence[str] | None = None,
        rename_columns: Mapping[str, str] | None = None,
        column_descriptions: Mapping[str, str | None] | None = None,
        idempotency_key: str | None = None,
    ) -> Table:
        """Change a table's description, location, properties or columns in one commit."""
        call = Calls.update_table(
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
        return cast(Table, await self._run(call))

    async def rename_table(
        self,
        namespace: str,
        name: str,
        new_name: str,
        *,
        new_namespace: str | None = None,
        idempotency_key: str | None = None,
    ) -> Table:
        """Rename a table, optionally moving it to ``new_namespace``."""
        call = Calls.rename_table(namespace, name, new_name, new_namespace, idempotency_key)
        return cast(Table, await self._run(call))

    async def drop_table(
        self, namespace: str, name: str, *, idempotency_key: str | None = None
    ) -> None:
        """Remove a table from the catalog."""
        await self._run(Calls.drop_table(namespace, name, idempotency_key))

    async def add_columns(
        self,
        namespace: str,
        name: str,
        columns: Sequence[ColumnArg],
        *,
        idempotency_key: str | None = None,
    ) -> Table:
        """Append columns to a table."""
        call = Calls.add_columns(namespace, name, columns, idempotency_key)
        return cast(Table, await self._run(call))

    async def drop_column(
        self, namespace: str, name: str, column: str, *, idempotency_key: str | None = None
    ) -> Table:
        """Drop one column of a table."""
        call = Calls.drop_column(namespace, name, column, idempotency_key)
        return cast(Table, await self._run(call))

    async def catalog_history(self, limit: int | None = None) -> list[HistoryEntry]:
        """The newest catalog commits, newest first."""
        return cast(list[HistoryEntry], await self._run(Calls.catalog_history(limit)))

    # lineage
    async def declare_edges(self, edges: Sequence[EdgeArg]) -> list[Edge]:
        """Declare lineage edges (dicts or ``(source, target)`` pairs); idempotent."""
        page = cast(EdgePage, await self._run(Calls.declare_edges(edges)))
        return page["items"]

    async def remove_edge(self, source: str, target: str, edge_type: str = "derives") -> None:
        """Withdraw a declared edge."""
        await self._run(Calls.remove_edge(source, target, edge_type))

    async def list_edges(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> EdgePage:
        """One page of lineage edges sorted by (source, target, type)."""
        return cast(EdgePage, await self._run(Calls.list_edges(page_size, page_token)))

    async def iter_edges(self, *, page_size: int | None = None) -> AsyncIterator[Edge]:
        """Every lineage edge, following ``next_page_token``."""
        token: str | None = None
        while True:
            page = await self.list_edges(page_size=page_size, page_token=token)
            for item in page["items"]:
                yield item
            token = page["next_page_token"]
            if not token:
                return

    async def lineage(self, node: str, direction: Direction = "both", depth: int = 5) -> Traversal:
        """Upstream and/or downstream lineage of ``node`` up to ``depth`` hops."""
        return cast(Traversal, await self._run(Calls.lineage(node, direction, depth)))

    # search
    async def search(
        self,
        q: str,
        kind: SearchKind | None = None,
        namespace: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> SearchResult:
        """Ranked search over names, descriptions and properties."""
        call = Calls.search(q, kind, namespace, limit, page_token)
        return cast(SearchResult, await self._run(call))

    # events
    async def append_event(
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
        call = Calls.append_event(
            domain, type, payload, version, idempotency_key, occurred_at, trace_id
        )
        return cast(EventsAccepted, await self._run(call))

    async def append_events(
        self, domain: str, events: Sequence[EventIn | Mapping[str, Any]]
    ) -> EventsAccepted:
        """Append many events as one ledger object (all or nothing)."""
        return cast(EventsAccepted, await self._run(Calls.append_events(domain, events)))

    async def tail_events(self, domain: str, limit: int | None = None) -> list[Event]:
        """The newest events of ``domain``'s ledger."""
        return cast(list[Event], await self._run(Calls.tail_events(domain, limit)))

    async def compact(self, domain: str | None = None) -> CompactionResult:
        """Fold pending events (of ``domain``, or of every domain) and refresh search."""
        return cast(CompactionResult, await self._run(Calls.compact(domain)))

    # SQL
    async def query(self, sql: str, as_of_version: int | None = None) -> QueryResult:
        """Run a read-only SQL query over the ``system.*`` tables; JSON result."""
        return cast(QueryResult, await self._run(Calls.query(sql, as_of_version, arrow=False)))

    async def query_arrow(self, sql: str, as_of_version: int | None = None) -> pyarrow.Table:
        """Run a read-only SQL query and return the result as a :class:`pyarrow.Table`."""
        return await self._run(Calls.query(sql, as_of_version, arrow=True))

    # flow
    async def list_assets(self) -> list[Asset]:
        """The assets of the server's project, with last materialization and staleness."""
        body = await self._run(Calls.list_assets())
        return cast(list[Asset], body["assets"])

    async def plan(
        self,
        selection: str = "*",
        *,
        partitions: Sequence[str] | None = None,
        start: str | None = None,
        end: str | None = None,
        stale_only: bool = False,
    ) -> FlowPlan:
        """The deterministic plan of ``selection`` (nothing runs)."""
        call = Calls.plan(selection, partitions, start, end, stale_only)
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
        """Queue a run of ``selection`` (state ``QUEUED``) for a run worker."""
        call = Calls.trigger_run(
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
        return cast(RunPage, await self._run(Calls.list_runs(page_size, page_token, state)))

    async def iter_runs(
        self, *, page_size: int | None = None, state: str | None = None
    ) -> AsyncIterator[Run]:
        """Every run, newest first, following ``next_page_token``."""
        token: str | None = None
        while True:
            page = await self.list_runs(page_size=page_size, page_token=token, state=state)
            for item in page["runs"]:
                yield item
            token = page["next_page_token"]
            if not token:
                return

    async def get_run(self, run_id: str) -> RunDetail:
        """One run with its tasks; :class:`NotFound` if it does not exist."""
        return cast(RunDetail, await self._run(Calls.get_run(run_id)))

    async def cancel_run(self, run_id: str) -> RunAccepted:
        """Cancel a run (:class:`Conflict` if it already ended)."""
        return cast(RunAccepted, await self._run(Calls.cancel_run(run_id)))

    async def rerun(
        self,
        run_id: str,
        *,
        from_failure: bool = True,
        max_concurrency: int | None = None,
        idempotency_key: str | None = None,
    ) -> RunAccepted:
        """Queue a new run of a finished run's tasks (``from_failure``: the failed ones)."""
        call = Calls.rerun(run_id, from_failure, max_concurrency, idempotency_key)
        return cast(RunAccepted, await self._run(call))

    async def run_logs(
        self, run_id: str, *, task_id: str | None = None, limit: int | None = None
    ) -> list[LogLine]:
        """The log lines of a run, in order."""
        body = await self._run(Calls.run_logs(run_id, task_id, limit))
        return cast(list[LogLine], body["lines"])


# --------------------------------------------------------------------- async client
