"""A state file written before a nullable column was added still reads (tableset).

Tables only ever gain nullable columns; files keep the schema they were written
with. Every reader - the resident fold, a table read from its files, a merge of
deltas - sees the missing column as nulls.
"""

from __future__ import annotations

import pyarrow as pa

from arco.domain import tableset
from arco.domain.tableset import TableDef

OLD = pa.schema([pa.field("k", pa.string(), nullable=False), pa.field("a", pa.int64())])
NEW = OLD.append(pa.field("b", pa.string()))


def _def(schema: pa.Schema, *, append_only: bool = False) -> TableDef:
    return TableDef("t", schema, ("k",), append_only=append_only)


def _old_delta(rows: list[dict[str, object]], version: int) -> pa.Table:
    marked = [{**r, "_op": tableset.OP_UPSERT} for r in rows]
    data = tableset.encode(tableset.delta_table_of(_def(OLD), marked, version))
    return tableset.decode(data)


def test_a_missing_nullable_column_reads_as_nulls() -> None:
    old = _old_delta([{"k": "x", "a": 1}], 1)
    assert old.column_names == ["k", "a", "_op", "_version"]
    rows = tableset.to_rows(tableset.with_added_columns(_def(NEW), old))
    assert rows == [{"k": "x", "a": 1, "_op": 0, "_version": 1, "b": None}]
    # A file with every column is returned as it is.
    same = tableset.with_added_columns(_def(OLD), old)
    assert same is old


def test_old_and_new_files_fold_and_merge_together() -> None:
    new_rows = [{"k": "y", "a": 2, "b": "z", "_op": tableset.OP_UPSERT}]
    new = tableset.delta_table_of(_def(NEW), new_rows, 2)
    for append_only in (False, True):
        tdef = _def(NEW, append_only=append_only)
        old = _old_delta([{"k": "x", "a": 1}], 1)
        folded = tableset.fold_table(tdef, None, [old, new])
        assert folded.schema == tdef.schema
        assert sorted(folded.to_pylist(), key=lambda r: r["k"]) == [
            {"k": "x", "a": 1, "b": None},
            {"k": "y", "a": 2, "b": "z"},
        ]
        merged = tableset.merge_deltas(tdef, [old, new])
        assert merged.schema == tdef.delta_schema
        assert [r["b"] for r in merged.to_pylist()] == [None, "z"]
