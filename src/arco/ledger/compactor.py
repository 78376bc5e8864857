"""The Tier-2 compactor: folds new ledger objects into each domain's Parquet state.

Per domain, the manifest's ``meta`` carries the watermark: the highest ledger
object id folded so far. A run lists ledger objects from ``watermark - window -
horizon`` on, skips those already processed (the ``ledger_objects`` table), and:

* folds objects newer than ``watermark - window`` (late but inside the window:
  writer clocks may be skewed by up to ``window``);
* quarantines older ones (too late), objects from too far in the future and
  objects that fail validation: copied to ``quarantine/``, recorded in the
  ``quarantine`` table, counted in the manifest and logged — never dropped;
* counts events whose idempotency key was already folded as duplicates.

It publishes through the same lock + manifest + pointer protocol as Tier 1, so
two compactors at once serialise on the lock and each folds only what the
other has not; a crash anywhere leaves the previous version, and the next run
redoes the work.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from arco.core import metrics
from arco.core.errors import InvalidArgumentError, PreconditionFailedError
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.core.telemetry import span
from arco.domain.lock import DEFAULT_LOCK_TTL
from arco.domain.store import Change, DomainStore, Snapshot
from arco.ledger.events import REGISTRY, EventRegistry, InvalidEventError
from arco.ledger.external_folds import fold_openlineage_payload
from arco.ledger.external_lineage import OpenLineageEventV2, decode_fast
from arco.ledger.folds import (
    AuditState,
    ExecutionsState,
    Folder,
    LineageState,
    RowMapState,
)
from arco.ledger.log import Ledger, LedgerObject, decode_object, ulid_floor, ulid_time

log = logging.getLogger("arco.compactor")

STATE_CLASSES: dict[str, type[RowMapState]] = {
    "executions": ExecutionsState,
    "lineage": LineageState,
    "audit": AuditState,
}
DEFAULT_WINDOW = timedelta(minutes=10)
DEFAULT_HORIZON = timedelta(days=1)
DEFAULT_AUDIT_INTERVAL = timedelta(hours=1)
#: Ledger objects fetched at once; the event cap is checked between objects.
_READ_SLICE = 256


@dataclass
class CompactionReport:
    """What one :meth:`Compactor.compact` call did for one domain."""

    domain: str
    objects: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    commits: int = 0
    version: int = 0
    watermark: str | None = None
    quarantine_reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class PruneReport:
    """What one :meth:`Compactor.prune` call did (or would do) to one domain."""

    domain: str
    cutoff: datetime | None = None
    ledger_objects: int = 0
    event_keys: int = 0
    kept_objects: int = 0
    kept_keys: int = 0
    dry_run: bool = False
    committed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            **self.__dict__,
            "cutoff": self.cutoff.isoformat() if self.cutoff is not None else None,
        }


def tier2_store(
    store: ObjectStore, scope: Scope, domain: str, **kwargs: Any
) -> DomainStore[RowMapState]:
    """The :class:`DomainStore` of a Tier-2 domain."""
    cls = STATE_CLASSES.get(domain)
    if cls is None:
        raise InvalidArgumentError(
            f"unknown Tier-2 domain {domain!r}; known: {', '.join(sorted(STATE_CLASSES))}"
        )
    return DomainStore(store, scope, domain, cls, **kwargs)


class Compactor:
    """Compacts the Tier-2 domains of one scope."""

    def __init__(
        self,
        store: ObjectStore,
        scope: Scope,
        *,
        window: timedelta = DEFAULT_WINDOW,
        horizon: timedelta = DEFAULT_HORIZON,
        max_objects: int = 2_000,
        max_events: int = 100_000,
        audit_interval: timedelta = DEFAULT_AUDIT_INTERVAL,
        registry: EventRegistry = REGISTRY,
        lock_ttl: float = DEFAULT_LOCK_TTL,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.scope = scope
        self.window = window
        self.horizon = horizon
        self.max_objects = max_objects
        # Batch objects hold up to thousands of events each: capping objects alone
        # let one chunk hold millions of events (and their folded rows) in memory.
        self.max_events = max_events
        self.audit_interval = audit_interval
        self.registry = registry
        self.ledger = Ledger(store, scope, registry=registry)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._domains: dict[str, DomainStore[RowMapState]] = {}
        self._lock_ttl = lock_ttl
        self._fast_domain = _fast_openlineage_domain(registry)

    def domain_store(self, domain: str) -> DomainStore[RowMapState]:
        """The (cached) domain store for ``domain``."""
        if domain not in self._domains:
            self._domains[domain] = tier2_store(
                self.store, self.scope, domain, lock_ttl=self._lock_ttl
            )
        return self._domains[domain]

    def _audit_due(self, meta: dict[str, Any]) -> bool:
        """True when the whole ledger should be listed: objects older than the
        horizon are found only that way, and must be quarantined, never lost."""
        last = meta.get("last_audit_at")
        if not last:
            return True
        return self.clock() - datetime.fromisoformat(last) >= self.audit_interval

    def pending(self, domain: str) -> list[LedgerObject]:
        """Ledger objects not yet processed (a cheap check: listing only)."""
        snap = self.domain_store(domain).read()
        return self._unseen(snap, domain)[0]

    def _unseen(
        self, snap: Snapshot[RowMapState], domain: str
    ) -> tuple[list[LedgerObject], str | None]:
        meta = snap.manifest.meta if snap.manifest else {}
        watermark = meta.get("watermark")
        since = None
        if watermark and not self._audit_due(meta):
            since = ulid_time(watermark) - self.window - self.horizon
        objs = [
            o
            for o in self.ledger.list_objects(domain, since=since)
            if not snap.state.has_object(o.object_id)
        ]
        objs.sort(key=lambda o: o.object_id)
        return objs, watermark

    def compact(
        self,
        domain: str,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> CompactionReport:
        """Fold everything pending in ``domain``, in chunks of at most ``max_objects``
        objects and (up to the object that crosses it) ``max_events`` events."""
        if domain not in STATE_CLASSES:
            raise InvalidArgumentError(
                f"unknown Tier-2 domain {domain!r}; known: {', '.join(sorted(STATE_CLASSES))}"
            )
        with span(
            "compactor.compact", {"arco.domain": domain, "arco.scope": str(self.scope)}
        ) as sp:
            report = self._compact(domain, progress)
            sp.set_attribute("arco.objects", report.objects)
            sp.set_attribute("arco.events", report.events)
        metrics.COMPACTED_EVENTS.labels(domain).inc(report.events)
        for reason, n in report.quarantine_reasons.items():
            metrics.QUARANTINED.labels(domain, reason).inc(n)
        metrics.COMPACTION_LAST_SUCCESS.labels(domain).set(self.clock().timestamp())
        return report

    def _compact(
        self, domain: str, progress: Callable[[int, int], None] | None
    ) -> CompactionReport:
        report = CompactionReport(domain=domain)
        dstore = self.domain_store(domain)
        total_hint: list[int] = [0]
        capped: list[bool] = [False]
        while True:
            chunk_report = CompactionReport(domain=domain)

            def mutate(snap: Snapshot[RowMapState], r: CompactionReport = chunk_report) -> Change:
                r.objects = r.events = r.duplicates = r.quarantined = 0
                r.quarantine_reasons = {}
                capped[0] = False
                return self._fold_chunk(snap, domain, r, total_hint, capped)

            result = dstore.commit(mutate)
            if result.committed:
                report.commits += 1
            for name in ("objects", "events", "duplicates", "quarantined"):
                setattr(report, name, getattr(report, name) + getattr(chunk_report, name))
            for reason, n in chunk_report.quarantine_reasons.items():
                report.quarantine_reasons[reason] = report.quarantine_reasons.get(reason, 0) + n
            report.version = result.snapshot.version
            meta = result.snapshot.manifest.meta if result.snapshot.manifest else {}
            report.watermark = meta.get("watermark")
            if progress is not None:
                progress(report.objects, max(total_hint[0], report.objects))
            if not result.committed or (chunk_report.objects < self.max_objects and not capped[0]):
                return report

    def _fold_chunk(
        self,
        snap: Snapshot[RowMapState],
        domain: str,
        report: CompactionReport,
        total_hint: list[int],
        capped: list[bool],
    ) -> Change:
        old_meta = snap.manifest.meta if snap.manifest else {}
        audited = self._audit_due(old_meta) and bool(old_meta)
        objs, watermark = self._unseen(snap, domain)
        if not objs:
            if report.objects == 0:
                metrics.COMPACTION_BACKLOG.labels(domain).set(0)
                metrics.COMPACTION_LAG.labels(domain).set(0)
            if audited:
                # Record the audit even when it found nothing, so the next full
                # listing waits for the interval.
                return Change(
                    meta={**old_meta, "last_audit_at": self.clock().isoformat()},
                    operation={"ops": [{"op": "audit", "objects": 0}]},
                )
            return Change()
        total_hint[0] = max(total_hint[0], report.objects + len(objs))
        if report.objects == 0:
            # What this run found waiting: the backlog and lag that alerts read.
            oldest = ulid_time(objs[0].object_id)
            metrics.COMPACTION_BACKLOG.labels(domain).set(len(objs))
            metrics.COMPACTION_LAG.labels(domain).set(
                max(0.0, (self.clock() - oldest).total_seconds())
            )
        objs = objs[: self.max_objects]
        now = self.clock()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        low = ulid_time(watermark) - self.window if watermark else None
        future = now + self.window
        folder = Folder(snap.state)
        accepted: list[LedgerObject] = []
        quarantine: list[tuple[LedgerObject, str, str]] = []
        for obj in objs:
            when = ulid_time(obj.object_id)
            if low is not None and when < low:
                quarantine.append(
                    (obj, "late", f"{(low - when).total_seconds():.0f}s behind the window")
                )
            elif when > future:
                quarantine.append((obj, "future", f"{(when - now).total_seconds():.0f}s ahead"))
            else:
                accepted.append(obj)
        seen_keys: set[str] = set()
        new_keys: list[dict[str, Any]] = []
        max_id = watermark
        fetched: list[tuple[LedgerObject, bytes | None]] = []
        for obj, data in self._read(accepted):
            if report.events + report.duplicates >= self.max_events:
                # The rest waits for the next chunk (a later commit of this run).
                capped[0] = True
                unread = {o.object_id for o in accepted[len(fetched) :]}
                objs = [o for o in objs if o.object_id not in unread]
                break
            fetched.append((obj, data))
            if data is None:
                continue
            fast = decode_fast(data, obj.is_batch) if domain == self._fast_domain else None
            if fast is not None:
                # The ingest route's own shape, validated in one call (ADR 013): folded
                # from the decoded dicts, with no envelope objects and no model dump.
                fast.sort(key=lambda e: e["event_id"])
                folded_keys = snap.state.table("event_keys")
                for e in fast:
                    key = e["idempotency_key"]
                    if key in seen_keys or (key,) in folded_keys:
                        report.duplicates += 1
                        continue
                    seen_keys.add(key)
                    event_id = e["event_id"]
                    new_keys.append(
                        {
                            "idempotency_key": key,
                            "event_id": event_id,
                            "event_type": e["event_type"],
                        }
                    )
                    fold_openlineage_payload(
                        folder,
                        event_id,
                        cast("dict[str, Any]", e["payload"]),
                        event_time(e["occurred_at"], event_id),
                    )
                    report.events += 1
                if max_id is None or obj.object_id > max_id:
                    max_id = obj.object_id
                continue
            try:
                envelopes = decode_object(data, obj.is_batch)
                upcast = []
                for env in envelopes:
                    payload = self.registry.validate(
                        domain, env.event_type, env.event_version, env.payload
                    )
                    upcast.append(
                        (env, self.registry.upcast(env.event_type, env.event_version, payload))
                    )
            except InvalidEventError as exc:
                quarantine.append((obj, "invalid", str(exc)[:2000]))
                continue
            for env, payload in sorted(upcast, key=lambda pair: pair[0].event_id):
                key = env.idempotency_key
                if key in seen_keys or snap.state.has_event_key(key):
                    report.duplicates += 1
                    continue
                seen_keys.add(key)
                new_keys.append(
                    {"idempotency_key": key, "event_id": env.event_id, "event_type": env.event_type}
                )

                folder.fold(env.with_payload(payload), event_time(env.occurred_at, env.event_id))
                report.events += 1
            if max_id is None or obj.object_id > max_id:
                max_id = obj.object_id
        change = Change()
        for obj, data in fetched:
            if data is not None and all(obj is not q[0] for q in quarantine):
                change.upsert(
                    "ledger_objects",
                    {
                        "object_id": obj.object_id,
                        "key": obj.key,
                        "status": "processed",
                        "events": 0,
                        "compacted_at": now,
                    },
                )
        for obj, reason, detail in quarantine:
            self._quarantine(domain, obj)
            change.upsert(
                "ledger_objects",
                {
                    "object_id": obj.object_id,
                    "key": obj.key,
                    "status": "quarantined",
                    "events": 0,
                    "compacted_at": now,
                },
            )
            change.upsert(
                "quarantine",
                {
                    "object_id": obj.object_id,
                    "key": obj.key,
                    "reason": reason,
                    "detail": detail,
                    "quarantined_at": now,
                },
            )
            report.quarantined += 1
            report.quarantine_reasons[reason] = report.quarantine_reasons.get(reason, 0) + 1
            log.warning(
                "quarantined ledger object %s of domain %s (%s: %s)",
                obj.key,
                domain,
                reason,
                detail,
            )
        # The rows were built by this chunk's fold: handed over, not copied.
        change.upsert_owned("event_keys", new_keys)
        for table, by_key in folder.upserts.items():
            change.upsert_owned(table, by_key.values())
        for table, facts in folder.appends.items():
            change.upsert_owned(table, facts)
        report.objects = len(objs)
        change.meta = {
            **old_meta,  # keys other writers keep here (prune's totals) carry over
            "watermark": max_id,
            "window_seconds": self.window.total_seconds(),
            "events_total": int(old_meta.get("events_total", 0)) + report.events,
            "duplicates_total": int(old_meta.get("duplicates_total", 0)) + report.duplicates,
            "quarantined_total": int(old_meta.get("quarantined_total", 0)) + report.quarantined,
            "last_compacted_at": now.isoformat(),
            "last_audit_at": now.isoformat()
            if audited or not old_meta
            else old_meta.get("last_audit_at", now.isoformat()),
        }
        change.operation = {
            "ops": [{"op": "compact", "objects": report.objects, "events": report.events}]
        }
        return change

    def prune(self, domain: str, keep: timedelta, *, dry_run: bool = False) -> PruneReport:
        """Forget ledger history older than ``keep`` behind the watermark.

        Deletes the processed (or quarantined) ledger objects older than the cutoff,
        then, in one commit, drops their ``ledger_objects`` rows and the
        ``event_keys`` of events older than the cutoff, so the compactor's resident
        bookkeeping stops growing with history. The folded state (runs, tasks,
        materializations, edges, quarantine records and copies) is untouched.

        ``keep`` is the deduplication horizon: an event re-sent with an idempotency
        key older than it is no longer recognised as a duplicate. It must cover the
        compactor's own look-back (``window + horizon``).
        """
        if domain not in STATE_CLASSES:
            raise InvalidArgumentError(
                f"unknown Tier-2 domain {domain!r}; known: {', '.join(sorted(STATE_CLASSES))}"
            )
        report = PruneReport(domain=domain, dry_run=dry_run)
        dstore = self.domain_store(domain)
        snap = dstore.read(max_staleness=0)
        meta = snap.manifest.meta if snap.manifest else {}
        # The window the domain was last compacted with counts too (arco compact
        # --window may have widened it beyond this compactor's).
        window = max(self.window, timedelta(seconds=float(meta.get("window_seconds") or 0)))
        if keep < window + self.horizon:
            raise InvalidArgumentError(
                f"keep ({keep}) must be at least the compactor's look-back, window + horizon "
                f"({window + self.horizon})"
            )
        watermark = meta.get("watermark")
        if not watermark:
            return report  # nothing compacted yet
        cutoff = ulid_time(watermark) - keep
        report.cutoff = cutoff
        # ULIDs sort by time as strings: compare with the cutoff's smallest ULID
        # instead of decoding hundreds of thousands of them.
        floor = ulid_floor(cutoff)
        victims = {
            row["object_id"]: row["key"]
            for row in snap.state.rows("ledger_objects")
            if _older(row["object_id"], floor)
        }
        old_keys = sum(1 for row in snap.state.rows("event_keys") if _older(row["event_id"], floor))
        report.ledger_objects, report.event_keys = len(victims), old_keys
        if dry_run or (not victims and not old_keys):
            return report
        # Objects first, rows second: a crash in between leaves rows for objects that
        # are gone (dropped by the next prune), never unrecorded objects that the
        # next audit would quarantine as late.
        for key in victims.values():
            if self.ledger.keys.is_within(key):
                self.store.delete(key)

        def mutate(latest: Snapshot[RowMapState]) -> Change:
            change = Change(replace={"ledger_objects", "event_keys"})
            for row in latest.state.rows("ledger_objects"):
                if row["object_id"] not in victims:
                    change.upsert("ledger_objects", row)
            for row in latest.state.rows("event_keys"):
                if not _older(row["event_id"], floor):
                    change.upsert("event_keys", row)
            report.kept_objects = len(change.rows.get("ledger_objects", ()))
            report.kept_keys = len(change.rows.get("event_keys", ()))
            meta = dict(latest.manifest.meta if latest.manifest else {})
            meta["pruned_before"] = cutoff.isoformat()
            meta["pruned_objects_total"] = int(meta.get("pruned_objects_total", 0)) + len(victims)
            change.meta = meta
            change.operation = {
                "ops": [{"op": "prune", "objects": len(victims), "before": cutoff.isoformat()}]
            }
            return change

        report.committed = dstore.commit(mutate).committed
        return report

    def _read(self, objs: list[LedgerObject]) -> Iterator[tuple[LedgerObject, bytes | None]]:
        """Ledger objects with their bytes, read a slice at a time so an event cap can
        stop the reading early."""
        for start in range(0, len(objs), _READ_SLICE):
            yield from self.ledger.read_many(objs[start : start + _READ_SLICE])

    def _quarantine(self, domain: str, obj: LedgerObject) -> None:
        try:
            data, _ = self.store.get(obj.key)
        except Exception:
            return
        with contextlib.suppress(PreconditionFailedError):
            self.store.put(self.ledger.keys.quarantined(domain, obj.object_id), data, "create")

    def compact_all(
        self, *, progress: Callable[[str, int, int], None] | None = None
    ) -> list[CompactionReport]:
        """Compact every Tier-2 domain."""
        reports = []
        for domain in STATE_CLASSES:
            cb = (lambda done, total, d=domain: progress(d, done, total)) if progress else None
            reports.append(self.compact(domain, progress=cb))
        return reports


def _fast_openlineage_domain(registry: EventRegistry) -> str | None:
    """The domain whose objects may take the OpenLineage fast path: only while the
    registry's latest ``openlineage.event`` is the v2 model the fast shape mirrors."""
    try:
        etype = registry.get("openlineage.event")
    except InvalidEventError:
        return None
    if etype.latest != 2 or etype.models.get(2) is not OpenLineageEventV2:
        return None
    return etype.domain


def _older(ulid: str, floor: str) -> bool:
    """True when ``ulid`` is older than the ULID ``floor`` (anything else is kept)."""
    return len(ulid) == 26 and ulid.upper() < floor


def event_time(value: str, event_id: str) -> datetime:
    """When an event occurred, as folds store it: ``occurred_at``, else its ULID's time.

    Truncated to milliseconds: state columns are timestamp[ms], and a fold must give
    the same rows whether its result is cached in memory or read back from Parquet.
    """
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    except ValueError:
        when = ulid_time(event_id)
    sub_ms = when.microsecond % 1000
    return when.replace(microsecond=when.microsecond - sub_ms) if sub_ms else when
