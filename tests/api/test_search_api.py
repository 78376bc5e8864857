"""Search through a real API server: prefix queries once answered 500."""

from __future__ import annotations

import uuid

import httpx

from arco.client import ArcoClient

from .conftest import LiveServer


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
