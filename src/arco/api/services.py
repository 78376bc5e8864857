"""Per-scope services, built from the verified principal's scope only."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from arco.catalog.catalog import Catalog
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.discovery.lineage import LineageGraph
from arco.discovery.search import SearchIndex
from arco.ledger.compactor import Compactor
from arco.ledger.log import Ledger


@dataclass
class ScopeServices:
    """Everything a request in one scope can touch."""

    scope: Scope
    catalog: Catalog
    ledger: Ledger
    compactor: Compactor
    lineage: LineageGraph
    search: SearchIndex
    extras: dict[str, Any] = field(default_factory=dict)


class ServiceCache:
    """A small LRU of :class:`ScopeServices` so hot scopes keep their read caches."""

    def __init__(self, store: ObjectStore, *, max_staleness: float = 0.0, size: int = 256) -> None:
        self.store = store
        self.max_staleness = max_staleness
        self.size = size
        self._items: OrderedDict[Scope, ScopeServices] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, scope: Scope) -> ScopeServices:
        """Services of ``scope`` (created on first use)."""
        with self._lock:
            found = self._items.get(scope)
            if found is not None:
                self._items.move_to_end(scope)
                return found
        catalog = Catalog(self.store, scope, max_staleness=self.max_staleness)
        services = ScopeServices(
            scope=scope,
            catalog=catalog,
            ledger=Ledger(self.store, scope),
            compactor=Compactor(self.store, scope),
            lineage=LineageGraph(self.store, scope, max_staleness=self.max_staleness),
            search=SearchIndex(self.store, scope, catalog=catalog),
        )
        with self._lock:
            self._items[scope] = services
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return services
