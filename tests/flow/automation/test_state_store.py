"""The state document's compare-and-swap, including a tick's later writes that
start from the state it wrote last (``fresh=False``) instead of reading it again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from arco.core.storage import open_store
from arco.core.storage.faults import FaultInjectingStore
from arco.flow.automation.state import AutomationState, StateStore

from .conftest import SCOPE


def _add(name: str) -> Callable[[AutomationState], None]:
    def change(state: AutomationState) -> None:
        state.pending[name] = {"kind": "event"}

    return change


def test_a_later_write_skips_the_read_and_loses_no_concurrent_update(tmp_path: Path) -> None:
    store = FaultInjectingStore(open_store(f"file://{tmp_path}/s"))
    mine, other = StateStore(store, SCOPE), StateStore(store, SCOPE)
    mine.update(_add("a"))
    store.calls.clear()
    mine.update(_add("b"), fresh=False)
    assert [c.op for c in store.calls] == ["put"]  # no GET: it wrote the base itself
    other.update(_add("c"))  # another daemon writes in between
    store.calls.clear()
    state = mine.update(_add("d"), fresh=False)
    # The swap on the stale base failed; the change was applied to what is stored.
    assert [c.op for c in store.calls] == ["put", "get", "put"]
    assert set(state.pending) == {"a", "b", "c", "d"}
    assert set(mine.load()[0].pending) == {"a", "b", "c", "d"}
