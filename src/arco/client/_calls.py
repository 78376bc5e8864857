"""Every API request as data (:class:`Call`), built once for both transports.

The sync and async clients differ only in how they send a :class:`Call`; what is
sent, how an answer is decoded and when a failure is retried live here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from arco import __version__
from arco.client._errors import (
    PROBLEM_TYPE_PREFIX,
    ArcoAPIError,
    ArcoConnectionError,
    retry_after_seconds,
)
from arco.client._types import (
    UNSET,
    ColumnArg,
    Direction,
    EdgeArg,
    EventIn,
    SearchKind,
    Unset,
)

ARROW_STREAM_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 503})
API_PREFIX = "/api/v1"


Decode = Literal["json", "none", "text", "arrow"]


@dataclass(frozen=True)
class Call:
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
        return self.method in IDEMPOTENT_METHODS or "Idempotency-Key" in self.headers


def path_segment(value: str) -> str:
    """One path segment, percent-encoded (``/``, ``.``-only names and ``%`` included)."""
    if not isinstance(value, str) or value == "":
        raise ValueError("path values must be non-empty strings")
    encoded = quote(value, safe="")
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return encoded


def idempotency_header(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def clean_params(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def column_body(col: ColumnArg) -> dict[str, Any]:
    if isinstance(col, tuple):
        name, type_ = col
        return {"name": name, "type": type_}
    return dict(col)


def edge_body(edge: EdgeArg) -> dict[str, Any]:
    if isinstance(edge, tuple):
        source, target = edge
        return {"source": source, "target": target}
    return dict(edge)


def timestamp_param(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")
        return value.isoformat()
    return value


class Calls:
    """Builders of every API request (shared by the sync and async clients)."""

    @staticmethod
    def health() -> Call:
        return Call("GET", "/healthz")

    @staticmethod
    def ready() -> Call:
        return Call("GET", "/readyz")

    @staticmethod
    def version() -> Call:
        return Call("GET", "/version")

    @staticmethod
    def metrics() -> Call:
        return Call("GET", "/metrics", decode="text")

    @staticmethod
    def create_namespace(
        name: str,
        description: str | None,
        properties: Mapping[str, str] | None,
        idempotency_key: str | None,
    ) -> Call:
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if properties:
            body["properties"] = dict(properties)
        return Call(
            "POST",
            f"{API_PREFIX}/namespaces",
            json=body,
            headers=idempotency_header(idempotency_key),
        )

    @staticmethod
    def get_namespace(name: str) -> Call:
        return Call("GET", f"{API_PREFIX}/namespaces/{path_segment(name)}")

    @staticmethod
    def list_namespaces(prefix: str | None, page_size: int | None, page_token: str | None) -> Call:
        params = clean_params({"prefix": prefix, "page_size": page_size, "page_token": page_token})
        return Call("GET", f"{API_PREFIX}/namespaces", params=params)

    @staticmethod
    def update_namespace(
        name: str,
        description: str | Unset | None,
        set_properties: Mapping[str, str] | None,
        remove_properties: Sequence[str] | None,
        idempotency_key: str | None,
    ) -> Call:
        body: dict[str, Any] = {}
        if description is not UNSET:
            body["description"] = description
        if set_properties:
            body["set_properties"] = dict(set_properties)
        if remove_properties:
            body["remove_properties"] = list(remove_properties)
        return Call(
            "PATCH",
            f"{API_PREFIX}/namespaces/{path_segment(name)}",
            json=body,
            headers=idempotency_header(idempotency_key),
        )

    @staticmethod
    def drop_namespace(name: str, cascade: bool, idempotency_key: str | None) -> Call:
        return Call(
            "DELETE",
            f"{API_PREFIX}/namespaces/{path_segment(name)}",
            params=clean_params({"cascade": cascade or None}),
            headers=idempotency_header(idempotency_key),
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
    ) -> Call:
        body: dict[str, Any] = {"name": name, "columns": [column_body(c) for c in columns]}
        for key, value in (
            ("format", format),
            ("location", location),
            ("description", description),
        ):
            if value is not None:
                body[key] = value
        if properties:
            body["properties"] = dict(properties)
        return Call(
            "POST",
            f"{API_PREFIX}/namespaces/{path_segment(namespace)}/tables",
            json=body,
            headers=idempotency_header(idempotency_key),
        )

    @staticmethod
    def get_table(namespace: str, name: str) -> Call:
        return Call(
            "GET", f"{API_PREFIX}/namespaces/{path_segment(namespace)}/tables/{path_segment(name)}"
        )

    @staticmethod
    def list_tables(
        namespace: str | None, prefix: str | None, page_size: int | None, page_token: str | None
    ) -> Call:
        if namespace is None:
            if prefix is not None:
                raise ValueError("prefix needs a namespace")
            params = clean_params({"page_size": page_size, "page_token": page_token})
            return Call("GET", f"{API_PREFIX}/tables", params=params)
        params = clean_params({"prefix": prefix, "page_size": page_size, "page_token": page_token})
        return Call(
            "GET", f"{API_PREFIX}/namespaces/{path_segment(namespace)}/tables", params=params
        )

    @staticmethod
    def update_table(
        namespace: str,
        name: str,
        *,
        description: str | Unset | None,
        location: str | Unset | None,
        set_properties: Mapping[str, str] | None,
        remove_properties: Sequence[str] | None,
        add_columns: Sequence[ColumnArg] | None,
        drop_columns: Sequence[str] | None,
        rename_columns: Mapping[str, str] | None,
        column_descriptions: Mapping[str, str | None] | None,
        idempotency_key: str | None,
    ) -> Call:
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
            body["add_columns"] = [column_body(c) for c in add_columns]
        if drop_columns:
            body["drop_columns"] = list(drop_columns)
        if rename_columns:
            body["rename_columns"] = dict(rename_columns)
        if column_descriptions:
            body["column_descriptions"] = dict(column_descriptions)
        return Call(
            "PATCH",
            f"{API_PREFIX}/namespaces/{path_segment(namespace)}/tables/{path_segment(name)}",
            json=body,
            headers=idempotency_header(idempotency_key),
        )

    @staticmethod
    def rename_table(
        namespace: str,
        name: str,
        new_name: str,
        new_namespace: str | None,
        idempotency_key: str | None,
    ) -> Call:
        body: dict[str, Any] = {"new_name": new_name}
        if new_namespace is not None:
            body["new_namespace"] = new_namespace
        return Call(
            "POST",
            f"{API_PREFIX}/namespaces/{path_segment(namespace)}/tables/{path_segment(name)}/rename",
            json=body,
            headers=idempotency_header(idempotency_key),
        )

    @staticmethod
    def drop_table(namespace: str, name: str, idempotency_key: str | None) -> Call:
        return Call(
            "DELETE",
            f"{API_PREFIX}/namespaces/{path_segment(namespace)}/tables/{path_segment(name)}",
            headers=idempotency_header(idempotency_key),
            decode="none",
        )

    @staticmethod
    def add_columns(
        namespace: str, name: str, columns: Sequence[ColumnArg], idempotency_key: str | None
    ) -> Call:
        return Call(
            "POST",
            f"{API_PREFIX}/namespaces/{path_segment(namespace)}/tables/{path_segment(name)}/columns",
            json=[column_body(c) for c in columns],
            headers=idempotency_header(idempotency_key),
        )

    @staticmethod
    def drop_column(namespace: str, name: str, column: str, idempotency_key: str | None) -> Call:
        return Call(
            "DELETE",
            f"{API_PREFIX}/namespaces/{path_segment(namespace)}/tables/{path_segment(name)}/columns/{path_segment(column)}",
            headers=idempotency_header(idempotency_key),
        )

    @staticmethod
    def declare_edges(edges: Sequence[EdgeArg]) -> Call:
        # Declaring an edge twice changes nothing: safe to resend.
        return Call(
            "POST",
            f"{API_PREFIX}/lineage/edges",
            json={"edges": [edge_body(e) for e in edges]},
            safe_to_resend=True,
        )

    @staticmethod
    def remove_edge(source: str, target: str, edge_type: str) -> Call:
        params = {"source": source, "target": target, "edge_type": edge_type}
        return Call("DELETE", f"{API_PREFIX}/lineage/edges", params=params, decode="none")

    @staticmethod
    def list_edges(page_size: int | None, page_token: str | None) -> Call:
        params = clean_params({"page_size": page_size, "page_token": page_token})
        return Call("GET", f"{API_PREFIX}/lineage/edges", params=params)

    @staticmethod
    def lineage(node: str, direction: Direction, depth: int) -> Call:
        params = {"direction": direction, "depth": depth}
        return Call("GET", f"{API_PREFIX}/lineage/{path_segment(node)}", params=params)

    @staticmethod
    def search(
        q: str,
        kind: SearchKind | None,
        namespace: str | None,
        limit: int | None,
        page_token: str | None,
    ) -> Call:
        params = clean_params(
            {"q": q, "kind": kind, "namespace": namespace, "limit": limit, "page_token": page_token}
        )
        return Call("GET", f"{API_PREFIX}/search", params=params)

    @staticmethod
    def append_event(
        domain: str,
        type: str,
        payload: Mapping[str, Any],
        version: int | None,
        idempotency_key: str | None,
        occurred_at: datetime | str | None,
        trace_id: str | None,
    ) -> Call:
        body: dict[str, Any] = {"type": type, "payload": dict(payload)}
        if version is not None:
            body["version"] = version
        when = timestamp_param(occurred_at)
        if when is not None:
            body["occurred_at"] = when
        if trace_id is not None:
            body["trace_id"] = trace_id
        return Call(
            "POST",
            f"{API_PREFIX}/events/{path_segment(domain)}",
            json=body,
            headers=idempotency_header(idempotency_key),
        )

    @staticmethod
    def append_events(domain: str, events: Sequence[EventIn | Mapping[str, Any]]) -> Call:
        items = [dict(e) for e in events]
        # A batch is resendable when every event names its idempotency key.
        keyed = bool(items) and all(e.get("idempotency_key") for e in items)
        return Call(
            "POST",
            f"{API_PREFIX}/events/{path_segment(domain)}/batch",
            json={"events": items},
            safe_to_resend=keyed,
        )

    @staticmethod
    def tail_events(domain: str, limit: int | None) -> Call:
        return Call(
            "GET",
            f"{API_PREFIX}/events/{path_segment(domain)}",
            params=clean_params({"limit": limit}),
        )

    @staticmethod
    def compact(domain: str | None) -> Call:
        body = {"domain": domain} if domain is not None else {}
        # Compaction folds whatever is pending; running it twice is harmless.
        return Call("POST", f"{API_PREFIX}/compaction", json=body, safe_to_resend=True)

    @staticmethod
    def query(sql: str, as_of_version: int | None, arrow: bool) -> Call:
        body: dict[str, Any] = {"sql": sql}
        if as_of_version is not None:
            body["as_of_version"] = as_of_version
        headers = {"Accept": ARROW_STREAM_MEDIA_TYPE} if arrow else {}
        return Call(
            "POST",
            f"{API_PREFIX}/query",
            json=body,
            headers=headers,
            decode="arrow" if arrow else "json",
            safe_to_resend=True,
        )

    @staticmethod
    def catalog_history(limit: int | None) -> Call:
        return Call("GET", f"{API_PREFIX}/catalog/history", params=clean_params({"limit": limit}))

    @staticmethod
    def list_assets() -> Call:
        return Call("GET", f"{API_PREFIX}/assets")

    @staticmethod
    def plan(
        selection: str,
        partitions: Sequence[str] | None,
        start: str | None,
        end: str | None,
        stale_only: bool,
    ) -> Call:
        body: dict[str, Any] = {"selection": selection, "stale_only": stale_only}
        if partitions is not None:
            body["partitions"] = list(partitions)
        if start is not None or end is not None:
            body.update({"from": start, "to": end})
        # Planning writes nothing: safe to resend.
        return Call("POST", f"{API_PREFIX}/plans", json=body, safe_to_resend=True)

    @staticmethod
    def trigger_run(
        selection: str,
        partition: str | None,
        start: str | None,
        end: str | None,
        stale_only: bool,
        max_concurrency: int | None,
        idempotency_key: str | None,
    ) -> Call:
        body: dict[str, Any] = {"selection": selection, "stale_only": stale_only}
        if partition is not None:
            body["partition"] = partition
        if start is not None or end is not None:
            body.update({"from": start, "to": end})
        if max_concurrency is not None:
            body["max_concurrency"] = max_concurrency
        return Call(
            "POST", f"{API_PREFIX}/runs", json=body, headers=idempotency_header(idempotency_key)
        )

    @staticmethod
    def list_runs(page_size: int | None, page_token: str | None, state: str | None) -> Call:
        params = clean_params({"page_size": page_size, "page_token": page_token, "state": state})
        return Call("GET", f"{API_PREFIX}/runs", params=params)

    @staticmethod
    def get_run(run_id: str) -> Call:
        return Call("GET", f"{API_PREFIX}/runs/{path_segment(run_id)}")

    @staticmethod
    def cancel_run(run_id: str) -> Call:
        # Cancelling twice asks for the same thing: safe to resend.
        return Call("POST", f"{API_PREFIX}/runs/{path_segment(run_id)}/cancel", safe_to_resend=True)

    @staticmethod
    def rerun(
        run_id: str, from_failure: bool, max_concurrency: int | None, idempotency_key: str | None
    ) -> Call:
        body: dict[str, Any] = {"from_failure": from_failure}
        if max_concurrency is not None:
            body["max_concurrency"] = max_concurrency
        return Call(
            "POST",
            f"{API_PREFIX}/runs/{path_segment(run_id)}/rerun",
            json=body,
            headers=idempotency_header(idempotency_key),
        )

    @staticmethod
    def run_logs(run_id: str, task_id: str | None, limit: int | None) -> Call:
        params = clean_params({"task_id": task_id, "limit": limit})
        return Call("GET", f"{API_PREFIX}/runs/{path_segment(run_id)}/logs", params=params)


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
        if attempt >= self.max_retries or response.status_code not in RETRY_STATUSES:
            return None
        after = retry_after_seconds(response)
        if after is None or after <= 0:
            return self.backoff(attempt)
        return min(after, self.max_retry_after)

    def error_wait(self, attempt: int, exc: httpx.TransportError, call: Call) -> float | None:
        """Seconds to wait before resending after a transport error; None: raise."""
        if attempt >= self.max_retries:
            return None
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        if never_sent or call.resendable():
            return self.backoff(attempt)
        return None


def decode_response(call: Call, response: httpx.Response) -> Any:
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


def connection_error(exc: httpx.TransportError, call: Call) -> ArcoConnectionError:
    return ArcoConnectionError(
        0, PROBLEM_TYPE_PREFIX + "connection", f"{call.method} {call.path}: {exc!r}"
    )


def default_headers(token: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"arco-client/{__version__}", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers
