"""The search index of one scope: :class:`SearchIndex` wires refresh and query.

Owns the ``search`` domain's store and lease, bringing the index up to the
catalog's head (which catalog rows changed since the indexed version, and
whether an incremental change or a full rebuild indexes them), and checking a
query's arguments before :func:`~arco.discovery.search.query.run_query` answers
it on the view of the latest index snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from arco.catalog.catalog import Catalog
from arco.catalog.state import CatalogState
from arco.core.errors import InvalidArgumentError
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.domain import tableset
from arco.domain.lock import DEFAULT_LOCK_TTL
from arco.domain.manifest import FileEntry
from arco.domain.store import Change, DomainStore, Snapshot

from .build import _NS_COLUMNS, _TABLE_COLUMNS, document_ids, incremental_change
from .query import SearchResults, run_query
from .reader import CACHE_BYTES, KEPT_BYTES, IndexReader, _fold
from .runs import full_change, release_unused
from .state import INDEX_REVISION, KINDS, SearchState, _indexed

#: How long a search writer waits for another one's lease (a rebuild is long).
SEARCH_LOCK_WAIT = 360.0
#: How long an index snapshot found current for the catalog's head is answered
#: again without reading the index's pointer (while that head is unchanged). Only
#: to notice, well within GC's grace period, an index another process rewrote for
#: the same catalog version: either answers the same.
INDEX_RECHECK_SECONDS = 2.0


class SearchIndex:
    """Maintains and queries the search domain of one scope."""

    def __init__(
        self,
        store: ObjectStore,
        scope: Scope,
        *,
        catalog: Catalog | None = None,
        max_staleness: float = 0.0,
        lock_ttl: float = DEFAULT_LOCK_TTL,
        cache_bytes: int = CACHE_BYTES,
        kept_bytes: int = KEPT_BYTES,
    ) -> None:
        self.catalog = catalog or Catalog(store, scope)
        # A full rebuild of a large catalog is one long commit; its lease is renewed
        # while it runs (a crashed indexer only delays the next one by the TTL).
        self.domain: DomainStore[SearchState] = DomainStore(
            store,
            scope,
            "search",
            SearchState,
            max_staleness=max_staleness,
            lock_ttl=lock_ttl,
            lock_wait=SEARCH_LOCK_WAIT,
        )
        self.reader = IndexReader(self.domain, cache_bytes, kept_bytes)
        #: The last index snapshot found current for the catalog's head, and when.
        self._current: tuple[Snapshot[SearchState], float] | None = None
        #: Decoded row groups, least recently used dropped first past ``cache_bytes``.
        self.groups = self.reader.groups
        #: Common lookups and page rows kept per index version, dropped least recently
        #: used first past ``kept_bytes``.
        self.lookups = self.reader.lookups

    @property
    def cache_bytes(self) -> int:
        """Memory the decoded row groups may hold."""
        return self.groups.limit

    # ------------------------------------------------------------- indexing
    def indexed_version(self) -> int:
        """The catalog version the index reflects."""
        return _indexed(self.domain.read())

    def refresh(self) -> int:
        """Bring the index up to the latest catalog version; returns that version."""
        return self._refresh()[0]

    def _refresh(self) -> tuple[int, Snapshot[SearchState]]:
        """``refresh`` plus the index snapshot it leaves (saves a query a pointer read).

        Reads only the catalog's head (pointer and manifest): an index that is current
        costs no catalog state at all, and a refresh reads the catalog's files in
        Arrow without folding them into the shared :class:`Catalog`.

        When the index snapshot this object last found current reflects exactly the
        catalog's head version, it is answered again without reading the index's
        pointer: every index of that catalog version holds the same documents, so
        the query still sees the one catalog version its head read returned
        (docs/adr/024-search-lookups-kept-per-index-version.md).
        """
        head = self.catalog.domain.read_head()
        held = self._current
        if (
            held is not None
            and _indexed(held[0]) == head.version
            and time.monotonic() - held[1] < INDEX_RECHECK_SECONDS
        ):
            return head.version, held[0]
        current = self.domain.read()
        if _indexed(current) >= head.version:
            self._hold(current, head.version)
            return head.version, current
        files = head.manifest.files if head.manifest is not None else ()

        def mutate(snap: Snapshot[SearchState]) -> Change:
            indexed = _indexed(snap)
            if indexed >= head.version:
                return Change()
            changed = self._changes(indexed, files)
            change: Change | None = None
            if changed is not None:
                change = self._incremental(snap, *changed)
            if change is None:
                # The build holds the only references to the catalog's rows, so that
                # it can let go of them as soon as the documents are made.
                change = full_change(lambda: self._catalog_tables(files))
            change.meta = {
                **(change.meta or {}),
                "catalog_version": head.version,
                "revision": INDEX_REVISION,
            }
            change.operation = {"ops": [{"op": "index", "from": indexed, "to": head.version}]}
            return change

        snap = self.domain.commit(mutate).snapshot
        self._hold(snap, head.version)
        return head.version, snap

    def _hold(self, snap: Snapshot[SearchState], catalog_version: int) -> None:
        """Remember ``snap`` as current while the catalog's head is ``catalog_version``."""
        self._current = (snap, time.monotonic()) if _indexed(snap) == catalog_version else None

    def _changes(
        self, indexed: int, files: Sequence[FileEntry]
    ) -> tuple[dict[str, dict[str, Any] | None], dict[str, dict[str, Any] | None]] | None:
        """The namespaces (by name) and tables (by id) changed after ``indexed``, each
        with its newest row (None once deleted); None when only a full rebuild can say.

        Every change after ``indexed`` is in a delta file newer than it (a newer base
        means a rewrite folded deltas away: rebuild), and the newest row of a key
        among those deltas is its current row.
        """
        if indexed == 0:
            return None
        found: dict[str, dict[str, tuple[int, dict[str, Any] | None]]] = {
            "namespaces": {},
            "tables": {},
        }
        for entry in files:
            if entry.max_version <= indexed:
                continue
            if entry.kind == "base":
                return None
            if entry.table not in found:
                continue
            data = self.catalog.domain.load_file(entry)
            newer = data.filter(pc.greater(data.column("_version"), indexed))
            key = "name" if entry.table == "namespaces" else "id"
            rows = found[entry.table]
            for row in newer.to_pylist():
                version = row["_version"]
                seen = rows.get(row[key])
                if seen is None or version >= seen[0]:
                    live = row["_op"] != tableset.OP_DELETE
                    rows[row[key]] = (version, row if live else None)
        return (
            {k: v[1] for k, v in found["namespaces"].items()},
            {k: v[1] for k, v in found["tables"].items()},
        )

    def _catalog_tables(self, files: Sequence[FileEntry]) -> tuple[pa.Table, pa.Table]:
        """The live namespaces and tables of a catalog version, folded in Arrow (only
        the columns the index needs)."""
        out = []
        for name, columns in (("namespaces", _NS_COLUMNS), ("tables", _TABLE_COLUMNS)):
            tdef = CatalogState.TABLES[name]
            entries = [f for f in files if f.table == name]
            base = next((f for f in entries if f.kind == "base"), None)
            deltas = sorted((f for f in entries if f.kind == "delta"), key=lambda f: f.min_version)
            load = self.catalog.domain.load_file
            # Only the columns documents are made of are decoded: the whole ``tables``
            # base decoded is several times what the build keeps of it.
            out.append(
                _fold(
                    tdef,
                    load(base, columns) if base is not None else None,
                    [load(d, [*columns, "_op", "_version"]) for d in deltas],
                    columns,
                )
            )
            # Decoding leaves freed buffers behind in Arrow's pool: return them.
            release_unused()
        return out[0], out[1]

    def _incremental(
        self,
        snap: Snapshot[SearchState],
        namespaces: dict[str, dict[str, Any] | None],
        table_ids: dict[str, dict[str, Any] | None],
    ) -> Change | None:
        """The change that indexes the given catalog rows (None: rebuild instead),
        given the live numbers their documents have now."""
        view = self.reader.view(snap)
        meta = snap.manifest.meta if snap.manifest else {}
        if view.postings is None and not meta.get("base_docs"):
            return None
        old = self.reader.old_ids(view, *document_ids(namespaces, table_ids))
        return incremental_change(snap, namespaces, table_ids, old)

    # --------------------------------------------------------------- query
    def search(
        self,
        query: str,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        limit: int = 20,
        page_token: str | None = None,
        refresh: bool = True,
    ) -> SearchResults:
        """Ranked hits for ``query`` (case-insensitive; all query tokens must match)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgumentError("search query must not be empty")
        if len(query) > 512:
            raise InvalidArgumentError("search query is longer than 512 characters")
        if kind is not None and kind not in KINDS:
            raise InvalidArgumentError(f"kind must be one of {', '.join(KINDS)}")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidArgumentError("limit must be between 1 and 1000")
        offset = 0
        if page_token:
            if not page_token.isdigit() or len(page_token) > 9:
                raise InvalidArgumentError("page token is malformed")
            offset = int(page_token)
        if refresh:
            version, snap = self._refresh()
        else:
            snap = self.domain.read()
            version = _indexed(snap)
        if snap.manifest is None or snap.manifest.meta.get("revision") != INDEX_REVISION:
            # Nothing indexed yet, or by a layout this code does not query: the next
            # refresh rebuilds it.
            return SearchResults([], 0, None, version)
        view = self.reader.view(snap)
        return run_query(self.reader, view, query, kind, namespace, limit, offset, version)
