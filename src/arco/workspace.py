"""One scope's collaborators, built once: the object every surface and the runner share.

A :class:`Workspace` is what one ``(tenant, workspace)`` scope of one store
holds: the Tier-1 catalog, the Tier-2 ledger and compactor, the lineage graph,
the search index and the ``system.*`` SQL tables. Each is built on first use and
kept, so its read caches (manifests by id, folded snapshots, search groups) live
as long as the workspace object. The API keeps one per hot scope
(:class:`arco.api.services.ServiceCache`), a CLI command one per invocation, the
runner and worker one per run.

Collaborators of higher layers (the flow's run reader, OpenLineage's writer) are
kept with :meth:`Workspace.extension`, keyed by their class, so they are typed
and cached like the built-in ones without this module importing those layers.

:meth:`Workspace.in_memory` is the test double: the same object over a real
in-memory store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from arco.core.scope import Scope
from arco.core.storage import ObjectStore

if TYPE_CHECKING:
    from arco.catalog.catalog import Catalog
    from arco.discovery.lineage import LineageGraph
    from arco.discovery.search import SearchIndex
    from arco.ledger.compactor import Compactor
    from arco.ledger.log import Ledger
    from arco.sql.tables import SystemTables

T = TypeVar("T")


class Workspace:
    """The collaborators and caches of one scope of one store (thread-safe)."""

    def __init__(self, store: ObjectStore, scope: Scope, *, max_staleness: float = 0.0) -> None:
        """Open ``scope`` on ``store``; nothing is read until a collaborator is used.

        ``max_staleness`` (seconds) lets the catalog and lineage reads reuse a head
        pointer that recent; 0 re-reads the pointer on every read.
        """
        self.store = store
        self.scope = scope
        self.max_staleness = max_staleness
        self._lock = threading.RLock()
        self._built: dict[object, Any] = {}

    @classmethod
    def in_memory(cls, scope: Scope | None = None) -> Workspace:
        """A workspace over a fresh in-memory store: the test double of every surface."""
        from arco.core.storage import open_store

        return cls(open_store("memory://"), scope or Scope("default", "default"))

    def _once(self, key: object, build: Callable[[], T]) -> T:
        found = self._built.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        # Built under the lock so two threads never make two catalogs with two caches.
        with self._lock:
            found = self._built.get(key)
            if found is None:
                found = self._built[key] = build()
            return found

    @property
    def catalog(self) -> Catalog:
        """The Tier-1 catalog: namespaces, tables, columns."""
        from arco.catalog.catalog import Catalog

        return self._once(
            "catalog", lambda: Catalog(self.store, self.scope, max_staleness=self.max_staleness)
        )

    @property
    def ledger(self) -> Ledger:
        """The Tier-2 event ledger (appends and tails)."""
        from arco.ledger.log import Ledger

        return self._once("ledger", lambda: Ledger(self.store, self.scope))

    @property
    def compactor(self) -> Compactor:
        """The compactor with default settings, folding the ledger into Tier-2 state."""
        from arco.ledger.compactor import Compactor

        return self._once("compactor", lambda: Compactor(self.store, self.scope))

    @property
    def lineage(self) -> LineageGraph:
        """The lineage graph (declared and observed edges)."""
        from arco.discovery.lineage import LineageGraph

        return self._once(
            "lineage",
            lambda: LineageGraph(self.store, self.scope, max_staleness=self.max_staleness),
        )

    @property
    def search(self) -> SearchIndex:
        """The search index over this workspace's catalog."""
        from arco.discovery.search import SearchIndex

        return self._once(
            "search", lambda: SearchIndex(self.store, self.scope, catalog=self.catalog)
        )

    @property
    def system(self) -> SystemTables:
        """The ``system.*`` SQL tables and the catalog's tables for queries."""
        from arco.sql.tables import SystemTables

        return self._once(
            "system", lambda: SystemTables(self.store, self.scope, catalog=self.catalog)
        )

    def extension(self, kind: type[T], build: Callable[[Workspace], T]) -> T:
        """The one ``kind`` object of this workspace, built by ``build(self)`` on first use.

        For collaborators of the layers above (the run reader, the OpenLineage
        writer): keyed by class, so two callers asking for the same class share
        one object and its caches.
        """
        return self._once(kind, lambda: build(self))

    def __repr__(self) -> str:
        return f"Workspace({self.store.url!r}, {self.scope!r})"
