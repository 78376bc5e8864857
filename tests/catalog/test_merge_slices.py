"""Merging deltas by slices gives exactly the rows the row-by-row merge gave."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from arco.catalog.state import CatalogState
from arco.domain import tableset

TDEF = CatalogState.TABLES["tables"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _row(table_id: str, name: str, op: int) -> dict[str, Any]:
    return {
        "id": table_id,
        "namespace": "ns",
        "name": name,
        "format": "parquet",
        "location": None,
        "description": None,
        "properties": [("k", name)],
        "schema_version": 1,
        "last_column_id": 1,
        "columns": [
            {
                "column_id": 1,
                "ordinal": 0,
                "name": "c",
                "data_type": "int64",
                "nullable": True,
                "description": None,
            }
        ],
        "created_at": T0,
        "updated_at": T0,
        "metadata_location": None,
        "_op": op,
    }


def _reference(tables: list[pa.Table]) -> list[dict[str, Any]]:
    """The row-by-row merge: newest row per key, in version order."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for table in tables:
        for row in table.to_pylist():
            latest[TDEF.row_key(row)] = row
    return sorted(latest.values(), key=lambda r: r["_version"])


def _by_key(rows: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {TDEF.row_key(r): r for r in rows}


def test_merges_of_random_deltas_match_the_row_by_row_merge() -> None:
    rng = random.Random(7)
    for _ in range(200):
        tables = []
        version = 0
        for _ in range(rng.randint(1, 9)):
            version += rng.randint(1, 3)
            rows = [
                _row(f"id{rng.randrange(6)}", f"n{rng.randrange(100)}", rng.choice([0, 0, 1]))
                for _ in range(rng.randint(0, 4))
            ]
            tables.append(tableset.delta_table_of(TDEF, rows, version))
        merged = tableset.merge_deltas(TDEF, tables)
        assert merged.schema.equals(TDEF.delta_schema)
        got = merged.to_pylist()
        want = _reference(tables)
        assert _by_key(got) == _by_key(want)
        assert [r["_version"] for r in got] == sorted(r["_version"] for r in got)
        assert len(got) == len(want)


def test_a_later_row_of_one_commit_wins_as_in_a_fold() -> None:
    first = _row("a", "old", 0)
    second = _row("a", "new", 0)
    merged = tableset.merge_deltas(
        TDEF, [tableset.delta_table_of(TDEF, [first, second], 3)]
    ).to_pylist()
    assert [r["name"] for r in merged] == ["new"]


def test_inputs_of_an_older_schema_still_merge() -> None:
    # A delta written before `metadata_location` existed lacks the column.
    old_schema = pa.schema([f for f in TDEF.delta_schema if f.name != "metadata_location"])
    row = {k: v for k, v in _row("a", "x", 0).items() if k != "metadata_location"}
    old = pa.Table.from_pylist([{**row, "_version": 1}], schema=old_schema)
    new = tableset.delta_table_of(TDEF, [_row("b", "y", 0)], 2)
    merged = tableset.merge_deltas(TDEF, [old, new]).to_pylist()
    assert [(r["id"], r["metadata_location"]) for r in merged] == [("a", None), ("b", None)]


def test_merging_does_not_load_pyarrow_compute() -> None:
    # Commits run in CLI processes, where importing pyarrow.compute costs 80 ms.
    code = (
        "import sys\n"
        "from arco.catalog.state import CatalogState\n"
        "from arco.domain import tableset\n"
        "tdef = CatalogState.TABLES['idempotency']\n"
        "row = {'key': 'k', 'request_hash': 'h', 'operation': 'o', 'result_json': None,\n"
        "       'created_at': None, '_op': 0}\n"
        "t = [tableset.delta_table_of(tdef, [dict(row, key=f'k{v % 3}')], v)\n"
        "     for v in range(1, 9)]\n"
        "assert len(tableset.merge_deltas(tdef, t)) == 3\n"
        "print('pyarrow.compute' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
