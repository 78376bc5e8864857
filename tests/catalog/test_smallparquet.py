"""Small deltas are written by Arco's own Parquet writer (ADR 031), which must give
pyarrow's bytes exactly: for random rows of every delta schema Arco has, for level
sequences that exercise every run the RLE encoder can choose, from many threads,
and it must hand anything it does not know to pyarrow."""

from __future__ import annotations

import importlib
import inspect
import threading
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arco.catalog.catalog import Catalog
from arco.catalog.state import TABLES
from arco.core.scope import Scope
from arco.domain import smallparquet, tableset
from arco.domain.tableset import TableDef

STATE_MODULES = (
    "arco.catalog.state",
    "arco.discovery.search.state",
    "arco.ledger.states",
    "arco.ledger.external_lineage",
)


def _delta_schemas() -> dict[str, pa.Schema]:
    """Every distinct delta schema of Arco's state tables, by one table's name."""
    defs: dict[str, TableDef] = {}
    for name in STATE_MODULES:
        for obj in vars(importlib.import_module(name)).values():
            if isinstance(obj, TableDef):
                defs[obj.name] = obj
            tables = getattr(obj, "TABLES", None) if inspect.isclass(obj) else None
            if isinstance(tables, dict):
                defs.update({t.name: t for t in tables.values()})
    schemas: dict[str, pa.Schema] = {}
    for name, tdef in sorted(defs.items()):
        if not any(s.equals(tdef.delta_schema) for s in schemas.values()):
            schemas[name] = tdef.delta_schema
    return schemas


SCHEMAS = _delta_schemas()


def _pyarrow(table: pa.Table) -> bytes:
    return tableset._encode(table, small=True)


def _ours(table: pa.Table) -> bytes:
    """The table written by this module's fast path, never by pyarrow."""
    plan = smallparquet._plan_of(table.schema)
    reference = _pyarrow(table)
    length = int.from_bytes(reference[-8:-4], "little")
    plan.prefix, plan.suffix = smallparquet._frame(reference[-8 - length : -8])
    return smallparquet._encode(plan, table)


def _values(t: pa.DataType) -> st.SearchStrategy[Any]:
    if pa.types.is_boolean(t):
        return st.booleans()
    if pa.types.is_integer(t):
        info = {8: 2**7, 16: 2**15, 32: 2**31, 64: 2**63}[t.bit_width]
        if pa.types.is_unsigned_integer(t):
            return st.integers(0, 2 * info - 1)
        return st.integers(-info, info - 1)
    if pa.types.is_floating(t):
        return st.floats(width=t.bit_width)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return st.text(max_size=12)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return st.binary(max_size=12)
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return st.integers(-(2**40), 2**40)
    if pa.types.is_struct(t):
        return st.fixed_dictionaries({f.name: _field(f) for f in t})
    if pa.types.is_map(t):
        return st.lists(st.tuples(_field(t.key_field), _field(t.item_field)), max_size=4)
    if pa.types.is_list(t):
        return st.lists(_field(t.value_field), max_size=5)
    raise AssertionError(f"no strategy for {t}")


def _field(f: pa.Field) -> st.SearchStrategy[Any]:
    values = _values(f.type)
    return st.one_of(st.none(), values) if f.nullable else values


def _rows(schema: pa.Schema) -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.fixed_dictionaries({f.name: _field(f) for f in schema})
    return st.lists(row, min_size=1, max_size=tableset.SMALL_DELTA_ROWS // 8)


def test_every_delta_schema_of_arco_is_written_by_the_fast_path() -> None:
    # A schema it refused would silently cost a commit pyarrow's set-up again.
    assert len(SCHEMAS) >= 15
    for name, schema in SCHEMAS.items():
        assert smallparquet._plan_of(schema) is not None, name


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_random_rows_of_each_delta_schema_give_pyarrows_bytes(name: str, data: Any) -> None:
    schema = SCHEMAS[name]
    rows = data.draw(_rows(schema))
    table = pa.Table.from_pylist(rows, schema=schema)
    reference = _pyarrow(table)
    assert _ours(table) == reference
    # What a process does with the first table of a schema: check, then serve it.
    assert isinstance(smallparquet._learn(table, reference), smallparquet._Plan)


NESTED = pa.schema(
    [
        pa.field("items", pa.list_(pa.field("item", pa.int64()))),
        pa.field("tags", pa.map_(pa.string(), pa.string())),
        pa.field(
            "cols",
            pa.list_(pa.struct([pa.field("n", pa.string()), pa.field("k", pa.int32(), False)])),
        ),
        pa.field("flag", pa.bool_()),
    ]
)


def _runs(item: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """Lists made of runs (1 to 40 long) of a value or a null: repeated runs, literal
    runs, literal runs past 63 groups and every switch between them."""
    run = st.tuples(st.one_of(st.none(), item), st.integers(1, 40))
    return st.lists(run, max_size=30).map(lambda rs: [v for v, n in rs for _ in range(n)])


@settings(max_examples=150, deadline=None)
@given(
    items=st.one_of(st.none(), _runs(st.just(7))),
    tags=st.one_of(st.none(), _runs(st.just("v")).map(lambda vs: [("k", v) for v in vs])),
    cols=st.one_of(
        st.none(),
        _runs(st.just({"n": "c", "k": 1})).map(lambda vs: [v or {"n": None, "k": 2} for v in vs]),
    ),
    flags=st.lists(st.one_of(st.none(), st.booleans()), min_size=1, max_size=20),
)
def test_level_runs_of_every_shape_give_pyarrows_bytes(
    items: list[Any] | None, tags: list[Any] | None, cols: list[Any] | None, flags: list[Any]
) -> None:
    rows = [{"items": items, "tags": tags, "cols": cols, "flag": f} for f in flags[:1]]
    rows += [{"items": [], "tags": None, "cols": [], "flag": f} for f in flags[1:]]
    table = pa.Table.from_pylist(rows, schema=NESTED)
    reference = _pyarrow(table)
    try:
        ours = _ours(table)
    except smallparquet._UnsupportedError:
        # More levels than one write batch: pyarrow writes it, and must be asked to.
        assert max(len(items or []), len(tags or []), len(cols or [])) > 1000
        assert smallparquet.encode_small(table, _pyarrow) == reference
        return
    assert ours == reference


def test_the_rle_encoder_matches_pyarrow_at_the_literal_run_limit() -> None:
    # 63 groups of alternating values (504), then one more group: two literal runs.
    for n in (503, 504, 505, 512, 520, 1000):
        items = [None if i % 2 else i for i in range(n)]
        table = pa.Table.from_pylist(
            [{"items": items, "tags": None, "cols": None, "flag": True}], schema=NESTED
        )
        assert _ours(table) == _pyarrow(table), n


def test_the_first_table_of_a_schema_is_checked_then_the_rest_skip_pyarrow() -> None:
    schema = pa.schema([pa.field("x_first_check", pa.string()), pa.field("n", pa.int64())])
    calls: list[int] = []

    def reference(table: pa.Table) -> bytes:
        calls.append(table.num_rows)
        return _pyarrow(table)

    first = pa.Table.from_pylist([{"x_first_check": "a", "n": 1}], schema=schema)
    assert smallparquet.encode_small(first, reference) == _pyarrow(first)
    assert calls == [1]
    later = pa.Table.from_pylist([{"x_first_check": None, "n": 2}] * 3, schema=schema)
    assert smallparquet.encode_small(later, reference) == _pyarrow(later)
    assert calls == [1], "the fast path asked pyarrow after the schema was learned"


def _table_row(i: int, columns: int) -> dict[str, Any]:
    now = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
    return {
        "id": f"01J{i:023d}",
        "namespace": "sales",
        "name": f"t{i}",
        "format": "parquet",
        "properties": {"owner": "data"},
        "schema_version": 1,
        "last_column_id": columns,
        "columns": [
            {"column_id": c + 1, "ordinal": c, "name": f"c{c}", "data_type": "int64"}
            | {"nullable": True}
            for c in range(columns)
        ],
        "created_at": now,
        "updated_at": now,
        "_op": 0,
    }


@pytest.mark.parametrize(
    ("rows", "columns", "here"),
    [(1, 10, True), (4, 10, True), (64, 10, False), (1, 500, False), (2, 0, True)],
)
def test_deltas_pyarrow_writes_faster_are_left_to_it(rows: int, columns: int, here: bool) -> None:
    # pyarrow pays per leaf, this module per value: a bulk transaction's 64 rows or
    # a 500-column table's one row cost less through pyarrow.
    table = tableset.delta_table_of(
        TABLES, [_table_row(i, columns) for i in range(rows)], version=3
    )
    plan = smallparquet._plan_of(table.schema)
    assert smallparquet._cheaper_here(plan, table) is here
    calls: list[int] = []

    def reference(t: pa.Table) -> bytes:
        calls.append(t.num_rows)
        return _pyarrow(t)

    learn = tableset.delta_table_of(TABLES, [_table_row(0, 3)], version=3)
    smallparquet.encode_small(learn, reference)
    calls.clear()
    assert smallparquet.encode_small(table, reference) == _pyarrow(table)
    assert calls == ([] if here else [rows])


def test_a_first_table_too_large_for_the_fast_path_does_not_turn_it_off() -> None:
    schema = pa.schema([pa.field("many_first", pa.list_(pa.int64()))])
    calls: list[int] = []

    def reference(table: pa.Table) -> bytes:
        calls.append(table.num_rows)
        return _pyarrow(table)

    big = pa.Table.from_pylist([{"many_first": list(range(1500))}], schema=schema)
    assert smallparquet.encode_small(big, reference) == _pyarrow(big)
    small = pa.Table.from_pylist([{"many_first": [1, 2]}], schema=schema)
    assert smallparquet.encode_small(small, reference) == _pyarrow(small)
    again = pa.Table.from_pylist([{"many_first": [3]}, {"many_first": None}], schema=schema)
    assert smallparquet.encode_small(again, reference) == _pyarrow(again)
    # The big one and the first small one (learning) went to pyarrow, not the third.
    assert calls == [1, 1]


def test_a_schema_whose_bytes_disagree_is_left_to_pyarrow() -> None:
    # As if a pyarrow release wrote other bytes: the schema is never written here.
    schema = pa.schema([pa.field("x_disagrees", pa.string())])
    calls: list[int] = []

    def other_writer(table: pa.Table) -> bytes:
        calls.append(table.num_rows)
        return tableset._encode(table, small=False)

    for n in (1, 2, 3):
        table = pa.Table.from_pylist([{"x_disagrees": "v"}] * n, schema=schema)
        assert smallparquet.encode_small(table, other_writer) == tableset._encode(
            table, small=False
        )
    assert calls == [1, 2, 3]


@pytest.mark.parametrize(
    "field",
    [
        pa.field("d", pa.decimal128(10, 2)),
        pa.field("t", pa.time32("s")),
        pa.field("ts", pa.timestamp("s")),
        pa.field("u", pa.uint32()),
        pa.field("f", pa.float32()),
        pa.field("nested_ts", pa.list_(pa.timestamp("ms"))),
        pa.field("dict", pa.dictionary(pa.int32(), pa.string())),
    ],
    ids=lambda f: f.name,
)
def test_types_it_does_not_know_are_written_by_pyarrow(field: pa.Field) -> None:
    schema = pa.schema([pa.field("id_unknown_type", pa.string()), field])
    table = pa.Table.from_pylist([{"id_unknown_type": "a", field.name: None}], schema=schema)
    with pytest.raises(smallparquet._UnsupportedError):
        smallparquet._plan_of(schema)
    assert smallparquet.encode_small(table, _pyarrow) == _pyarrow(table)


def test_a_null_in_a_column_declared_not_null_is_left_to_pyarrow() -> None:
    schema = pa.schema([pa.field("x_not_null", pa.string(), nullable=False)])
    good = pa.Table.from_pylist([{"x_not_null": "a"}], schema=schema)
    assert smallparquet.encode_small(good, _pyarrow) == _pyarrow(good)
    plan = smallparquet._learn(good, _pyarrow(good))
    assert isinstance(plan, smallparquet._Plan)
    bad = pa.Table.from_arrays([pa.array([None, "a"], pa.string())], schema=schema)
    with pytest.raises(smallparquet._UnsupportedError):
        smallparquet._encode(plan, bad)
    # pyarrow refuses it, and so the commit does: no file is written.
    with pytest.raises(pa.ArrowInvalid, match="non-nullable"):
        smallparquet.encode_small(bad, _pyarrow)


@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_threads_writing_at_once_each_get_their_own_tables_bytes(data: Any) -> None:
    tables = [
        pa.Table.from_pylist(data.draw(_rows(schema)), schema=schema)
        for schema in list(SCHEMAS.values()) * 2
    ]
    expected = [_pyarrow(t) for t in tables]
    failures: list[int] = []

    def work(offset: int) -> None:
        for _ in range(20):
            for i in range(len(tables)):
                j = (i + offset) % len(tables)
                if smallparquet.encode_small(tables[j], _pyarrow) != expected[j]:
                    failures.append(j)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_a_catalog_commit_writes_a_delta_duckdb_reads(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_pyarrow: list[str] = []
    real = tableset._encode_small

    def counted(table: pa.Table) -> bytes:
        by_pyarrow.append(table.schema.names[1])
        return real(table)

    monkeypatch.setattr(tableset, "_encode_small", counted)
    cat = Catalog(f"file://{tmp_path}", Scope("acme", "prod"))
    cat.create_namespace("sales")
    columns = [{"name": "id", "type": "int64"}, {"name": "note", "type": "string"}]
    for i in range(5):
        cat.create_table("sales", f"orders_{i}", columns, description=f"table {i}")
    # pyarrow wrote at most the first delta of each schema (if this process had
    # not written one yet); the other commits were written by the fast path.
    assert len(by_pyarrow) <= 2
    deltas = sorted(tmp_path.rglob("*-tables.L0.parquet"))
    assert len(deltas) == 5
    rows = duckdb.sql(
        "SELECT name, description, columns[2].name AS second FROM read_parquet("
        f"{[str(p) for p in deltas]}) ORDER BY name"
    ).fetchall()
    assert rows == [(f"orders_{i}", f"table {i}", "note") for i in range(5)]
    assert [t.name for t in cat.list_tables("sales").items] == [f"orders_{i}" for i in range(5)]


def test_a_table_of_several_chunks_or_a_slice_gives_pyarrows_bytes() -> None:
    one = tableset.delta_table_of(TABLES, [_table_row(0, 3)], version=2)
    two = tableset.delta_table_of(TABLES, [_table_row(1, 5), _table_row(2, 0)], version=3)
    joined = pa.concat_tables([one, two])
    assert joined.column(0).num_chunks == 2
    assert _ours(joined) == _pyarrow(joined)
    sliced = joined.slice(1, 2)
    assert _ours(sliced) == _pyarrow(sliced)
    # Sliced list offsets count only the slice's items.
    plan = smallparquet._plan_of(TABLES.delta_schema)
    wide = tableset.delta_table_of(TABLES, [_table_row(3, 200), _table_row(4, 1)], version=4)
    assert not smallparquet._cheaper_here(plan, wide)
    assert smallparquet._cheaper_here(plan, wide.slice(1, 1))
