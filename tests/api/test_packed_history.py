"""The commit history shows a bulk commit's operation whole, though its manifest keeps
it compressed (ADR 030)."""

from __future__ import annotations

import json

from arco.catalog.catalog import Catalog
from arco.core import Scope
from arco.core.storage import open_store
from arco.domain import packed

from .conftest import Tokens, in_process_client, make_app

API = "/api/v1"


def test_the_history_route_shows_a_compressed_operation_whole(tokens: Tokens) -> None:
    url = "memory://packed-history"
    cat = Catalog(open_store(url), Scope("acme", "main"))
    cat.create_namespace("a")
    with cat.transaction() as tx:
        for i in range(600):
            tx.create_table("a", f"t{i:05d}", ["x:int64"])
    head = cat.domain.read_head(0)
    assert head.manifest_key is not None
    stored = json.loads(cat.store.get(head.manifest_key)[0])
    assert set(stored["operation"]) == {packed.PACKED_OPERATION}

    with in_process_client(make_app(url)) as client:
        got = client.get(f"{API}/catalog/history", headers=tokens.headers(roles=["reader"]))
    assert got.status_code == 200, got.text
    ops = got.json()[0]["operation"]["ops"]
    assert len(ops) == 600
    assert ops[-1] == {"op": "create_table", "name": "a.t00599"}
