"""The table listing routes answer the bytes of the library's page as ``json_out``
writes it, although they render each table from Arrow (``list_tables_json``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arco.catalog.catalog import Catalog
from arco.catalog.models import Page, Table
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.domain import tableset

from .conftest import Tokens, in_process_client, make_app


def _body(page: Page[Table]) -> bytes:
    payload = {"items": [t.to_dict() for t in page.items], "next_page_token": page.next_page_token}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def test_pages_are_the_json_of_list_tables(
    tmp_path: Path, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"file://{tmp_path}"
    monkeypatch.setattr(tableset, "GROUP_ROWS", 4)
    cat = Catalog(open_store(url), Scope("acme", "main"))
    for ns in ("raw", "raw.eu"):
        cat.create_namespace(ns)
    with cat.transaction() as tx:
        for i in range(2100):  # a sorted base at the next commit, then deltas over it
            tx.create_table(
                "raw" if i % 3 else "raw.eu",
                f"t{i:04d}",
                [f"c{j}:int64" for j in range(i % 3)],
                description=None if i % 4 else f'"\u00e9\u6f22" \\ {i}\n',
                properties={"\u00fc": "v"} if i % 5 == 0 else None,
            )
    cat.create_table("raw", "t9999", ["x:int64"])
    cat.rename_table("raw", "t0001", "t0001b")
    cat.drop_table("raw", "t0002")
    cat.update_table("raw", "t0004", description="\U0001f600", set_properties={"k": "\u00e9"})
    reader = Catalog(open_store(url), Scope("acme", "main"))  # cold, as the server reads
    headers = tokens.headers(roles=["reader"])
    with in_process_client(make_app(url)) as client:
        for path, ns in (("/api/v1/namespaces/raw/tables", "raw"), ("/api/v1/tables", None)):
            for size in (1, 7, 100, 1000):
                token = None
                for _ in range(5):
                    params: dict[str, str | int] = {"page_size": size}
                    if token is not None:
                        params["page_token"] = token
                    answer = client.get(path, params=params, headers=headers)
                    assert answer.status_code == 200, answer.text
                    page = reader.list_tables(ns, page_size=size, page_token=token)
                    assert answer.content == _body(page)
                    assert answer.headers["content-type"] == "application/json"
                    token = page.next_page_token
                    if token is None:
                        break
        answer = client.get(
            "/api/v1/namespaces/raw/tables", params={"prefix": "t000"}, headers=headers
        )
        assert answer.content == _body(reader.list_tables("raw", prefix="t000", page_size=100))
        answer = client.get(
            "/api/v1/namespaces/raw/tables", params={"as_of_version": 3}, headers=headers
        )
        assert answer.content == _body(cat.at_version(3).list_tables("raw", page_size=100))
