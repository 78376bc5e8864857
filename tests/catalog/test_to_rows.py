"""``tableset.to_rows`` is exactly ``pa.Table.to_pylist`` (values, types and tzinfo)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from arco.catalog.state import TABLES
from arco.domain.tableset import to_rows
from arco.ledger.folds import LEDGER_OBJECTS, RUNS

MS = st.integers(-(2**40), 2**44)  # around 1935 .. 2527 in milliseconds
TYPES: dict[str, tuple[pa.DataType, Any]] = {
    "ts_ms_utc": (pa.timestamp("ms", tz="UTC"), MS),
    "ts_us_utc": (pa.timestamp("us", tz="UTC"), MS.map(lambda v: v * 1000 + 7)),
    "ts_s_naive": (pa.timestamp("s"), MS.map(lambda v: v // 1000)),
    "ts_ms_paris": (pa.timestamp("ms", tz="Europe/Paris"), MS),
    "ts_ns_utc": (pa.timestamp("ns", tz="UTC"), st.integers(0, 2**50).map(lambda v: v * 1000)),
    "text": (pa.string(), st.text(max_size=5)),
    "number": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "props": (pa.map_(pa.string(), pa.string()), st.lists(st.tuples(st.text(), st.text()))),
}


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    names = draw(st.lists(st.sampled_from(sorted(TYPES)), unique=True, max_size=5))
    n = draw(st.integers(0, 30))
    arrays = []
    for name in names:
        dtype, values = TYPES[name]
        items = draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))
        arrays.append(pa.array(items, dtype))
    table = pa.table(arrays, names=names) if names else pa.table({})
    if names and n > 2 and draw(st.booleans()):  # several chunks, then a slice of them
        table = pa.concat_tables([table, table]).slice(draw(st.integers(0, n)), n)
    return table


@settings(max_examples=300, deadline=None)
@given(tables())
def test_to_rows_equals_to_pylist(table: pa.Table) -> None:
    want = table.to_pylist()
    got = to_rows(table)
    assert got == want
    assert repr(got) == repr(want)  # same types and tzinfo objects, not only equal values


def test_state_table_schemas_round_trip() -> None:
    when = datetime(2026, 12, 4, 12, 30, 15, 123000, tzinfo=UTC)
    rows = [
        {
            "id": "t1",
            "namespace": "ns",
            "name": "x",
            "format": "parquet",
            "location": None,
            "description": "d",
            "properties": [("k", "v")],
            "schema_version": 1,
            "last_column_id": 2,
            "columns": [
                {
                    "column_id": 1,
                    "ordinal": 0,
                    "name": "a",
                    "data_type": "int64",
                    "nullable": True,
                    "description": None,
                }
            ],
            "created_at": when,
            "updated_at": when,
        }
    ]
    table = pa.Table.from_pylist(rows, schema=TABLES.schema)
    assert repr(to_rows(table)) == repr(table.to_pylist())
    for tdef in (RUNS, LEDGER_OBJECTS):
        empty = tdef.schema.empty_table()
        assert to_rows(empty) == []
