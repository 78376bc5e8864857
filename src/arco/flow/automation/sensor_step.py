"""The sensor step of a tick: claim the due sensors, evaluate them, record the results.

Called by :meth:`Automation.tick <arco.flow.automation.tick.Automation.tick>`:
:func:`claim_sensors` while deciding (under compare-and-swap of the state
document), :func:`evaluate_sensor` once that write is in (the sensor's code runs
here, outside any lease of the document), :func:`record_sensors` in a second
compare-and-swap. A claim is a per-sensor lease with a fencing token, so a result
whose claim expired and was taken by another daemon is dropped.
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from arco.flow.automation.requests import RunRequest, run_id_for
from arco.flow.automation.sensors import SensorContext, normalise
from arco.flow.automation.state import AutomationState
from arco.flow.automation.tick import TickReport, iso, parse_iso, remember

if TYPE_CHECKING:
    from arco.flow.automation.tick import Automation

log = logging.getLogger("arco.automation")


def claim_sensors(
    auto: Automation, state: AutomationState, now: datetime, claimed: dict[str, int]
) -> bool:
    """Claim every due, enabled sensor nobody else holds (in the state being decided):
    a lease for ``auto.claim_ttl`` with a new fencing token, noted in ``claimed``."""
    changed = False
    for sensor in auto.sensors.values():
        entry = state.sensors.setdefault(sensor.name, {})
        next_at = entry.get("next_at")
        if next_at is not None and parse_iso(next_at) > now:
            continue
        if not auto.sensor_enabled(state, sensor):
            continue
        claim = entry.get("claim")
        if claim is not None and parse_iso(claim["until"]) > now:
            continue  # another daemon is evaluating it
        token = int(entry.get("evaluation", 0)) + 1
        entry["evaluation"] = token
        entry["claim"] = {
            "holder": auto.holder,
            "until": iso(now + timedelta(seconds=auto.claim_ttl)),
            "token": token,
        }
        claimed[sensor.name] = token
        changed = True
    return changed


def evaluate_sensor(
    auto: Automation,
    name: str,
    token: int,
    now: datetime,
    report: TickReport,
    entry: dict[str, Any],
) -> dict[str, Any]:
    """Run a claimed sensor (no state write): its cursor, run requests and skip
    reason, or its error; ``entry`` is the sensor's state when it was claimed."""
    sensor = auto.sensors[name]
    cursor = entry.get("cursor")
    last = entry.get("last_evaluated_at")
    ctx = SensorContext(
        sensor=name,
        cursor=cursor,
        evaluated_at=now,
        evaluation=token,
        last_evaluated_at=parse_iso(last) if last else None,
    )
    report.sensors_evaluated.append(name)
    try:
        from arco.flow.automation.sensor_inputs import call_sensor

        result = normalise(call_sensor(auto, sensor, ctx), name)
    except Exception as exc:
        first = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        report.errors.append(f"sensor {name}: {first}")
        log.warning("sensor %s failed: %s", name, first)
        return {
            "name": name,
            "token": token,
            "error": first + "\n" + traceback.format_exc(limit=6)[-3000:],
        }
    requests = []
    for i, req in enumerate(result.run_requests):
        base = req.run_key or f"{token}:{i}"
        requests.append(
            RunRequest(
                req.selection or sensor.selection,
                req.partitions,
                f"sensor:{name}:{base}",
                {**dict(sensor.tags), **dict(req.tags)},
            )
        )
    missing = [r for r in requests if not r.selection]
    if missing:
        return {
            "name": name,
            "token": token,
            "error": f"sensor {name} requested a run without a selection and has no "
            "default selection",
        }
    return {
        "name": name,
        "token": token,
        "cursor": result.cursor,
        "requests": requests,
        "skip": result.skip_reason,
    }


def record_sensors(
    auto: Automation, state: AutomationState, results: list[dict[str, Any]], now: datetime
) -> bool:
    """Record the evaluations whose claim still holds: cursor, backoff, history, and
    the launches and ``sensor.evaluated`` events in the outbox."""
    changed = False
    for res in results:
        name = res["name"]
        sensor = auto.sensors[name]
        entry = state.sensors.setdefault(name, {})
        claim = entry.get("claim") or {}
        if claim.get("token") != res["token"] or claim.get("holder") != auto.holder:
            continue  # fenced: our claim expired and another daemon took the sensor
        entry["claim"] = None
        entry["last_evaluated_at"] = iso(now)
        token = res["token"]
        if "error" in res:
            failures = int(entry.get("failures", 0)) + 1
            retry = now + timedelta(seconds=sensor.backoff(failures))
            entry.update(failures=failures, last_error=res["error"][:4000], next_at=iso(retry))
            event = {
                "sensor": name,
                "evaluation": token,
                "status": "failed",
                "cursor": entry.get("cursor"),
                "error": res["error"][:16_000],
                "failures": failures,
                "retry_at": iso(retry),
            }
        else:
            if res["cursor"] is not None:
                entry["cursor"] = res["cursor"]
            entry.update(
                failures=0,
                last_error=None,
                next_at=iso(now + timedelta(seconds=sensor.interval_seconds)),
            )
            reqs: list[RunRequest] = res["requests"]
            event = {
                "sensor": name,
                "evaluation": token,
                "status": "requested" if reqs else "skipped",
                "cursor": entry.get("cursor"),
                "run_keys": [r.run_key for r in reqs],
                "run_ids": [run_id_for(str(r.run_key), now) for r in reqs],
                "error": res.get("skip"),
            }
            for r in reqs:
                state.pending[str(r.run_key)] = {
                    "kind": "launch",
                    "origin": f"sensor:{name}",
                    "selection": r.selection,
                    "partitions": list(r.partitions),
                    "tags": dict(r.tags),
                    "at": iso(now),
                }
        remember(
            entry,
            {
                "evaluation": token,
                "evaluated_at": iso(now),
                "status": event["status"],
                "run_keys": list(event.get("run_keys") or [])[:20],
                "run_ids": list(event.get("run_ids") or [])[:20],
                "error": (str(event["error"]).splitlines() or [""])[0][:500]
                if event.get("error")
                else None,
            },
        )
        state.pending[f"sensor:{name}:{token}#evaluated"] = {
            "kind": "event",
            "type": "sensor.evaluated",
            "payload": event,
        }
        changed = True
    return changed
