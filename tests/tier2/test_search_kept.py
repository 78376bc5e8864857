"""What a search keeps between queries (docs/adr/024-search-lookups-kept-per-index-version.md):
common lookups and page rows per index version, and the index snapshot found
current for the catalog's head. None of it may answer for another index version,
another scope, or a catalog version the head no longer names."""

from __future__ import annotations

import pytest

from arco.catalog import Catalog
from arco.core import Keys, ObjectStore, Scope
from arco.core.storage import FaultInjectingStore
from arco.discovery.search import SearchIndex, SearchResults
from arco.discovery.search import index as search_index
from arco.discovery.search import query as search_query

from ._support import SCOPE, memory_store

QUERIES = ["orders", "ord", "sales orders", "old rows", "payments", "orders_archive", "id"]


def build(cat: Catalog, namespace: str = "sales") -> None:
    cat.create_namespace(namespace, description="Sales data")
    cat.create_table(
        namespace, "orders", ["id:bigint", "customer_id:bigint"], description="One row per sale"
    )
    cat.create_table(namespace, "orders_archive", ["id:bigint"], description="Old rows")
    cat.create_table(namespace, "daily_orders", ["order_day:date", "n:bigint"])
    cat.create_table(namespace, "payments", ["id:bigint"], properties={"upstream": "orders"})


def page(results: SearchResults) -> list[dict[str, object]]:
    return [h.to_dict() for h in results.hits]


@pytest.fixture(autouse=True)
def keep_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every lookup, however rare (the threshold only spares memory)."""
    monkeypatch.setattr(search_query, "MEMO_MIN_DOCS", 0)


@pytest.fixture
def store() -> ObjectStore:
    return memory_store()


def test_kept_lookups_never_answer_for_another_index_version(store: ObjectStore) -> None:
    cat = Catalog(store, SCOPE)
    build(cat)
    index = SearchIndex(store, SCOPE)
    for q in QUERIES:
        first = index.search(q, limit=100)
        assert page(index.search(q, limit=100)) == page(first)  # answered from kept lookups
    kept = [k for k in index.lookups.items]
    assert {k.split("\x00")[1] for k in kept} >= {"token", "prefix", "ranked", "doc"}

    # Every kind of change the same tokens see: a new document, a dropped one (its
    # number is dead), a changed description (a new number for the same id).
    cat.create_table("sales", "orders_v2", ["id:bigint"], description="Old rows again")
    cat.drop_table("sales", "orders_archive")
    cat.update_table("sales", "payments", description="Orders paid by card")
    for q in QUERIES:
        want = SearchIndex(store, SCOPE).search(q, limit=100)
        got = index.search(q, limit=100)
        assert page(got) == page(want), q
        assert got.total == want.total
        assert got.catalog_version == cat.version
    assert "sales.orders_archive" not in [h["qualified_name"] for h in page(got)]


def test_two_scopes_on_one_store_keep_their_own_lookups(store: ObjectStore) -> None:
    other = Scope("globex", "prod")
    build(Catalog(store, SCOPE), "sales")
    build(Catalog(store, other), "finance")
    mine, theirs = SearchIndex(store, SCOPE), SearchIndex(store, other)
    for _ in range(2):
        for q in QUERIES:
            assert all(h.namespace == "sales" for h in mine.search(q).hits), q
            assert all(h.namespace == "finance" for h in theirs.search(q).hits), q
    # Kept lookups are named by the index manifest they came from, under the scope.
    for index, scope in ((mine, SCOPE), (theirs, other)):
        kept = [k for k in index.lookups.items]
        assert kept
        assert all(k.startswith(Keys(scope).root) for k in kept)


def test_an_unchanged_catalog_is_searched_without_rereading_the_index_pointer(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = Catalog(store, SCOPE)
    build(cat)
    spy = FaultInjectingStore(store)
    index = SearchIndex(spy, SCOPE)
    first = index.search("orders")
    keys = Keys(SCOPE)

    spy.calls.clear()
    assert page(index.search("orders")) == page(first)
    # Only the catalog's pointer: the index snapshot found current for that catalog
    # version answers again, and the page's rows were kept.
    assert [(c.op, c.key) for c in spy.calls] == [("get", keys.pointer("catalog"))]

    # A catalog change is seen by the very next search (its head read finds it).
    cat.create_table("sales", "orders_eu", ["id:bigint"])
    assert "sales.orders_eu" in [h.qualified_name for h in index.search("orders").hits]

    # Past the re-check interval the index's pointer is read again.
    monkeypatch.setattr(search_index, "INDEX_RECHECK_SECONDS", 0.0)
    spy.calls.clear()
    index.search("orders")
    assert {c.key for c in spy.calls} == {keys.pointer("catalog"), keys.pointer("search")}


def test_a_document_found_only_by_where_it_lives_is_no_hit(store: ObjectStore) -> None:
    """With several tokens, a column of sales.orders satisfies "sales orders" only by
    its qualified name: it must not be a hit, however its lookups were kept."""
    cat = Catalog(store, SCOPE)
    build(cat)
    index = SearchIndex(store, SCOPE)
    for _ in range(2):
        hits = [h.qualified_name for h in index.search("sales orders", limit=100).hits]
        assert "sales.orders" in hits
        assert "sales.orders.customer_id" not in hits
        assert "sales.orders.id" not in hits


def test_concurrent_searches_for_one_query_make_each_lookup_once(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight requests for the same query at once (a popular search, the first ones
    after a commit): one makes each common lookup, the others wait and use it."""
    import threading
    import time

    cat = Catalog(store, SCOPE)
    build(cat)
    index = SearchIndex(store, SCOPE)
    want = page(SearchIndex(store, SCOPE).search("orders", limit=100))
    made: list[str] = []
    field_matches, name_prefix = search_query._field_matches, search_query._make_name_prefix

    def slow_field_matches(*args: object) -> object:
        made.append(f"token {args[2]}")
        time.sleep(0.05)  # long enough for every thread to ask for it meanwhile
        return field_matches(*args)  # type: ignore[arg-type]

    def slow_name_prefix(*args: object) -> object:
        made.append(f"prefix {args[2]}")
        time.sleep(0.05)
        return name_prefix(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(search_query, "_field_matches", slow_field_matches)
    monkeypatch.setattr(search_query, "_make_name_prefix", slow_name_prefix)
    start = threading.Barrier(8)
    got: list[list[dict[str, object]]] = []

    def client() -> None:
        start.wait()
        got.append(page(index.search("orders", limit=100)))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [want] * 8
    assert sorted(made) == ["prefix orders", "token orders"]
    assert not index.reader._making  # nothing left behind for the next lookup
