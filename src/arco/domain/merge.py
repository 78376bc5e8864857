"""The merge policy of state files: which files a commit writes, merges and keeps.

A commit's rows of a table become a level-0 delta (or, for a full replacement, the
table's new base). Deltas of one level merge once ``tableset.FANOUT`` of them pile
up, and a table's base is rewritten once its deltas outgrow a share of it (see
:mod:`arco.domain.tableset`), so a commit's cost follows its change (invariant I8).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from arco.domain import tableset
from arco.domain.manifest import FileEntry
from arco.domain.tableset import SortedBatches, TableDef
from arco.domain.types import Change, DomainState


@dataclass
class Pending:
    """A state file of the commit being staged, not written yet."""

    table: str
    level: int
    min_version: int
    max_version: int
    #: The file's rows as Arrow, or how to build them: a new delta is built only if
    #: it is kept, since the merge policy may fold it into a new base at once. A
    #: base given as sorted batches is only ever streamed into its file.
    source: pa.Table | SortedBatches | Callable[[], pa.Table]
    kind: str = "delta"
    #: Row count while ``source`` is unbuilt (sorted batches: until written).
    rows: int = 0

    @property
    def data(self) -> pa.Table:
        """The file's rows as Arrow (built on first use)."""
        if isinstance(self.source, SortedBatches):
            raise TypeError(f"{self.table}: a base of sorted batches is not held as a table")
        if not isinstance(self.source, pa.Table):
            self.source = self.source()
        return self.source

    @property
    def num_rows(self) -> int:
        """Rows in the file, without building it."""
        return self.source.num_rows if isinstance(self.source, pa.Table) else self.rows


def rows_of(f: FileEntry | Pending) -> int:
    """The row count of a written or pending file."""
    return f.num_rows if isinstance(f, Pending) else f.rows


def new_file(
    tdef: TableDef,
    table: str,
    rows: list[dict[str, Any]],
    version: int,
    change: Change,
) -> Pending:
    """The file a change's rows of ``table`` become: a delta, or a whole new base."""
    if table not in change.replace:
        return Pending(
            table,
            0,
            version,
            version,
            lambda: tableset.delta_table_of(tdef, rows, version),
            rows=len(rows),
        )
    # A full replacement is the table's new base: write it as one directly
    # instead of as a delta that the merge policy would at once rewrite.
    live = [
        {k: v for k, v in r.items() if k not in ("_op", "_version")}
        for r in rows
        if r.get("_op") != tableset.OP_DELETE
    ]
    return Pending(table, 0, 0, version, tableset.base_table(tdef, live), "base")


def compact(
    tables: Mapping[str, TableDef],
    files: list[FileEntry | Pending],
    state: DomainState,
    version: int,
    touched: set[str],
    table_of: Callable[[FileEntry | Pending], pa.Table],
) -> list[FileEntry | Pending]:
    """Merge piled-up deltas of the tables this commit touched (see tableset)."""
    out = [f for f in files if f.table not in touched]
    for table in sorted(touched):
        tdef = tables[table]
        mine = [f for f in files if f.table == table]
        base = next((f for f in mine if f.kind == "base"), None)
        deltas = [f for f in mine if f.kind == "delta"]
        while True:
            level = deltas[-1].level if deltas else -1
            run = 0
            for f in reversed(deltas):
                if f.level != level:
                    break
                run += 1
            if run < tableset.FANOUT:
                break
            group = deltas[-run:]
            merged = tableset.merge_deltas(tdef, [table_of(f) for f in group])
            deltas = [
                *deltas[:-run],
                Pending(table, level + 1, group[0].min_version, group[-1].max_version, merged),
            ]
        delta_rows = sum(rows_of(f) for f in deltas)
        base_rows = rows_of(base) if base is not None else 0
        limit = max(tableset.BASE_MIN_DELTA_ROWS, base_rows * tableset.BASE_REWRITE_RATIO)
        # A base written before sorted bases existed is rewritten once, sorted and
        # indexed, by the first commit that touches its table (ADR 015).
        unindexed = bool(tdef.sort_key) and isinstance(base, FileEntry) and base.index is None
        if delta_rows > limit or unindexed:
            if tdef.resident:
                data = tableset.base_table(tdef, state.rows(table))
            else:
                data = tableset.fold_table(
                    tdef,
                    table_of(base) if base is not None else None,
                    [table_of(d) for d in deltas],
                )
            out.append(Pending(table, 0, 0, version, data, "base"))
        else:
            if base is not None:
                out.append(base)
            out.extend(deltas)
    return out
