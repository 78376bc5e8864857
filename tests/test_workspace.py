"""The Workspace: one scope's collaborators, built once, shared, isolated by scope."""

from __future__ import annotations

import threading

import pytest

from arco.api.services import ServiceCache
from arco.core.errors import InvalidNameError
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.sql.engine import run_query
from arco.workspace import Workspace


def test_in_memory_workspace_drives_both_tiers_end_to_end() -> None:
    ws = Workspace.in_memory()
    ws.catalog.create_namespace("sales")
    ws.catalog.create_table("sales", "orders", ["id:bigint", "amount:double"])
    ws.ledger.append("executions", "materialization.recorded", {"asset": "sales.orders"})
    ws.compactor.compact("executions")

    hits = ws.search.search("orders").hits
    assert [h.qualified_name for h in hits] == ["sales.orders"]
    tables = run_query(ws.system, "SELECT namespace, name FROM system.tables").rows
    assert tables == [["sales", "orders"]]
    mats = run_query(ws.system, "SELECT asset FROM system.materializations").rows
    assert mats == [["sales.orders"]]


def test_collaborators_are_built_once_and_share_the_catalog() -> None:
    ws = Workspace.in_memory()
    assert ws.catalog is ws.catalog
    assert ws.ledger is ws.ledger
    assert ws.compactor is ws.compactor
    assert ws.lineage is ws.lineage
    # Search and SQL read through the workspace's catalog, so its caches serve all three.
    assert ws.search.catalog is ws.catalog
    assert ws.system.catalog is ws.catalog


def test_concurrent_first_use_builds_one_object() -> None:
    ws = Workspace.in_memory()
    seen: list[object] = []
    start = threading.Barrier(8)

    def grab() -> None:
        start.wait()
        seen.append(ws.catalog)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1


class _Counter:
    def __init__(self, ws: Workspace) -> None:
        self.scope = ws.scope


def test_extensions_are_keyed_by_class_and_built_once() -> None:
    ws = Workspace.in_memory()
    built: list[_Counter] = []

    def build(w: Workspace) -> _Counter:
        built.append(_Counter(w))
        return built[-1]

    first = ws.extension(_Counter, build)
    again = ws.extension(_Counter, build)
    assert first is again
    assert len(built) == 1
    assert first.scope == ws.scope


def test_workspaces_of_two_scopes_share_a_store_but_nothing_else() -> None:
    store = open_store("memory://")
    a = Workspace(store, Scope("acme", "prod"))
    b = Workspace(store, Scope("globex", "prod"))
    a.catalog.create_namespace("sales")
    a.catalog.create_table("sales", "orders", ["id:bigint"])
    assert b.catalog.list_namespaces().items == []
    assert b.search.search("orders").hits == []
    assert run_query(b.system, "SELECT count(*) FROM system.tables").rows == [[0]]


def test_the_api_keeps_one_workspace_per_scope_and_evicts_the_coldest() -> None:
    cache = ServiceCache(open_store("memory://"), size=2)
    one, two, three = Scope("t", "one"), Scope("t", "two"), Scope("t", "three")
    first = cache.get(one)
    assert cache.get(one) is first
    assert first.scope == one
    second = cache.get(two)
    cache.get(one)  # one is now the most recent
    cache.get(three)  # evicts two
    assert cache.get(one) is first
    again = cache.get(two)
    assert again is not second
    assert again.scope == two


@pytest.mark.parametrize("part", ["../x", "", "a/b"])
def test_a_workspace_cannot_be_opened_on_an_invalid_scope(part: str) -> None:
    with pytest.raises(InvalidNameError):
        Workspace(open_store("memory://"), Scope("acme", part))
