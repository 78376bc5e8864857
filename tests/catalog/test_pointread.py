"""Cold point reads (ADR 015) answer exactly what the full fold answers."""

from __future__ import annotations

import dataclasses
import random

import pyarrow as pa
import pytest

from arco.catalog import pointread
from arco.catalog.catalog import Catalog
from arco.catalog.pointread import table_from_row
from arco.catalog.state import TABLES, CatalogState
from arco.core.errors import IntegrityError, NotFoundError
from arco.core.storage import open_store
from arco.domain import tableset
from arco.domain.verify import verify


@pytest.fixture(params=[128, 3], ids=["whole-groups", "slices-of-3"])
def small_groups(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Row groups of 8 rows, so a few hundred tables span many groups; scans turn
    base rows into Python a whole group at a time, or in slices of 3 within groups."""
    monkeypatch.setattr(tableset, "GROUP_ROWS", 8)
    monkeypatch.setattr(pointread, "_SCAN_ROWS", request.param)


def _answer(cat: Catalog, ns: str, name: str) -> object:
    try:
        return cat.get_table(ns, name)
    except NotFoundError as exc:
        return str(exc)


def _check_same(store: object, folded: Catalog, names: set[tuple[str, str]]) -> None:
    cold = Catalog(store)  # type: ignore[arg-type]
    for ns, name in sorted(names):
        assert _answer(cold, ns, name) == _answer(folded, ns, name), (ns, name)
    assert not cold.domain.folded, "a cold catalog must not fold the state to answer"
    size = max(7, len(names) // 8)  # pages that end mid-group and at namespace edges
    for ns in (None, "a", "b", "a.x"):
        assert cold.list_tables(ns).items == folded.list_tables(ns).items
        assert [t for batch in cold.iter_tables(ns) for t in batch] == folded.list_tables(ns).items
        dicts = [t.to_dict() for t in folded.list_tables(ns).items]
        # ...and as Arrow batches cut from groups and deltas (arco table list).
        for source in (cold, folded):
            arrow = list(source.iter_table_batches(ns))
            rows = [table_from_row(r).to_dict() for b in arrow for r in tableset.to_rows(b)]
            assert rows == dicts
        token_cold = token_full = None
        while True:
            p_cold = cold.list_tables(ns, page_size=size, page_token=token_cold)
            p_full = folded.list_tables(ns, page_size=size, page_token=token_full)
            assert p_cold.items == p_full.items
            assert p_cold.next_page_token == p_full.next_page_token
            token_cold, token_full = p_cold.next_page_token, p_full.next_page_token
            if token_cold is None:
                break
    assert cold.list_tables("a", prefix="t1").items == folded.list_tables("a", prefix="t1").items
    assert cold.list_namespaces().items == folded.list_namespaces().items
    assert cold.get_namespace("a.x") == folded.get_namespace("a.x")
    assert not cold.domain.folded


@pytest.mark.usefixtures("small_groups")
def test_cold_reads_match_the_fold_through_renames_drops_and_base_rewrites() -> None:
    rng = random.Random(12)
    store = open_store("memory://")
    cat = Catalog(store)
    for ns in ("a", "b", "a.x"):
        cat.create_namespace(ns)
    names: set[tuple[str, str]] = set()
    live: list[tuple[str, str]] = []
    with cat.transaction() as tx:
        for i in range(300):
            ns = rng.choice(("a", "b", "a.x"))
            tx.create_table(ns, f"t{i:04d}", ["x:int64"])
            live.append((ns, f"t{i:04d}"))
    names.update(live)
    _check_same(store, cat, names)
    for step in range(60):
        op = rng.random()
        ns, name = live[rng.randrange(len(live))]
        if op < 0.3:
            new = (rng.choice(("a", "b", "a.x")), f"r{step:04d}")
            cat.rename_table(ns, name, new[1], new_namespace=new[0])
            live.remove((ns, name))
            live.append(new)
        elif op < 0.5:
            cat.drop_table(ns, name)
            live.remove((ns, name))
            if rng.random() < 0.5:  # the same name again, as a new table
                cat.create_table(ns, name, ["y:string"])
                live.append((ns, name))
        elif op < 0.8:
            cat.update_table(
                ns,
                name,
                description=f"step {step}",
                add_columns=[f"c{step}:int32"],
                set_properties={"step": str(step), "k": "v"},
            )
        else:
            cat.create_table(ns, f"n{step:04d}", ["z:date"])
            live.append((ns, f"n{step:04d}"))
        names.update(live)
        if step % 20 == 0:
            _check_same(store, cat, names)
    # Enough changes to rewrite the base, then check again on the new base.
    with cat.transaction() as tx:
        for i in range(2100):
            tx.create_table("b", f"bulk{i:05d}", ["x:int64"])
    names.update(("b", f"bulk{i:05d}") for i in range(0, 2100, 97))
    files = cat.snapshot().manifest.files  # type: ignore[union-attr]
    base = next(f for f in files if f.table == "tables" and f.kind == "base")
    assert base.index is not None
    assert len(base.index["groups"]) > 10
    cat.rename_table("b", "bulk00005", "renamed")
    names.add(("b", "renamed"))
    _check_same(store, cat, names)


def _bulk_catalog(tables: int) -> tuple[object, Catalog]:
    """A memory store with namespace ``a`` of ``tables`` tables ``t00000``, ... made in one
    transaction."""
    store = open_store("memory://")
    cat = Catalog(store)
    cat.create_namespace("a")
    with cat.transaction() as tx:
        for i in range(tables):
            tx.create_table("a", f"t{i:05d}", ["x:int64"])
    return store, cat


def test_a_point_read_fetches_one_row_group_not_the_whole_base() -> None:
    store, cat = _bulk_catalog(2500)
    base = next(
        f
        for f in cat.snapshot().manifest.files  # type: ignore[union-attr]
        if f.table == "tables" and f.kind == "base"
    )
    fetched: list[int] = []
    inner_get, inner_range = store.get, store.get_range

    def get(key: str) -> tuple[bytes, str]:
        assert key != base.path, "the whole base was read"
        return inner_get(key)

    def get_range(key: str, start: int, end: int) -> bytes:
        fetched.append(end - start)
        return inner_range(key, start, end)

    store.get, store.get_range = get, get_range  # type: ignore[method-assign]
    cold = Catalog(store)
    assert cold.get_table("a", "t01234").name == "t01234"
    assert len(fetched) == 2  # one row group, then the footer
    assert fetched[0] < base.size / 3
    assert sum(fetched) < base.size / 2


def test_a_tampered_row_group_is_detected_by_the_reader_and_by_verify() -> None:
    store = open_store("memory://")
    cat = Catalog(store)
    cat.create_namespace("a")
    with cat.transaction() as tx:
        for i in range(2500):
            tx.create_table("a", f"t{i:05d}", ["x:int64"])
    base = next(
        f
        for f in cat.snapshot().manifest.files  # type: ignore[union-attr]
        if f.table == "tables" and f.kind == "base"
    )
    assert base.index is not None
    start, length = base.index["groups"][0][2:4]
    data = bytearray(store.get(base.path)[0])
    data[start + length // 2] ^= 0xFF
    store.put(base.path, bytes(data), "overwrite")
    with pytest.raises(IntegrityError, match="do not match the manifest's index"):
        Catalog(store).get_table("a", "t00000")
    problems = [p.message for p in verify(store, cat.scope).problems]
    assert any("SHA-256" in m for m in problems)
    for damaged in (data[: len(data) // 2], data[:-1]):
        store.put(base.path, bytes(damaged), "overwrite")
        with pytest.raises(IntegrityError):
            Catalog(store).list_tables("a")


def test_a_catalog_written_before_sorted_bases_is_read_and_migrated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = open_store("memory://")
    unsorted = dataclasses.replace(TABLES, sort_key=())
    monkeypatch.setitem(CatalogState.TABLES, "tables", unsorted)
    old = Catalog(store)
    old.create_namespace("a")
    with old.transaction() as tx:
        for i in range(2500):
            tx.create_table("a", f"t{i:05d}", ["x:int64"])
    monkeypatch.setitem(CatalogState.TABLES, "tables", TABLES)

    def tables_base(cat: Catalog) -> object:
        files = cat.domain.read_head(0).manifest.files  # type: ignore[union-attr]
        return next(f for f in files if f.table == "tables" and f.kind == "base")

    assert tables_base(old).index is None  # type: ignore[attr-defined]
    reader = Catalog(store)
    assert reader.get_table("a", "t00042").name == "t00042"  # falls back to the fold
    assert reader.domain.folded
    writer = Catalog(store)
    writer.create_table("a", "new", ["x:int64"])  # the next commit rewrites the base
    assert tables_base(writer).index is not None  # type: ignore[attr-defined]
    cold = Catalog(store)
    assert cold.get_table("a", "t00042") == reader.get_table("a", "t00042")
    assert cold.get_table("a", "new").name == "new"
    assert not cold.domain.folded
    assert verify(store, cold.scope).ok


def test_bulk_deltas_are_compressed_and_a_point_read_decodes_only_their_keys() -> None:
    store = open_store("memory://")
    cat = Catalog(store)
    cat.create_namespace("a")
    with cat.transaction() as tx:  # more than BASE_MIN_DELTA_ROWS: a base
        for i in range(tableset.BASE_MIN_DELTA_ROWS + 1):
            tx.create_table("a", f"s{i:04d}", ["x:int64"])
    with cat.transaction() as tx:  # a bulk level-0 delta (below the base-rewrite limit)
        for i in range(500):
            tx.create_table("a", f"t{i:04d}", ["x:int64", "y:string"], description="d" * 50)
    cat.create_table("a", "one", ["x:int64"])
    files = cat.snapshot().manifest.files  # type: ignore[union-attr]
    deltas = [f for f in files if f.table == "tables" and f.kind == "delta"]

    def codec(path: str) -> str:
        reader = tableset.parquet_reader(pa.BufferReader(store.get(path)[0]))
        return str(reader.metadata.row_group(0).column(0).compression)

    big = [f for f in deltas if f.rows > tableset.SMALL_DELTA_ROWS]
    small = [f for f in deltas if f.rows <= tableset.SMALL_DELTA_ROWS]
    assert big
    assert small
    assert {codec(f.path) for f in big} == {"ZSTD"}
    assert {codec(f.path) for f in small} == {"UNCOMPRESSED"}  # one-table commits stay cheap

    cold = Catalog(store)
    assert cold.get_table("a", "s0001").name == "s0001"  # a base row
    # Neither delta's key ranges (t0000..t0499, and "one") can hold it: none is fetched.
    assert list(cold.domain._tables) == []
    assert cold.get_table("a", "t0123") == cat.get_table("a", "t0123")  # a delta row, whole
    cached = list(cold.domain._tables)
    bulk = next(f.path for f in big)
    # The bulk delta's key columns, then that one row's file whole; the one-table
    # delta is ruled out by its id range.
    assert cached == [f"{bulk}#id,namespace,name,_op,_version", bulk], cached
    # One question searches the deltas' key lists; only listings build the overlay.
    reader = cold._reader()
    assert reader is not None
    assert reader.tables._overlay is None
    cold.list_tables("a", page_size=5)
    assert reader.tables._overlay is not None


def test_a_table_past_one_row_group_is_read_by_row_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 1,000 tables a cold point read decodes one row group, not a 1,000-row delta."""
    assert tableset.BASE_MIN_DELTA_ROWS <= tableset.GROUP_ROWS
    store, cat = _bulk_catalog(1000)
    files = cat.snapshot().manifest.files  # type: ignore[union-attr]
    assert [f.kind for f in files if f.table == "tables"] == ["base"]
    decoded: list[int] = []
    whole = tableset.decode

    def counting_decode(data: bytes, columns: object = None) -> pa.Table:
        decoded.append(len(data))
        return whole(data, columns)  # type: ignore[arg-type]

    monkeypatch.setattr(tableset, "decode", counting_decode)
    assert Catalog(store).get_table("a", "t00777").name == "t00777"
    assert decoded == []  # no state file decoded whole: one row group, by range
