"""``as_of_version`` is never silently ignored: catalog reads time-travel, other routes say 400."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import PROBLEM_JSON, Tokens

API = "/api/v1"


@pytest.fixture
def writer(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(roles=["writer"])


def _history(client: TestClient, writer: dict[str, str]) -> None:
    """v1 raw; v2 raw.orders(id); v3 raw.orders + amount, description; v4 staging; v5 drop."""
    assert client.post(f"{API}/namespaces", json={"name": "raw"}, headers=writer).is_success
    body: dict[str, Any] = {"name": "orders", "columns": [{"name": "id", "type": "long"}]}
    assert client.post(f"{API}/namespaces/raw/tables", json=body, headers=writer).is_success
    patch = {"description": "v3", "add_columns": [{"name": "amount", "type": "double"}]}
    r = client.patch(f"{API}/namespaces/raw/tables/orders", json=patch, headers=writer)
    assert r.is_success, r.text
    r = client.post(
        f"{API}/namespaces", json={"name": "staging", "description": "later"}, headers=writer
    )
    assert r.is_success
    assert client.delete(f"{API}/namespaces/raw/tables/orders", headers=writer).is_success


def _get(client: TestClient, path: str, writer: dict[str, str], **params: Any) -> Any:
    r = client.get(f"{API}{path}", params=params, headers=writer)
    assert r.status_code == 200, r.text
    return r.json()


def test_every_catalog_read_route_reads_the_version_asked_for(
    client: TestClient, writer: dict[str, str]
) -> None:
    _history(client, writer)
    names = lambda page: [i["name"] for i in page["items"]]  # noqa: E731
    assert names(_get(client, "/namespaces", writer)) == ["raw", "staging"]
    assert names(_get(client, "/namespaces", writer, as_of_version=1)) == ["raw"]
    assert names(_get(client, "/namespaces", writer, as_of_version=0)) == []
    assert _get(client, "/namespaces/staging", writer)["description"] == "later"
    missing = client.get(f"{API}/namespaces/staging", params={"as_of_version": 3}, headers=writer)
    assert missing.status_code == 404
    assert _get(client, "/namespaces/raw", writer, as_of_version=1)["name"] == "raw"

    assert names(_get(client, "/namespaces/raw/tables", writer)) == []
    assert names(_get(client, "/namespaces/raw/tables", writer, as_of_version=2)) == ["orders"]
    assert names(_get(client, "/tables", writer)) == []
    assert names(_get(client, "/tables", writer, as_of_version=4)) == ["orders"]
    assert client.get(f"{API}/namespaces/raw/tables/orders", headers=writer).status_code == 404
    v2 = _get(client, "/namespaces/raw/tables/orders", writer, as_of_version=2)
    v3 = _get(client, "/namespaces/raw/tables/orders", writer, as_of_version=3)
    assert [c["name"] for c in v2["columns"]] == ["id"]
    assert (v2["description"], [c["name"] for c in v3["columns"]]) == (None, ["id", "amount"])
    assert v3["description"] == "v3"

    # Paging within an earlier version stays in that version.
    first = _get(client, "/tables", writer, as_of_version=3, page_size=1)
    assert names(first) == ["orders"]
    assert first["next_page_token"] is None


@pytest.mark.parametrize("version", ["6", "99"])
def test_a_version_past_the_head_is_not_found(
    client: TestClient, writer: dict[str, str], version: str
) -> None:
    _history(client, writer)
    for path in ("/namespaces", "/tables", "/namespaces/raw", "/namespaces/raw/tables"):
        r = client.get(f"{API}{path}", params={"as_of_version": version}, headers=writer)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"].startswith(PROBLEM_JSON)


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_a_malformed_version_is_refused(
    client: TestClient, writer: dict[str, str], value: str
) -> None:
    r = client.get(f"{API}/namespaces", params={"as_of_version": value}, headers=writer)
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/catalog/history"),
        ("GET", "/lineage/edges"),
        ("GET", "/lineage/raw.orders"),
        ("GET", "/search?q=orders"),
        ("GET", "/events/executions"),
        ("GET", "/runs"),
        ("POST", "/namespaces"),
        ("PATCH", "/namespaces/raw"),
    ],
)
def test_routes_without_time_travel_refuse_as_of_version(
    client: TestClient, tokens: Tokens, method: str, path: str
) -> None:
    headers = tokens.headers(roles=["admin"])
    assert client.post(f"{API}/namespaces", json={"name": "raw"}, headers=headers).is_success
    sep = "&" if "?" in path else "?"
    body = {"name": "other"} if method == "POST" else {"description": "x"}
    r = client.request(
        method,
        f"{API}{path}{sep}as_of_version=1",
        headers=headers,
        json=body if method != "GET" else None,
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert "as_of_version" in r.json()["detail"]
    # Nothing was written by a refused write.
    assert [n["name"] for n in _get(client, "/namespaces", headers)["items"]] == ["raw"]
    assert _get(client, "/namespaces/raw", headers)["description"] is None
