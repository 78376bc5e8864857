"""The REST API contract: routes, problem+json failures, idempotency, request ids, paging.

Most tests run in-process (``TestClient``); ``test_lifecycle_against_uvicorn`` drives
a real uvicorn process through :class:`arco.client.ArcoClient`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from arco import __version__
from arco.api.settings import RateLimit
from arco.client import (
    ARROW_STREAM_MEDIA_TYPE,
    ArcoClient,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
)

from .conftest import PROBLEM_JSON, LiveServer, Tokens, in_process_client, make_app

API = "/api/v1"
Headers = dict[str, str]


def assert_problem(
    response: httpx.Response, status: int, code: str, *, path: str | None = None
) -> dict[str, Any]:
    """``response`` is a problem+json answer with this status and stable type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:arco:problem:{code}", body
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    if path is not None:
        assert body["instance"] == path
    return body


@pytest.fixture
def writer(tokens: Tokens) -> Headers:
    return tokens.headers(roles=["writer"])


@pytest.fixture
def reader(tokens: Tokens) -> Headers:
    return tokens.headers(roles=["reader"])


def _ns(client: TestClient, h: Headers, name: str, **body: Any) -> dict[str, Any]:
    r = client.post(f"{API}/namespaces", json={"name": name, **body}, headers=h)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _table(client: TestClient, h: Headers, ns: str, name: str, **body: Any) -> dict[str, Any]:
    body.setdefault("columns", [{"name": "id", "type": "int64"}])
    r = client.post(f"{API}/namespaces/{ns}/tables", json={"name": name, **body}, headers=h)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _run_created(run_id: str, seq: int = 0) -> dict[str, Any]:
    return {"type": "run.created", "payload": {"run_id": run_id, "seq": seq}}


# ------------------------------------------------------------------- ops routes


def test_ops_routes(client: TestClient, writer: Headers) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    assert client.get("/readyz").json()["status"] == "ok"
    assert client.get("/version").json() == {"name": "arco", "version": __version__, "api": "v1"}
    client.get(f"{API}/namespaces", headers=writer)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "arco_http_requests_total" in metrics.text
    assert re.search(
        r'arco_http_requests_total\{method="GET",route="/api/v1/namespaces",status="200"\} 1\.0',
        metrics.text,
    )
    assert "arco_http_request_seconds_bucket" in metrics.text


def test_ops_routes_need_no_token_but_api_routes_do(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/version", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    r = client.get(f"{API}/namespaces")
    assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")


# ------------------------------------------------------------------ catalog CRUD


def test_namespace_crud(client: TestClient, writer: Headers) -> None:
    created = _ns(client, writer, "sales", description="Sales data", properties={"owner": "ann"})
    assert created["name"] == "sales"
    assert created["description"] == "Sales data"
    assert created["properties"] == {"owner": "ann"}
    assert client.get(f"{API}/namespaces/sales", headers=writer).json() == created

    _ns(client, writer, "sales.eu")  # dotted names nest
    page = client.get(f"{API}/namespaces", headers=writer).json()
    assert [n["name"] for n in page["items"]] == ["sales", "sales.eu"]
    assert page["next_page_token"] is None

    r = client.patch(
        f"{API}/namespaces/sales",
        json={"description": None, "set_properties": {"tier": "gold"}},
        headers=writer,
    )
    assert r.status_code == 200, r.text
    assert r.json()["description"] is None
    assert r.json()["properties"] == {"owner": "ann", "tier": "gold"}
    r = client.patch(
        f"{API}/namespaces/sales", json={"remove_properties": ["owner"]}, headers=writer
    )
    assert r.json()["properties"] == {"tier": "gold"}
    assert r.json()["description"] is None  # absent fields stay unchanged

    assert_problem(client.delete(f"{API}/namespaces/sales", headers=writer), 409, "conflict")
    r = client.delete(f"{API}/namespaces/sales", params={"cascade": "true"}, headers=writer)
    assert r.status_code == 204
    assert r.content == b""
    assert_problem(client.get(f"{API}/namespaces/sales", headers=writer), 404, "not-found")
    assert client.get(f"{API}/namespaces", headers=writer).json()["items"] == []


def test_table_crud(client: TestClient, writer: Headers) -> None:
    _ns(client, writer, "sales")
    _ns(client, writer, "archive")
    table = _table(
        client,
        writer,
        "sales",
        "orders",
        columns=[
            {"name": "id", "type": "int64", "nullable": False, "description": "key"},
            {"name": "amount", "type": "decimal(18,2)"},
            {"name": "tags", "type": "list<string>"},
        ],
        format="delta",
        location="s3://bucket/orders",
        description="All orders",
        properties={"pii": "no"},
    )
    assert table["namespace"] == "sales"
    assert table["format"] == "delta"
    assert table["location"] == "s3://bucket/orders"
    assert [(c["name"], c["nullable"], c["ordinal"]) for c in table["columns"]] == [
        ("id", False, 0),
        ("amount", True, 1),
        ("tags", True, 2),
    ]
    assert table["columns"][0]["description"] == "key"
    path = f"{API}/namespaces/sales/tables/orders"
    assert client.get(path, headers=writer).json() == table

    r = client.patch(
        path,
        json={
            "description": "Orders, deduplicated",
            "set_properties": {"owner": "ann"},
            "add_columns": [{"name": "region", "type": "string"}],
            "rename_columns": {"amount": "total"},
            "column_descriptions": {"total": "gross"},
        },
        headers=writer,
    )
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["description"] == "Orders, deduplicated"
    assert patched["properties"] == {"pii": "no", "owner": "ann"}
    assert [c["name"] for c in patched["columns"]] == ["id", "total", "tags", "region"]
    assert patched["columns"][1]["description"] == "gross"
    assert patched["location"] == "s3://bucket/orders"  # absent: unchanged

    r = client.post(f"{path}/columns", json=[{"name": "note", "type": "string"}], headers=writer)
    assert r.status_code == 201, r.text
    assert r.json()["columns"][-1]["name"] == "note"
    r = client.delete(f"{path}/columns/tags", headers=writer)
    assert r.status_code == 200, r.text
    assert "tags" not in [c["name"] for c in r.json()["columns"]]
    assert_problem(client.delete(f"{path}/columns/nope", headers=writer), 404, "not-found")

    r = client.post(
        f"{path}/rename", json={"new_name": "orders_v2", "new_namespace": "archive"}, headers=writer
    )
    assert r.status_code == 200, r.text
    assert (r.json()["namespace"], r.json()["name"]) == ("archive", "orders_v2")
    assert r.json()["id"] == table["id"]
    assert_problem(client.get(path, headers=writer), 404, "not-found")

    everything = client.get(f"{API}/tables", headers=writer).json()
    assert [(t["namespace"], t["name"]) for t in everything["items"]] == [("archive", "orders_v2")]

    r = client.delete(f"{API}/namespaces/archive/tables/orders_v2", headers=writer)
    assert r.status_code == 204
    assert client.get(f"{API}/namespaces/archive/tables", headers=writer).json()["items"] == []
    history = client.get(f"{API}/catalog/history", params={"limit": 3}, headers=writer).json()
    assert len(history) == 3
    assert history[0]["version"] > history[1]["version"] > history[2]["version"]
    assert history[0]["operation"]["ops"][0]["op"] == "drop_table"


# ------------------------------------------------------- events and compaction


def test_events_single_batch_tail_and_compaction(client: TestClient, writer: Headers) -> None:
    r = client.post(
        f"{API}/events/executions",
        json={**_run_created("run-1"), "occurred_at": "2026-01-02T03:04:05+00:00"},
        headers={**writer, "Idempotency-Key": "ev-1"},
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1
    assert len(r.json()["event_ids"]) == 1

    batch = [
        {"type": "run.state_changed", "payload": {"run_id": "run-1", "seq": 1, "state": "RUNNING"}},
        {"type": "run.log", "payload": {"run_id": "run-1", "lines": ["hello"]}},
        {**_run_created("run-2"), "idempotency_key": "ev-2"},
    ]
    r = client.post(f"{API}/events/executions/batch", json={"events": batch}, headers=writer)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 3
    assert len(set(r.json()["event_ids"])) == 3

    tail = client.get(f"{API}/events/executions", params={"limit": 10}, headers=writer).json()
    assert len(tail) == 4
    assert {e["event_type"] for e in tail} == {"run.created", "run.state_changed", "run.log"}
    assert {e["idempotency_key"] for e in tail} >= {"ev-1", "ev-2"}
    assert all(e["source"] == "api" for e in tail)

    r = client.post(f"{API}/compaction", json={"domain": "executions"}, headers=writer)
    assert r.status_code == 200, r.text
    (report,) = r.json()["reports"]
    assert report["domain"] == "executions"
    assert report["events"] == 4
    assert report["quarantined"] == 0
    # Everything is folded: a second compaction finds nothing new.
    again = client.post(f"{API}/compaction", headers=writer).json()
    assert [rep["domain"] for rep in again["reports"]] == ["executions", "lineage"]
    assert again["reports"][0]["events"] == 0


def test_duplicate_event_keys_are_folded_once(client: TestClient, writer: Headers) -> None:
    for _ in range(2):
        r = client.post(
            f"{API}/events/executions",
            json=_run_created("run-dup"),
            headers={**writer, "Idempotency-Key": "same-key"},
        )
        assert r.status_code == 202
    report = client.post(f"{API}/compaction", json={"domain": "executions"}, headers=writer)
    (rep,) = report.json()["reports"]
    assert (rep["events"], rep["duplicates"]) == (1, 1)


def test_invalid_events_are_refused(client: TestClient, writer: Headers) -> None:
    bad = [
        ("/events/executions", {"type": "no.such.type", "payload": {}}, 400, "invalid-event"),
        ("/events/executions", {"type": "run.created", "payload": {"x": 1}}, 400, "invalid-event"),
        ("/events/nowhere", _run_created("r"), 400, "invalid-event"),
        ("/events/executions", {"payload": {}}, 422, "validation-error"),
        ("/events/executions/batch", {"events": []}, 422, "validation-error"),
        (
            "/events/executions",
            {**_run_created("r"), "occurred_at": "yesterday"},
            400,
            "invalid-event",
        ),
        (
            "/events/executions",
            {**_run_created("r"), "occurred_at": "2026-01-01T00:00:00"},
            400,
            "invalid-event",
        ),
    ]
    for path, body, status, code in bad:
        assert_problem(client.post(API + path, json=body, headers=writer), status, code)
    # All or nothing: one bad event refuses the whole batch.
    r = client.post(
        f"{API}/events/executions/batch",
        json={"events": [_run_created("ok"), {"type": "run.created", "payload": {}}]},
        headers=writer,
    )
    assert_problem(r, 400, "invalid-event")
    naive = {**_run_created("r"), "occurred_at": "2026-01-01T00:00:00"}
    r = client.post(f"{API}/events/executions/batch", json={"events": [naive]}, headers=writer)
    assert_problem(r, 400, "invalid-event")
    assert client.get(f"{API}/events/executions", headers=writer).json() == []


@pytest.mark.parametrize(
    ("occurred_at", "says"),
    [
        ("yesterday", "occurred_at must be an ISO 8601 timestamp"),
        ("2026-01-01T00:00:00", "occurred_at must carry a time zone"),
    ],
)
def test_occurred_at_is_refused_alike_by_one_event_and_a_batch(
    client: TestClient, writer: Headers, occurred_at: str, says: str
) -> None:
    """One parser (``arco.ledger.events.parse_occurred_at``) for the API, the CLI's
    ``--file`` and ``Ledger.append_batch``: the same 400 and the same words."""
    event = {**_run_created("r"), "occurred_at": occurred_at}
    one = assert_problem(
        client.post(f"{API}/events/executions", json=event, headers=writer), 400, "invalid-event"
    )
    assert one["detail"] == says
    many = client.post(f"{API}/events/executions/batch", json={"events": [event]}, headers=writer)
    assert assert_problem(many, 400, "invalid-event")["detail"] == f"event 0: {says}"
    assert client.get(f"{API}/events/executions", headers=writer).json() == []


# ----------------------------------------------------------- lineage and search


def test_lineage_declare_traverse_remove(client: TestClient, writer: Headers) -> None:
    edges = [
        {"source": "raw.orders", "target": "sales.orders"},
        {"source": "sales.orders", "target": "sales.daily", "columns": ["amount"]},
        {"source": "sales.daily", "target": "bi.dashboard", "edge_type": "feeds"},
    ]
    r = client.post(f"{API}/lineage/edges", json={"edges": edges}, headers=writer)
    assert r.status_code == 201, r.text
    assert all(e["declared"] and not e["observed"] for e in r.json()["items"])
    # Declaring again changes nothing.
    again = client.post(f"{API}/lineage/edges", json={"edges": edges[:1]}, headers=writer)
    assert again.status_code == 201
    listed = client.get(f"{API}/lineage/edges", headers=writer).json()
    assert len(listed["items"]) == 3

    down = client.get(
        f"{API}/lineage/sales.orders", params={"direction": "downstream"}, headers=writer
    ).json()
    assert [(n["name"], n["depth"]) for n in down["nodes"]] == [
        ("sales.daily", 1),
        ("bi.dashboard", 2),
    ]
    one_hop = client.get(
        f"{API}/lineage/sales.orders", params={"direction": "both", "depth": 1}, headers=writer
    ).json()
    assert {(n["name"], n["direction"]) for n in one_hop["nodes"]} == {
        ("raw.orders", "upstream"),
        ("sales.daily", "downstream"),
    }
    up = client.get(
        f"{API}/lineage/bi.dashboard", params={"direction": "upstream"}, headers=writer
    ).json()
    assert [n["name"] for n in up["nodes"]] == ["sales.daily", "sales.orders", "raw.orders"]

    r = client.delete(
        f"{API}/lineage/edges",
        params={"source": "sales.daily", "target": "bi.dashboard", "edge_type": "feeds"},
        headers=writer,
    )
    assert r.status_code == 204
    down = client.get(
        f"{API}/lineage/sales.orders", params={"direction": "downstream"}, headers=writer
    ).json()
    assert [n["name"] for n in down["nodes"]] == ["sales.daily"]

    for params in ({"depth": 0}, {"depth": 51}, {"direction": "sideways"}):
        r = client.get(f"{API}/lineage/sales.orders", params=params, headers=writer)
        assert_problem(r, 422, "validation-error")
    assert_problem(client.get(f"{API}/lineage/bad%20node", headers=writer), 400, "invalid-name")


def test_search(client: TestClient, writer: Headers) -> None:
    _ns(client, writer, "sales", description="Revenue and orders")
    _ns(client, writer, "hr")
    _table(client, writer, "sales", "orders", description="Customer orders")
    _table(client, writer, "sales", "refunds", columns=[{"name": "order_id", "type": "int64"}])
    _table(client, writer, "hr", "employees", columns=[{"name": "salary", "type": "int64"}])
    for i in range(5):
        _table(client, writer, "hr", f"orders_{i}")

    hits = client.get(f"{API}/search", params={"q": "orders"}, headers=writer).json()
    names = [h["qualified_name"] for h in hits["hits"]]
    assert names[0] == "sales.orders"  # exact name first
    assert hits["total"] >= 6
    tables = client.get(
        f"{API}/search",
        params={"q": "orders", "kind": "table", "namespace": "sales"},
        headers=writer,
    ).json()
    assert {h["qualified_name"] for h in tables["hits"]} == {"sales.orders"}
    cols = client.get(
        f"{API}/search", params={"q": "salary", "kind": "column"}, headers=writer
    ).json()
    assert [h["kind"] for h in cols["hits"]] == ["column"]

    seen: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"q": "orders", "limit": 2}
        if token:
            params["page_token"] = token
        page = client.get(f"{API}/search", params=params, headers=writer).json()
        assert len(page["hits"]) <= 2
        seen += [f"{h['kind']}:{h['qualified_name']}" for h in page["hits"]]
        token = page["next_page_token"]
        if not token:
            break
    assert len(seen) == len(set(seen)) == hits["total"]
    assert_problem(
        client.get(f"{API}/search", params={"q": ""}, headers=writer), 422, "validation-error"
    )


# ------------------------------------------------------------- failure modes


def test_bad_type_string_and_bad_names_are_400(client: TestClient, writer: Headers) -> None:
    _ns(client, writer, "sales")
    r = client.post(
        f"{API}/namespaces/sales/tables",
        json={"name": "t", "columns": [{"name": "a", "type": "map<string"}]},
        headers=writer,
    )
    body = assert_problem(r, 400, "invalid-argument", path=f"{API}/namespaces/sales/tables")
    assert "map<string" in body["detail"]
    for name in ("bad name", "../etc", "a/b", "x%2e%2e", "\u200bzero", "1starts_with_digit"):
        r = client.post(f"{API}/namespaces", json={"name": name}, headers=writer)
        assert_problem(r, 400, "invalid-name")
    r = client.post(
        f"{API}/namespaces/sales/tables",
        json={"name": "t", "columns": [{"name": "bad col", "type": "int64"}]},
        headers=writer,
    )
    assert_problem(r, 400, "invalid-name")
    r = client.post(
        f"{API}/namespaces/sales/tables",
        json={
            "name": "t",
            "columns": [{"name": "a", "type": "int64"}, {"name": "a", "type": "int64"}],
        },
        headers=writer,
    )
    assert r.status_code in (400, 409)
    assert r.headers["content-type"].startswith(PROBLEM_JSON)


@pytest.mark.parametrize(
    ("auth", "detail_part"),
    [
        (None, "missing"),
        ("Bearer", "missing"),
        ("Bearer not-a-jwt", "invalid"),
        ("Basic dXNlcjpwYXNz", ""),
        ("Bearer a.b.c", "invalid"),
    ],
)
def test_missing_or_invalid_token_is_401(
    client: TestClient, auth: str | None, detail_part: str
) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    r = client.get(f"{API}/namespaces", headers=headers)
    body = assert_problem(r, 401, "unauthenticated", path=f"{API}/namespaces")
    assert detail_part in body["detail"].lower()


def test_reader_cannot_write(client: TestClient, writer: Headers, reader: Headers) -> None:
    _ns(client, writer, "sales")
    _table(client, writer, "sales", "orders")
    writes: list[tuple[str, str, Any]] = [
        ("POST", "/namespaces", {"name": "x"}),
        ("PATCH", "/namespaces/sales", {"description": "x"}),
        ("DELETE", "/namespaces/sales", None),
        ("POST", "/namespaces/sales/tables", {"name": "t"}),
        ("PATCH", "/namespaces/sales/tables/orders", {"description": "x"}),
        ("DELETE", "/namespaces/sales/tables/orders", None),
        ("POST", "/namespaces/sales/tables/orders/columns", [{"name": "c", "type": "int64"}]),
        ("DELETE", "/namespaces/sales/tables/orders/columns/id", None),
        ("POST", "/namespaces/sales/tables/orders/rename", {"new_name": "o2"}),
        ("POST", "/lineage/edges", {"edges": [{"source": "a.b", "target": "c.d"}]}),
        ("DELETE", "/lineage/edges?source=a.b&target=c.d", None),
        ("POST", "/events/executions", _run_created("r")),
        ("POST", "/events/executions/batch", {"events": [_run_created("r")]}),
        ("POST", "/compaction", {}),
    ]
    for method, path, body in writes:
        r = client.request(method, API + path, json=body, headers=reader)
        assert_problem(r, 403, "forbidden")
    # Nothing changed, and reading works.
    assert client.get(f"{API}/namespaces/sales/tables/orders", headers=reader).status_code == 200
    assert [n["name"] for n in client.get(f"{API}/namespaces", headers=reader).json()["items"]] == [
        "sales"
    ]
    # A token with only unknown roles can do nothing at all.
    r = client.get(f"{API}/namespaces", headers=Tokens().headers(roles=[]))
    assert_problem(r, 403, "forbidden")


def test_not_found_is_404(client: TestClient, writer: Headers) -> None:
    _ns(client, writer, "sales")
    for path in (
        "/namespaces/nope",
        "/namespaces/nope/tables",
        "/namespaces/sales/tables/nope",
        "/namespaces/nope/tables/nope",
    ):
        assert_problem(client.get(API + path, headers=writer), 404, "not-found", path=API + path)
    assert_problem(
        client.patch(f"{API}/namespaces/sales/tables/nope", json={}, headers=writer),
        404,
        "not-found",
    )
    assert_problem(client.delete(f"{API}/namespaces/nope", headers=writer), 404, "not-found")
    assert_problem(client.get(f"{API}/no/such/route", headers=writer), 404, "not-found")
    assert_problem(client.get("/nothing-here"), 404, "not-found")
    page = client.get("/nothing-here", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.headers["content-type"].startswith("text/html")  # the UI's client route
    assert_problem(client.put(f"{API}/namespaces", headers=writer), 405, "method-not-allowed")


def test_duplicates_are_409(client: TestClient, writer: Headers) -> None:
    _ns(client, writer, "sales")
    r = client.post(f"{API}/namespaces", json={"name": "sales"}, headers=writer)
    assert_problem(r, 409, "already-exists")
    _table(client, writer, "sales", "orders")
    r = client.post(f"{API}/namespaces/sales/tables", json={"name": "orders"}, headers=writer)
    assert_problem(r, 409, "already-exists")
    _table(client, writer, "sales", "other")
    r = client.post(
        f"{API}/namespaces/sales/tables/other/rename", json={"new_name": "orders"}, headers=writer
    )
    assert_problem(r, 409, "already-exists")
    r = client.post(
        f"{API}/namespaces/sales/tables/orders/columns",
        json=[{"name": "id", "type": "string"}],
        headers=writer,
    )
    assert r.status_code in (400, 409)


def test_idempotency_key(client: TestClient, writer: Headers) -> None:
    key = {**writer, "Idempotency-Key": "create-sales-1"}
    first = client.post(f"{API}/namespaces", json={"name": "sales"}, headers=key)
    second = client.post(f"{API}/namespaces", json={"name": "sales"}, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    version = len(client.get(f"{API}/catalog/history", headers=writer).json())
    assert version == 1  # the replay did not commit again

    other = client.post(f"{API}/namespaces", json={"name": "sales2"}, headers=key)
    body = assert_problem(other, 409, "conflict")
    assert "idempotency" in body["detail"].lower()
    assert_problem(
        client.get(f"{API}/namespaces/sales2", headers=writer), 404, "not-found"
    )  # not created

    tkey = {**writer, "Idempotency-Key": "create-orders"}
    body_t = {"name": "orders", "columns": [{"name": "id", "type": "int64"}]}
    t1 = client.post(f"{API}/namespaces/sales/tables", json=body_t, headers=tkey)
    t2 = client.post(f"{API}/namespaces/sales/tables", json=body_t, headers=tkey)
    assert t1.status_code == t2.status_code == 201
    assert t1.json()["id"] == t2.json()["id"]
    changed = {**body_t, "columns": [{"name": "id", "type": "string"}]}
    assert_problem(
        client.post(f"{API}/namespaces/sales/tables", json=changed, headers=tkey), 409, "conflict"
    )
    r = client.post(
        f"{API}/namespaces", json={"name": "x"}, headers={**writer, "Idempotency-Key": "k" * 256}
    )
    assert_problem(r, 422, "validation-error")


def test_oversized_body_is_413() -> None:
    with in_process_client(make_app(max_body_bytes=2048)) as client:
        writer = Tokens().headers()
        big = {"name": "big", "description": "x" * 4000}
        r = client.post(f"{API}/namespaces", json=big, headers=writer)
        assert_problem(r, 413, "payload-too-large")

        # A chunked body declares no Content-Length: it must be limited too.
        def chunks() -> Any:
            yield b'{"name": "big", "description": "'
            for _ in range(10):
                yield b"x" * 500
            yield b'"}'

        r = client.post(
            f"{API}/namespaces",
            content=chunks(),
            headers={**writer, "Content-Type": "application/json"},
        )
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert_problem(r, 413, "payload-too-large")

        def small() -> Any:
            yield b'{"name": '
            yield b'"small"}'

        r = client.post(
            f"{API}/namespaces",
            content=small(),
            headers={**writer, "Content-Type": "application/json"},
        )
        assert r.status_code == 201, r.text
        assert client.get(f"{API}/namespaces", headers=writer).json()["items"][0]["name"] == "small"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/namespaces", {}),  # missing name
        ("POST", "/namespaces", {"name": "x", "unexpected": 1}),  # extra field
        ("POST", "/namespaces", {"name": 7}),  # wrong type
        ("POST", "/namespaces", {"name": "x", "properties": {"k": 1}}),
        ("POST", "/namespaces", {"name": ""}),
        ("POST", "/namespaces", ["not", "an", "object"]),
        ("POST", "/namespaces/sales/tables", {"name": "t", "format": "xlsx"}),
        ("POST", "/namespaces/sales/tables", {"name": "t", "columns": [{"name": "a"}]}),
        ("POST", "/lineage/edges", {"edges": []}),
        ("GET", "/namespaces?page_size=0", None),
        ("GET", "/namespaces?page_size=abc", None),
        ("GET", "/tables?page_size=1001", None),
        ("GET", "/catalog/history?limit=-1", None),
    ],
)
def test_schema_violations_are_422(
    client: TestClient, writer: Headers, method: str, path: str, body: Any
) -> None:
    r = client.request(method, API + path, json=body, headers=writer)
    body_out = assert_problem(r, 422, "validation-error")
    assert body_out["errors"]
    assert all({"location", "message"} <= set(e) for e in body_out["errors"])


def test_malformed_json_is_422(client: TestClient, writer: Headers) -> None:
    r = client.post(
        f"{API}/namespaces",
        content=b'{"name": ',
        headers={**writer, "Content-Type": "application/json"},
    )
    assert_problem(r, 422, "validation-error")


def test_malformed_page_token_is_400(client: TestClient, writer: Headers) -> None:
    for path in ("/namespaces", "/tables", "/lineage/edges"):
        r = client.get(API + path, params={"page_token": "!!not-a-token!!"}, headers=writer)
        assert_problem(r, 400, "invalid-argument")


def test_rate_limit_is_429_with_retry_after(tokens: Tokens) -> None:
    limits = {"write": RateLimit(rate=0.01, burst=2), "query": RateLimit(rate=0.5, burst=1)}
    with in_process_client(make_app(rate_limits=limits)) as client:
        a, b = tokens.headers("tenant-a"), tokens.headers("tenant-b")
        for i in range(2):
            r = client.post(f"{API}/namespaces", json={"name": f"n{i}"}, headers=a)
            assert r.status_code == 201
        r = client.post(f"{API}/namespaces", json={"name": "n2"}, headers=a)
        body = assert_problem(r, 429, "rate-limited")
        assert "tenant-a" in body["detail"]
        assert int(r.headers["retry-after"]) >= 60  # 1 token at 0.01/s
        # Per tenant: B still has its burst; reads are not limited by writes.
        assert client.post(f"{API}/namespaces", json={"name": "n0"}, headers=b).status_code == 201
        assert client.get(f"{API}/namespaces", headers=a).status_code == 200
        assert client.get(f"{API}/search", params={"q": "n0"}, headers=a).status_code == 200
        r = client.get(f"{API}/search", params={"q": "n0"}, headers=a)
        assert_problem(r, 429, "rate-limited")
        assert 1 <= int(r.headers["retry-after"]) <= 3


# ----------------------------------------------------------- request ids


def test_request_id_echoed_or_generated(client: TestClient, writer: Headers) -> None:
    r = client.get(f"{API}/namespaces", headers={**writer, "X-Request-Id": "trace-abc.123:x"})
    assert r.headers["x-request-id"] == "trace-abc.123:x"
    r = client.get(f"{API}/namespaces/nope", headers={**writer, "X-Request-Id": "given-404"})
    assert r.headers["x-request-id"] == "given-404"
    assert r.json()["request_id"] == "given-404"

    generated = {client.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(generated) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", g) for g in generated)
    # A hostile id (header injection, huge) is replaced, not echoed.
    for bad in ("a b", "x" * 500, "<script>", "ä", "id\tx"):
        r = client.get("/healthz", headers={"X-Request-Id": bad.encode()})
        assert r.headers["x-request-id"] != bad
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    # Every failure carries one too.
    r = client.get(f"{API}/namespaces")
    assert r.json()["request_id"] == r.headers["x-request-id"]


# ------------------------------------------------------------------ pagination


def _walk(client: TestClient, h: Headers, path: str, page_size: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"page_size": page_size}
        if token is not None:
            params["page_token"] = token
        r = client.get(API + path, params=params, headers=h)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= page_size
        items += page["items"]
        pages += 1
        token = page["next_page_token"]
        if token is None:
            return items
        assert pages < 1000


@pytest.mark.parametrize("page_size", [1, 4, 7, 1000])
def test_pagination_walks_every_item_once(
    client: TestClient, writer: Headers, page_size: int
) -> None:
    namespaces = [f"ns{i:02d}" for i in range(13)]
    for ns in namespaces:
        _ns(client, writer, ns)
    tables = []
    for i in range(17):
        ns = namespaces[i % 3]
        _table(client, writer, ns, f"t{i:02d}")
        tables.append((ns, f"t{i:02d}"))
    edges = [{"source": f"a.n{i}", "target": f"b.n{i}"} for i in range(9)]
    client.post(f"{API}/lineage/edges", json={"edges": edges}, headers=writer)

    got_ns = [n["name"] for n in _walk(client, writer, "/namespaces", page_size)]
    assert got_ns == sorted(namespaces)
    got_tables = [(t["namespace"], t["name"]) for t in _walk(client, writer, "/tables", page_size)]
    assert got_tables == sorted(tables)
    in_ns0 = [t["name"] for t in _walk(client, writer, "/namespaces/ns00/tables", page_size)]
    assert in_ns0 == sorted(name for ns, name in tables if ns == "ns00")
    got_edges = [
        (e["source"], e["target"]) for e in _walk(client, writer, "/lineage/edges", page_size)
    ]
    assert got_edges == sorted((e["source"], e["target"]) for e in edges)


def test_pagination_with_prefix(client: TestClient, writer: Headers) -> None:
    for name in ("alpha", "alpha.one", "alpha.two", "beta", "alphabet"):
        _ns(client, writer, name)
    r = client.get(f"{API}/namespaces", params={"prefix": "alpha.", "page_size": 1}, headers=writer)
    page = r.json()
    assert [n["name"] for n in page["items"]] == ["alpha.one"]
    r = client.get(
        f"{API}/namespaces",
        params={"prefix": "alpha.", "page_size": 1, "page_token": page["next_page_token"]},
        headers=writer,
    )
    assert [n["name"] for n in r.json()["items"]] == ["alpha.two"]
    assert r.json()["next_page_token"] is None


# --------------------------------------------------------------------- query


def has_route(app: Any, path: str, method: str = "post") -> bool:
    """True if the app serves ``method path`` (routers may be included lazily)."""
    return method in app.openapi()["paths"].get(path, {})


def test_query_route(client: TestClient, writer: Headers) -> None:
    if not has_route(client.app, f"{API}/query"):
        pytest.fail("POST /api/v1/query is missing from the app")
    _ns(client, writer, "sales")
    _table(client, writer, "sales", "orders")
    r = client.post(
        f"{API}/query",
        json={"sql": "SELECT name FROM system.tables ORDER BY name"},
        headers=writer,
    )
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [["orders"]]
    r = client.post(f"{API}/query", json={"sql": "DROP TABLE system.tables"}, headers=writer)
    assert 400 <= r.status_code < 500
    assert r.headers["content-type"].startswith(PROBLEM_JSON)

    # The Arrow form, through ArcoClient over the in-process transport, if served.
    sql = {"sql": "SELECT name FROM system.tables"}
    r = client.post(f"{API}/query", json=sql, headers={**writer, "Accept": ARROW_STREAM_MEDIA_TYPE})
    if not r.headers.get("content-type", "").startswith(ARROW_STREAM_MEDIA_TYPE):
        pytest.fail(f"the query route answers {r.headers.get('content-type')} to Arrow requests")
    assert pa.ipc.open_stream(r.content).read_all().column("name").to_pylist() == ["orders"]


def test_client_queries_in_json_and_arrow(live_server: LiveServer) -> None:
    # Starlette's TestClient transport only works inside its own client, so the
    # typed client's Arrow path is checked against a real server.
    token = live_server.tokens(f"t{uuid.uuid4().hex[:10]}", "main", ["writer"])
    with ArcoClient(live_server.base_url, token) as arco:
        arco.create_namespace("sales")
        arco.create_table("sales", "orders", [("id", "int64")])
        table = arco.query_arrow("SELECT name FROM system.tables")
        assert table.column("name").to_pylist() == ["orders"]
        assert arco.query("SELECT name FROM system.tables")["rows"] == [["orders"]]


# -------------------------------------------------------- real uvicorn process


def test_lifecycle_against_uvicorn(live_server: LiveServer) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    token = live_server.tokens(tenant, "main", ["writer"])
    with ArcoClient(live_server.base_url, token) as arco:
        assert arco.health()["status"] == "ok"
        assert arco.ready()["status"] == "ok"
        assert arco.version() == {"name": "arco", "version": __version__, "api": "v1"}

        ns = arco.create_namespace("sales", "Sales", {"owner": "ann"}, idempotency_key="ns-1")
        assert (
            arco.create_namespace("sales", "Sales", {"owner": "ann"}, idempotency_key="ns-1") == ns
        )
        with pytest.raises(Conflict) as conflict:
            arco.create_namespace("sales")
        assert conflict.value.code == "already-exists"
        assert conflict.value.request_id
        assert arco.get_namespace("sales") == ns
        assert arco.update_namespace("sales", description=None)["description"] is None

        table = arco.create_table(
            "sales",
            "orders",
            [{"name": "id", "type": "int64", "nullable": False}, ("amount", "decimal(10,2)")],
            description="Orders",
        )
        assert [c["name"] for c in table["columns"]] == ["id", "amount"]
        assert arco.get_table("sales", "orders")["id"] == table["id"]
        with pytest.raises(BadRequest) as bad:
            arco.create_table("sales", "broken", [("x", "nosuchtype")])
        assert bad.value.status == 400
        assert bad.value.type == "urn:arco:problem:invalid-argument"
        with pytest.raises(NotFound):
            arco.get_table("sales", "missing")

        for i in range(7):
            arco.create_table("sales", f"t{i}", [("id", "int64")])
        names = [t["name"] for t in arco.iter_tables("sales", page_size=3)]
        assert names == sorted(["orders", *(f"t{i}" for i in range(7))])
        assert len(list(arco.iter_tables(page_size=2))) == 8
        assert [n["name"] for n in arco.iter_namespaces(page_size=1)] == ["sales"]

        t = arco.update_table("sales", "orders", set_properties={"pii": "no"}, location="s3://x/o")
        assert t["properties"] == {"pii": "no"}
        assert t["description"] == "Orders"
        t = arco.add_columns("sales", "orders", [("region", "string")])
        assert t["columns"][-1]["name"] == "region"
        t = arco.drop_column("sales", "orders", "region")
        assert [c["name"] for c in t["columns"]] == ["id", "amount"]
        arco.create_namespace("archive")
        moved = arco.rename_table("sales", "t0", "old", new_namespace="archive")
        assert (moved["namespace"], moved["name"]) == ("archive", "old")

        edges = arco.declare_edges([("raw.orders", "sales.orders"), ("sales.orders", "bi.kpi")])
        assert len(edges) == 2
        assert [e["source"] for e in arco.iter_edges(page_size=1)] == ["raw.orders", "sales.orders"]
        lineage = arco.lineage("sales.orders", "downstream", 3)
        assert [n["name"] for n in lineage["nodes"]] == ["bi.kpi"]
        arco.remove_edge("sales.orders", "bi.kpi")
        assert arco.lineage("sales.orders")["nodes"] == [
            {"name": "raw.orders", "depth": 1, "direction": "upstream"}
        ]

        accepted = arco.append_event(
            "executions", "run.created", {"run_id": "r1", "seq": 0}, idempotency_key="e1"
        )
        assert accepted["accepted"] == 1
        batch = arco.append_events(
            "executions",
            [
                {
                    "type": "run.state_changed",
                    "payload": {"run_id": "r1", "seq": 1, "state": "RUNNING"},
                },
                {
                    "type": "run.state_changed",
                    "payload": {"run_id": "r1", "seq": 2, "state": "SUCCEEDED"},
                },
            ],
        )
        assert batch["accepted"] == 2
        assert len(arco.tail_events("executions", limit=10)) == 3
        result = arco.compact("executions")
        assert result["reports"][0]["events"] == 3

        hits = arco.search("orders", kind="table")
        assert hits["hits"][0]["qualified_name"] == "sales.orders"
        history = arco.catalog_history(limit=5)
        assert len(history) == 5
        assert history[0]["operation"]["ops"][0]["op"] == "rename_table"

        arco.drop_table("sales", "orders")
        with pytest.raises(NotFound):
            arco.get_table("sales", "orders")
        with pytest.raises(Conflict):
            arco.drop_namespace("sales")
        arco.drop_namespace("sales", cascade=True)
        assert [n["name"] for n in arco.iter_namespaces()] == ["archive"]
        assert "arco_http_requests_total" in arco.metrics()

    with ArcoClient(live_server.base_url, live_server.tokens(tenant, "main", ["reader"])) as ro:
        assert [n["name"] for n in ro.iter_namespaces()] == ["archive"]
        with pytest.raises(Forbidden) as forbidden:
            ro.create_namespace("nope")
        assert forbidden.value.code == "forbidden"
    with ArcoClient(live_server.base_url, "not-a-token") as anon, pytest.raises(Unauthenticated):
        anon.list_namespaces()
    raw = httpx.get(live_server.base_url + "/healthz", headers={"X-Request-Id": "live-1"})
    assert raw.headers["x-request-id"] == "live-1"


def test_chunked_body_limit_against_uvicorn(live_server: LiveServer) -> None:
    """uvicorn accepts chunked request bodies: the size limit must hold for them too."""
    headers = {
        **live_server.tokens.headers(f"t{uuid.uuid4().hex[:10]}"),
        "Content-Type": "application/json",
    }
    limit = 8 * 1024 * 1024

    def chunks() -> Any:
        yield b'{"name": "big", "description": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = httpx.post(
        f"{live_server.base_url}{API}/namespaces", content=chunks(), headers=headers, timeout=30
    )
    assert_problem(r, 413, "payload-too-large")
