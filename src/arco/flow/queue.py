"""The run queue: runs requested through the API wait here for a run worker.

A queued run is three things, written in this order:

1. ``control/runs/{run_id}.request.json`` — the immutable request: the plan
   (so every worker executes the same tasks, whatever was materialized since)
   and the run's options;
2. a ``run.created`` event in the ``executions`` ledger — the run is visible,
   in state ``QUEUED``, in ``system.runs`` and the API;
3. ``control/queue/{run_id}.json`` — a marker, so a worker finds unfinished
   runs with one short listing instead of folding the ledger (idle costs one
   LIST). It is removed once the run is terminal; the ledger stays the truth.

A worker owns a run while it holds the run's lease
(``control/runs/{run_id}.lease.json``, the Tier-1 :class:`LeaseLock` with its
fencing token). The events it writes carry ``seq`` numbers in the band of its
token (``token * SEQ_SPAN + n``), so after a takeover every event of the new
owner sorts after every event of the old one in the fold, whatever the clocks
say. See ADR 010.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arco.core.actor import clean_actor, current_actor
from arco.core.errors import (
    ArcoError,
    FencedError,
    LockUnavailableError,
    NotFoundError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from arco.core.ids import check_idempotency_key, new_ulid, sha256_hex
from arco.core.keys import Keys, validate_ulid
from arco.core.scope import Scope
from arco.core.storage import Match, ObjectStore
from arco.domain.lock import Lease, LeaseLock, LockRecord
from arco.flow.planner import Explanation, Plan, PlannedTask
from arco.ledger.events import MAX_BATCH_EVENTS
from arco.ledger.log import Ledger

#: Width of the ``seq`` band of one lease token (events of token T: T*SPAN ... (T+1)*SPAN-1).
SEQ_SPAN = 1_000_000_000
DEFAULT_LEASE_TTL = 15.0


def plan_from_dict(data: Mapping[str, Any]) -> Plan:
    """Rebuild a :class:`Plan` from its JSON form (``Plan.to_dict()``)."""
    tasks = tuple(
        PlannedTask(
            task_id=str(t["task_id"]),
            asset=str(t["asset"]),
            partition=t.get("partition"),
            deps=tuple(t.get("deps") or ()),
            inputs=tuple((str(a), p) for a, p in t.get("inputs") or ()),
            reason=str(t.get("reason", "")),
            code_version=t.get("code_version"),
        )
        for t in data.get("tasks") or ()
    )
    explanations = tuple(
        Explanation(str(e["asset"]), e.get("partition"), bool(e["included"]), str(e["reason"]))
        for e in data.get("explanations") or ()
    )
    return Plan(
        selection=str(data.get("selection", "*")),
        mode=str(data.get("mode", "all")),
        tasks=tasks,
        explanations=explanations,
        fingerprint=str(data.get("fingerprint", "")),
        partitions=tuple(data.get("partitions") or ()),
    )


@dataclass(frozen=True)
class RunRequest:
    """What was asked for: the plan and the options of one queued run."""

    run_id: str
    plan: Plan
    parent_run_id: str | None = None
    max_concurrency: int | None = None
    tag_concurrency: dict[str, int] = field(default_factory=dict)
    requested_by: str | None = None
    requested_at: str = ""

    def to_bytes(self) -> bytes:
        """JSON encoding (the plan without its explanations)."""
        body = {
            "run_id": self.run_id,
            "plan": {**self.plan.body(), "fingerprint": self.plan.fingerprint},
            "parent_run_id": self.parent_run_id,
            "max_concurrency": self.max_concurrency,
            "tag_concurrency": self.tag_concurrency,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RunRequest:
        """Decode a stored request."""
        raw = json.loads(data)
        return cls(
            run_id=validate_ulid(raw["run_id"]),
            plan=plan_from_dict(raw["plan"]),
            parent_run_id=raw.get("parent_run_id"),
            max_concurrency=raw.get("max_concurrency"),
            tag_concurrency={str(k): int(v) for k, v in (raw.get("tag_concurrency") or {}).items()},
            requested_by=raw.get("requested_by"),
            requested_at=str(raw.get("requested_at", "")),
        )


@dataclass(frozen=True)
class QueueItem:
    """One run for :func:`enqueue_many`: the arguments of :func:`enqueue`."""

    plan: Plan
    run_id: str | None = None
    idempotency_key: str | None = None
    tags: Mapping[str, str] | None = None
    parent_run_id: str | None = None
    max_concurrency: int | None = None
    tag_concurrency: Mapping[str, int] | None = None
    requested_by: str | None = None
    #: ``run_id`` is a pure function of ``idempotency_key`` (a schedule's or a
    #: backfill's run key, :func:`~arco.flow.automation.requests.run_id_for`): the
    #: request, stored create-only under that id, is then the idempotency record,
    #: and no separate key-to-run marker is written (one PUT less per run).
    run_id_from_key: bool = False


def enqueue(
    store: ObjectStore,
    scope: Scope,
    plan: Plan,
    *,
    parent_run_id: str | None = None,
    max_concurrency: int | None = None,
    tag_concurrency: Mapping[str, int] | None = None,
    requested_by: str | None = None,
    run_id: str | None = None,
    idempotency_key: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> RunRequest:
    """Queue ``plan`` as a new run (state ``QUEUED``) for a run worker.

    With ``idempotency_key``, a repeated call (a client retrying after a lost
    answer) returns the run the first call queued instead of queueing another.
    ``tags`` go into the run's ``run.created`` event (who launched it: a schedule
    and its tick, a sensor, a backfill chunk).
    """
    item = QueueItem(
        plan,
        run_id=run_id,
        idempotency_key=idempotency_key,
        tags=tags,
        parent_run_id=parent_run_id,
        max_concurrency=max_concurrency,
        tag_concurrency=tag_concurrency,
        requested_by=requested_by,
    )
    request = _store_request(store, scope, item)
    _announce(store, scope, request, tags)
    return request


#: Below this many runs, :func:`enqueue_many` makes its store calls one by one.
PARALLEL_FROM = 5


def enqueue_many(
    store: ObjectStore, scope: Scope, items: Sequence[QueueItem], *, threads: int = 8
) -> list[RunRequest | ArcoError]:
    """Queue several runs, each as :func:`enqueue` would, in fewer and concurrent
    store calls; returns, per item, its request or the error that stopped it.

    The three steps of every run keep their order (request, ``run.created``, queue
    marker) but run as three phases: every request (with its idempotency marker)
    stored concurrently, then the ``run.created`` events of all of them in one
    ledger object, then the queue markers concurrently. A crash between phases
    leaves what a crash inside :func:`enqueue` leaves; a repeated call finishes it
    (idempotency by key, events deduplicated by their idempotency key).
    """
    results: list[RunRequest | ArcoError] = list(
        _each(lambda item: _store_request(store, scope, item), items, threads)
    )
    stored = [(i, r) for i, r in enumerate(results) if isinstance(r, RunRequest)]
    ledger = Ledger(store, scope)
    try:
        for start in range(0, len(stored), MAX_BATCH_EVENTS):
            chunk = stored[start : start + MAX_BATCH_EVENTS]
            ledger.append_batch(
                "executions",
                [_created_event(r, items[i].tags) for i, r in chunk],
                source="queue",
            )
    except ArcoError:
        # One bad event (or a failed write) must not fail its neighbours: one by one.
        for i, request in stored:
            try:
                _append_created(ledger, request, items[i].tags)
            except ArcoError as exc:
                results[i] = exc
    marked = _each(
        lambda r: _mark_queued(store, scope, r) if isinstance(r, RunRequest) else r,
        results,
        threads,
    )
    return [r if isinstance(r, ArcoError) else m for r, m in zip(results, marked, strict=True)]


def _each(fn: Callable[[Any], Any], items: Sequence[Any], threads: int) -> list[Any]:
    """``fn`` over ``items`` (concurrently if there are many), an :class:`ArcoError`
    as the item's result; anything else (a simulated crash) propagates."""

    def one(item: Any) -> Any:
        try:
            return fn(item)
        except ArcoError as exc:
            return exc

    if len(items) < PARALLEL_FROM or threads <= 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        # A context per task: the actor (and a tracing span) follow each call.
        futures = [pool.submit(contextvars.copy_context().run, one, item) for item in items]
        return [f.result() for f in futures]


def _store_request(store: ObjectStore, scope: Scope, item: QueueItem) -> RunRequest:
    """A run's idempotency marker (unless its id follows from its key) and request,
    or those a first call stored."""
    keys = Keys(scope)
    run_id = validate_ulid(item.run_id or new_ulid())
    if item.idempotency_key is not None:
        check_idempotency_key(item.idempotency_key)
    if item.idempotency_key is not None and not (item.run_id_from_key and item.run_id):
        marker = keys.run_idempotency(sha256_hex(item.idempotency_key.encode()))
        try:
            store.put(marker, json.dumps({"run_id": run_id}).encode(), "create")
        except PreconditionFailedError:
            run_id = validate_ulid(json.loads(store.get(marker)[0])["run_id"])
            existing = None
            with contextlib.suppress(NotFoundError):
                existing = load_request(store, scope, run_id)
            if existing is not None:
                # The first call may have died after storing the request but before
                # its event or its queue marker: the caller finishes those (both are
                # idempotent), or the run would exist and never be picked up.
                return existing
            # The first call stopped before queueing: finish its work under its run id.
    request = RunRequest(
        run_id=run_id,
        plan=item.plan,
        parent_run_id=item.parent_run_id,
        max_concurrency=item.max_concurrency,
        tag_concurrency=dict(item.tag_concurrency or {}),
        # Who queued the run: the worker that executes it acts on their behalf.
        requested_by=clean_actor(item.requested_by) or current_actor(),
        requested_at=datetime.now(UTC).isoformat(),
    )
    try:
        store.put(keys.run_request(request.run_id), request.to_bytes(), "create")
    except PreconditionFailedError:
        if item.idempotency_key is None:
            raise
        request = load_request(store, scope, request.run_id)  # a concurrent retry won
    return request


def _created_event(request: RunRequest, tags: Mapping[str, str] | None) -> dict[str, Any]:
    """The ``run.created`` event of a queued run, as a batch item."""
    return {
        "type": "run.created",
        "payload": {
            "run_id": request.run_id,
            "seq": 0,
            "selection": request.plan.selection,
            "plan_fingerprint": request.plan.fingerprint,
            "parent_run_id": request.parent_run_id,
            "tags": {
                **{str(k): str(v) for k, v in (tags or {}).items()},
                "task_count": str(len(request.plan.tasks)),
                "mode": request.plan.mode,
                "queued": "true",
            },
        },
        "idempotency_key": f"{request.run_id}:0:run.created",
    }


def _append_created(ledger: Ledger, request: RunRequest, tags: Mapping[str, str] | None) -> None:
    event = _created_event(request, tags)
    ledger.append(
        "executions",
        event["type"],
        event["payload"],
        idempotency_key=event["idempotency_key"],
        source="queue",
    )


def _mark_queued(store: ObjectStore, scope: Scope, request: RunRequest) -> RunRequest:
    body = json.dumps({"run_id": request.run_id, "queued_at": request.requested_at}).encode()
    with contextlib.suppress(PreconditionFailedError):  # a retry found it queued already
        store.put(Keys(scope).run_queued(request.run_id), body, "create")
    return request


def _announce(
    store: ObjectStore, scope: Scope, request: RunRequest, tags: Mapping[str, str] | None
) -> None:
    """Make a stored request a queued run: its ``run.created`` event, then its marker."""
    _append_created(Ledger(store, scope), request, tags)
    _mark_queued(store, scope, request)


def load_request(store: ObjectStore, scope: Scope, run_id: str) -> RunRequest:
    """The stored request of a queued run (``NotFoundError`` if it was not queued)."""
    try:
        data, _ = store.get(Keys(scope).run_request(run_id))
    except ObjectNotFoundError as exc:
        raise NotFoundError(f"run {run_id} was not queued for a run worker") from exc
    return RunRequest.from_bytes(data)


def queued_runs(store: ObjectStore, scope: Scope) -> list[str]:
    """Ids of unfinished queued runs, oldest first (one LIST of a short prefix)."""
    prefix = Keys(scope).run_queue_prefix()
    out = []
    for meta in store.list(prefix):
        name = meta.key[len(prefix) :]
        if name.endswith(".json") and "/" not in name:
            with contextlib.suppress(ValueError):
                out.append(validate_ulid(name.removesuffix(".json")))
    return sorted(out)


def dequeue(store: ObjectStore, scope: Scope, run_id: str) -> None:
    """Drop the queue marker of a run that reached a terminal state (idempotent)."""
    with contextlib.suppress(ObjectNotFoundError):
        store.delete(Keys(scope).run_queued(run_id))


class RunLease:
    """A worker's lease on one run: claim, renew (in a thread), check, release.

    ``valid()`` needs no store read: a renewal that succeeded at ``t`` means no
    other worker can take the lease before ``t + ttl`` (clocks agreeing within
    the safety margin, as for Tier-1 commits, ADR 002), and the keeper renews
    every third of the ttl.
    """

    def __init__(self, lock: LeaseLock, lease: Lease, *, margin: float | None = None) -> None:
        self.lock = lock
        self.lease = lease
        self.margin = margin if margin is not None else min(2.0, lock.ttl / 5)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    @classmethod
    def try_claim(
        cls,
        store: ObjectStore,
        scope: Scope,
        run_id: str,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        holder: str | None = None,
    ) -> RunLease | None:
        """Take the run's lease if nobody holds it (or its holder's lease expired)."""
        lock = LeaseLock(store, Keys(scope).run_lease(run_id), ttl=ttl, wait_timeout=0.0)
        if holder is not None:
            lock.holder = holder
        try:
            return cls(lock, lock.acquire())
        except LockUnavailableError:
            return None

    @property
    def token(self) -> int:
        """The fencing token (grows by one on every claim of this run)."""
        return self.lease.token

    @property
    def seq_base(self) -> int:
        """First event ``seq`` of this lease's band."""
        return self.lease.token * SEQ_SPAN

    def valid(self) -> bool:
        """True while this worker may still write events for the run."""
        return not self.lost.is_set() and time.time() < self.lease.expires_at - self.margin

    def check(self) -> None:
        """Raise :class:`FencedError` unless the lease is still ours."""
        if not self.valid():
            raise FencedError(
                f"lease {self.lock.key} (token {self.lease.token}) was lost; "
                "another worker may own the run now"
            )

    def renew(self) -> None:
        """Push the expiry ``ttl`` seconds ahead (compare-and-swap on our last write)."""
        with self._mutex:
            if self.lost.is_set():
                raise FencedError(f"lease {self.lock.key} was lost")
            now = time.time()
            old = self.lease
            if now >= old.expires_at:
                self.lost.set()
                raise FencedError(f"lease {self.lock.key} expired before it was renewed")
            record = LockRecord(old.holder, old.token, old.acquired_at, now + self.lock.ttl)
            try:
                version = self.lock.store.put(self.lock.key, record.to_bytes(), Match(old.version))
            except (PreconditionFailedError, ObjectNotFoundError) as exc:
                self.lost.set()
                raise FencedError(f"lease {self.lock.key} was taken over") from exc
            self.lease = Lease(
                old.key, old.holder, old.token, version, record.expires_at, old.acquired_at
            )

    def start_keeper(self) -> None:
        """Renew in a daemon thread every third of the ttl until :meth:`release`."""

        def keep() -> None:
            while not self._stop.wait(self.lock.ttl / 3):
                try:
                    self.renew()
                except FencedError:
                    return
                except Exception:  # a flaky store: retry sooner, the lease may survive
                    if time.time() >= self.lease.expires_at - self.margin:
                        self.lost.set()
                        return

        self._thread = threading.Thread(target=keep, name=f"lease-{self.lock.key}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and mark the lease released (a no-op if it was taken over)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._mutex:
            if not self.lost.is_set():
                self.lock.release(self.lease)


def request_cancel(store: ObjectStore, scope: Scope, run_id: str, reason: str = "") -> str:
    """Cancel a run: a queued run nobody has claimed is cancelled at once; a running
    one gets the cancellation marker its worker polls. Returns the state it leaves."""
    from arco.flow.runner import request_cancel as write_marker

    write_marker(store, scope, run_id, reason)
    if not store.exists(Keys(scope).run_request(run_id)):
        return "RUNNING"  # not a queued run (``arco run``): its scheduler polls the marker
    lease = RunLease.try_claim(store, scope, run_id, ttl=DEFAULT_LEASE_TTL)
    if lease is None:
        return "RUNNING"  # a worker holds it and will see the marker
    try:
        from arco.flow.runview import RunsReader

        run = RunsReader(store, scope).view().run(run_id)
        state = str(run["state"]) if run is not None else "QUEUED"
        if state == "QUEUED":
            cancel_queued(store, scope, run_id, lease, reason or "cancelled before it started")
            return "CANCELLED"
        return state
    finally:
        lease.release()


def cancel_queued(
    store: ObjectStore, scope: Scope, run_id: str, lease: RunLease, reason: str
) -> None:
    """Write ``QUEUED -> CANCELLED`` for a run whose lease we hold, and dequeue it."""
    lease.check()
    seq = lease.seq_base + 1
    Ledger(store, scope).append(
        "executions",
        "run.state_changed",
        {"run_id": run_id, "seq": seq, "state": "CANCELLED", "reason": reason[:4096]},
        idempotency_key=f"{run_id}:{seq}:run.state_changed",
        source="queue",
    )
    dequeue(store, scope, run_id)
