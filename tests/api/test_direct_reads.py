"""The direct reads (``arco.api.direct.DirectRead``) answer exactly as FastAPI does.

Two apps share one store: one serves the hot reads directly, the other has no
direct reads, so FastAPI's router and dependency solver answer. Every request
below is asked of both and must get the same status, body and headers; requests
with valid parameters must really have been served directly, and the rest (bad
parameters, ``as_of_version`` where it is not read) must have gone to FastAPI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from arco.api import direct
from arco.api.settings import RateLimit
from arco.catalog.catalog import Catalog
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.discovery.search import SearchIndex
from arco.governance.audit import read_audit
from arco.workspace import Workspace

from .conftest import PROBLEM_JSON, Tokens, in_process_client, make_app


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A local store with two namespaces, tables with unicode text, and a search index."""
    url = f"file://{tmp_path}/store"
    cat = Catalog(url, Scope("acme", "main"))
    with cat.transaction() as tx:
        tx.create_namespace("sales", "Sales data", {"owner": "team-sales"})
        tx.create_namespace("sales.eu", "Européen")
        tx.create_namespace("ops")
        for i in range(23):
            tx.create_table(
                "sales",
                f"orders_{i:02d}",
                [{"name": "id", "type": "int64"}, {"name": "amount", "type": "decimal(10,2)"}],
                description=f"Orders № {i} — café ☕",
                properties={"tier": "gold" if i % 2 else "silver"},
            )
        tx.create_table("sales.eu", "returns", ["id:int64"])
    # A delta after the base, then an index that knows everything.
    cat.create_table("ops", "incidents", ["id:int64", "note:string"], description="Pager")
    SearchIndex(open_store(url), Scope("acme", "main")).refresh()
    lineage = Workspace(open_store(url), Scope("acme", "main")).lineage
    lineage.add_edge("sales.orders_01", "sales.orders_02", columns=["id"])
    lineage.add_edge("sales.orders_02", "ops.incidents")
    return url


@pytest.fixture
def apps(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, TestClient, list[str]]]:
    """The client of the app with direct reads, of the one without, and the paths
    the direct reads served."""
    taken: list[str] = []
    call = direct.DirectRead.__call__

    async def spy(self: direct.DirectRead, scope: Any, receive: Any, send: Any) -> None:
        taken.append(scope["path"] + ("?" + scope["query_string"].decode()))
        await call(self, scope, receive, send)

    monkeypatch.setattr(direct.DirectRead, "__call__", spy)
    with_reads = make_app(store_url)
    real = direct.read_routes
    monkeypatch.setattr(direct, "read_routes", lambda _routes: [])
    without = make_app(store_url)
    monkeypatch.setattr(direct, "read_routes", real)
    with in_process_client(with_reads) as fast, in_process_client(without) as slow:
        yield fast, slow, taken


def _answer(response: Any) -> dict[str, Any]:
    """What must not depend on the way taken (request ids do)."""
    ctype = response.headers.get("content-type", "")
    body: Any = response.text
    if ctype.startswith(("application/json", PROBLEM_JSON)):
        body = response.json()
        if ctype.startswith(PROBLEM_JSON):
            body = {k: v for k, v in body.items() if k not in ("request_id", "instance")}
    headers = {
        k: response.headers.get(k)
        for k in ("content-type", "retry-after", "www-authenticate", "location")
        if k in response.headers
    }
    return {"status": response.status_code, "body": body, "headers": headers}


def _both(
    apps: tuple[TestClient, TestClient, list[str]],
    path: str,
    *,
    direct_path: bool,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    fast, slow, taken = apps
    before = len(taken)
    a = fast.get(path, headers=headers)
    b = slow.get(path, headers=headers)
    assert len(taken) == before + (1 if direct_path else 0), (path, taken[before:])
    assert a.headers["x-request-id"]
    assert _answer(a) == _answer(b), (path, a.text, b.text)
    return _answer(a)


def test_direct_reads_answer_as_fastapi_does(
    apps: tuple[TestClient, TestClient, list[str]], tokens: Tokens
) -> None:
    reader = tokens.headers(roles=["reader"])
    ok = [
        "/api/v1/namespaces/sales",
        "/api/v1/namespaces/sales.eu",
        "/api/v1/namespaces/sales?as_of_version=1",
        "/api/v1/namespaces/sales/tables",
        "/api/v1/namespaces/sales/tables?page_size=7",
        "/api/v1/namespaces/sales/tables?page_size=1000&prefix=orders_1",
        "/api/v1/namespaces/sales/tables?page_size=5&unknown=1",
        "/api/v1/namespaces/ops/tables",
        "/api/v1/namespaces/sales/tables/orders_07",
        "/api/v1/namespaces/ops/tables/incidents",
        "/api/v1/namespaces/sales/tables/orders_07?as_of_version=1",
        "/api/v1/search?q=orders",
        "/api/v1/search?q=caf%C3%A9&limit=3",
        "/api/v1/search?q=orders&kind=table&namespace=sales&limit=5&page_token=5",
        "/api/v1/search?q=zzzz-nothing",
        "/api/v1/search?q=orders&q=incidents",
        "/api/v1/lineage/sales.orders_02",
        "/api/v1/lineage/sales.orders_01?direction=downstream&depth=1",
        "/api/v1/lineage/ops.incidents?direction=upstream&depth=50",
        "/api/v1/lineage/nothing.here",
    ]
    for path in ok:
        answer = _both(apps, path, direct_path=True, headers=reader)
        assert answer["status"] == 200, (path, answer)
    walk = _both(apps, "/api/v1/lineage/sales.orders_02", direct_path=True, headers=reader)
    assert {n["name"] for n in walk["body"]["nodes"]} == {"sales.orders_01", "ops.incidents"}
    assert walk["body"]["edges"][0]["columns"] in (["id"], [])
    # Follow a listing's pages by their tokens: the same pages both ways.
    path = "/api/v1/namespaces/sales/tables?page_size=10"
    pages = 0
    while path:
        answer = _both(apps, path, direct_path=True, headers=reader)
        pages += 1
        token = answer["body"]["next_page_token"]
        path = f"/api/v1/namespaces/sales/tables?page_size=10&page_token={token}" if token else ""
    assert pages == 3
    # Errors raised by the endpoint itself (not found, bad names, bad tokens, past
    # the head version) are answered directly, by the app's own handlers.
    for path, status in [
        ("/api/v1/namespaces/nope", 404),
        ("/api/v1/namespaces/sales/tables/nope", 404),
        ("/api/v1/namespaces/nope/tables", 404),
        ("/api/v1/namespaces/bad%20name!", 400),
        ("/api/v1/namespaces/sales/tables?page_token=garbage", 400),
        ("/api/v1/namespaces/sales?as_of_version=999", 404),
        ("/api/v1/search?q=orders&page_token=abc", 400),
    ]:
        assert _both(apps, path, direct_path=True, headers=reader)["status"] == status, path
    # Parameters that do not validate, and as_of_version where it is not read, go to
    # FastAPI (422 / 400 there).
    for path, status in [
        ("/api/v1/namespaces/sales/tables?page_size=0", 422),
        ("/api/v1/namespaces/sales/tables?page_size=abc", 422),
        ("/api/v1/namespaces/sales/tables?page_size=1001", 422),
        ("/api/v1/namespaces/sales?as_of_version=-1", 422),
        ("/api/v1/search", 422),
        ("/api/v1/search?q=", 422),
        ("/api/v1/search?q=" + "x" * 513, 422),
        ("/api/v1/search?q=a&kind=bogus", 422),
        ("/api/v1/search?q=a&limit=0", 422),
        ("/api/v1/search?q=orders&as_of_version=1", 400),
        ("/api/v1/lineage/sales.orders_01?depth=0", 422),
        ("/api/v1/lineage/sales.orders_01?depth=51", 422),
        ("/api/v1/lineage/sales.orders_01?direction=sideways", 422),
        ("/api/v1/lineage/sales.orders_01?as_of_version=3", 400),
    ]:
        assert _both(apps, path, direct_path=False, headers=reader)["status"] == status, path


def test_direct_reads_authenticate_and_authorize_as_fastapi_does(
    apps: tuple[TestClient, TestClient, list[str]], tokens: Tokens
) -> None:
    path = "/api/v1/namespaces/sales/tables/orders_01"
    missing = _both(apps, path, direct_path=True)
    assert missing["status"] == 401
    assert missing["headers"]["www-authenticate"] == 'Bearer realm="arco"'
    for headers in (
        {"Authorization": "Basic x"},
        {"Authorization": "Bearer junk"},
        Tokens(secret="another-secret-0123456789-abcdefghijklmn").headers(roles=["reader"]),
    ):
        assert _both(apps, path, direct_path=True, headers=headers)["status"] == 401
    # A token without the reader role, and one of another workspace (which sees an
    # empty catalog of its own, never this one).
    assert _both(apps, path, direct_path=True, headers=tokens.headers(roles=[]))["status"] == 403
    other = tokens.headers(workspace="other", roles=["reader"])
    assert _both(apps, path, direct_path=True, headers=other)["status"] == 404
    found = _both(apps, "/api/v1/search?q=orders", direct_path=True, headers=other)
    assert found["body"]["hits"] == []
    # Bad parameters with a bad token: FastAPI answers, in its own order.
    assert _both(apps, "/api/v1/search?q=", direct_path=False)["status"] in (401, 422)


def test_direct_reads_keep_the_rate_limit_and_are_audited(store_url: str, tokens: Tokens) -> None:
    """Search takes the tenant's query allowance; an admin's reads are audited under
    the route's name, as FastAPI's route would be."""
    app: FastAPI = make_app(store_url, rate_limits={"query": RateLimit(rate=0.001, burst=2)})
    reader = tokens.headers(roles=["reader"])
    with in_process_client(app) as client:
        assert client.get("/api/v1/search?q=orders", headers=reader).status_code == 200
        assert client.get("/api/v1/search?q=orders", headers=reader).status_code == 200
        refused = client.get("/api/v1/search?q=orders", headers=reader)
        assert refused.status_code == 429
        assert refused.json()["type"].endswith(":rate-limited")
        assert int(refused.headers["Retry-After"]) >= 1
        # Catalog reads take no allowance.
        assert client.get("/api/v1/namespaces/sales", headers=reader).status_code == 200
        admin = tokens.headers(roles=["admin"])
        r = client.get("/api/v1/namespaces/sales/tables/orders_03", headers=admin)
        assert r.status_code == 200
        metrics = client.get("/metrics").text
    assert 'route="/api/v1/namespaces/{namespace}/tables/{name}",status="200"' in metrics
    assert app.state.audit.flush(10)
    rows = read_audit(app.state.store, Scope("acme", "main"))
    got = [(row["action"], row["outcome"], row["status"]) for row in rows]
    assert got == [("GET /api/v1/namespaces/{namespace}/tables/{name}", "ok", 200)]
