"""The full index build in slices of documents and ranges of sorted keys gives the
same index as a build in one piece (docs/adr/026-search-build-in-bounded-memory.md).

The full build makes postings a few documents at a time, keeps them as ranks into a
dictionary of all distinct tokens and sorts them a range of keys at a time as they
are written; the ``docs`` and ``ids`` bases are made batch by batch at their write.
None of it may change a row of the index, whatever the slice and range sizes.
"""

from __future__ import annotations

import functools
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from arco.catalog import Catalog
from arco.core import ObjectStore
from arco.discovery.search import SearchIndex, build, runs
from arco.discovery.search import index as search_index
from arco.discovery.search.state import DOCS, ID_SCHEMA, IDS, POSTINGS
from arco.domain.tableset import SortedBatches

from ._support import SCOPE, copy_prefix, memory_store

_WORDS = ["orders", "DailyRevenue", "HTTPServerLogs", "v2_events", "customer_id", "x", "t"]
_TEXTS = [
    None,
    "",
    "One row per sale",
    "Umsatz für Größe, café2 日本語",
    "CamelCase and snake_case words, orders2024 " * 12,  # past the 300-character snippet
]


def _catalog(store: ObjectStore, n: int) -> Catalog:
    """Tables whose names, columns, descriptions and properties repeat and differ
    across namespaces, then a later commit that drops and changes some (a delta)."""
    cat = Catalog(store, SCOPE)
    cat.create_namespace("sales", description="Sales data")
    cat.create_namespace("sales.emea")
    cat.create_namespace("marketing", properties={"team": "growth", "région": "Île"})
    cat.create_namespace("hr")
    namespaces = ["sales", "sales.emea", "marketing", "hr"]
    with cat.transaction() as tx:
        for i in range(n):
            name = f"{_WORDS[i % len(_WORDS)]}_{i}"
            columns: list[Any] = [
                {
                    "name": f"{_WORDS[(i + c) % len(_WORDS)]}{c}",
                    "type": "bigint",
                    "description": _TEXTS[(i + c) % len(_TEXTS)],
                }
                for c in range(i % 4)
            ]
            tx.create_table(
                namespaces[i % len(namespaces)],
                name,
                columns or ["id:bigint"],
                description=_TEXTS[i % len(_TEXTS)],
                properties={"owner": f"team{i % 3}", "Größe": "groß"} if i % 5 == 0 else None,
            )
    with cat.transaction() as tx:
        for i in range(0, n, 9):
            tx.drop_table(namespaces[i % len(namespaces)], f"{_WORDS[i % len(_WORDS)]}_{i}")
    return cat


def _written(data: pa.Table | SortedBatches) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    return pa.Table.from_batches(list(data.batches()), schema=data.schema)


def _one_piece(namespaces: pa.Table, tables: pa.Table) -> dict[str, pa.Table]:
    """The index's bases made in one piece: all postings made, then sorted together."""
    docs = build._documents(namespaces, tables)
    order = pc.sort_indices(
        docs,
        sort_keys=[
            ("kind_order", "ascending"),
            ("qualified_name", "ascending"),
            ("doc_id", "ascending"),
        ],
    )
    docs = docs.take(order)
    docs = docs.append_column("doc", pa.array(range(docs.num_rows), pa.int32()))
    ids = pa.table({"doc_id": docs.column("doc_id"), "doc": docs.column("doc")})
    ids = ids.take(pc.sort_indices(ids, sort_keys=[("doc_id", "ascending")]))
    return {
        POSTINGS: build._postings(docs, namespaces, tables),
        DOCS: build._doc_rows(docs),
        IDS: ids.cast(ID_SCHEMA),
    }


@pytest.fixture(scope="module")
def catalog_rows() -> tuple[pa.Table, pa.Table]:
    store = memory_store()
    cat = _catalog(store, 160)
    index = SearchIndex(store, SCOPE, catalog=cat)
    head = cat.domain.read_head()
    assert head.manifest is not None
    return index._catalog_tables(head.manifest.files)


@pytest.mark.parametrize(
    ("chunk_docs", "sort_range"), [(3, 1), (7, 50), (64, 333), (100_000, 10**9)]
)
def test_a_build_in_slices_and_ranges_gives_the_one_piece_index(
    catalog_rows: tuple[pa.Table, pa.Table], chunk_docs: int, sort_range: int
) -> None:
    namespaces, tables = catalog_rows
    expected = _one_piece(namespaces, tables)
    # Enough to exercise what a slice boundary could break: columns whose table is
    # in another slice, '^' postings next to the others, repeated tokens.
    assert 300 < expected[DOCS].num_rows < 1_000
    assert expected[POSTINGS].num_rows > 5_000
    change = runs.full_change(
        lambda: (namespaces, tables), chunk_docs=chunk_docs, sort_range=sort_range
    )
    for table, rows in expected.items():
        got = _written(change.bases[table])
        assert got.schema == rows.schema, table
        assert got.equals(rows), table
    docs = expected[DOCS]
    kinds = docs.column("kind").to_pylist()
    assert change.meta == {
        "base_docs": docs.num_rows,
        "next_doc": docs.num_rows,
        "kind_starts": [kinds.count("namespace"), kinds.count("namespace") + kinds.count("table")],
    }


def test_the_bases_made_at_the_write_are_made_once(
    catalog_rows: tuple[pa.Table, pa.Table],
) -> None:
    change = runs.full_change(lambda: catalog_rows)
    for table in (DOCS, IDS):
        base = change.bases[table]
        assert isinstance(base, SortedBatches)
        assert _written(base).num_rows > 0
        with pytest.raises(RuntimeError, match="already written"):
            _written(base)


def test_an_index_built_in_tiny_slices_answers_like_the_default_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = memory_store()
    _catalog(store, 60)
    # The same catalog (same ids) in a second store, before either is indexed.
    tiny_store = memory_store()
    copy_prefix(store, tiny_store, "")
    default = SearchIndex(store, SCOPE)
    default.refresh()
    tiny = SearchIndex(tiny_store, SCOPE)
    monkeypatch.setattr(
        search_index, "full_change", functools.partial(runs.full_change, chunk_docs=2, sort_range=7)
    )
    tiny.refresh()
    for query in ["orders", "daily rev", "http", "umsatz", "groß", "team1", "sales.emea", "x"]:
        for kind in (None, "table", "column"):
            want = default.search(query, kind=kind, limit=50, refresh=False)
            got = tiny.search(query, kind=kind, limit=50, refresh=False)
            assert want.hits or kind is not None, query
            assert [h.to_dict() for h in got.hits] == [h.to_dict() for h in want.hits], query
            assert got.total == want.total
    for table in (POSTINGS, DOCS, IDS):
        want_rows = default.domain.load_table(default.domain.read(), table)
        assert tiny.domain.load_table(tiny.domain.read(), table).equals(want_rows), table
