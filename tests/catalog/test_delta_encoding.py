"""A commit's delta is built and encoded by shortcuts that must give what pyarrow's
documented calls give: the same Arrow table as ``Table.from_pylist`` and the same
Parquet bytes as ``pyarrow.parquet.write_table``."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arco.catalog.state import IDEMPOTENCY, NAMESPACES, TABLES
from arco.domain import tableset
from arco.domain.tableset import TableDef

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def _table_row(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"01J{i:023d}",
        "namespace": "ns",
        "name": f"t{i}",
        "format": "parquet",
        "location": None,
        "description": "d" if i % 2 else None,
        "properties": {"k": "v"} if i % 2 else {},
        "schema_version": 1,
        "last_column_id": 2,
        "columns": [
            {
                "column_id": c + 1,
                "ordinal": c,
                "name": f"c{c}",
                "data_type": "int64",
                "nullable": True,
                "description": None,
            }
            for c in range(2)
        ],
        "created_at": NOW,
        "updated_at": NOW,
        "_op": i % 2,
        **extra,
    }


def _reference(tdef: TableDef, rows: list[dict[str, Any]], version: int) -> pa.Table:
    schema = tdef.schema.append(pa.field("_op", pa.int8(), nullable=False))
    table = pa.Table.from_pylist(rows, schema=schema)
    stamp = pa.repeat(pa.scalar(version, pa.int64()), len(rows))
    return table.append_column(pa.field("_version", pa.int64(), nullable=False), stamp)


@pytest.mark.parametrize(
    ("tdef", "rows"),
    [
        (TABLES, [_table_row(1)]),
        (TABLES, [_table_row(i) for i in range(5)]),
        # a row without metadata_location (missing: null) and one with a stray key
        (TABLES, [_table_row(2, metadata_location="s3://m.json"), _table_row(3, stray=1)]),
        (NAMESPACES, [{"id": "x", "name": "ns", "created_at": NOW, "updated_at": NOW, "_op": 0}]),
        (IDEMPOTENCY, []),
    ],
)
def test_a_delta_table_is_what_from_pylist_builds(
    tdef: TableDef, rows: list[dict[str, Any]]
) -> None:
    got = tableset.delta_table_of(tdef, rows, 7)
    want = _reference(tdef, rows, 7)
    assert got.schema.equals(want.schema, check_metadata=True)
    assert got.equals(want)
    assert got.schema.equals(tdef.delta_schema)


def test_a_delta_row_of_the_wrong_type_fails_as_from_pylist_does() -> None:
    with pytest.raises(pa.ArrowInvalid):
        tableset.delta_table_of(TABLES, [_table_row(1, schema_version="one")], 7)


@pytest.mark.parametrize("small", [True, False])
def test_encoded_bytes_are_those_of_pyarrow_parquet_write_table(small: bool) -> None:
    table = tableset.delta_table_of(TABLES, [_table_row(i) for i in range(3)], 7)
    sink = io.BytesIO()
    if small:
        pq.write_table(
            table, sink, compression="none", write_statistics=False, use_dictionary=False
        )
    else:
        pq.write_table(table, sink, compression="zstd", write_statistics=True)
    data = tableset.encode(table, small=small)
    assert data == sink.getvalue()
    assert tableset.decode(data).equals(table)
