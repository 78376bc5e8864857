"""Two daemons and ``arco tick`` racing on one store, interleaved at every store
call in an order hypothesis chooses: each due tick launches exactly one run, and
nothing is left in the outbox."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arco.core.storage import ObjectStore, open_store
from arco.flow.automation.backfills import create_backfill
from arco.flow.automation.config import build
from arco.flow.automation.schedules import ScheduleDef
from arco.flow.automation.state import StateStore
from arco.flow.automation.tick import Automation
from arco.flow.definitions import Definitions
from arco.flow.queue import load_request, queued_runs
from arco.flow.runview import RunsReader

from .conftest import SCOPE

T0 = datetime(2024, 5, 1, 10, 1, tzinfo=UTC)
OFTEN = ScheduleDef(name="often", cron="*/5 * * * *", selection="auto.source", max_catchup=3)


class Turns:
    """Lets one actor at a time make its next store call; ``choose`` picks which."""

    def __init__(self, choose: Callable[[list[str]], str]) -> None:
        self.cv = threading.Condition()
        self.alive: set[str] = set()
        self.waiting: set[str] = set()
        self.running: str | None = None
        self.choose = choose

    def step(self, name: str) -> None:
        with self.cv:
            self.waiting.add(name)
            if self.running == name:
                self.running = None
            self.cv.notify_all()
            while self.running != name:
                self.cv.wait()
            self.waiting.discard(name)

    def done(self, name: str) -> None:
        with self.cv:
            self.alive.discard(name)
            if self.running == name:
                self.running = None
            self.cv.notify_all()

    def drive(self) -> None:
        while True:
            with self.cv:
                while self.alive and (self.running is not None or self.waiting != self.alive):
                    self.cv.wait(timeout=10)
                if not self.alive:
                    return
                self.running = self.choose(sorted(self.waiting))
                self.cv.notify_all()


class TurnStore:
    """A store whose every call waits for its actor's turn."""

    def __init__(self, inner: ObjectStore, turns: Turns, name: str) -> None:
        self._inner, self._turns, self._name = inner, turns, name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._turns.step(self._name)
            return value(*args, **kwargs)

        return call


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    minutes=st.lists(st.sampled_from([0, 4, 5, 6, 11, 16]), min_size=3, max_size=3),
)
def test_two_daemons_and_a_tick_never_launch_a_run_twice(
    tmp_path_factory: Any, defs: Definitions, data: st.DataObject, minutes: list[int]
) -> None:
    store = open_store(f"file://{tmp_path_factory.mktemp('race')}/store")
    first = Automation(store, SCOPE, defs, holder="setup")
    first.schedules, first.sensors = {"often": OFTEN}, {}
    first.tick(T0)
    turns = Turns(lambda names: data.draw(st.sampled_from(names)))
    errors: list[BaseException] = []
    threads = []
    for name, advance in zip(("daemon-a", "daemon-b", "arco-tick"), minutes, strict=True):
        auto = Automation(TurnStore(store, turns, name), SCOPE, defs, holder=name)  # type: ignore[arg-type]
        auto.schedules, auto.sensors = {"often": OFTEN}, {}

        def go(auto: Automation = auto, name: str = name, advance: int = advance) -> None:
            try:
                auto.tick(T0 + timedelta(minutes=advance))
            except BaseException as exc:  # reported below, with the interleaving
                errors.append(exc)
            finally:
                turns.done(name)

        turns.alive.add(name)
        threads.append(threading.Thread(target=go, daemon=True))
    for t in threads:
        t.start()
    turns.drive()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    # Every tick due by the latest time any actor saw runs once (at most max_catchup).
    latest = T0 + timedelta(minutes=max(minutes))
    due = [T0.replace(minute=5) + timedelta(minutes=5 * i) for i in range(4)]
    want = {OFTEN.run_key(d) for d in due if d <= latest}
    runs = queued_runs(store, SCOPE)
    keys = [load_request(store, SCOPE, r) for r in runs]
    assert len(runs) == len(want)
    assert len({k.run_id for k in keys}) == len(runs)
    assert StateStore(store, SCOPE).load()[0].pending == {}


def test_two_daemons_and_a_tick_queue_a_backfill_in_batches_once(
    tmp_path: Path, defs: Definitions
) -> None:
    # Eight chunks: each flush queues them through enqueue_many's concurrent phases,
    # and the three actors (free-running threads) may flush the same outbox at once.
    errors: list[BaseException] = []
    for attempt in range(5):
        store = open_store(f"file://{tmp_path}/s{attempt}")
        bf = create_backfill(
            store, SCOPE, defs, "auto.daily", "2024-01-01", "2024-01-08", max_runs=10
        )
        start = threading.Barrier(3)

        def go(name: str, store: ObjectStore = store, start: threading.Barrier = start) -> None:
            auto = build(store, SCOPE, defs, holder=name)
            auto.schedules, auto.sensors = {}, {}
            start.wait()
            try:
                auto.tick(T0)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=go, args=(n,)) for n in ("a", "b", "tick")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        state = StateStore(store, SCOPE).load()[0]
        assert state.pending == {}
        run_ids = sorted(c["run_id"] for c in state.backfills[bf.backfill_id]["chunks"].values())
        assert len(run_ids) == 8
        assert queued_runs(store, SCOPE) == run_ids
        assert sorted(RunsReader(store, SCOPE).view().runs) == run_ids
