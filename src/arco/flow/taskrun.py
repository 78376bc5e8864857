"""A run's per-task state: what the scheduler keeps about each task and returns.

:class:`TaskRun` is one task's live state, :class:`RunOptions` the scheduler's
knobs and :class:`RunResult` what a run returns; ``_Live`` and ``_Run`` are the
scheduler's own bookkeeping of a run in progress (:mod:`arco.flow.runner`).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from arco.flow.executors import Handle, Outcome
from arco.flow.hooks import Event
from arco.flow.planner import Plan, PlannedTask
from arco.flow.states import TASK_TERMINAL


@dataclass
class TaskRun:
    """Live state of one task in a run."""

    task: PlannedTask
    state: str = "PLANNED"
    attempt: int = 0
    error: str | None = None
    retry_at: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    outcome: Outcome | None = None
    handle: Handle | None = None
    deadline: float | None = None
    index: int = 0  # position in the plan: ready tasks start in plan order


class _Live:
    """Indexes over a run's task states, kept in step by every transition, so a
    scheduler step costs what changed rather than a scan of every task."""

    def __init__(self, runs: Iterable[TaskRun]) -> None:
        self.runs = list(runs)
        #: Plan indexes of READY tasks whose READY event is durable (a heap).
        self.ready = [tr.index for tr in self.runs if tr.state == "READY"]
        heapq.heapify(self.ready)
        #: READY tasks whose event is still waiting to be written.
        self.staged: list[int] = []
        self.waiting = {tr.index: tr for tr in self.runs if tr.state == "RETRY_WAIT"}
        self.open = sum(1 for tr in self.runs if tr.state not in TASK_TERMINAL)

    def changed(self, tr: TaskRun, old: str, new: str) -> None:
        """Follow one transition."""
        if old == "RETRY_WAIT":
            self.waiting.pop(tr.index, None)
        if new == "READY":
            self.staged.append(tr.index)
        elif new == "RETRY_WAIT":
            self.waiting[tr.index] = tr
        if new in TASK_TERMINAL and old not in TASK_TERMINAL:
            self.open -= 1

    def promote(self) -> None:
        """The staged READY events are (about to be) durable: those tasks may start."""
        for i in self.staged:
            heapq.heappush(self.ready, i)
        self.staged.clear()

    def pop_ready(self) -> TaskRun | None:
        """The READY task first in plan order (entries of tasks since cancelled are dropped)."""
        while self.ready:
            tr = self.runs[heapq.heappop(self.ready)]
            if tr.state == "READY":
                return tr
        return None

    def due(self, now: float) -> list[TaskRun]:
        """RETRY_WAIT tasks whose backoff is over, in plan order."""
        if not self.waiting:
            return []
        return sorted((tr for tr in self.waiting.values() if now >= tr.retry_at), key=_index)

    def idle(self) -> bool:
        """Nothing ready, staged or waiting for a retry."""
        return not (self.ready or self.staged or self.waiting)


def _index(tr: TaskRun) -> int:
    return tr.index


def _settle(runs: Iterable[TaskRun], limit: float) -> None:
    """Wait (at most ``limit`` seconds) until every attempt in ``runs`` has an outcome."""
    waiting = [tr.handle for tr in runs if tr.handle is not None]
    deadline = time.monotonic() + limit
    while waiting and time.monotonic() < deadline:
        waiting = [h for h in waiting if h.poll() is None]
        if waiting:
            time.sleep(0.0005)


@dataclass
class RunResult:
    """What :meth:`Scheduler.run <arco.flow.runner.Scheduler.run>` returns."""

    run_id: str
    state: str
    tasks: dict[str, TaskRun]
    elapsed: float
    parent_run_id: str | None = None

    @property
    def failed(self) -> list[str]:
        """Task ids that failed."""
        return [t for t, r in self.tasks.items() if r.state == "FAILED"]


@dataclass
class RunOptions:
    """Scheduler knobs."""

    max_concurrency: int = 4
    tag_concurrency: Mapping[str, int] = field(default_factory=dict)
    poll_interval: float = 0.005
    compact_after: bool = True
    register_tables: bool = True


@dataclass
class _Run:
    """A run in progress: what the scheduler's steps share."""

    run_id: str
    plan: Plan
    parent_run_id: str | None
    tasks: dict[str, TaskRun]
    #: task id -> the tasks that depend on it.
    down: dict[str, list[str]]
    #: (asset, partition) -> where its newest value is (inputs of the next attempts).
    locations: dict[tuple[str, str | None], str | None]
    #: Events that happened and wait to be written (the next batch).
    pending: list[Event] = field(default_factory=list)
    running: dict[str, TaskRun] = field(default_factory=dict)
    cancelled: bool = False
    next_cancel_check: float = 0.0
