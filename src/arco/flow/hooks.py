"""Scheduler hooks: the points where a caller changes how a
:class:`~arco.flow.runner.Scheduler` opens a run and writes its events, without
subclassing it or touching its private methods.

The scheduler calls its :class:`SchedulerHooks` at three defined points of every
run, in this order:

1. :meth:`SchedulerHooks.seq_base` once, before the run's first event: the run's
   events are numbered from ``seq_base + 1``;
2. :meth:`SchedulerHooks.open_run` once, with the run's tasks as the plan made
   them (all ``PLANNED``): the events it returns are the run's first batch;
3. :meth:`SchedulerHooks.before_emit` before each batch of events is written
   (the opening batch and the final ``run.state_changed`` included); raising
   there stops the write and the run.

After a batch is written the scheduler hands it to its ``on_events`` listener.
The defaults are a plain run: numbered from 1, opened by ``run.created``, written
unconditionally. The run worker (:mod:`arco.flow.worker`) passes hooks that fence
every write with its run lease and resume a run from its ledger events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arco.flow.definitions import Definitions
    from arco.flow.executors import Outcome
    from arco.flow.planner import Plan
    from arco.flow.taskrun import TaskRun

#: A ledger event as the scheduler writes it: (type, payload).
Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class RunOpening:
    """A run about to start, as the scheduler hands it to :meth:`SchedulerHooks.open_run`.

    ``tasks`` are the run's live task states, keyed by task id, in plan order; a
    hook may set a task's ``state``, ``attempt``, ``error``, ``outcome`` and
    ``retry_at`` from a record of the run (no event is written for that), and
    must move tasks on with :attr:`transition` and :attr:`finish`, whose events it
    returns.
    """

    run_id: str
    plan: Plan
    parent_run_id: str | None
    tasks: dict[str, TaskRun]
    defs: Definitions
    #: ``transition(task, state)``: move ``task`` to ``state``; returns its
    #: ``task.state_changed`` event.
    transition: Callable[[TaskRun, str], Event]
    #: ``finish(task, outcome)``: end ``task``'s attempt with ``outcome`` as if the
    #: executor had reported it; returns the events that follow (retry, failure,
    #: downstream tasks skipped or made ready).
    finish: Callable[[TaskRun, Outcome], list[Event]]


class SchedulerHooks:
    """The defaults of every hook: a plain run, as ``arco run`` executes it.

    Subclass and override the hooks a caller needs; each is called at the point
    the module docstring names and nowhere else.
    """

    def seq_base(self, run_id: str) -> int:
        """The ``seq`` the run's events are numbered after (0: from 1)."""
        return 0

    def open_run(self, run: RunOpening) -> list[Event]:
        """The events that start ``run``: ``run.created``, the run ``RUNNING``, and
        each task ``BLOCKED`` (it has upstream tasks) or ``READY``."""
        plan = run.plan
        events: list[Event] = [
            (
                "run.created",
                {
                    "run_id": run.run_id,
                    "selection": plan.selection,
                    "plan_fingerprint": plan.fingerprint,
                    "parent_run_id": run.parent_run_id,
                    # The task list is not repeated here: each task's own events name
                    # it, and a plan of thousands of tasks would overflow one event.
                    "tags": {"task_count": str(len(plan.tasks)), "mode": plan.mode},
                },
            ),
            ("run.state_changed", {"run_id": run.run_id, "state": "RUNNING"}),
        ]
        for tr in run.tasks.values():
            events.append(run.transition(tr, "BLOCKED" if tr.task.deps else "READY"))
        return events

    def before_emit(self, run_id: str, events: list[Event]) -> None:
        """Called before ``events`` (possibly none) are written; raise to stop the write."""
