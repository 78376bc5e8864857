"""Run and task state machines as pure functions (docs/architecture.md)."""

from __future__ import annotations

from arco.core.errors import ArcoError
from arco.ledger.events import RUN_STATES, TASK_STATES, RunState, TaskState

__all__ = ["RUN_STATES", "TASK_STATES", "RunState", "TaskState"]

# The state names are part of the ledger's event schema, so they are defined once,
# with the event types, and the state machine reuses them.
TASK_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"})
RUN_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})

TASK_TRANSITIONS: dict[str, frozenset[str]] = {
    "PLANNED": frozenset({"BLOCKED", "READY", "SKIPPED", "CANCELLED"}),
    "BLOCKED": frozenset({"READY", "SKIPPED", "CANCELLED"}),
    "READY": frozenset({"RUNNING", "SKIPPED", "CANCELLED"}),
    "RUNNING": frozenset({"SUCCEEDED", "FAILED", "RETRY_WAIT", "CANCELLED"}),
    "RETRY_WAIT": frozenset({"READY", "CANCELLED"}),
    "SUCCEEDED": frozenset(),
    "FAILED": frozenset(),
    "SKIPPED": frozenset(),
    "CANCELLED": frozenset(),
}
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    "QUEUED": frozenset({"RUNNING", "CANCELLED", "FAILED"}),
    "RUNNING": frozenset({"SUCCEEDED", "FAILED", "CANCELLED"}),
    "SUCCEEDED": frozenset(),
    "FAILED": frozenset(),
    "CANCELLED": frozenset(),
}


class IllegalTransitionError(ArcoError):
    """A state change the state machine does not allow."""

    code = "illegal-transition"


def task_transition(current: str, target: str) -> TaskState:
    """The new task state, or :class:`IllegalTransitionError`."""
    if target not in TASK_TRANSITIONS.get(current, frozenset()):
        raise IllegalTransitionError(f"task cannot go from {current} to {target}")
    return target  # type: ignore[return-value]


def run_transition(current: str, target: str) -> RunState:
    """The new run state, or :class:`IllegalTransitionError`."""
    if target not in RUN_TRANSITIONS.get(current, frozenset()):
        raise IllegalTransitionError(f"run cannot go from {current} to {target}")
    return target  # type: ignore[return-value]


def run_outcome(task_states: list[str], cancelled: bool) -> RunState:
    """The terminal run state once every task is terminal."""
    if cancelled:
        return "CANCELLED"
    if any(s in ("FAILED", "SKIPPED") for s in task_states):
        return "FAILED"
    if any(s == "CANCELLED" for s in task_states):
        return "CANCELLED"
    return "SUCCEEDED"
