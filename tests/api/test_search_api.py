"""Search through a real API server: prefix queries once answered 500."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from arco.catalog.catalog import Catalog
from arco.client import ArcoClient
from arco.core.scope import Scope

from .conftest import LiveServer, Tokens, in_process_client, make_app


def test_prefix_search_against_uvicorn(live_server: LiveServer) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    headers = live_server.tokens.headers(tenant, "main", ["writer"])
    with ArcoClient(live_server.base_url, live_server.tokens(tenant, "main", ["writer"])) as arco:
        arco.create_namespace("sales")
        arco.create_table("sales", "orders", [{"name": "order_id", "type": "string"}])
        arco.create_table("sales", "daily_revenue", [{"name": "amount", "type": "double"}])
        arco.create_table("sales", "customers", [{"name": "id", "type": "string"}])
    search = live_server.base_url + "/api/v1/search"
    for q, kind, want in [
        ("ord", "table", ["sales.orders"]),
        ("rev", None, ["sales.daily_revenue"]),
        ("customer", "table", ["sales.customers"]),
        ("ord", None, ["sales.orders", "sales.orders.order_id"]),
    ]:
        params = {"q": q} if kind is None else {"q": q, "kind": kind}
        r = httpx.get(search, params=params, headers=headers)
        assert r.status_code == 200, (q, r.text, live_server.log())
        assert [h["qualified_name"] for h in r.json()["hits"]] == want, q
    for q in ("für", "...", "日本語", "K"):
        r = httpx.get(search, params={"q": q}, headers=headers)
        assert r.status_code == 200, (q, r.text)
        assert r.json()["hits"] == []


def test_reads_and_search_do_not_fold_the_catalog(tmp_path: Path) -> None:
    """A server that only reads answers catalog reads and searches without holding
    the folded catalog (issue #12): its memory must not grow with the catalog."""
    url = f"file://{tmp_path}"
    scope = Scope("acme", "main")
    writer = Catalog(url, scope)
    writer.create_namespace("sales")
    for i in range(30):
        writer.create_table("sales", f"orders_{i:02d}", ["id:int64", "amount:double"])
    app = make_app(url)
    headers = Tokens().headers("acme", "main", ["reader"])
    with in_process_client(app) as client:
        r = client.get("/api/v1/namespaces/sales/tables/orders_07", headers=headers)
        assert r.status_code == 200
        assert r.json()["name"] == "orders_07"
        r = client.get("/api/v1/namespaces/sales/tables", params={"page_size": 5}, headers=headers)
        assert [t["name"] for t in r.json()["items"]] == [f"orders_{i:02d}" for i in range(5)]
        assert client.get("/api/v1/namespaces/sales", headers=headers).json()["name"] == "sales"
        r = client.get("/api/v1/search", params={"q": "orders_07"}, headers=headers)
        assert r.json()["hits"][0]["qualified_name"] == "sales.orders_07"
        # A table created after the index was built is found by an incremental refresh.
        writer.create_table("sales", "refunds", ["id:int64"])
        r = client.get("/api/v1/search", params={"q": "refunds"}, headers=headers)
        assert [h["qualified_name"] for h in r.json()["hits"]] == ["sales.refunds"]
        services = app.state.services.get(scope)
        assert not services.catalog.domain.folded
        assert not services.search.catalog.domain.folded


def test_the_app_allocates_arrow_memory_with_malloc_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server gives Arrow's freed buffers back through malloc (the default pool kept
    hundreds of MB of decoded row groups under load); a pool the user chose stays."""
    import pyarrow as pa

    before = pa.default_memory_pool()
    try:
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        make_app()
        assert pa.default_memory_pool().backend_name == "system"
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        make_app()
        assert pa.default_memory_pool().backend_name == "mimalloc"
    finally:
        pa.set_memory_pool(before)
