"""The scheduler: runs a plan, write-ahead logging every transition to the ledger.

Each state change is appended to the ``executions`` ledger *before* the
scheduler acts on it, so a run's state is the fold of its events (the
compactor's ``runs``/``tasks`` tables) and replaying the ledger reproduces it.

Events are written in batches (one ledger object per scheduler step, not per
event), each event stamped with the time of its transition. A batch is durable
before anything it enables happens: a task starts only once the events that
made it READY are written, and an attempt on another worker only once its
RUNNING event is. An attempt the executor runs synchronously in the scheduler's
own thread (inline) writes RUNNING together with its outcome: nothing outside
this thread can see the attempt before that, and its stored value is referenced
by nothing until its ``materialization.recorded`` event is written.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from arco.core import metrics
from arco.core.errors import ObjectNotFoundError, PreconditionFailedError
from arco.core.ids import new_ulid
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.core.telemetry import span
from arco.flow.definitions import Definitions
from arco.flow.executors import Executor, InlineExecutor, Outcome, register, register_check
from arco.flow.hooks import Event, RunOpening, SchedulerHooks
from arco.flow.planner import Materialization, Plan, raise_missing_upstreams, task_id_of
from arco.flow.publish import publish
from arco.flow.states import TASK_TERMINAL, RunState, run_outcome, run_transition, task_transition
from arco.flow.status import as_materialization, latest_rows
from arco.flow.task_events import (
    _Stamped,
    check_events,
    job_for,
    log_event,
    materialization_event,
    observed_edges,
)
from arco.flow.taskrun import RunOptions, RunResult, TaskRun, _Live, _Run, _settle
from arco.ledger.compactor import tier2_store
from arco.workspace import Workspace

# TaskRun, RunOptions and RunResult live in arco.flow.taskrun; they stay importable here.
__all__ = [
    "CANCEL_POLL_SECONDS",
    "INLINE_FLUSH_EVENTS",
    "INLINE_FLUSH_SECONDS",
    "RunOptions",
    "RunResult",
    "Scheduler",
    "TaskRun",
    "latest_materializations",
    "request_cancel",
]

#: How often a running scheduler looks for a cancellation request (one HEAD).
CANCEL_POLL_SECONDS = 0.05
#: Inline attempts run back to back for at most this long before their events are
#: written (and cancellation is checked) — keeps the ledger's view of a run fresh.
INLINE_FLUSH_SECONDS = 0.25
#: ... or until this many events wait to be written.
INLINE_FLUSH_EVENTS = 20_000


def latest_materializations(
    store: ObjectStore, scope: Scope
) -> dict[tuple[str, str | None], tuple[Materialization, str | None]]:
    """The newest compacted materialization (and its location) of every asset partition."""
    latest = latest_rows(tier2_store(store, scope, "executions"))
    return {key: (as_materialization(row), row["location"]) for key, row in latest.items()}


class Scheduler:
    """Runs plans against one store and scope.

    ``hooks`` (:class:`~arco.flow.hooks.SchedulerHooks`) decide how a run is
    numbered and opened and may veto each write; the run worker passes its own to
    run under a lease and resume runs. ``on_events`` sees every batch once written.
    """

    def __init__(
        self,
        store: ObjectStore,
        scope: Scope,
        defs: Definitions,
        *,
        store_url: str,
        executor: Executor | None = None,
        options: RunOptions | None = None,
        on_change: Callable[[str, TaskRun], None] | None = None,
        on_events: Callable[[str, list[tuple[str, dict[str, Any]]]], None] | None = None,
        hooks: SchedulerHooks | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        self.store = store
        self.scope = scope
        #: The scope's collaborators (a worker passes its own, so caches are shared).
        self.ws = workspace or Workspace(store, scope)
        self.defs = defs
        self.store_url = store_url
        self.executor = executor or InlineExecutor()
        self.options = options or RunOptions()
        self.ledger = self.ws.ledger
        self.keys = Keys(scope)
        self.on_change = on_change
        #: Sees every batch of a run's events once it is in the ledger (the OpenLineage
        #: emitter); it must not block or raise.
        self.on_events = on_events
        self.hooks = hooks or SchedulerHooks()
        self._seq = 0
        self._live: _Live | None = None
        for a in defs.assets.values():
            register(a)
        #: Each asset's checks as the (module, name) references a job carries.
        self._checks = {
            key: tuple(register_check(c) for c in found) for key, found in defs.checks.items()
        }

    # ---------------------------------------------------------------- events
    def _emit(self, run_id: str, events: list[Event]) -> None:
        self.hooks.before_emit(run_id, events)
        batch = []
        lineage = []
        for etype, payload in events:
            # Batched events carry the time of their transition (see _Stamped).
            at = getattr(payload, "at", None)
            if etype.startswith("lineage."):
                edges: dict[str, Any] = {"type": etype, "payload": payload}
                if at is not None:
                    edges["occurred_at"] = at
                lineage.append(edges)
                continue
            self._seq += 1
            body = (
                {**payload, "seq": self._seq}
                if etype.startswith(("run.s", "run.c", "task."))
                else payload
            )
            item = {
                "type": etype,
                "payload": body,
                "idempotency_key": f"{run_id}:{self._seq}:{etype}",
            }
            if at is not None:
                item["occurred_at"] = at
            batch.append(item)
        for i in range(0, len(batch), 5_000):
            self.ledger.append_batch("executions", batch[i : i + 5_000], source="scheduler")
        for i in range(0, len(lineage), 5_000):
            self.ledger.append_batch("lineage", lineage[i : i + 5_000], source="scheduler")
        if self.on_events is not None:
            self.on_events(run_id, events)

    def _task_event(self, run_id: str, tr: TaskRun, state: str) -> Event:
        old = tr.state
        tr.state = task_transition(old, state)
        if state in TASK_TERMINAL or state == "RETRY_WAIT":
            metrics.TASKS.labels(state).inc()
            if tr.started:
                metrics.TASK_SECONDS.labels(state).observe(time.monotonic() - tr.started)
        if self._live is not None:
            self._live.changed(tr, old, state)
        if self.on_change is not None:
            self.on_change(run_id, tr)
        return (
            "task.state_changed",
            _Stamped(
                {
                    "run_id": run_id,
                    "task_id": tr.task.task_id,
                    "state": state,
                    "asset": tr.task.asset,
                    "partition": tr.task.partition,
                    "attempt": tr.attempt,
                    "error": tr.error,
                }
            ),
        )

    def _flush(self, run_id: str, pending: list[Event]) -> None:
        """Write the waiting events (one batch); the READY ones among them may now start."""
        if pending:
            # Taken off the list first: a batch whose write failed is never written
            # again with new seq numbers (its first part may have been stored).
            batch = list(pending)
            pending.clear()
            self._emit(run_id, batch)
        if self._live is not None:
            self._live.promote()

    # ------------------------------------------------------------------- run
    def run(
        self,
        plan: Plan,
        *,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        reuse: Mapping[tuple[str, str | None], str | None] | None = None,
    ) -> RunResult:
        """Execute ``plan`` to a terminal state; returns the per-task outcome.

        The run is one trace: a ``run`` span, parent of each task attempt's span
        (carried into worker processes and dask tasks on the job's ``traceparent``).
        """
        run_id = run_id or new_ulid()
        attrs = {
            "arco.run_id": run_id,
            "arco.scope": str(self.scope),
            "arco.tasks": len(plan.tasks),
        }
        with span("run", attrs) as sp:
            result = self._run(plan, run_id=run_id, parent_run_id=parent_run_id, reuse=reuse)
            sp.set_attribute("arco.run.state", result.state)
        metrics.RUNS.labels(result.state).inc()
        metrics.RUN_SECONDS.labels(result.state).observe(result.elapsed)
        return result

    def _run(
        self,
        plan: Plan,
        *,
        run_id: str,
        parent_run_id: str | None,
        reuse: Mapping[tuple[str, str | None], str | None] | None,
    ) -> RunResult:
        """Open the run, drive its tasks to the end, then close it."""
        start = time.monotonic()
        run = self._prepare(plan, run_id, parent_run_id, reuse)
        self._open(run)
        run_state = run_transition("QUEUED", "RUNNING")
        try:
            self._drive(run)
        except BaseException:
            # The transitions that happened before the failure are still recorded,
            # unless writing is what failed (or the lease is gone).
            with contextlib.suppress(Exception):
                self._flush(run_id, run.pending)
            raise
        finally:
            self._live = None
        run_state = self._close(run, run_state)
        self._publish(run.tasks)
        return RunResult(run_id, run_state, run.tasks, time.monotonic() - start, parent_run_id)

    def _prepare(
        self,
        plan: Plan,
        run_id: str,
        parent_run_id: str | None,
        reuse: Mapping[tuple[str, str | None], str | None] | None,
    ) -> _Run:
        """The run's tasks and the values its inputs read; refuses a plan whose inputs
        outside the run have no value (before the run exists: its function would be
        handed None for the value)."""
        known = latest_materializations(self.store, self.scope)
        locations: dict[tuple[str, str | None], str | None] = {
            k: loc for k, (_, loc) in known.items()
        }
        locations.update(reuse or {})
        missing = [
            (t.asset, t.partition, u, up)
            for t in plan.tasks
            for u, up in t.inputs
            if task_id_of(u, up) not in t.deps and (u, up) not in locations
        ]
        if missing:
            raise_missing_upstreams(missing)
        tasks = {t.task_id: TaskRun(t, index=i) for i, t in enumerate(plan.tasks)}
        down: dict[str, list[str]] = {tid: [] for tid in tasks}
        for tid, tr in tasks.items():
            for d in tr.task.deps:
                down[d].append(tid)
        return _Run(run_id, plan, parent_run_id, tasks, down, locations)

    def _open(self, run: _Run) -> None:
        """Write the run's opening batch (``hooks.open_run``), then index its tasks."""
        self._seq = self.hooks.seq_base(run.run_id)
        self._live = None
        opening = RunOpening(
            run_id=run.run_id,
            plan=run.plan,
            parent_run_id=run.parent_run_id,
            tasks=run.tasks,
            defs=self.defs,
            transition=lambda tr, state: self._task_event(run.run_id, tr, state),
            finish=lambda tr, outcome: self._finish(run, tr, outcome),
        )
        self._emit(run.run_id, self.hooks.open_run(opening))
        self._live = _Live(run.tasks.values())

    def _drive(self, run: _Run) -> None:
        """Start, poll and finish attempts until no task can move any more."""
        live = self._live
        assert live is not None
        inline = bool(getattr(self.executor, "synchronous", False))
        while True:
            now = time.monotonic()
            self._poll_cancel(run, now)
            for tr in live.due(now):
                run.pending.append(self._task_event(run.run_id, tr, "READY"))
            progressed = self._step_inline(run) if inline else self._step_started(run)
            if self._collect(run):
                progressed = True
            if self._ended(run):
                return
            if not progressed:
                time.sleep(self.options.poll_interval)

    def _poll_cancel(self, run: _Run, now: float) -> None:
        """Look for a cancellation request (at most every ``CANCEL_POLL_SECONDS``)."""
        if run.cancelled or now < run.next_cancel_check:
            return
        run.next_cancel_check = now + CANCEL_POLL_SECONDS
        if self._cancel_requested(run.run_id):
            self._cancel(run)

    def _cancel(self, run: _Run) -> None:
        """Cancel every task not yet terminal, then stop the running attempts."""
        run.cancelled = True
        victims = list(run.running.values())
        for tr in victims:
            tr.error = "cancelled"
            run.pending.append(self._task_event(run.run_id, tr, "CANCELLED"))
        run.running.clear()
        for tr in run.tasks.values():
            if tr.state in ("PLANNED", "BLOCKED", "READY", "RETRY_WAIT"):
                run.pending.append(self._task_event(run.run_id, tr, "CANCELLED"))
        # Write-ahead: the cancellations are durable before any worker is killed.
        self._flush(run.run_id, run.pending)
        for tr in victims:
            if tr.handle is not None:
                tr.handle.kill()

    def _step_inline(self, run: _Run) -> bool:
        """One step on a synchronous executor; returns whether any attempt ran."""
        live = self._live
        assert live is not None
        # Only tasks whose READY is durable run here; their RUNNING and outcome
        # events are written together, after the attempt.
        self._flush(run.run_id, run.pending)
        progressed = not run.cancelled and self._run_inline(run)
        if run.running and not live.ready:
            # Nothing else can start before these values are written: collect them
            # all, for one batch of events instead of one per poll.
            _settle(run.running.values(), INLINE_FLUSH_SECONDS)
        return progressed

    def _step_started(self, run: _Run) -> bool:
        """One step on an executor that runs attempts elsewhere: write the RUNNING
        events of the tasks that may start, then start them; returns whether any did."""
        live = self._live
        assert live is not None
        starts: list[TaskRun] = []
        if not run.cancelled:
            # READY events still waiting are written with these RUNNING ones.
            live.promote()
            starts = self._select(run.running)
            for tr in starts:
                tr.attempt += 1
                tr.error = None
                run.pending.append(self._task_event(run.run_id, tr, "RUNNING"))
        self._flush(run.run_id, run.pending)  # write-ahead: durable before work starts
        for tr in starts:
            self._start(run, tr)
        return bool(starts)

    def _collect(self, run: _Run) -> bool:
        """Finish the running attempts that have an outcome; returns whether any had."""
        progressed = False
        for tr in list(run.running.values()):
            outcome = self._outcome(tr)
            if outcome is None:
                continue
            progressed = True
            self._record(run, tr, outcome)
        return progressed

    def _outcome(self, tr: TaskRun) -> Outcome | None:
        """The attempt's outcome, a timeout if it outlived its deadline, else None."""
        assert tr.handle is not None
        outcome = tr.handle.poll()
        if outcome is None and tr.deadline is not None and time.monotonic() > tr.deadline:
            tr.handle.kill()
            asset = self.defs[tr.task.asset]
            outcome = Outcome(ok=False, error=f"TimeoutError: exceeded {asset.timeout}s")
        return outcome

    def _record(self, run: _Run, tr: TaskRun, outcome: Outcome) -> None:
        """An attempt ended: it no longer runs, and its events wait to be written."""
        run.running.pop(tr.task.task_id)
        tr.finished = time.monotonic()
        tr.outcome = outcome
        run.pending.extend(self._finish(run, tr, outcome))

    def _ended(self, run: _Run) -> bool:
        """Nothing runs and no task can move any more."""
        live = self._live
        assert live is not None
        if run.running:
            return False
        return live.open == 0 or (
            live.idle()
            and not run.pending
            and all(tr.state in TASK_TERMINAL for tr in run.tasks.values())
        )

    def _close(self, run: _Run, run_state: RunState) -> RunState:
        """Write the last events and the run's final state; returns that state."""
        self._flush(run.run_id, run.pending)
        final = run_outcome([tr.state for tr in run.tasks.values()], run.cancelled)
        run_state = run_transition(run_state, final)
        self._emit(
            run.run_id,
            [
                (
                    "run.state_changed",
                    {
                        "run_id": run.run_id,
                        "state": run_state,
                        "reason": "cancelled" if run.cancelled else None,
                    },
                )
            ],
        )
        return run_state

    def _publish(self, tasks: dict[str, TaskRun]) -> None:
        """Fold the run's events into Tier-2 state and register its tables (per options)."""
        publish(self.ws, self.defs, self.options, tasks, keys=self.keys, store_url=self.store_url)

    def _select(self, running: dict[str, TaskRun]) -> list[TaskRun]:
        """READY tasks to start now, in plan order, within the global and per-tag limits."""
        live = self._live
        assert live is not None
        starts: list[TaskRun] = []
        held: list[int] = []
        limit = self.options.max_concurrency
        while len(running) + len(starts) < limit:
            tr = live.pop_ready()
            if tr is None:
                break
            if not self._tag_allows(tr, [*running.values(), *starts]):
                held.append(tr.index)
                continue
            starts.append(tr)
        for i in held:
            heapq.heappush(live.ready, i)
        return starts

    def _start(self, run: _Run, tr: TaskRun) -> None:
        tr.started = time.monotonic()
        asset = self.defs[tr.task.asset]
        tr.deadline = tr.started + asset.timeout if asset.timeout else None
        job = job_for(
            self.defs, self.scope, self.store_url, self._checks, run.run_id, tr, run.locations
        )
        tr.handle = self.executor.start(job)
        if tr.handle.code_finished:
            tr.deadline = None  # the code ran in this thread; only its write may remain
        run.running[tr.task.task_id] = tr

    def _run_inline(self, run: _Run) -> bool:
        """Run the durably READY tasks one after another in this thread (a synchronous
        executor), collecting their events; returns whether any ran.

        An attempt whose value is still being written stays in ``running`` and is
        finished by the scheduler's polling like any other."""
        live = self._live
        assert live is not None
        began = time.monotonic()
        ran = False
        while (tr := live.pop_ready()) is not None:
            tr.attempt += 1
            tr.error = None
            run.pending.append(self._task_event(run.run_id, tr, "RUNNING"))
            self._start(run, tr)
            ran = True
            assert tr.handle is not None
            outcome = tr.handle.poll()
            if outcome is not None:
                self._record(run, tr, outcome)
            if (
                time.monotonic() - began >= INLINE_FLUSH_SECONDS
                or len(run.pending) >= INLINE_FLUSH_EVENTS
            ):
                break
        return ran

    def _tag_allows(self, tr: TaskRun, active: list[TaskRun]) -> bool:
        limits = self.options.tag_concurrency
        if not limits:
            return True
        asset = self.defs[tr.task.asset]
        for tag, limit in limits.items():
            if asset.tag(tag) is None:
                continue
            used = sum(1 for o in active if self.defs[o.task.asset].tag(tag) is not None)
            if used >= limit:
                return False
        return True

    # --------------------------------------------------------- task outcomes
    def _finish(self, run: _Run, tr: TaskRun, outcome: Outcome) -> list[Event]:
        """The events of an attempt that ended with ``outcome``: its log lines, then
        what its success or failure sets off."""
        out: list[Event] = []
        if outcome.logs:
            out.append(log_event(run.run_id, tr, outcome))
        if outcome.ok:
            self._succeeded(run, tr, outcome, out)
        else:
            self._failed(run, tr, outcome, out)
        return out

    def _succeeded(self, run: _Run, tr: TaskRun, outcome: Outcome, out: list[Event]) -> None:
        """A stored value: its materialization, observed lineage and check results,
        then the task SUCCEEDED and its downstream READY (or skipped by a check)."""
        run.locations[(tr.task.asset, tr.task.partition)] = outcome.location
        out.append(materialization_event(self.defs, run.run_id, tr, outcome))
        edges = observed_edges(self.defs, run.run_id, tr)
        if edges is not None:
            out.append(edges)
        blocking = check_events(run.run_id, tr, outcome, out)
        out.append(self._task_event(run.run_id, tr, "SUCCEEDED"))
        if blocking:
            # The value is stored, but a blocking check failed: the downstream of
            # this partition must not consume it.
            self._skip_downstream(run, tr, out, blocking)
            return
        for d in run.down[tr.task.task_id]:
            dt = run.tasks[d]
            if dt.state == "BLOCKED" and all(
                run.tasks[x].state == "SUCCEEDED" for x in dt.task.deps
            ):
                out.append(self._task_event(run.run_id, dt, "READY"))

    def _failed(self, run: _Run, tr: TaskRun, outcome: Outcome, out: list[Event]) -> None:
        """A failed attempt: a retry after the asset's backoff, or (out of retries, or
        cancelled) the task FAILED and its downstream skipped."""
        asset = self.defs[tr.task.asset]
        tr.error = outcome.error
        if tr.attempt <= asset.retry.max_retries and not (outcome.error or "").startswith(
            "cancelled"
        ):
            tr.retry_at = time.monotonic() + asset.retry.delay(tr.attempt + 1)
            out.append(self._task_event(run.run_id, tr, "RETRY_WAIT"))
            return
        out.append(self._task_event(run.run_id, tr, "FAILED"))
        self._skip_downstream(run, tr, out, f"upstream {tr.task.task_id} failed")

    def _skip_downstream(self, run: _Run, tr: TaskRun, out: list[Event], reason: str) -> None:
        """Skip every task downstream of ``tr`` that has not started."""
        stack = list(run.down[tr.task.task_id])
        while stack:
            d = stack.pop()
            dt = run.tasks[d]
            if dt.state in ("PLANNED", "BLOCKED", "READY"):
                dt.error = reason
                out.append(self._task_event(run.run_id, dt, "SKIPPED"))
                stack.extend(run.down[d])

    def _cancel_requested(self, run_id: str) -> bool:
        try:
            self.store.head(self.keys.run_cancel(run_id))
        except ObjectNotFoundError:
            return False
        return True


def request_cancel(store: ObjectStore, scope: Scope, run_id: str, reason: str = "") -> None:
    """Ask the scheduler running ``run_id`` to cancel it (idempotent)."""
    body = json.dumps(
        {"run_id": run_id, "reason": reason, "requested_at": datetime.now(UTC).isoformat()}
    ).encode()
    with contextlib.suppress(PreconditionFailedError):
        store.put(Keys(scope).run_cancel(run_id), body, "create")
