"""The API's per-scope workspaces, built from the verified principal's scope only."""

from __future__ import annotations

import threading
from collections import OrderedDict

from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.workspace import Workspace


class ServiceCache:
    """A small LRU of :class:`~arco.workspace.Workspace` so hot scopes keep their read caches."""

    def __init__(self, store: ObjectStore, *, max_staleness: float = 0.0, size: int = 256) -> None:
        self.store = store
        self.max_staleness = max_staleness
        self.size = size
        self._items: OrderedDict[Scope, Workspace] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, scope: Scope) -> Workspace:
        """The workspace of ``scope`` (created on first use; its collaborators on theirs)."""
        with self._lock:
            found = self._items.get(scope)
            if found is None:
                found = Workspace(self.store, scope, max_staleness=self.max_staleness)
                self._items[scope] = found
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            else:
                self._items.move_to_end(scope)
            return found
