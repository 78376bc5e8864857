"""Search: tokenizer, ranking, filters, pagination, incremental maintenance,
bucketed reads and a large generated catalog."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from arco.catalog import Catalog
from arco.core import IntegrityError, InvalidArgumentError, Keys, ObjectStore, open_store
from arco.core.storage import FaultInjectingStore
from arco.discovery.search import (
    INDEX_REVISION,
    MAX_PREFIX,
    REBUILD_DELTA_POSTINGS,
    SearchIndex,
    SearchResults,
    name_tokens,
    tokenize,
)
from arco.discovery.search import index as search_index
from arco.domain.store import Change

from ._support import SCOPE, memory_store

# ------------------------------------------------------------------ tokenizer


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("customer_lifetime_value", ["customer", "lifetime", "value"]),
        ("customerLifetimeValue", ["customer", "lifetime", "value"]),
        ("CustomerLifetimeValue", ["customer", "lifetime", "value"]),
        ("HTTPServerLogs", ["http", "server", "logs"]),
        ("sales.emea.orders", ["sales", "emea", "orders"]),
        ("orders2024", ["orders", "2024"]),
        ("v2_events", ["v", "2", "events"]),
        ("daily-revenue (EUR)", ["daily", "revenue", "eur"]),
        ("orders_orders.ORDERS", ["orders"]),
        # Words of any script stay whole; camelCase is split in ASCII words only.
        ("Umsatz für Größe, café2 日本語", ["umsatz", "für", "größe", "café2", "日本語"]),
        ("ÉTÉ-été", ["été"]),
        ("  ", []),
        ("", []),
        (None, []),
    ],
)
def test_tokenize(text: str | None, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_name_tokens_include_the_whole_name() -> None:
    assert name_tokens("daily_revenue") == ["daily", "revenue", "daily_revenue"]
    assert name_tokens("orders") == ["orders"]
    assert name_tokens("customerId") == ["customer", "id", "customerid"]


# ------------------------------------------------------------- small catalog


def build_catalog(cat: Catalog) -> None:
    cat.create_namespace("sales", description="Sales data")
    cat.create_namespace("sales.emea")
    cat.create_namespace("marketing", properties={"team": "growth"})
    cat.create_table(
        "sales", "orders", ["id:bigint", "customer_id:bigint"], description="One row per sale"
    )
    cat.create_table("sales", "orders_archive", ["id:bigint"], description="Old rows")
    cat.create_table("sales", "daily_orders", ["order_day:date", "n:bigint"])
    cat.create_table("sales", "shipments", ["id:bigint"], description="Shipped orders by carrier")
    cat.create_table("sales", "payments", ["id:bigint"], properties={"upstream": "orders"})
    cat.create_table("sales.emea", "orders_emea", ["id:bigint"])
    cat.create_table(
        "marketing",
        "campaigns",
        [{"name": "budget", "type": "double", "description": "Spend in EUR"}],
    )


@pytest.fixture
def store() -> ObjectStore:
    return memory_store()


@pytest.fixture
def cat(store: ObjectStore) -> Catalog:
    catalog = Catalog(store, SCOPE)
    build_catalog(catalog)
    return catalog


@pytest.fixture
def index(store: ObjectStore, cat: Catalog) -> SearchIndex:
    return SearchIndex(store, SCOPE)


def names(results: SearchResults) -> list[str]:
    return [h.qualified_name for h in results.hits]


def test_ranking_exact_prefix_token_description_property(index: SearchIndex) -> None:
    results = index.search("orders", kind="table")
    assert names(results) == [
        "sales.orders",  # exact name
        "sales.emea.orders_emea",  # name prefix (shorter name first)
        "sales.orders_archive",  # name prefix
        "sales.daily_orders",  # name token
        "sales.shipments",  # description token
        "sales.payments",  # property value
    ]
    scores = [h.score for h in results.hits]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)  # strictly ranked, no ties
    exact = results.hits[0]
    assert "exact" in exact.matched
    assert exact.kind == "table"
    assert exact.namespace == "sales"
    assert exact.description == "One row per sale"
    assert "prefix" in results.hits[1].matched
    assert results.hits[4].matched == ("d:orders",)
    assert results.hits[5].matched == ("p:orders",)
    # Case does not matter.
    assert names(index.search("ORDERS", kind="table")) == names(results)
    assert results.total == 6


def test_ranking_without_overlapping_matches(store: ObjectStore) -> None:
    """Each document matches "cust" in exactly one way, so each weight is tested alone."""
    cat = Catalog(store, SCOPE)
    cat.create_namespace("ranking")
    cat.create_table("ranking", "ledger", ["id:bigint"], properties={"owner": "cust"})
    cat.create_table("ranking", "accounts", ["id:bigint"], description="cust accounts")
    cat.create_table("ranking", "vip_cust", ["id:bigint"])
    cat.create_table("ranking", "customers", ["id:bigint"])
    cat.create_table("ranking", "cust", ["id:bigint"])
    cat.create_table("ranking", "vip_customers", ["id:bigint"])
    cat.create_table("ranking", "notes", ["id:bigint"], description="customer notes")
    cat.create_table("ranking", "refunds", ["id:bigint"], properties={"owner": "customer-care"})
    hits = SearchIndex(store, SCOPE).search("cust").hits
    assert [(h.name, h.matched) for h in hits] == [
        ("cust", ("exact", "n:cust")),
        ("customers", ("n:cust*", "prefix")),
        ("vip_cust", ("n:cust",)),
        ("vip_customers", ("n:cust*",)),  # starts a word of the name
        ("accounts", ("d:cust",)),
        ("notes", ("d:cust*",)),
        ("ledger", ("p:cust",)),
        ("refunds", ("p:cust*",)),
    ]
    assert [h.score for h in hits] == [1100, 594.4444444444445, 100, 50, 10, 6, 5, 2]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_every_query_token_must_match(index: SearchIndex) -> None:
    assert names(index.search("daily orders")) == ["sales.daily_orders"]
    assert names(index.search("orders carrier")) == ["sales.shipments"]
    assert index.search("orders nonexistent").hits == []
    assert index.search("zzz").total == 0


def test_column_and_namespace_hits(index: SearchIndex) -> None:
    columns = index.search("id", kind="column")
    assert {h.kind for h in columns.hits} == {"column"}
    assert "sales.orders.customer_id" in names(columns)
    assert names(columns)[-1] == "sales.orders.customer_id"  # token hit after exact ones
    assert all(h.name == "id" for h in columns.hits[:-1])
    assert names(index.search("eur")) == ["marketing.campaigns.budget"]
    namespaces = index.search("sales", kind="namespace")
    assert names(namespaces) == ["sales", "sales.emea"]
    assert namespaces.hits[0].score > namespaces.hits[1].score
    assert names(index.search("growth")) == ["marketing"]


def test_filters(index: SearchIndex) -> None:
    in_sales = index.search("orders", namespace="sales")
    assert "sales.emea.orders_emea" in names(in_sales)  # nested namespaces included
    assert all(h.qualified_name.startswith("sales.") for h in in_sales.hits)
    assert names(index.search("orders", namespace="sales.emea", kind="table")) == [
        "sales.emea.orders_emea"
    ]
    assert index.search("orders", namespace="sal").hits == []  # whole segments only
    assert index.search("orders", namespace="marketing").hits == []
    assert names(index.search("emea", kind="namespace", namespace="sales.emea")) == ["sales.emea"]
    with pytest.raises(InvalidArgumentError):
        index.search("orders", kind="view")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"query": ""},
        {"query": "   "},
        {"query": "x" * 513},
        {"query": "orders", "limit": 0},
        {"query": "orders", "limit": 1001},
        {"query": "orders", "page_token": "abc"},
        {"query": "orders", "page_token": "-1"},
        {"query": "orders", "page_token": "1" * 10},
    ],
)
def test_search_validates_arguments(index: SearchIndex, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        index.search(**kwargs)  # type: ignore[arg-type]


def test_pagination_walks_every_hit_once(index: SearchIndex) -> None:
    everything = index.search("orders", limit=1000)
    assert everything.next_page_token is None
    assert everything.total == 6
    for size in (1, 2, 3, 5):
        seen = []
        token = None
        pages = 0
        while True:
            page = index.search("orders", limit=size, page_token=token)
            pages += 1
            assert pages <= everything.total, "pagination does not advance"
            assert len(page.hits) <= size
            assert page.total == everything.total
            seen.extend(page.hits)
            token = page.next_page_token
            if token is None:
                break
            assert len(page.hits) == size
        assert seen == everything.hits
        assert pages == -(-everything.total // size)
    beyond = index.search("orders", page_token="999")
    assert beyond.hits == []
    assert beyond.next_page_token is None


# -------------------------------------------------------- incremental upkeep


def base_files(index: SearchIndex) -> dict[str, str]:
    snap = index.domain.read()
    return {f.table: f.path for f in snap.files if f.kind == "base"}


def test_incremental_maintenance(cat: Catalog, index: SearchIndex) -> None:
    assert index.refresh() == cat.version
    assert index.indexed_version() == cat.version

    cat.rename_table("sales", "orders_archive", "orders_history")
    assert index.search("archive").hits == []
    assert index.search("orders_arch").hits == []
    assert names(index.search("history")) == ["sales.orders_history"]
    assert "sales.orders_history" in names(index.search("orders", kind="table"))
    assert "sales.orders_archive" not in names(index.search("orders", kind="table"))
    assert names(index.search("old rows")) == ["sales.orders_history"]
    assert index.indexed_version() == cat.version

    cat.drop_table("sales", "daily_orders")
    assert index.search("daily").hits == []
    assert index.search("order_day").hits == []  # its columns went with it

    before = base_files(index)
    cat.update_table("sales", "shipments", description="Parcels by carrier")
    assert index.search("shipped").hits == []
    assert names(index.search("parcels")) == ["sales.shipments"]
    assert "sales.shipments" not in names(index.search("orders"))
    # Incremental: the sorted bases stay; the change went to small delta files.
    after = base_files(index)
    assert {t: after[t] for t in ("postings", "docs", "ids")} == {
        t: before[t] for t in ("postings", "docs", "ids")
    }
    deltas = [f for f in index.domain.read().files if f.kind == "delta"]
    assert {f.table for f in deltas} >= {"postings", "docs", "ids", "dead"}
    assert sum(f.rows for f in deltas if f.table == "postings") < REBUILD_DELTA_POSTINGS
    last = index.domain.read().manifest
    assert last is not None
    assert last.meta["catalog_version"] == cat.version

    cat.update_table("sales", "orders", add_columns=["discount_code:string"])
    assert names(index.search("discount")) == ["sales.orders.discount_code"]
    cat.update_table("sales", "orders", rename_columns={"discount_code": "voucher_code"})
    assert index.search("discount").hits == []
    assert names(index.search("voucher")) == ["sales.orders.voucher_code"]
    cat.update_table("sales", "orders", column_descriptions={"voucher_code": "Promo applied"})
    assert names(index.search("promo")) == ["sales.orders.voucher_code"]
    cat.update_table("sales", "orders", drop_columns=["voucher_code", "customer_id"])
    assert index.search("voucher").hits == []
    assert index.search("customer").hits == []
    cat.update_table("sales", "payments", remove_properties=["upstream"])
    assert "sales.payments" not in names(index.search("orders"))

    cat.update_namespace("marketing", description="Campaign spend", remove_properties=["team"])
    assert index.search("growth").hits == []
    assert "marketing" in names(index.search("spend"))
    cat.create_table("marketing", "leads", ["id:bigint"])
    cat.drop_namespace("marketing", cascade=True)
    assert index.search("campaigns").hits == []
    assert index.search("leads").hits == []
    assert index.search("marketing").hits == []

    # The incrementally maintained index equals one built from scratch.
    fresh_store = memory_store()
    rebuilt = Catalog(fresh_store, SCOPE)
    rebuilt.create_namespace("sales", description="Sales data")
    rebuilt.create_namespace("sales.emea")
    rebuilt.create_table(
        "sales", "orders", [{"name": "id", "type": "bigint"}], description="One row per sale"
    )
    rebuilt.create_table("sales", "orders_history", ["id:bigint"], description="Old rows")
    rebuilt.create_table("sales", "shipments", ["id:bigint"], description="Parcels by carrier")
    rebuilt.create_table("sales", "payments", ["id:bigint"])
    rebuilt.create_table("sales.emea", "orders_emea", ["id:bigint"])
    scratch = SearchIndex(fresh_store, SCOPE)
    for query in ("orders", "id", "sales", "rows", "parcels", "emea", "carrier"):
        got = [(h.kind, h.qualified_name, h.score) for h in index.search(query, limit=100).hits]
        want = [(h.kind, h.qualified_name, h.score) for h in scratch.search(query, limit=100).hits]
        assert got == want, query


def test_reopened_index_gives_the_same_results(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    first_store = open_store(url)
    build_catalog(Catalog(first_store, SCOPE))
    first = SearchIndex(first_store, SCOPE)
    queries = ["orders", "id", "sales", "eur", "daily orders", "ord"]
    before = {q: first.search(q, limit=50) for q in queries}
    version = first.domain.read().version

    reopened = SearchIndex(open_store(url), SCOPE)
    for q in queries:
        again = reopened.search(q, limit=50, refresh=False)
        assert [h.to_dict() for h in again.hits] == [h.to_dict() for h in before[q].hits]
        assert again.total == before[q].total
        assert again.catalog_version == before[q].catalog_version
    reopened.search("orders")  # refresh=True finds nothing to do
    assert reopened.domain.read().version == version


def test_a_query_reads_only_the_row_groups_of_its_tokens(store: ObjectStore) -> None:
    cat = Catalog(store, SCOPE)
    build_catalog(cat)
    cat.create_namespace("bulk")
    with cat.transaction() as tx:  # several row groups of postings and documents
        for i in range(1500):
            tx.create_table("bulk", f"t{i}_facts", ["id:bigint", "amount:double"])
    index = SearchIndex(store, SCOPE)
    index.refresh()
    snap = index.domain.read()
    keys = Keys(SCOPE)
    bases = {f.table: f for f in snap.files if f.kind == "base"}
    postings = bases["postings"]
    assert postings.index is not None
    assert len(postings.index["groups"]) > 2

    spy = FaultInjectingStore(store)
    fresh = SearchIndex(spy, SCOPE)
    results = fresh.search("customer id", refresh=False)
    assert names(results) == ["sales.orders.customer_id"]
    ops = {(c.op, c.key) for c in spy.calls}
    assert {op for op, _ in ops} <= {"get", "get_range"}  # reads never list (I7), never write
    whole = {key for op, key in ops if op == "get"}
    assert whole <= {keys.pointer("search"), snap.manifest_key}
    ranged = [c for c in spy.calls if c.op == "get_range"]
    assert {c.key for c in ranged} <= {postings.path, bases["docs"].path}
    # Far fewer reads than groups: only the groups of the query's token ranges.
    assert len(ranged) < len(postings.index["groups"]) + 2
    assert not any("/catalog" in c.key for c in spy.calls)

    # A second query on the same index re-reads only what it has not cached.
    spy.calls.clear()
    fresh.search("customer id", refresh=False)
    assert {c.key for c in spy.calls} <= {keys.pointer("search")}


def test_a_damaged_row_group_is_refused(store: ObjectStore, cat: Catalog) -> None:
    """Every ranged read is checked against the SHA-256 the manifest's index lists."""
    SearchIndex(store, SCOPE).refresh()
    snap = SearchIndex(store, SCOPE).domain.read()
    entry = next(f for f in snap.files if f.table == "postings" and f.kind == "base")
    assert entry.index is not None
    data, _ = store.get(entry.path)
    start = entry.index["groups"][0][2]
    damaged = data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1 :]
    store.put(entry.path, damaged, "overwrite")
    with pytest.raises(IntegrityError, match="do not match the manifest's index"):
        SearchIndex(store, SCOPE).search("orders", refresh=False)


def test_prefixes_of_words_find_names_descriptions_and_properties(store: ObjectStore) -> None:
    cat = Catalog(store, SCOPE)
    cat.create_namespace("finance", description="Überweisungen und Buchungen")
    cat.create_table("finance", "daily_revenue", ["amountEur:double"], properties={"tag": "kpi"})
    cat.create_table("finance", "customers", ["id:bigint"])
    index = SearchIndex(store, SCOPE)
    assert names(index.search("rev")) == ["finance.daily_revenue"]
    assert names(index.search("customer", kind="table")) == ["finance.customers"]
    assert names(index.search("daily rev")) == ["finance.daily_revenue"]
    assert names(index.search("amount eu")) == ["finance.daily_revenue.amountEur"]
    assert names(index.search("überw")) == ["finance"]  # a non-ASCII word's prefix
    assert index.search("berw").hits == []  # not a word split at its umlaut
    assert names(index.search("kp")) == ["finance.daily_revenue"]
    # One character is too short to be a prefix of a word; a whole word still matches.
    assert index.search("r").hits == []


def test_prefix_past_a_long_namespace(store: ObjectStore) -> None:
    """The qualified-name prefix of a table in a namespace of MAX_PREFIX characters or
    more (whose postings hold only the first MAX_PREFIX characters) is still found."""
    long_ns = "averyveryverylongnamespacename"
    assert len(long_ns) > MAX_PREFIX
    cat = Catalog(store, SCOPE)
    cat.create_namespace(long_ns)
    cat.create_table(long_ns, "orders", ["id:bigint"])
    cat.create_table(long_ns, "refunds", ["id:bigint"])
    index = SearchIndex(store, SCOPE)
    hits = index.search(f"{long_ns}.ord").hits
    assert [(h.qualified_name, h.matched) for h in hits] == [
        (f"{long_ns}.orders", ("n:ord*", "prefix"))
    ]
    assert index.search(f"{long_ns}.orders").hits[0].matched == ("exact", "n:orders")
    # A prefix that ends inside the namespace finds the namespace, not its tables.
    assert names(index.search(long_ns[:27])) == [long_ns]


def test_an_index_of_an_older_revision_is_rebuilt(
    store: ObjectStore, cat: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Re-read the index's pointer on every query: the older revision below is
    # written behind this object's back, as another process would.
    monkeypatch.setattr(search_index, "INDEX_RECHECK_SECONDS", 0.0)
    index = SearchIndex(store, SCOPE)
    index.refresh()
    # What the first revision left behind: no "revision", hence no word-prefix postings.
    index.domain.commit(lambda _snap: Change(meta={"catalog_version": cat.version}))
    assert index.indexed_version() == 0
    assert names(index.search("shipm")) == ["sales.shipments"]
    assert index.indexed_version() == cat.version
    last = index.domain.read().manifest
    assert last is not None
    assert last.meta["revision"] == INDEX_REVISION
    assert last.operation["ops"] == [{"op": "index", "from": 0, "to": cat.version}]


def test_camel_case_query_matches_snake_case_names(index: SearchIndex) -> None:
    assert "sales.orders.customer_id" in names(index.search("customerId"))


# -------------------------------------------------------- a large catalog


PLANTED = [
    ("analytics", "customer_lifetime_value", "Predicted revenue per customer over 3 years"),
    ("analytics", "daily_revenue", "Revenue per day in EUR"),
    ("analytics", "user_retention", "Weekly churn and retention cohorts"),
    ("analytics", "inventory_snapshot", "Stock levels per warehouse"),
]


#: Tables in the generated catalog; ``ARCO_SEARCH_SCALE_TABLES`` shrinks it for quick runs.
LARGE_TABLES = int(os.environ.get("ARCO_SEARCH_SCALE_TABLES", "100000"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_large_generated_catalog(store: ObjectStore) -> None:
    started = time.monotonic()
    cat = Catalog(store, SCOPE)
    cat.create_namespace("bulk")
    cat.create_namespace("analytics", description="Curated marts")
    batch = min(50_000, LARGE_TABLES)
    n_tables = max(batch, LARGE_TABLES // batch * batch)
    for start in range(0, n_tables, batch):
        with cat.transaction() as tx:
            for i in range(start, start + batch):
                cols = ["id:bigint"] if i % 2 else ["id:bigint", "amount:double"]
                tx.create_table("bulk", f"t{i}_orders", cols)
    for namespace, name, description in PLANTED:
        cat.create_table(namespace, name, ["id:bigint", "value:double"], description=description)
    built = time.monotonic() - started

    index = SearchIndex(store, SCOPE)
    index.refresh()
    indexed = time.monotonic() - started - built

    expectations = {
        "customer lifetime value": "analytics.customer_lifetime_value",
        "customer_lifetime_value": "analytics.customer_lifetime_value",
        "daily_revenue": "analytics.daily_revenue",
        "revenue": "analytics.daily_revenue",
        "churn": "analytics.user_retention",
        "warehouse": "analytics.inventory_snapshot",
        "t12345_orders": "bulk.t12345_orders",
        "t9999": "bulk.t9999_orders",
        "inventory": "analytics.inventory_snapshot",
    }
    for query, top in expectations.items():
        results = index.search(query, limit=5, refresh=False)
        assert results.hits, query
        assert results.hits[0].qualified_name == top, (query, names(results))
    assert index.search("amount", kind="column", limit=1, refresh=False).total == n_tables // 2
    total = time.monotonic() - started
    print(f"{n_tables} tables: build {built:.0f}s, index {indexed:.0f}s, total {total:.0f}s")


def test_decoded_groups_stay_under_the_byte_bound(store: ObjectStore, cat: Catalog) -> None:
    """The cache of decoded row groups is bounded by memory, and a query answered
    after evictions (groups read again) equals one answered from a roomy cache."""
    roomy = SearchIndex(store, SCOPE)
    tight = SearchIndex(store, SCOPE, cache_bytes=1)
    for q in ("orders", "ord", "sales orders", "customer", "old rows", "orders", "ord"):
        want = [(h.qualified_name, h.score, h.matched) for h in roomy.search(q).hits]
        got = [(h.qualified_name, h.score, h.matched) for h in tight.search(q).hits]
        assert got == want, q
        assert len(tight.groups.items) == 1
    assert len(roomy.groups.items) > 1


def test_search_reads_the_catalog_head_only(store: ObjectStore, cat: Catalog) -> None:
    """Searching and refreshing (incrementally or in full) never folds the catalog:
    a server's catalog object would otherwise hold every table for good."""
    index = SearchIndex(store, SCOPE)
    assert next(h.qualified_name for h in index.search("orders_archive").hits) == (
        "sales.orders_archive"
    )
    cat.create_table("sales", "refunds", ["id:bigint"], description="Money back")
    cat.update_table("sales", "payments", description="Card payments")
    cat.drop_table("sales", "orders_archive")
    assert [h.qualified_name for h in index.search("refunds").hits] == ["sales.refunds"]
    assert "sales.payments" in [h.qualified_name for h in index.search("card").hits]
    assert "sales.orders_archive" not in [h.qualified_name for h in index.search("orders").hits]
    assert not index.catalog.domain.folded


def test_a_cached_postings_group_is_compact_and_finds_like_a_filter() -> None:
    """A postings group is cached as distinct tokens plus run ends and numbers (not a
    string per posting), and its lookups (exact, and by prefix, including tokens past
    the prefix with characters above the BMP) equal a filter of the decoded rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from arco.discovery.search.reader import PostingRuns
    from arco.discovery.search.state import POSTING_SCHEMA

    words = ["d:ab", "d:abc", "d:abc\U0010ffffz", "d:abd", "d:b", "n:zé", "n:zéa", "^orders"]
    rows = [(w, d) for w in sorted(words) for d in range(0, 3000, 7 + len(w))]
    group = pa.table(
        {
            "token": [w for w, _ in rows],
            "doc": pa.array([d for _, d in rows], pa.int32()),
            "name_len": pa.array([7 if w.startswith("^") else None for w, _ in rows], pa.int16()),
            "min_len": pa.array([2 if w.startswith("^") else None for w, _ in rows], pa.int16()),
        },
        schema=POSTING_SCHEMA,
    )
    runs = PostingRuns.of(group)
    assert runs.nbytes * 2 < group.nbytes
    for key in ["d:a", "d:ab", "d:abc", "d:abd", "d:abe", "d:", "n:z", "n:zé", "^ord", "~", "a"]:
        for prefix in (False, True):
            tokens = group.column("token")
            mask = pc.starts_with(tokens, key) if prefix else pc.equal(tokens, key)
            want = group.filter(mask)
            got = runs.find(key, prefix)
            assert got.column("doc").to_pylist() == want.column("doc").to_pylist(), key
            assert got.column("exact").to_pylist() == [
                t == key for t in want.column("token").to_pylist()
            ], key
            assert got.column("name_len").to_pylist() == want.column("name_len").to_pylist()
