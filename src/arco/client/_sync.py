"""The synchronous client; ``_async.py`` is generated from this file.

Edit this file, then run ``python tools/gen_async_client.py`` to regenerate the
asyncio twin (a test fails while the two disagree).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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

__all__ = ["ArcoClient"]


# --- generated-async: begin
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

    def _send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(
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
            self._sleep(wait)
            attempt += 1

    def _run(self, call: Call) -> Any:
        return decode_response(call, self._send(call))

    def request(
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
        response = self._send(call)
        return response.json() if response.content else None

    # ops
    def health(self) -> Health:
        """``GET /healthz``: the process answers."""
        return cast(Health, self._run(Calls.health()))

    def ready(self) -> Health:
        """``GET /readyz``: the store answers (raises :class:`ServerError` when not)."""
        return cast(Health, self._run(Calls.ready()))

    def version(self) -> VersionInfo:
        """``GET /version``."""
        return cast(VersionInfo, self._run(Calls.version()))

    def metrics(self) -> str:
        """``GET /metrics``: Prometheus text."""
        return cast(str, self._run(Calls.metrics()))

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
        call = Calls.create_namespace(name, description, properties, idempotency_key)
        return cast(Namespace, self._run(call))

    def get_namespace(self, name: str) -> Namespace:
        """One namespace; :class:`NotFound` if it does not exist."""
        return cast(Namespace, self._run(Calls.get_namespace(name)))

    def list_namespaces(
        self,
        prefix: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> NamespacePage:
        """One page of namespaces sorted by name."""
        call = Calls.list_namespaces(prefix, page_size, page_token)
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
        description: str | Unset | None = UNSET,
        set_properties: Mapping[str, str] | None = None,
        remove_properties: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Namespace:
        """Change a namespace's description (None clears it) or properties."""
        call = Calls.update_namespace(
            name, description, set_properties, remove_properties, idempotency_key
        )
        return cast(Namespace, self._run(call))

    def drop_namespace(
        self, name: str, *, cascade: bool = False, idempotency_key: str | None = None
    ) -> None:
        """Drop a namespace; a non-empty one only with ``cascade=True``."""
        self._run(Calls.drop_namespace(name, cascade, idempotency_key))

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
        return cast(Table, self._run(call))

    def get_table(self, namespace: str, name: str) -> Table:
        """One table with its columns; :class:`NotFound` if it does not exist."""
        return cast(Table, self._run(Calls.get_table(namespace, name)))

    def list_tables(
        self,
        namespace: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> TablePage:
        """One page of the tables of ``namespace`` (of every namespace if None)."""
        call = Calls.list_tables(namespace, prefix, page_size, page_token)
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
        call = Calls.rename_table(namespace, name, new_name, new_namespace, idempotency_key)
        return cast(Table, self._run(call))

    def drop_table(self, namespace: str, name: str, *, idempotency_key: str | None = None) -> None:
        """Remove a table from the catalog."""
        self._run(Calls.drop_table(namespace, name, idempotency_key))

    def add_columns(
        self,
        namespace: str,
        name: str,
        columns: Sequence[ColumnArg],
        *,
        idempotency_key: str | None = None,
    ) -> Table:
        """Append columns to a table."""
        call = Calls.add_columns(namespace, name, columns, idempotency_key)
        return cast(Table, self._run(call))

    def drop_column(
        self, namespace: str, name: str, column: str, *, idempotency_key: str | None = None
    ) -> Table:
        """Drop one column of a table."""
        call = Calls.drop_column(namespace, name, column, idempotency_key)
        return cast(Table, self._run(call))

    def catalog_history(self, limit: int | None = None) -> list[HistoryEntry]:
        """The newest catalog commits, newest first."""
        return cast(list[HistoryEntry], self._run(Calls.catalog_history(limit)))

    # lineage
    def declare_edges(self, edges: Sequence[EdgeArg]) -> list[Edge]:
        """Declare lineage edges (dicts or ``(source, target)`` pairs); idempotent."""
        page = cast(EdgePage, self._run(Calls.declare_edges(edges)))
        return page["items"]

    def remove_edge(self, source: str, target: str, edge_type: str = "derives") -> None:
        """Withdraw a declared edge."""
        self._run(Calls.remove_edge(source, target, edge_type))

    def list_edges(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> EdgePage:
        """One page of lineage edges sorted by (source, target, type)."""
        return cast(EdgePage, self._run(Calls.list_edges(page_size, page_token)))

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
        return cast(Traversal, self._run(Calls.lineage(node, direction, depth)))

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
        call = Calls.search(q, kind, namespace, limit, page_token)
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
        call = Calls.append_event(
            domain, type, payload, version, idempotency_key, occurred_at, trace_id
        )
        return cast(EventsAccepted, self._run(call))

    def append_events(
        self, domain: str, events: Sequence[EventIn | Mapping[str, Any]]
    ) -> EventsAccepted:
        """Append many events as one ledger object (all or nothing)."""
        return cast(EventsAccepted, self._run(Calls.append_events(domain, events)))

    def tail_events(self, domain: str, limit: int | None = None) -> list[Event]:
        """The newest events of ``domain``'s ledger."""
        return cast(list[Event], self._run(Calls.tail_events(domain, limit)))

    def compact(self, domain: str | None = None) -> CompactionResult:
        """Fold pending events (of ``domain``, or of every domain) and refresh search."""
        return cast(CompactionResult, self._run(Calls.compact(domain)))

    # SQL
    def query(self, sql: str, as_of_version: int | None = None) -> QueryResult:
        """Run a read-only SQL query over the ``system.*`` tables; JSON result."""
        return cast(QueryResult, self._run(Calls.query(sql, as_of_version, arrow=False)))

    def query_arrow(self, sql: str, as_of_version: int | None = None) -> pyarrow.Table:
        """Run a read-only SQL query and return the result as a :class:`pyarrow.Table`."""
        return self._run(Calls.query(sql, as_of_version, arrow=True))

    # flow
    def list_assets(self) -> list[Asset]:
        """The assets of the server's project, with last materialization and staleness."""
        body = self._run(Calls.list_assets())
        return cast(list[Asset], body["assets"])

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
        call = Calls.plan(selection, partitions, start, end, stale_only)
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
        call = Calls.trigger_run(
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
        return cast(RunPage, self._run(Calls.list_runs(page_size, page_token, state)))

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
        return cast(RunDetail, self._run(Calls.get_run(run_id)))

    def cancel_run(self, run_id: str) -> RunAccepted:
        """Cancel a run (:class:`Conflict` if it already ended)."""
        return cast(RunAccepted, self._run(Calls.cancel_run(run_id)))

    def rerun(
        self,
        run_id: str,
        *,
        from_failure: bool = True,
        max_concurrency: int | None = None,
        idempotency_key: str | None = None,
    ) -> RunAccepted:
        """Queue a new run of a finished run's tasks (``from_failure``: the failed ones)."""
        call = Calls.rerun(run_id, from_failure, max_concurrency, idempotency_key)
        return cast(RunAccepted, self._run(call))

    def run_logs(
        self, run_id: str, *, task_id: str | None = None, limit: int | None = None
    ) -> list[LogLine]:
        """The log lines of a run, in order."""
        body = self._run(Calls.run_logs(run_id, task_id, limit))
        return cast(list[LogLine], body["lines"])


# --------------------------------------------------------------------- async client
# --- generated-async: end
