"""The values the domain protocol passes around: states, snapshots, changes, results.

Every domain (the catalog, the ledger's folds, search, lineage) describes its
in-memory state as a :class:`DomainState`; :class:`~arco.domain.store.DomainStore`
reads it as a :class:`Snapshot` and commits a :class:`Change` to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import pyarrow as pa

from arco.domain import tableset
from arco.domain.manifest import FileEntry, Manifest, Pointer
from arco.domain.tableset import SortedBatches, TableDef


class DomainState(Protocol):
    """An immutable in-memory state that delta rows can be applied to."""

    TABLES: ClassVar[dict[str, TableDef]]

    @classmethod
    def empty(cls) -> Self:
        """The state before the first commit."""
        ...

    def apply(self, table: str, rows: Sequence[dict[str, Any]]) -> Self:
        """A new state with delta rows (each carrying ``_op``) applied in order."""
        ...

    def clear(self, table: str) -> Self:
        """A new state with every row of ``table`` removed."""
        ...

    def rows(self, table: str) -> Iterable[dict[str, Any]]:
        """The live rows of ``table``, for writing a base snapshot."""
        ...


S = TypeVar("S", bound=DomainState)


@dataclass(frozen=True)
class Snapshot(Generic[S]):
    """One version of a domain: pointer, manifest and the folded state."""

    version: int
    state: S
    pointer: Pointer | None = None
    pointer_version: str | None = None
    manifest: Manifest | None = None
    manifest_key: str | None = None

    @property
    def files(self) -> tuple[FileEntry, ...]:
        """Files the manifest references."""
        return self.manifest.files if self.manifest else ()


@dataclass(frozen=True)
class Head:
    """The latest pointer and manifest of a domain, with no state folded."""

    version: int
    pointer: Pointer | None
    pointer_version: str | None
    manifest: Manifest | None
    manifest_key: str | None


@dataclass
class Change:
    """What a commit changes: delta rows per table (each with ``_op``)."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    operation: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] | None = None
    #: Tables whose whole content is replaced by this change's rows (full rebuilds).
    replace: set[str] = field(default_factory=set)
    #: Non-resident tables whose whole new content is given as Arrow (base schema):
    #: written as their new base without becoming row dicts; they are replaced too.
    #: A sorted table's base may come as ``tableset.SortedBatches``, made only while
    #: it is written (already in order; ``prepare_base`` does not apply to it).
    bases: dict[str, pa.Table | SortedBatches] = field(default_factory=dict)
    #: Applied to each table of ``bases`` just before it is written, one at a time,
    #: so a compact form can be kept in memory and expanded only for the write.
    prepare_base: Callable[[str, pa.Table], pa.Table] | None = None
    #: Returned to the caller of :meth:`DomainStore.commit` alongside the snapshot.
    result: Any = None

    @property
    def is_empty(self) -> bool:
        """True if nothing would be written."""
        return (
            not any(self.rows.values())
            and self.meta is None
            and not self.replace
            and not self.bases
        )

    def upsert(self, table: str, row: dict[str, Any]) -> None:
        """Record an insert-or-replace of ``row``."""
        self.rows.setdefault(table, []).append({**row, "_op": tableset.OP_UPSERT})

    def upsert_owned(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Record inserts-or-replaces of rows handed over to this change: each is
        marked with ``_op`` in place rather than copied, so the caller must not use
        them afterwards (a compaction hands over 100,000s of rows it built)."""
        out = self.rows.setdefault(table, [])
        for row in rows:
            row["_op"] = tableset.OP_UPSERT
            out.append(row)

    def delete(self, table: str, row: dict[str, Any]) -> None:
        """Record a delete (``row`` needs at least the key columns)."""
        self.rows.setdefault(table, []).append({**row, "_op": tableset.OP_DELETE})


@dataclass(frozen=True)
class CommitResult(Generic[S]):
    """The outcome of a commit."""

    snapshot: Snapshot[S]
    committed: bool
    result: Any = None
    attempts: int = 1
