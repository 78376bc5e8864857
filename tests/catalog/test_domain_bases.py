"""``Change.bases``: whole non-resident tables published from Arrow, through the protocol."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pyarrow as pa
import pytest

from arco.core import Scope
from arco.core.storage import open_store
from arco.domain import tableset
from arco.domain.store import Change, DomainStore, Snapshot
from arco.domain.tableset import TableDef
from arco.domain.verify import verify
from arco.ledger.folds import RowMapState

SCOPE = Scope("default", "default")
FACTS = TableDef(
    "facts",
    pa.schema([pa.field("k", pa.string()), pa.field("v", pa.int64())]),
    ("k",),
    resident=False,
)
ROWS = TableDef("rows", pa.schema([pa.field("k", pa.string())]), ("k",))


class State(RowMapState):
    TABLES: ClassVar[dict[str, TableDef]] = {"facts": FACTS, "rows": ROWS}


def store_of() -> DomainStore[State]:
    return DomainStore(open_store(f"memory://{uuid.uuid4().hex}"), SCOPE, "testbases", State)


def facts(n: int, offset: int = 0) -> pa.Table:
    return pa.table(
        {"k": [f"k{i}" for i in range(n)], "v": [i + offset for i in range(n)]}, schema=FACTS.schema
    )


def test_bases_replace_the_table_and_prepare_runs_before_the_write() -> None:
    domain = store_of()
    domain.commit(
        lambda _s: Change(
            rows={"facts": [{"k": "old", "v": 0, "_op": 0}], "rows": [{"k": "r", "_op": 0}]}
        )
    )
    prepared: list[str] = []

    def prepare(table: str, data: pa.Table) -> pa.Table:
        prepared.append(table)
        return data.set_column(
            1, "v", pa.array([x * 10 for x in data.column("v").to_pylist()], pa.int64())
        )

    def mutate(_snap: Snapshot[State]) -> Change:
        return Change(bases={"facts": facts(3)}, prepare_base=prepare)

    snap = domain.commit(mutate).snapshot
    assert prepared == ["facts"]
    got = domain.load_table(snap, "facts").to_pylist()
    assert got == [{"k": "k0", "v": 0}, {"k": "k1", "v": 10}, {"k": "k2", "v": 20}]
    assert [f.kind for f in snap.files if f.table == "facts"] == ["base"]
    # Other tables are untouched; the result reads back in a new process and verifies.
    fresh = DomainStore(domain.store, SCOPE, "testbases", State).read()
    assert list(fresh.state.table("rows")) == [("r",)]
    assert domain.load_table(fresh, "facts").to_pylist() == got
    assert verify(domain.store, SCOPE).ok


def test_bases_refuse_resident_tables_and_count_as_a_change() -> None:
    domain = store_of()
    assert not Change(bases={"facts": facts(0)}).is_empty
    bad = pa.table({"k": ["x"]})

    def mutate(_snap: Snapshot[Any]) -> Change:
        return Change(bases={"rows": bad})

    with pytest.raises(ValueError, match="non-resident"):
        domain.commit(mutate)
    assert domain.read().version == 0  # nothing was published


SORTED = TableDef(
    "sorted",
    pa.schema([pa.field("k", pa.string(), nullable=False), pa.field("v", pa.int64())]),
    ("k",),
    resident=False,
    sort_key=("k",),
    group_rows=8,
)


class SortedState(RowMapState):
    TABLES: ClassVar[dict[str, TableDef]] = {"sorted": SORTED}


def test_a_base_given_as_sorted_batches_is_the_file_of_the_whole_table() -> None:
    """Batches of any sizes, made only at the write, give the same bytes, row-group
    index and row count as the whole table would; a second write of them fails."""
    rows = pa.table(
        {"k": [f"k{i:03d}" for i in range(29)], "v": list(range(29))}, schema=SORTED.schema
    )
    whole = tableset.encode_sorted_base(SORTED, rows)
    made: list[int] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for start, size in ((0, 5), (5, 1), (6, 13), (19, 10)):
            made.append(start)
            yield from rows.slice(start, size).to_batches()

    streamed = tableset.encode_sorted_base(SORTED, tableset.SortedBatches(SORTED.schema, batches))
    assert streamed == whole
    assert [g[5] for g in whole[1]["groups"]] == [8, 8, 8, 5]

    domain: DomainStore[SortedState] = DomainStore(
        open_store(f"memory://{uuid.uuid4().hex}"), SCOPE, "testsorted", SortedState
    )
    made.clear()
    snap = domain.commit(
        lambda _s: Change(bases={"sorted": tableset.SortedBatches(SORTED.schema, batches)})
    ).snapshot
    assert made == [0, 5, 6, 19]  # made once, at the write
    (entry,) = [f for f in snap.files if f.table == "sorted"]
    assert entry.rows == 29
    assert entry.index == whole[1]
    assert domain.load_table(snap, "sorted").equals(rows)
    assert verify(domain.store, SCOPE).ok


def test_an_empty_sorted_base_has_no_row_groups() -> None:
    data, index = tableset.encode_sorted_base(SORTED, SORTED.schema.empty_table())
    assert index["groups"] == []
    assert tableset.decode(data).num_rows == 0
