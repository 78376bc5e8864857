"""The run worker: executes queued runs, one lease per run, resuming runs whose
worker died by folding their ledger events.

A worker polls the run queue (:mod:`arco.flow.queue`), claims a run by taking
its lease, renews the lease in a thread while the run executes, and runs it with
the ordinary :class:`~arco.flow.runner.Scheduler`, given :class:`LeaseHooks`
(:mod:`arco.flow.hooks`) so that

* every batch of events is written only while the lease is still ours
  (fencing: a worker that lost its lease stops and kills its attempts), and
  each event's ``seq`` lies in the band of the lease's token;
* a run that is already ``RUNNING`` (its worker died and the lease expired)
  starts from the fold of its events: ``SUCCEEDED`` tasks are not executed
  again and their outputs are reused, tasks found ``RUNNING`` lost their
  attempt, which counts as failed and is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from arco.core.actor import acting_as
from arco.core.errors import InvalidArgumentError
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.flow.definitions import Definitions
from arco.flow.executors import Executor, Handle, InlineExecutor, Job, Outcome
from arco.flow.hooks import Event, RunOpening, SchedulerHooks
from arco.flow.queue import (
    DEFAULT_LEASE_TTL,
    RunLease,
    RunRequest,
    cancel_queued,
    dequeue,
    load_request,
    queued_runs,
)
from arco.flow.runner import RunOptions, RunResult, Scheduler, TaskRun
from arco.flow.runview import RunsReader
from arco.flow.states import RUN_TERMINAL
from arco.workspace import Workspace

log = logging.getLogger("arco.worker")

#: A worker dying is not the asset's fault: a task whose attempt was lost with its
#: worker may retry once more than its own retry policy allows.
LOST_ATTEMPT_GRACE = 1
_FAILED_UPSTREAM = frozenset({"FAILED", "SKIPPED", "CANCELLED"})


class _Tracking(Executor):
    """Wraps an executor to remember live attempts, so a worker that loses its lease
    can stop them before it walks away."""

    #: Never the scheduler's synchronous fast path (RUNNING written together with the
    #: outcome): under a lease, RUNNING must be durable before an attempt starts, so a
    #: worker that dies mid-attempt leaves the record that the attempt was lost.
    synchronous = False

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.name = inner.name
        self.handles: list[Handle] = []

    def start(self, job: Job) -> Handle:
        """Start ``job`` on the wrapped executor and remember its handle."""
        handle = self.inner.start(job)
        self.handles = [h for h in self.handles if h.poll() is None]
        self.handles.append(handle)
        return handle

    def kill_all(self) -> None:
        """Stop every attempt still running (best effort)."""
        for handle in self.handles:
            try:
                if handle.poll() is None:
                    handle.kill()
            except Exception:  # a dead attempt must not keep the others alive
                log.warning("could not stop an attempt", exc_info=True)
        self.handles = []


@dataclass
class Prior:
    """What the ledger says about a run before this worker touches it."""

    run_state: str
    tasks: dict[str, dict[str, Any]]
    #: Reused outputs of tasks that already succeeded: (asset, partition) -> location.
    locations: dict[tuple[str, str | None], str | None] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)


class LeaseHooks(SchedulerHooks):
    """The :class:`~arco.flow.hooks.SchedulerHooks` of a run executed under a lease.

    * ``seq_base``: the run's events are numbered in the band of the lease's token;
    * ``before_emit``: nothing is written once the lease may belong to someone else
      (raises :class:`~arco.core.errors.FencedError`);
    * ``open_run``: a queued run starts; a run found ``RUNNING`` resumes from
      ``prior``, the fold of its ledger events.
    """

    def __init__(self, lease: RunLease, prior: Prior) -> None:
        self.lease = lease
        self.prior = prior

    def seq_base(self, run_id: str) -> int:
        """The first seq of the lease's band (after every seq of earlier leases)."""
        return self.lease.seq_base

    def before_emit(self, run_id: str, events: list[Event]) -> None:
        """Fencing: check the lease is still ours before each write."""
        if events:
            self.lease.check()

    def open_run(self, run: RunOpening) -> list[Event]:
        """The run's first batch: RUNNING (a queued run) or a resume note, then the
        tasks brought on from their prior states."""
        now = time.monotonic()
        events: list[Event] = [self._opening_event(run.run_id)]
        lost = self._restore(run, now)
        events.extend(self._bring_on(run))
        events.extend(self._lost_attempts(run, lost, now))
        return events

    def _opening_event(self, run_id: str) -> Event:
        if self.prior.run_state == "QUEUED":
            return ("run.state_changed", {"run_id": run_id, "state": "RUNNING"})
        done = sum(1 for r in self.prior.tasks.values() if r["state"] == "SUCCEEDED")
        return (
            "run.log",
            {
                "run_id": run_id,
                "task_id": None,
                "level": "WARNING",
                "lines": [
                    f"run resumed by worker {self.lease.lock.holder} (lease token "
                    f"{self.lease.token}); {done} succeeded tasks are reused"
                ],
            },
        )

    def _restore(self, run: RunOpening, now: float) -> list[TaskRun]:
        """Set each task to its prior state (no events); returns those found RUNNING."""
        lost: list[TaskRun] = []
        for tid, tr in run.tasks.items():
            row = self.prior.tasks.get(tid)
            if row is None or row["state"] == "PLANNED":
                continue
            tr.state = row["state"]
            tr.attempt = int(row["attempt"] or 0)
            tr.error = row["error"]
            if tr.state == "SUCCEEDED":
                tr.outcome = self.prior.outcomes.get(tid)
            elif tr.state == "RETRY_WAIT":
                tr.retry_at = now
            elif tr.state == "RUNNING":
                lost.append(tr)
        return lost

    def _bring_on(self, run: RunOpening) -> list[Event]:
        """Tasks not started: skipped, READY or BLOCKED by their upstream's states."""
        events: list[Event] = []
        for tr in run.tasks.values():
            if tr.state not in ("PLANNED", "BLOCKED"):
                continue
            deps = [run.tasks[d].state for d in tr.task.deps]
            if any(s in _FAILED_UPSTREAM for s in deps):
                tr.error = "an upstream task did not succeed"
                events.append(run.transition(tr, "SKIPPED"))
            elif all(s == "SUCCEEDED" for s in deps):
                events.append(run.transition(tr, "READY"))
            elif tr.state == "PLANNED":
                events.append(run.transition(tr, "BLOCKED"))
        return events

    def _lost_attempts(self, run: RunOpening, lost: list[TaskRun], now: float) -> list[Event]:
        """Attempts lost with their worker: retried (with a grace attempt) or failed."""
        events: list[Event] = []
        for tr in lost:
            asset = run.defs[tr.task.asset]
            tr.error = (
                f"WorkerLost: the run worker running attempt {tr.attempt} stopped renewing "
                "its lease"
            )
            if tr.attempt <= asset.retry.max_retries + LOST_ATTEMPT_GRACE:
                tr.retry_at = now  # the lease's expiry already made us wait
                events.append(run.transition(tr, "RETRY_WAIT"))
            else:
                events.extend(run.finish(tr, Outcome(ok=False, error=tr.error)))
        return events


def fold_prior(reader: RunsReader, run_id: str) -> Prior:
    """The run's state as its ledger events fold now (compacted + pending)."""
    view = reader.view()
    row = view.run(run_id)
    state = str(row["state"]) if row is not None else "QUEUED"
    tasks = {r["task_id"]: r for r in view.tasks_of(run_id)}
    prior = Prior(run_state=state, tasks=tasks)
    succeeded = {t for t, r in tasks.items() if r["state"] == "SUCCEEDED"}
    if succeeded:
        import json

        for mat in reader.materializations(view, run_id):
            if mat["task_id"] not in succeeded:
                continue
            location = mat["location"]
            prior.locations[(mat["asset"], mat["partition"])] = location
            schema = json.loads(mat["schema_json"]) if mat.get("schema_json") else None
            kind = "parquet" if location and str(location).endswith(".parquet") else "other"
            prior.outcomes[mat["task_id"]] = Outcome(
                ok=True, location=location, kind=kind, schema=schema, row_count=mat["row_count"]
            )
    return prior


@dataclass
class WorkerOptions:
    """Run worker knobs."""

    lease_ttl: float = DEFAULT_LEASE_TTL
    poll_interval: float = 1.0
    max_concurrency: int = 4
    tag_concurrency: Mapping[str, int] = field(default_factory=dict)
    holder: str | None = None
    #: Runs this worker executes at once, each with its own lease and executor.
    max_runs: int = 1

    def __post_init__(self) -> None:
        if self.max_runs < 1:
            raise InvalidArgumentError(f"max_runs must be at least 1, got {self.max_runs}")


class RunWorker:
    """Claims and executes the queued runs of one scope."""

    def __init__(
        self,
        store: ObjectStore,
        scope: Scope,
        defs: Definitions | Callable[[], Definitions],
        *,
        store_url: str,
        executor: Callable[[], Executor] | None = None,
        options: WorkerOptions | None = None,
        on_change: Callable[[str, TaskRun], None] | None = None,
        on_events: Callable[[str, list[tuple[str, dict[str, Any]]]], None] | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        self.store = store
        self.scope = scope
        #: The scope's collaborators, shared by every run this worker executes.
        self.ws = workspace or Workspace(store, scope)
        self._defs = defs
        self.store_url = store_url
        self.make_executor = executor or InlineExecutor
        self.options = options or WorkerOptions()
        self.on_change = on_change
        #: Handed every batch of a run's events once written (OpenLineage emitting),
        #: as :class:`~arco.flow.runner.Scheduler`'s ``on_events``.
        self.on_events = on_events
        self.reader = RunsReader.of(self.ws)
        self.results: list[RunResult] = []
        self._defs_lock = threading.Lock()

    def definitions(self) -> Definitions:
        """The project's definitions (loaded on first use, once across run threads)."""
        with self._defs_lock:
            if not isinstance(self._defs, Definitions):
                self._defs = self._defs()
            return self._defs

    def _claim(self, limit: int, skip: set[str]) -> list[tuple[str, RunLease]]:
        """Take the leases of up to ``limit`` queued runs (not in ``skip``)."""
        claimed: list[tuple[str, RunLease]] = []
        for run_id in queued_runs(self.store, self.scope):
            if len(claimed) >= limit:
                break
            if run_id in skip:
                continue
            lease = RunLease.try_claim(
                self.store,
                self.scope,
                run_id,
                ttl=self.options.lease_ttl,
                holder=self.options.holder,
            )
            if lease is not None:
                claimed.append((run_id, lease))
        return claimed

    def _run_claimed(self, run_id: str, lease: RunLease) -> str:
        try:
            self._handle(run_id, lease)
            return run_id
        finally:
            lease.release()

    def poll_once(self) -> list[str]:
        """Claim and run every queued run nobody else holds; the ids it handled.

        Up to ``max_runs`` runs execute at once, each in its own thread; the call
        returns when the queue it found is done.
        """
        handled: list[str] = []
        tried: set[str] = set()
        while True:
            claimed = self._claim(self.options.max_runs, tried)
            if not claimed:
                return handled
            tried.update(run_id for run_id, _ in claimed)
            if len(claimed) == 1:
                handled.append(self._run_claimed(*claimed[0]))
                continue
            with ThreadPoolExecutor(len(claimed), thread_name_prefix="arco-run") as pool:
                futures = [pool.submit(self._run_claimed, r, lease) for r, lease in claimed]
                errors = []
                for future in futures:
                    try:
                        handled.append(future.result())
                    except Exception as exc:  # the others still finish first
                        errors.append(exc)
                if errors:
                    raise errors[0]

    def serve(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set, running up to ``max_runs`` runs at once.

        A slot freed by a finished run is filled at the next poll, without waiting
        for the other runs; errors are logged and the loop goes on.
        """
        active: dict[str, Future[str]] = {}
        with ThreadPoolExecutor(self.options.max_runs, thread_name_prefix="arco-run") as pool:
            while not stop.is_set():
                for run_id, future in list(active.items()):
                    if future.done():
                        del active[run_id]
                        if future.exception() is not None:
                            log.error(
                                "run %s failed in the worker", run_id, exc_info=future.exception()
                            )
                started = 0
                free = self.options.max_runs - len(active)
                if free > 0:
                    try:
                        for run_id, lease in self._claim(free, set(active)):
                            active[run_id] = pool.submit(self._run_claimed, run_id, lease)
                            started += 1
                    except Exception:
                        log.exception("run worker poll failed")
                if not started:
                    stop.wait(self.options.poll_interval)

    def _handle(self, run_id: str, lease: RunLease) -> None:
        prior = fold_prior(self.reader, run_id)
        if prior.run_state in RUN_TERMINAL:
            dequeue(self.store, self.scope, run_id)
            return
        if prior.run_state == "QUEUED" and self._cancel_requested(run_id):
            cancel_queued(self.store, self.scope, run_id, lease, "cancelled before it started")
            return
        request = load_request(self.store, self.scope, run_id)
        lease.start_keeper()
        # The run's commits and events record who queued it, not the worker's OS user.
        with acting_as(request.requested_by):
            result = self._execute(request, lease, prior)
        if result is not None:
            self.results.append(result)
            dequeue(self.store, self.scope, run_id)

    def _cancel_requested(self, run_id: str) -> bool:
        from arco.core.keys import Keys

        return self.store.exists(Keys(self.scope).run_cancel(run_id))

    def _abandon(self, run_id: str, lease: RunLease, reason: str) -> None:
        from arco.core.errors import FencedError
        from arco.flow.queue import SEQ_SPAN

        try:
            lease.check()
        except FencedError:
            return
        # The top of this lease's seq band: after every event the scheduler wrote.
        seq = lease.seq_base + SEQ_SPAN - 1
        self.ws.ledger.append(
            "executions",
            "run.state_changed",
            {"run_id": run_id, "seq": seq, "state": "FAILED", "reason": reason[:4000]},
            idempotency_key=f"{run_id}:{seq}:run.state_changed",
            source="worker",
        )
        dequeue(self.store, self.scope, run_id)

    def _execute(self, request: RunRequest, lease: RunLease, prior: Prior) -> RunResult | None:
        options = RunOptions(
            max_concurrency=request.max_concurrency or self.options.max_concurrency,
            tag_concurrency={**self.options.tag_concurrency, **request.tag_concurrency},
        )
        executor = _Tracking(self.make_executor())
        scheduler = Scheduler(
            self.store,
            self.scope,
            self.definitions(),
            store_url=self.store_url,
            executor=executor,
            options=options,
            on_change=self.on_change,
            on_events=self.on_events,
            hooks=LeaseHooks(lease, prior),
            workspace=self.ws,
        )
        if self.on_events is not None:
            # The run.created event was written when the run was queued, not by this
            # scheduler: replay what a listener needs of it (selection, parent run).
            self.on_events(
                request.run_id,
                [
                    (
                        "run.created",
                        {
                            "run_id": request.run_id,
                            "selection": request.plan.selection,
                            "parent_run_id": request.parent_run_id,
                        },
                    )
                ],
            )
        try:
            return scheduler.run(
                request.plan,
                run_id=request.run_id,
                parent_run_id=request.parent_run_id,
                reuse=prior.locations,
            )
        except Exception as exc:
            from arco.core.errors import FencedError

            executor.kill_all()
            if isinstance(exc, FencedError):
                # Another worker owns the run now; it resumes from the ledger.
                log.warning("lost the lease of run %s: %s", request.run_id, exc)
                return None
            # Anything else would fail the same way on every worker: end the run
            # FAILED (with the reason) rather than hand it around forever.
            log.exception("run %s failed in the worker", request.run_id)
            self._abandon(request.run_id, lease, f"{type(exc).__name__}: {exc}")
            return None
        finally:
            executor.inner.close()
