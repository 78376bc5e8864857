"""The inline executor: attempts run in the scheduler's own thread."""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import Future

from arco.flow.executors.attempt import execute
from arco.flow.executors.base import Executor, Handle, Job, Outcome


class _Done(Handle):
    code_finished = True

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def poll(self) -> Outcome | None:
        return self.outcome

    def kill(self) -> None:
        return None


class _Writing(Handle):
    """An inline attempt whose code has run and whose value is being written."""

    code_finished = True

    def __init__(self, outcome: Outcome, writes: list[Future[None]]) -> None:
        self.outcome = outcome
        self.writes = writes
        self.result: Outcome | None = None

    def poll(self) -> Outcome | None:
        if self.result is None and all(w.done() for w in self.writes):
            self.result = self.outcome
            for w in self.writes:
                exc = w.exception()
                if exc is not None:
                    first = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                    self.result = Outcome(
                        ok=False,
                        error=f"storing the value failed: {first}",
                        logs=self.outcome.logs,
                        duration=self.outcome.duration,
                    )
                    break
        return self.result

    def kill(self) -> None:
        return None  # the write finishes on its own; nothing will reference it


class InlineExecutor(Executor):
    """Runs each attempt in the scheduler's own thread (no isolation).

    The asset's code runs inside :meth:`start`; storing its value may finish a
    little later on a writer thread (the handle reports the outcome then).

    An asset with a ``timeout`` runs on a thread of its own that :meth:`start`
    waits for at most that long. Past it the attempt fails with ``TimeoutError``;
    a thread cannot be killed, so it is abandoned and may run on (and even store
    a value, which nothing records) until the process exits. Use the process
    executor where a runaway attempt must really be stopped.
    """

    name = "inline"
    synchronous = True

    def start(self, job: Job) -> Handle:
        """Run the attempt now; its value's write may still be under way."""
        if job.timeout is not None:
            outcome, writes = _with_deadline(job, job.timeout)
        else:
            writes = []
            outcome = execute(job, writes=writes)
        return _Writing(outcome, writes) if writes else _Done(outcome)


def _with_deadline(job: Job, timeout: float) -> tuple[Outcome, list[Future[None]]]:
    """``execute(job)`` on its own thread, waited for at most ``timeout`` seconds."""
    finished = threading.Event()
    outcomes: list[Outcome] = []
    # The thread's own list: writes of an abandoned attempt are never waited for.
    writes: list[Future[None]] = []
    # The asset sees the caller's context variables, as if it ran in its thread.
    context = contextvars.copy_context()

    def attempt() -> None:
        try:
            outcomes.append(context.run(execute, job, writes=writes))
        finally:
            finished.set()

    began = time.perf_counter()
    thread = threading.Thread(target=attempt, name=f"arco-inline {job.task_id}", daemon=True)
    thread.start()
    if not finished.wait(timeout):
        return (
            Outcome(
                ok=False,
                error=(
                    f"TimeoutError: exceeded {timeout}s (the inline executor cannot stop "
                    "the attempt: its thread was abandoned and may still be running)"
                ),
                duration=time.perf_counter() - began,
            ),
            [],
        )
    if not outcomes:  # execute() catches Exception; SystemExit and the like end here
        return Outcome(ok=False, error="the attempt's thread ended without an outcome"), []
    return outcomes[0], writes
