"""A sorted base carries each row group's own footer (ADR 029).

A cold point read decodes its one row group through that small footer instead of
the file's, whose size grows with the catalog; every other reader of the file
(pyarrow, DuckDB, a listing) must see a plain Parquet file, and ``verify`` must
catch an own footer that is damaged or describes other bytes.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arco.catalog import pointread
from arco.catalog.catalog import Catalog
from arco.catalog.state import TABLES
from arco.core.errors import IntegrityError
from arco.core.ids import sha256_hex
from arco.core.storage import open_store
from arco.domain import tableset
from arco.domain.manifest import FileEntry
from arco.domain.verify import index_problem, verify


@pytest.fixture(autouse=True)
def _cold_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: no footer or group kept."""
    monkeypatch.setattr(pointread, "_GROUPS", pointread._GroupCache(pointread.GROUP_CACHE_SIZE))
    monkeypatch.setattr(pointread, "_OWN_FOOTERS", pointread._GroupCache(16))


def _catalog(tables: int = 2500) -> tuple[Any, Catalog, FileEntry]:
    store = open_store("memory://")
    cat = Catalog(store)
    cat.create_namespace("a")
    with cat.transaction() as tx:
        for i in range(tables):
            tx.create_table("a", f"t{i:05d}", ["x:int64", "note:string"], description=f"d{i}")
    return store, cat, _base(cat)


def _base(cat: Catalog) -> FileEntry:
    files = cat.domain.read_head(0).manifest.files  # type: ignore[union-attr]
    return next(f for f in files if f.table == "tables" and f.kind == "base")


def _ranges_read(store: Any, path: str) -> list[tuple[int, int]]:
    """The (start, length) of every ranged read of ``path`` from now on."""
    fetched: list[tuple[int, int]] = []
    inner = store.get_range

    def get_range(key: str, start: int, end: int) -> bytes:
        if key == path:
            fetched.append((start, end - start))
        return inner(key, start, end)

    store.get_range = get_range
    return fetched


def _sample_table(rows: int) -> pa.Table:
    return pa.table(
        {
            "ns": ["n"] * rows,
            "name": [f"k{i:06d}" for i in range(rows)],
            "props": [{"a": str(i)} if i % 3 else None for i in range(rows)],
            "cols": [[{"id": i, "label": f"c{i}"}] * (i % 4) for i in range(rows)],
            "at": pa.array(range(rows), pa.timestamp("ms", tz="UTC")),
        },
        schema=pa.schema(
            [
                pa.field("ns", pa.string(), nullable=False),
                pa.field("name", pa.string(), nullable=False),
                pa.field("props", pa.map_(pa.string(), pa.string())),
                pa.field(
                    "cols",
                    pa.list_(pa.struct([("id", pa.int32()), ("label", pa.string())])),
                ),
                pa.field("at", pa.timestamp("ms", tz="UTC"), nullable=False),
            ]
        ),
    )


def _tdef() -> tableset.TableDef:
    schema = _sample_table(1).schema
    return tableset.TableDef(
        name="sample", schema=schema, key=("name",), sort_key=("ns", "name"), group_rows=100
    )


def test_the_base_is_plain_parquet_to_other_readers_and_each_group_reads_alone(
    tmp_path: Any,
) -> None:
    table = _sample_table(1050)
    data, index = tableset.encode_sorted_base(_tdef(), table)
    own = index["group_footers"]
    assert len(own) == len(index["groups"]) == 11
    # The own footers sit between the last column chunk and the file's footer.
    last_chunk_end = max(g[2] + g[3] for g in index["groups"])
    assert own[0][0] == last_chunk_end
    assert own[-1][0] + own[-1][1] == index["footer"][0]
    assert index["footer"][0] + index["footer"][1] == len(data)
    assert index_problem(index, data) is None

    path = tmp_path / "base.parquet"
    path.write_bytes(data)
    assert pq.read_table(path).equals(table)
    con = duckdb.connect()
    got = con.execute(
        "select count(*), min(name), max(name), count(props), sum(len(cols)) "
        f"from read_parquet('{path}')"
    ).fetchone()
    assert got == (1050, "k000000", "k001049", 700, sum(i % 4 for i in range(1050)))
    assert con.execute(
        f"select name from read_parquet('{path}') where name = 'k000777'"
    ).fetchall() == [("k000777",)]

    for g, (start, length, sha, size) in enumerate(own):
        packed = data[start : start + length]
        assert sha256_hex(packed) == sha
        footer = tableset.unpack_own_footer(packed, size)
        assert len(footer) < 4096  # a footer per group, not the file's
        body = data[index["groups"][g][2] : index["groups"][g][2] + index["groups"][g][3]]
        alone = tableset.read_group_alone(body, footer)
        assert alone.schema.equals(table.schema)
        assert alone.equals(table.slice(g * 100, 100))


def test_a_cold_point_read_never_fetches_the_files_footer() -> None:
    store, cat, base = _catalog()
    assert base.index is not None
    assert "group_footers" in base.index
    footer = base.index["footer"]
    fetched = _ranges_read(store, base.path)
    cold = Catalog(store)
    got = cold.get_table("a", "t01234")
    assert got == cat.get_table("a", "t01234")
    assert got.description == "d1234"
    assert (footer[0], footer[1]) not in fetched
    assert len(fetched) == 2  # the row group and its own footer
    assert sum(n for _, n in fetched) < footer[1]


def test_a_reader_that_keeps_reading_a_base_fetches_its_own_footers_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tableset, "GROUP_ROWS", 100)
    store, cat, base = _catalog()
    assert base.index is not None
    footer = base.index["footer"]
    groups = base.index["groups"]
    own = base.index["group_footers"]
    fetched = _ranges_read(store, base.path)
    reader = Catalog(store)
    for g in range(12):
        name = groups[g][0][-1]
        assert reader.get_table("a", name) == cat.get_table("a", name)
    assert (footer[0], footer[1]) not in fetched  # the file's footer: never
    blob = (own[0][0], own[-1][0] + own[-1][1] - own[0][0])
    group_ranges = {(g[2], g[3]) for g in groups}
    # Group 0 with its own footer; group 1 with all of them; then one GET a group.
    assert fetched[:2] == [(groups[0][2], groups[0][3]), (own[0][0], own[0][1])]
    assert fetched[2:4] == [(groups[1][2], groups[1][3]), blob]
    assert fetched[4:] == [(g[2], g[3]) for g in groups[2:12]]
    assert set(fetched[4:]) <= group_ranges


def test_a_damaged_own_footer_is_refused_by_the_reader_and_reported_by_verify() -> None:
    store, cat, base = _catalog()
    assert base.index is not None
    start, length = base.index["group_footers"][3][:2]
    name = base.index["groups"][3][0][-1]
    data = bytearray(store.get(base.path)[0])
    data[start + length // 2] ^= 0xFF
    store.put(base.path, bytes(data), "overwrite")
    with pytest.raises(IntegrityError, match="do not match the manifest's index"):
        Catalog(store).get_table("a", name)
    # ...and when it comes with all the others, after a first group was read.
    pointread._OWN_FOOTERS = pointread._GroupCache(16)
    reader = Catalog(store)
    first = base.index["groups"][0][0][-1]
    assert reader.get_table("a", first).name == first
    with pytest.raises(IntegrityError, match="do not match the manifest's index"):
        reader.get_table("a", name)
    problems = [p.message for p in verify(store, cat.scope).problems]
    assert any("SHA-256" in m for m in problems), problems  # the whole file's hash


def test_verify_reports_an_own_footer_that_describes_other_bytes() -> None:
    table = _sample_table(400)
    data, index = tableset.encode_sorted_base(_tdef(), table)
    assert index_problem(index, data) is None
    # Swap two groups' own footers in the index: every hash still matches.
    swapped = json.loads(json.dumps(index))
    own = swapped["group_footers"]
    own[0], own[1] = own[1], own[0]
    problem = index_problem(swapped, data)
    assert problem is not None
    assert "own footer" in problem
    short = json.loads(json.dumps(index))
    short["group_footers"].pop()
    assert "one footer per row group" in (index_problem(short, data) or "")


@pytest.mark.parametrize("own", ["absent", "malformed", "short"])
def test_a_base_without_usable_own_footers_is_read_through_the_files_footer(own: str) -> None:
    store, _, base = _catalog()
    assert base.index is not None
    old_index = {k: v for k, v in base.index.items() if k != "group_footers"}
    groups = len(base.index["groups"])
    if own == "malformed":
        old_index["group_footers"] = [["x", None, 3, "y"]] * groups
    elif own == "short":
        old_index["group_footers"] = base.index["group_footers"][:-1]
    reader = Catalog(store)
    snap = reader.domain.read_head(0)
    manifest = snap.manifest
    assert manifest is not None
    files = tuple(
        dataclasses.replace(f, index=old_index) if f.path == base.path else f
        for f in manifest.files
    )
    state_reader = pointread.StateReader(
        reader.domain, dataclasses.replace(manifest, files=files), TABLES
    )
    row = state_reader.get(("a", "t00042"))
    assert row is not None
    assert row["name"] == "t00042"
    assert pointread._GROUPS.get((old_index["footer"][2], -1)) is not None  # the file's footer


def test_a_writer_whose_group_bytes_differ_alone_writes_no_own_footers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = tableset._own_footer

    def off(schema: pa.Schema, group: pa.RecordBatch, options: dict[str, Any]) -> Any:
        _, footer = real(schema, group, options)
        return "0" * 64, footer

    monkeypatch.setattr(tableset, "_own_footer", off)
    table = _sample_table(300)
    data, index = tableset.encode_sorted_base(_tdef(), table)
    assert "group_footers" not in index
    assert index["footer"][0] + index["footer"][1] == len(data)
    assert pq.read_table(pa.BufferReader(data)).equals(table)
    assert index_problem(index, data) is None


def test_tables_read_through_the_files_footer_keep_no_own_footers() -> None:
    from arco.discovery.search.state import SearchState

    assert all(not t.own_footers for t in SearchState.TABLES.values() if t.sort_key)
    table = _sample_table(300)
    plain = dataclasses.replace(_tdef(), own_footers=False)
    data, index = tableset.encode_sorted_base(plain, table)
    assert "group_footers" not in index
    assert len(data) < len(tableset.encode_sorted_base(_tdef(), table)[0])
    assert pq.read_table(pa.BufferReader(data)).equals(table)


def test_the_catalogs_bases_have_no_dictionary_pages() -> None:
    # Nearly every string of a table row is distinct: a dictionary only made the
    # groups larger and a point read slower (issue #12).
    store, _, base = _catalog()
    meta = pq.read_metadata(pa.BufferReader(store.get(base.path)[0]))
    group = meta.row_group(0)
    assert not any(group.column(c).has_dictionary_page for c in range(group.num_columns))
    search_like = dataclasses.replace(_tdef(), dictionary=True)
    data, _ = tableset.encode_sorted_base(search_like, _sample_table(200))
    assert pq.read_metadata(pa.BufferReader(data)).row_group(0).column(0).has_dictionary_page
