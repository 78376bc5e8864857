"""The direct routes to a table load (``arco/iceberg/fastpath.py``, ``_Prefixed`` in the app).

A load under ``/iceberg`` skips the outer app's routing and FastAPI's parameter
resolution; these tests hold it to every guarantee of the route it replaces:
a pointer read per request (a commit by anyone is seen at once), auth and scope
from the token, ``ErrorModel`` errors, the request id, metrics and audit.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from starlette.responses import Response

from arco.core.scope import Scope
from arco.governance.audit import read_audit
from arco.iceberg.fastpath import DirectTableLoads, route_path

from .conftest import Tokens, in_process_client, make_app

BASE = "/iceberg/v1/main"
TABLE = f"{BASE}/namespaces/sales/tables/orders"
SCHEMA = {
    "type": "struct",
    "schema-id": 0,
    "fields": [{"id": 1, "name": "id", "type": "long", "required": False}],
}


def _create(client: Any, headers: dict[str, str]) -> str:
    r = client.post(f"{BASE}/namespaces", json={"namespace": ["sales"]}, headers=headers)
    assert r.status_code == 200, r.text
    r = client.post(
        f"{BASE}/namespaces/sales/tables",
        json={"name": "orders", "schema": SCHEMA},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    location: str = r.json()["metadata-location"]
    return location


def _set_property(client: Any, headers: dict[str, str], key: str, value: str) -> str:
    body = {"updates": [{"action": "set-properties", "updates": {key: value}}]}
    r = client.post(TABLE, json=body, headers=headers)
    assert r.status_code == 200, r.text
    location: str = r.json()["metadata-location"]
    return location


def test_a_load_sees_every_commit_at_once_even_one_made_by_another_server(
    tokens: Tokens,
) -> None:
    store_url = f"memory://{uuid.uuid4().hex}"
    first, second = make_app(store_url), make_app(store_url)
    writer = tokens.headers()
    with in_process_client(first) as a, in_process_client(second) as b:
        created = _create(a, writer)
        loaded = a.get(TABLE, headers=writer)
        assert loaded.status_code == 200
        assert loaded.json()["metadata-location"] == created
        # A commit through this server: the next load answers the new file.
        mine = _set_property(a, writer, "k", "1")
        body = a.get(TABLE, headers=writer).json()
        assert body["metadata-location"] == mine != created
        assert body["metadata"]["properties"]["k"] == "1"
        # A commit through another server on the same store: no stale answer either
        # (the load reads the head pointer on every request).
        theirs = _set_property(b, writer, "k", "2")
        body = a.get(TABLE, headers=writer).json()
        assert body["metadata-location"] == theirs != mine
        assert body["metadata"]["properties"]["k"] == "2"
        assert body["config"] == {}


def test_the_direct_load_enforces_auth_and_scope(tokens: Tokens) -> None:
    app = make_app()
    with in_process_client(app) as c:
        _create(c, tokens.headers())

        def error(r: Any) -> tuple[int, str]:
            return r.status_code, r.json()["error"]["type"]

        assert error(c.get(TABLE)) == (401, "NotAuthorizedException")
        assert error(c.get(TABLE, headers={"Authorization": "Basic eDp5"})) == (
            401,
            "NotAuthorizedException",
        )
        assert error(c.get(TABLE, headers={"Authorization": "Bearer nope"})) == (
            401,
            "NotAuthorizedException",
        )
        expired = tokens.headers(ttl_seconds=-3600)
        assert error(c.get(TABLE, headers=expired)) == (401, "NotAuthorizedException")
        # The path's prefix must be the token's workspace.
        other_ws = tokens.headers(workspace="other")
        assert error(c.get(TABLE, headers=other_ws)) == (403, "ForbiddenException")
        # Another tenant with a workspace of the same name sees its own (empty) catalog.
        other_tenant = tokens.headers(tenant="globex")
        assert error(c.get(TABLE, headers=other_tenant)) == (404, "NoSuchNamespaceException")
        reader = tokens.headers(roles=["reader"])
        assert c.get(TABLE, headers=reader).status_code == 200
        missing = c.get(f"{BASE}/namespaces/sales/tables/nope", headers=reader)
        assert error(missing) == (404, "NoSuchTableException")
        assert missing.json()["error"]["code"] == 404


def test_the_direct_load_keeps_request_id_metrics_and_audit(tokens: Tokens) -> None:
    app = make_app()
    admin = tokens.headers(roles=["admin"], sub="root")
    route = "/v1/{prefix}/namespaces/{namespace}/tables/{table}"
    with in_process_client(app) as c:
        _create(c, tokens.headers())
        r = c.get(TABLE, headers={**admin, "X-Request-Id": "load-1"})
        assert r.status_code == 200
        assert r.headers["x-request-id"] == "load-1"
        assert r.headers["content-type"] == "application/json"
        assert c.get(f"{BASE}/namespaces/sales/tables/none", headers=admin).status_code == 404
        metrics = c.get("/metrics").text
    assert f'method="GET",route="{route}",status="200"' in metrics
    assert f'method="GET",route="{route}",status="404"' in metrics
    assert app.state.audit.flush(10)
    reads = [
        (row["actor"], row["action"], row["status"], row["request_id"])
        for row in read_audit(app.state.store, Scope("acme", "main"))
        if row["action"].startswith("GET")
    ]
    # An admin's reads are audited, under the route's name, like any other request.
    assert reads[0] == ("root", f"GET {route}", 200, "load-1")
    assert [r[2] for r in reads] == [200, 404]


def test_other_iceberg_routes_and_paths_still_go_through_fastapi(tokens: Tokens) -> None:
    app = make_app()
    writer = tokens.headers()
    with in_process_client(app) as c:
        _create(c, writer)
        assert c.head(TABLE, headers=writer).status_code == 204
        assert c.get(f"{BASE}/namespaces/sales/tables", headers=writer).status_code == 200
        # FastAPI's trailing-slash redirect, made relative by the envelope, as before.
        slash = c.get(TABLE + "/", headers=writer, follow_redirects=False)
        assert slash.status_code == 307
        assert slash.headers["location"] == TABLE
        assert c.get("/iceberg/nothing", headers=writer).status_code == 404
        config = c.get("/iceberg/v1/config", headers=writer)
        assert config.json()["overrides"] == {"prefix": "main"}
        # Nested namespace levels travel as %1F in the path, like on the FastAPI route.
        c.post(f"{BASE}/namespaces", json={"namespace": ["sales", "emea"]}, headers=writer)
        r = c.post(
            f"{BASE}/namespaces/sales%1Femea/tables",
            json={"name": "t", "schema": SCHEMA},
            headers=writer,
        )
        assert r.status_code == 200, r.text
        assert c.get(f"{BASE}/namespaces/sales%1Femea/tables/t", headers=writer).status_code == 200


def _run(mw: DirectTableLoads, method: str, path: str, root: str = "/iceberg") -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root,
        "headers": [],
        "query_string": b"",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(mw(scope, receive, send))
    return {"scope": scope, "sent": sent}


@pytest.mark.parametrize(
    ("method", "path", "direct"),
    [
        ("GET", "/iceberg/v1/ws/namespaces/a\x1fb/tables/t", ("ws", "a\x1fb", "t")),
        ("HEAD", "/iceberg/v1/ws/namespaces/a/tables/t", None),
        ("POST", "/iceberg/v1/ws/namespaces/a/tables/t", None),
        ("GET", "/iceberg/v1/ws/namespaces/a/tables/t/", None),
        ("GET", "/iceberg/v1/ws/namespaces/a/tables/t/metrics", None),
        ("GET", "/iceberg/v1/ws/namespaces/a/tables", None),
        ("GET", "/iceberg/v1/ws/namespaces//tables/t", None),
    ],
)
def test_only_a_get_of_one_table_takes_the_direct_route(
    method: str, path: str, direct: tuple[str, str, str] | None
) -> None:
    calls: list[tuple[str, str, str]] = []
    downstream: list[str] = []

    async def handler(request: Any, prefix: str, namespace: str, table: str) -> Response:
        calls.append((prefix, namespace, table))
        return Response(b"{}", media_type="application/json")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        downstream.append(scope["path"])

    route = type("R", (), {"path": "/v1/{prefix}/namespaces/{namespace}/tables/{table}"})()
    out = _run(DirectTableLoads(app, handler=handler, route=route), method, path)
    if direct is None:
        assert calls == []
        assert downstream == [path]
        assert "route" not in out["scope"]
    else:
        assert calls == [direct]
        assert downstream == []
        assert out["scope"]["route"] is route
        assert out["sent"][0]["status"] == 200


def test_route_path_is_starlettes() -> None:
    assert route_path({"path": "/iceberg/v1/x", "root_path": "/iceberg"}) == "/v1/x"
    assert route_path({"path": "/iceberg", "root_path": "/iceberg"}) == ""
    assert route_path({"path": "/icebergs/v1", "root_path": "/iceberg"}) == "/icebergs/v1"
    assert route_path({"path": "/v1/x", "root_path": ""}) == "/v1/x"
