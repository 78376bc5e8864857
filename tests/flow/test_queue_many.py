"""``enqueue_many``: several runs queued in three phases, each as ``enqueue`` would
queue it; idempotent by key, and a crash at any store call is finished by a retry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from arco import asset
from arco.core import Scope
from arco.core.storage import ObjectStore, open_store
from arco.core.storage.faults import FaultInjectingStore, SimulatedCrash
from arco.flow.automation.requests import run_id_for
from arco.flow.definitions import Definitions
from arco.flow.planner import plan
from arco.flow.queue import QueueItem, RunRequest, enqueue, enqueue_many, queued_runs
from arco.flow.runview import RunsReader

SCOPE = Scope("acme", "main")


@asset(namespace="q")
def thing() -> int:
    return 1


DEFS = Definitions([thing])


def _items(n: int, *, from_key: bool = False) -> list[QueueItem]:
    the_plan = plan(DEFS, "q.thing")
    when = datetime(2024, 5, 2, tzinfo=UTC)
    return [
        QueueItem(
            the_plan,
            run_id=run_id_for(f"k:{i}", when),
            idempotency_key=f"k:{i}",
            tags={"chunk": str(i)},
            requested_by="automation:test",
            run_id_from_key=from_key,
        )
        for i in range(n)
    ]


def _runs(store: ObjectStore, scope: Scope) -> dict[str, dict[str, object]]:
    view = RunsReader(store, scope).view()
    return {run_id: dict(row) for run_id, row in view.runs.items()}


@pytest.mark.parametrize("from_key", [False, True])
def test_enqueue_many_queues_each_run_once_and_is_idempotent(
    tmp_path: Path, from_key: bool
) -> None:
    store = FaultInjectingStore(open_store(f"file://{tmp_path}/s"))
    items = _items(12, from_key=from_key)
    got = enqueue_many(store, SCOPE, items)
    assert all(isinstance(r, RunRequest) for r in got)
    ids = [r.run_id for r in got if isinstance(r, RunRequest)]
    assert ids == [i.run_id for i in items]
    # Per run: the idempotency marker (unless the id follows from the key), the
    # request, the queue marker; and one ledger object for all run.created events.
    puts = [c for c in store.calls if c.op == "put"]
    assert len(puts) == (2 if from_key else 3) * 12 + 1
    assert sum(".batch.json" in c.key for c in puts) == 1
    runs = _runs(store, SCOPE)
    assert set(runs) == set(ids)
    assert {str(r["state"]) for r in runs.values()} == {"QUEUED"}
    assert queued_runs(store, SCOPE) == sorted(ids)
    # Again, and one by one through enqueue: the same runs, nothing new.
    again = enqueue_many(store, SCOPE, items)
    assert [r.run_id for r in again if isinstance(r, RunRequest)] == ids
    single = enqueue(store, SCOPE, items[0].plan, idempotency_key="k:0", run_id=ids[0])
    assert single.run_id == ids[0]
    assert set(_runs(store, SCOPE)) == set(ids)
    assert queued_runs(store, SCOPE) == sorted(ids)


@pytest.mark.parametrize("from_key", [False, True])
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_at_any_store_call_is_finished_by_a_retry(
    tmp_path: Path, when: str, from_key: bool
) -> None:
    items = _items(6, from_key=from_key)
    probe = FaultInjectingStore(open_store(f"file://{tmp_path}/probe"))
    enqueue_many(probe, SCOPE, items)
    for n in range(len(probe.calls)):
        store = FaultInjectingStore(open_store(f"file://{tmp_path}/{when}{n}"))
        store.arm("crash", when, call=n)  # type: ignore[arg-type]
        with pytest.raises(SimulatedCrash):
            enqueue_many(store, SCOPE, items)
        store.reset()
        got = enqueue_many(store, SCOPE, items)
        ids = [r.run_id for r in got if isinstance(r, RunRequest)]
        assert ids == [i.run_id for i in items], n
        runs = _runs(store, SCOPE)
        assert set(runs) == set(ids), n
        assert {str(r["state"]) for r in runs.values()} == {"QUEUED"}, n
        assert queued_runs(store, SCOPE) == sorted(ids), n
