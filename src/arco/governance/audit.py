"""The audit trail: who did what, in which scope, with which outcome.

Audit records are Tier-2 events of the ``audit`` ledger domain (event type
``audit.recorded``), folded by the compactor into the ``audit`` state table,
which SQL reads as ``system.audit`` and ``arco audit`` prints. They inherit the
ledger's guarantees: create-only objects, never rewritten, verified by
``arco verify`` once folded, and the compactor's idempotency.

Writers: the API records every write request (Tier-1 commits, ledger appends,
signed-URL mints, run launches and cancels) and every request made with an
admin token, once its outcome is known; the CLI records every command that
writes to the store (:mod:`arco.cli.audit_trail`); the automation daemon and
``arco tick`` record every run they launch (or fail to) and every scheduled
verify.
A record never holds a token, a signature, a signed URL or a query string.

:class:`AuditWriter` takes records off the request path: ``record`` validates
and encodes the event in the caller's thread (so a bad record fails loudly
there) and queues it; one background thread writes whatever is queued as one
ledger object per scope (group commit), so a burst of writes costs one PUT per
scope per flush, not one per request. Under a steady stream of records it
flushes at most every ``min_interval`` (10 ms). A record is durable a PUT's
latency after its request answered (plus at most ``min_interval`` under load);
:meth:`AuditWriter.close` flushes at shutdown. A batch
that cannot be written is logged in full on the ``arco.audit`` logger and
counted in ``arco_audit_write_errors``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arco.core import metrics
from arco.core.actor import acting_as
from arco.core.ids import new_ulid
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.ledger.compactor import Compactor, tier2_store
from arco.ledger.events import Envelope, build_envelope
from arco.ledger.log import Ledger, decode_object

log = logging.getLogger("arco.audit")

DOMAIN = "audit"
EVENT_TYPE = "audit.recorded"


def outcome_of(status: int) -> str:
    """The audit outcome of an HTTP status: ok, denied (401/403), rejected (4xx), error."""
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    if status < 500:
        return "rejected"
    return "error"


@dataclass(frozen=True)
class AuditRecord:
    """One audited action (see :class:`arco.ledger.events.AuditRecordedV1`)."""

    action: str
    outcome: str
    actor: str
    tenant: str
    workspace: str
    request_id: str | None = None
    target: str | None = None
    status: int | None = None
    roles: tuple[str, ...] = ()
    duration_ms: float | None = None
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def scope(self) -> Scope:
        """The scope whose ledger holds the record."""
        return Scope(self.tenant, self.workspace)

    def payload(self) -> dict[str, Any]:
        """The event payload."""
        return {
            "action": self.action[:512],
            "outcome": self.outcome,
            "actor": self.actor,
            "tenant": self.tenant,
            "workspace": self.workspace,
            "request_id": self.request_id,
            "target": self.target[:4096] if self.target else None,
            "status": self.status,
            "roles": list(self.roles)[:16],
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
            "detail": dict(self.detail),
        }


def encode_record(record: AuditRecord, *, source: str, check_size: bool = True) -> Envelope:
    """Validate ``record`` as an ``audit.recorded`` event; the envelope's actor is its own.

    ``check_size=False``: the caller encodes the envelope with a size check
    (:meth:`Ledger.encode_prepared`), so it is not encoded twice.
    """
    event_id = new_ulid()
    with acting_as(record.actor):
        return build_envelope(
            DOMAIN,
            EVENT_TYPE,
            record.payload(),
            idempotency_key=f"audit:{event_id}",
            event_id=event_id,
            source=source,
            check_size=check_size,
        )


def write_audit(store: ObjectStore, record: AuditRecord, *, source: str = "cli") -> Envelope:
    """Write one record now (for short-lived processes: the CLI)."""
    return write_audit_many(store, [record], source=source)[0]


def write_audit_many(
    store: ObjectStore, records: Sequence[AuditRecord], *, source: str
) -> list[Envelope]:
    """Write ``records`` now, one ledger object per scope (the daemon's launches of a tick)."""
    envs = [encode_record(r, source=source) for r in records]
    by_scope: dict[Scope, list[Envelope]] = {}
    for record, env in zip(records, envs, strict=True):
        by_scope.setdefault(record.scope, []).append(env)
    for scope, group in by_scope.items():
        Ledger(store, scope).append_prepared(DOMAIN, group)
    for record in records:
        metrics.AUDIT_RECORDS.labels(record.outcome).inc()
    return envs


#: Scopes whose ledger an :class:`AuditWriter` keeps at hand (it forgets them past this).
_LEDGERS_KEPT = 1024


class AuditWriter:
    """Queues audit records and writes them in the background, one object per scope.

    Under a steady stream of records the writer writes at most once every
    ``min_interval`` seconds (the records of that interval share one object per
    scope); a record that arrives after a quiet period is written at once.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        source: str = "api",
        max_batch: int = 1000,
        min_interval: float = 0.01,
    ) -> None:
        self.store = store
        self.source = source
        self.max_batch = max_batch
        self.min_interval = min_interval
        self._queue: list[tuple[Ledger, Envelope, bytes]] = []
        self._ledgers: dict[tuple[str, str], Ledger] = {}
        self._cond = threading.Condition()
        self._busy = False
        self._hurry = False
        self._closed = False
        self._last_write = 0.0
        self._thread: threading.Thread | None = None

    def _ledger(self, record: AuditRecord) -> Ledger:
        key = (record.tenant, record.workspace)
        ledger = self._ledgers.get(key)
        if ledger is None:
            if len(self._ledgers) >= _LEDGERS_KEPT:
                self._ledgers.clear()
            ledger = self._ledgers[key] = Ledger(self.store, record.scope)
        return ledger

    def record(self, record: AuditRecord) -> None:
        """Queue ``record`` (validated and encoded here); it is written within a PUT's
        time, or ``min_interval`` more under a steady stream of records."""
        ledger = self._ledger(record)
        env = encode_record(record, source=self.source, check_size=False)
        # Encoded once, here, with its size checked: the writer only joins the bytes.
        (data,) = ledger.encode_prepared(DOMAIN, [env])
        with self._cond:
            self._queue.append((ledger, env, data))
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._loop, name="arco-audit-writer", daemon=True
                )
                self._thread.start()
            # The writer waits for the first record or for a full batch; waking it for
            # every record would cost a thread switch per request.
            if len(self._queue) == 1 or len(self._queue) >= self.max_batch:
                self._cond.notify_all()
        metrics.AUDIT_RECORDS.labels(record.outcome).inc()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                while not (self._closed or self._hurry or len(self._queue) >= self.max_batch):
                    wait = self._last_write + self.min_interval - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                batch, self._queue = self._queue, []
                self._busy = True
            try:
                self._write(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._last_write = time.monotonic()
                    if not self._queue:
                        self._hurry = False
                    self._cond.notify_all()

    def _write(self, batch: Sequence[tuple[Ledger, Envelope, bytes]]) -> None:
        by_scope: dict[int, list[tuple[Ledger, Envelope, bytes]]] = {}
        for item in batch:
            by_scope.setdefault(id(item[0]), []).append(item)
        for items in by_scope.values():
            ledger = items[0][0]
            for start in range(0, len(items), self.max_batch):
                part = items[start : start + self.max_batch]
                try:
                    ledger.write_encoded(DOMAIN, [(env.event_id, data) for _, env, data in part])
                except Exception:
                    metrics.AUDIT_WRITE_ERRORS.inc()
                    # The trail must not vanish silently: the records go to the log.
                    for _, env, _ in part:
                        log.error(
                            "audit record not written: %s",
                            json.dumps(env.payload, sort_keys=True),
                            exc_info=True,
                        )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop the background thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)


def _row_of(env: Envelope) -> dict[str, Any]:
    p = env.payload
    return {
        "event_id": env.event_id,
        "recorded_at": datetime.fromisoformat(env.occurred_at).astimezone(UTC),
        "actor": p.get("actor"),
        "tenant": p.get("tenant"),
        "workspace": p.get("workspace"),
        "action": p.get("action"),
        "target": p.get("target"),
        "outcome": p.get("outcome"),
        "status": p.get("status"),
        "request_id": p.get("request_id"),
        "roles": ",".join(p.get("roles") or []),
        "duration_ms": p.get("duration_ms"),
        "detail_json": json.dumps(p.get("detail") or {}, sort_keys=True),
        "source": env.source,
    }


def read_audit(
    store: ObjectStore,
    scope: Scope,
    *,
    since: datetime | None = None,
    include_pending: bool = True,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Audit rows of ``scope``, oldest first: the folded table plus, with
    ``include_pending``, records still waiting in the ledger (that part lists)."""
    dstore = tier2_store(store, scope, DOMAIN)
    snap = dstore.read(max_staleness=0)
    rows: dict[str, dict[str, Any]] = {
        r["event_id"]: r for r in dstore.load_table(snap, "audit").to_pylist()
    }
    if include_pending:
        compactor = Compactor(store, scope)
        for obj in compactor.pending(DOMAIN):
            try:
                data, _ = store.get(obj.key)
                envs = decode_object(data, obj.is_batch)
            except Exception:  # a vanished or broken object: the compactor deals with it
                continue
            for env in envs:
                if env.event_type == EVENT_TYPE and env.event_id not in rows:
                    rows[env.event_id] = _row_of(env)
    out = sorted(rows.values(), key=lambda r: r["event_id"])
    if since is not None:
        out = [r for r in out if r["recorded_at"] >= since]
    return out[-limit:] if limit else out
