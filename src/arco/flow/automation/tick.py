"""One evaluation of everything automated in a scope: ``arco tick`` and each
round of ``arco daemon``.

A tick is write-ahead in three steps, so a daemon killed anywhere resumes
without losing or repeating a run:

1. **Decide** under compare-and-swap of the state document
   (:mod:`~arco.flow.automation.state`): due schedule ticks (at most
   ``max_catchup`` per schedule; older missed ticks are recorded as ``missed``),
   claims on due sensors (a per-sensor lease with a fencing counter), backfill
   chunks to launch. Each decided launch or event goes into the document's
   outbox (``pending``) in the same write that advances the cursors. Two daemons
   deciding at once: one write wins, the other re-reads and finds nothing due.
2. **Flush** the outbox: each decision's ledger event first (idempotency key =
   the decision's run key), then the launches — all of them through one
   :func:`arco.flow.queue.enqueue_many`, each with its run key as idempotency key
   and a run id derived from it. Any tick flushes any outbox entry, so one left by
   a dead daemon is finished by the next; flushing twice is harmless.
3. **Clear** the flushed entries (compare-and-swap again, from the state the tick
   wrote: a tick reads the document once unless another daemon writes meanwhile).

Claimed sensors are evaluated and recorded after the first write
(:mod:`~arco.flow.automation.sensor_step`). An idle tick — nothing due, nothing
pending — costs one GET.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from arco.core.errors import ArcoError, InvalidArgumentError
from arco.core.ids import new_ulid
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.flow.automation.cron import between_fast, last_ticks, next_tick, ticks_between
from arco.flow.automation.requests import SkipReason, run_id_for
from arco.flow.automation.schedules import ScheduleDef, tick_requests
from arco.flow.automation.sensors import SensorDef
from arco.flow.automation.state import AutomationState, StateStore
from arco.flow.definitions import Definitions
from arco.workspace import Workspace

#: How long a daemon may take to evaluate a sensor it claimed before another may.
DEFAULT_CLAIM_TTL = 300.0
#: Missed ticks recorded one by one; beyond, one event says how many more.
MAX_MISSED_EVENTS = 100
#: Ticks and evaluations kept per schedule and sensor in the state document, for
#: the API, the UI and ``arco schedule list`` (the ledger keeps every one).
HISTORY = 10


def remember(entry: dict[str, Any], item: dict[str, Any]) -> None:
    """Add ``item`` to an entry's bounded ``history`` (newest last)."""
    history: list[dict[str, Any]] = entry.setdefault("history", [])
    history.append(item)
    del history[:-HISTORY]


def iso(when: datetime) -> str:
    """UTC ISO form used throughout the state document."""
    return _iso(when)


# A tick formats and parses the same few instants for every schedule (they share
# their scheduled times): both are remembered. Equal instants in other zones are
# equal keys, and give the same UTC text.
@functools.lru_cache(maxsize=4096)
def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _due(next_at: str, stamp: str, now: datetime) -> bool:
    """Whether ``next_at`` is at or before ``now`` (``stamp`` = ``iso(now)``): two
    strings in :func:`iso`'s fixed-width form compare as their instants do, so
    the idle path parses nothing."""
    if len(next_at) == len(stamp) and next_at.endswith("Z") and next_at[10] == "T":
        return next_at <= stamp
    return parse_iso(next_at) <= now


@functools.lru_cache(maxsize=4096)
def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso` (any ISO form with a zone)."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise InvalidArgumentError(f"time {text!r} must carry a time zone")
    return when.astimezone(UTC)


def default_holder() -> str:
    """Who this daemon is, in claims: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_ulid()[-6:]}"


@dataclass
class TickReport:
    """What one tick did."""

    now: str
    idle: bool = True
    launched: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0
    missed: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    sensors_evaluated: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


#: Launches whose run id is a pure function of their run key (see ``_launch_all``).
_KEYED_ORIGINS = ("schedule:", "backfill:")

#: A hook that adds decisions for other concepts (backfills, freshness, alerts):
#: ``hook(tick, state, now)`` edits the state in place and returns whether it did.
DecideHook = Callable[["Automation", AutomationState, datetime], bool]


class Automation:
    """Evaluates the schedules, sensors, backfills, freshness policies and alerts
    of one scope (one project's definitions)."""

    def __init__(
        self,
        store: ObjectStore,
        scope: Scope,
        defs: Definitions,
        *,
        holder: str | None = None,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        extra_schedules: list[ScheduleDef] | None = None,
        hooks: list[DecideHook] | None = None,
        prepare: list[Callable[[Automation, datetime], None]] | None = None,
        flushers: dict[str, Callable[[Automation, dict[str, Any], TickReport], None]] | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        self.store = store
        self.scope = scope
        #: The scope's collaborators (ledger, run reader), shared across the tick.
        self.ws = workspace or Workspace(store, scope)
        self.defs = defs
        self.holder = holder or default_holder()
        self.claim_ttl = claim_ttl
        self.states = StateStore(store, scope)
        self.ledger = self.ws.ledger
        self.schedules: dict[str, ScheduleDef] = dict(defs.schedules)
        for s in extra_schedules or ():
            if s.name in self.schedules:
                raise InvalidArgumentError(
                    f"schedule {s.name!r} is declared both in code and in arco.toml"
                )
            self.schedules[s.name] = s
        self.sensors: dict[str, SensorDef] = dict(defs.sensors)
        self.hooks = list(hooks or ())
        self.prepare = list(prepare or ())
        self.flushers = dict(flushers or {})
        #: Scratch space of hooks for the current tick (reads done before deciding).
        self.scratch: dict[str, Any] = {}

    # ------------------------------------------------------------------ tick
    def tick(self, now: datetime | None = None) -> TickReport:
        """Evaluate everything once at ``now`` (default: the clock)."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        report = TickReport(now=iso(now))
        # Imported here: the sensor step imports this module's helpers.
        from arco.flow.automation.sensor_step import (
            claim_sensors,
            evaluate_sensor,
            record_sensors,
        )

        self.scratch = {}
        for prep in self.prepare:
            prep(self, now)
        claimed: dict[str, int] = {}

        def decide(state: AutomationState) -> bool:
            claimed.clear()
            changed = self._decide_schedules(state, now)
            changed |= claim_sensors(self, state, now, claimed)
            for hook in self.hooks:
                changed |= hook(self, state, now)
            return changed or bool(state.pending)

        state = self.states.update(decide)
        if not state.pending and not claimed:
            return report  # idle: one GET (and nothing written)
        report.idle = False
        self._flush_and_clear(state, report)
        if claimed:
            # The state just written holds every claimed sensor's cursor: one read for all.
            results = [
                evaluate_sensor(self, name, token, now, report, state.sensors.get(name, {}))
                for name, token in claimed.items()
            ]
            state = self.states.update(lambda s: record_sensors(self, s, results, now), fresh=False)
            if state.pending:
                self._flush_and_clear(state, report)
        return report

    # ----------------------------------------------------------- schedules
    def schedule_enabled(self, state: AutomationState, sched: ScheduleDef) -> bool:
        """The definition's default, unless turned on or off since."""
        override = state.schedules.get(sched.name, {}).get("enabled")
        return sched.enabled if override is None else bool(override)

    def _decide_schedules(self, state: AutomationState, now: datetime) -> bool:
        changed = False
        stamp = iso(now)
        # Schedules share crons, zones and (ticked together) cursors: each answer
        # of the cron arithmetic is computed once per tick.
        next_at_of: dict[tuple[str, str], str | None] = {}
        between: dict[tuple[str, str, str], list[datetime] | None] = {}

        def next_iso(sched: ScheduleDef) -> str | None:
            key = (sched.cron, sched.timezone)
            if key not in next_at_of:
                nxt = next_tick(sched.cron, sched.timezone, now)
                next_at_of[key] = iso(nxt) if nxt else None
            return next_at_of[key]

        for sched in self.schedules.values():
            entry = state.schedules.get(sched.name)
            if entry is None:
                # A new schedule starts now: ticks before it existed are not "missed".
                state.schedules[sched.name] = {"cursor": stamp, "next_at": next_iso(sched)}
                changed = True
                continue
            next_at = entry.get("next_at")
            if next_at is None or not _due(next_at, stamp, now):
                continue  # the idle path: one comparison
            if not self.schedule_enabled(state, sched):
                continue  # turning it on again moves its cursor to that moment
            cursor_text = entry["cursor"]
            cursor = parse_iso(cursor_text)
            # A short interval (the usual tick) is listed at once; a long one (a
            # daemon that was down) without walking every instant in it.
            span_key = (sched.cron, sched.timezone, cursor_text)
            if span_key not in between:
                between[span_key] = between_fast(sched.cron, sched.timezone, cursor, now)
            every = between[span_key]
            if every is not None:
                due = every[-sched.max_catchup :]
            else:
                due = last_ticks(sched.cron, sched.timezone, cursor, now, sched.max_catchup)
            if due:
                missed = (
                    every[: -sched.max_catchup][: MAX_MISSED_EVENTS + 1]
                    if every is not None
                    else ticks_between(
                        sched.cron,
                        sched.timezone,
                        cursor,
                        due[0] - timedelta(microseconds=1),
                        limit=MAX_MISSED_EVENTS + 1,
                    )
                )
                for when in missed[-HISTORY:]:
                    remember(
                        entry,
                        {
                            "scheduled_at": iso(when),
                            "run_key": sched.run_key(when),
                            "status": "missed",
                        },
                    )
                for when in missed[:MAX_MISSED_EVENTS]:
                    key = sched.run_key(when)
                    reason = "the daemon was not running; catch-up is limited to the last "
                    reason += f"{sched.max_catchup} tick(s) (max_catchup)"
                    if len(missed) > MAX_MISSED_EVENTS and when == missed[MAX_MISSED_EVENTS - 1]:
                        reason += "; more missed ticks before this one are not listed"
                    state.pending[f"{key}#missed"] = {
                        "kind": "schedule_event",
                        "event": {
                            "schedule": sched.name,
                            "scheduled_at": iso(when),
                            "run_key": key,
                            "status": "missed",
                            "reason": reason,
                        },
                    }
                for when in due:
                    key = sched.run_key(when)
                    state.pending[key] = {
                        "kind": "schedule",
                        "schedule": sched.name,
                        "scheduled_at": iso(when),
                    }
                    remember(
                        entry, {"scheduled_at": iso(when), "run_key": key, "status": "decided"}
                    )
                entry["last_tick"] = iso(due[-1])
            entry["cursor"] = stamp
            entry["next_at"] = next_iso(sched)
            changed = True
        return changed

    def set_schedule_enabled(self, name: str, enabled: bool, now: datetime | None = None) -> None:
        """Turn a schedule on or off; turning it on starts from ``now`` (no catch-up
        of the time it was off)."""
        sched = self.schedules.get(name)
        if sched is None:
            from arco.core.errors import NotFoundError

            raise NotFoundError(f"no schedule named {name!r}")
        when = (now or datetime.now(UTC)).astimezone(UTC)

        def change(state: AutomationState) -> None:
            entry = state.schedules.setdefault(name, {})
            entry["enabled"] = enabled
            if enabled:
                nxt = next_tick(sched.cron, sched.timezone, when)
                entry["cursor"] = iso(when)
                entry["next_at"] = iso(nxt) if nxt else None

        self.states.update(change)

    # ------------------------------------------------------------- sensors
    def sensor_enabled(self, state: AutomationState, sensor: SensorDef) -> bool:
        """The definition's default, unless turned on or off since."""
        override = state.sensors.get(sensor.name, {}).get("enabled")
        return sensor.enabled if override is None else bool(override)

    # --------------------------------------------------------------- flush
    def _flush_and_clear(self, state: AutomationState, report: TickReport) -> None:
        outcomes: dict[str, dict[str, Any]] = self.scratch.setdefault("tick_outcomes", {})
        done = self.flush(state, report)
        if done:

            def clear(s: AutomationState) -> bool:
                before = len(s.pending)
                for key in done:
                    s.pending.pop(key, None)
                for entry in s.schedules.values():
                    for item in entry.get("history") or ():
                        got = outcomes.get(item.get("run_key", ""))
                        if got is not None and item.get("status") == "decided":
                            item.update(got)
                return len(s.pending) != before or bool(outcomes)

            self.states.update(clear, fresh=False)

    def flush(self, state: AutomationState, report: TickReport) -> list[str]:
        """Write the outbox's events, then do its launches; returns the keys done."""
        events: list[dict[str, Any]] = []
        launches: list[tuple[str, dict[str, Any], str]] = []
        done: list[str] = []
        marks = (len(report.launched), len(report.failed))
        for key, item in sorted(state.pending.items()):
            kind = item["kind"]
            if kind == "schedule_event":
                events.append(_event("schedule.ticked", item["event"], key))
                report.missed += item["event"]["status"] == "missed"
                done.append(key)
            elif kind == "event":
                events.append(_event(item["type"], item["payload"], key))
                done.append(key)
            elif kind == "schedule":
                events.extend(self._schedule_launches(key, item, launches, report))
                done.append(key)
            elif kind == "launch":
                at = parse_iso(item["at"])
                run_id = run_id_for(key, at)
                launches.append((key, item, run_id))
                done.append(key)
            else:
                # Handled below, after the events (alerts); a kind nobody handles here
                # (an alert with no webhook configured) is dropped, not kept forever.
                done.append(key)
        for i in range(0, len(events), 5_000):
            self.ledger.append_batch("executions", events[i : i + 5_000], source="automation")
        report.events += len(events)
        self._launch_all(launches, report)
        self._audit_launches(launches, report, marks)
        for key, item in sorted(state.pending.items()):
            flusher = self.flushers.get(item["kind"])
            if flusher is not None:
                flusher(self, {**item, "key": key}, report)
        return done

    def _schedule_launches(
        self,
        key: str,
        item: dict[str, Any],
        launches: list[tuple[str, dict[str, Any], str]],
        report: TickReport,
    ) -> list[dict[str, Any]]:
        """A due tick's run requests (the schedule's function runs here) as events
        plus launches."""
        sched = self.schedules.get(item["schedule"])
        at = parse_iso(item["scheduled_at"])
        base = {"schedule": item["schedule"], "scheduled_at": item["scheduled_at"]}
        out = self._schedule_events(key, item, sched, at, base, launches, report)
        outcome: dict[str, Any] = {"status": "requested", "run_ids": [], "reason": None}
        for ev in out:
            p = ev["payload"]
            if p["status"] == "requested":
                outcome["run_ids"].append(p["run_id"])
            else:
                outcome["status"] = p["status"] if not outcome["run_ids"] else "requested"
                outcome["reason"] = p.get("reason")
        self.scratch.setdefault("tick_outcomes", {})[key] = outcome
        return out

    def _schedule_events(
        self,
        key: str,
        item: dict[str, Any],
        sched: ScheduleDef | None,
        at: datetime,
        base: dict[str, Any],
        launches: list[tuple[str, dict[str, Any], str]],
        report: TickReport,
    ) -> list[dict[str, Any]]:
        if sched is None:
            body = {**base, "run_key": key, "status": "failed", "reason": "schedule removed"}
            return [_event("schedule.ticked", body, key)]
        try:
            got = tick_requests(sched, at, self._partition_schemes(sched.selection))
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:4000]
            report.failed.append({"run_key": key, "reason": reason})
            return [
                _event(
                    "schedule.ticked",
                    {**base, "run_key": key, "status": "failed", "reason": reason},
                    key,
                )
            ]
        if isinstance(got, SkipReason):
            report.skipped += 1
            body = {**base, "run_key": key, "status": "skipped", "reason": got.reason or None}
            return [_event("schedule.ticked", body, key)]
        out = []
        for req in got:
            run_key = str(req.run_key)
            run_id = run_id_for(run_key, at)
            launch = {
                "origin": f"schedule:{sched.name}",
                "selection": req.selection,
                "partitions": list(req.partitions),
                "tags": {
                    **dict(req.tags),
                    "schedule": sched.name,
                    "scheduled_at": item["scheduled_at"],
                },
            }
            err = self._check_plan(launch)
            if err is not None:
                report.failed.append({"run_key": run_key, "reason": err})
                body = {**base, "run_key": run_key, "status": "failed", "reason": err}
                out.append(_event("schedule.ticked", body, run_key))
                continue
            body = {
                **base,
                "run_key": run_key,
                "status": "requested",
                "run_id": run_id,
                "partitions": list(req.partitions),
            }
            out.append(_event("schedule.ticked", body, run_key))
            launches.append((run_key, launch, run_id))
        return out

    def _partition_schemes(self, selection: str) -> list[Any]:
        from arco.flow.planner import resolve_selection

        # Many schedules select the same assets: resolved once per tick.
        cache: dict[str, list[Any]] = self.scratch.setdefault("partition_schemes", {})
        if selection not in cache:
            keys = resolve_selection(self.defs, selection)
            assets = self.defs.assets
            cache[selection] = [assets[k].partitions for k in keys if assets[k].partitions]
        return list(cache[selection])

    def _plan(self, launch: dict[str, Any]) -> Any:
        from arco.flow.planner import plan

        return plan(
            self.defs, str(launch["selection"]), partitions=list(launch["partitions"]) or None
        )

    def _check_plan(self, launch: dict[str, Any]) -> str | None:
        try:
            self._plan(launch)
        except ArcoError as exc:
            return str(exc)[:4000]
        return None

    def _launch_all(
        self, launches: list[tuple[str, dict[str, Any], str]], report: TickReport
    ) -> None:
        """Plan and queue the launches (one :func:`~arco.flow.queue.enqueue_many`:
        their ``run.created`` events in one ledger object), each idempotent by its
        run key; a launch that fails is reported and does not stop the others."""
        from arco.flow.queue import QueueItem, enqueue_many

        planned: list[tuple[str, QueueItem]] = []
        for key, item, run_id in launches:
            try:
                the_plan = self._plan(item)
            except ArcoError as exc:
                self._launch_failed(key, exc, report)
                continue
            tags = {
                **dict(item.get("tags") or {}),
                "run_key": key,
                "origin": str(item.get("origin")),
            }
            planned.append(
                (
                    key,
                    QueueItem(
                        the_plan,
                        run_id=run_id,
                        idempotency_key=key,
                        requested_by=f"automation:{item.get('origin', '?')}",
                        tags=tags,
                        # A schedule's or backfill's run key is decided once, with
                        # its time, under compare-and-swap: its run id follows from
                        # it. A sensor may ask for one key again later (another id).
                        run_id_from_key=str(item.get("origin")).startswith(_KEYED_ORIGINS),
                    ),
                )
            )
        results = enqueue_many(self.store, self.scope, [q for _, q in planned])
        for (key, _), got in zip(planned, results, strict=True):
            if isinstance(got, ArcoError):
                self._launch_failed(key, got, report)
            else:
                report.launched.append({"run_key": key, "run_id": got.run_id})

    def _audit_launches(
        self,
        launches: list[tuple[str, dict[str, Any], str]],
        report: TickReport,
        marks: tuple[int, int],
    ) -> None:
        """One audit record per launch this flush decided (queued, or failed from
        planning on), written as one ledger object; a trail that cannot be written
        is reported and counted, and never undoes or fails the launches."""
        from arco.core.actor import current_actor
        from arco.governance.audit import AuditRecord, write_audit_many

        origins = {key: str(item.get("origin", "?")) for key, item, _ in launches}
        planned_ids = {key: run_id for key, _, run_id in launches}
        actor = current_actor()
        tick_id = new_ulid()

        def record(key: str, run_id: str | None, outcome: str, reason: str | None) -> AuditRecord:
            detail = {"run_key": key[:1024], "origin": origins.get(key, "?"), "holder": self.holder}
            if reason:
                detail["reason"] = reason[:1024]
            return AuditRecord(
                action="automation run launch",
                outcome=outcome,
                actor=actor,
                tenant=self.scope.tenant,
                workspace=self.scope.workspace,
                request_id=tick_id,
                target=run_id,
                roles=("automation",),
                detail=detail,
            )

        records = [
            record(i["run_key"], i["run_id"], "ok", None) for i in report.launched[marks[0] :]
        ]
        records += [
            record(f["run_key"], planned_ids.get(f["run_key"]), "error", f["reason"])
            for f in report.failed[marks[1] :]
        ]
        if not records:
            return
        try:
            write_audit_many(self.store, records, source="automation")
        except Exception as exc:  # the runs are queued: the trail's loss is reported, not raised
            from arco.core import metrics

            metrics.AUDIT_WRITE_ERRORS.inc()
            report.errors.append(f"audit trail not written: {type(exc).__name__}: {exc}"[:4000])

    @staticmethod
    def _launch_failed(key: str, exc: ArcoError, report: TickReport) -> None:
        reason = f"{type(exc).__name__}: {exc}"[:4000]
        report.failed.append({"run_key": key, "reason": reason})
        report.errors.append(f"launch {key}: {reason}")


def _event(etype: str, payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {"type": etype, "payload": payload, "idempotency_key": f"{etype}:{key}"[:255]}
