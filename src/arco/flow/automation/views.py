"""Read-only views of automation for the API, the CLI and the web UI: schedules
with their next ticks and history, sensors with cursors and errors, backfills,
asset check results and freshness.

Everything here reads; nothing decides. The state document gives cursors and
recent history, the runs view (compacted state plus pending events) gives the
state of the runs they launched and the check results not compacted yet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arco.core.errors import NotFoundError
from arco.core.keys import validate_ulid
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.flow.automation.state import AutomationState, StateStore

if TYPE_CHECKING:
    from arco.flow.automation.freshness import FreshnessPolicy
    from arco.flow.automation.tick import Automation
    from arco.flow.definitions import Definitions
    from arco.flow.runview import RunsReader, RunsView


def _run_state(view: RunsView | None, run_id: str | None) -> str | None:
    if view is None or run_id is None:
        return None
    row = view.run(run_id)
    return str(row["state"]) if row is not None else None


def schedule_row(
    auto: Automation, state: AutomationState, name: str, view: RunsView | None = None
) -> dict[str, Any]:
    """One schedule: its definition, on/off, next and last tick, and its recent
    ticks (newest first) with the state of the runs they launched."""
    sched = auto.schedules.get(name)
    if sched is None:
        raise NotFoundError(f"no schedule named {name!r}")
    entry = state.schedules.get(name, {})
    history = []
    for item in reversed(entry.get("history") or []):
        run_ids = list(item.get("run_ids") or [])
        history.append(
            {
                "scheduled_at": item["scheduled_at"],
                "run_key": item["run_key"],
                "status": item.get("status", "decided"),
                "reason": item.get("reason"),
                "runs": [{"run_id": r, "state": _run_state(view, r)} for r in run_ids],
            }
        )
    return {
        **sched.describe(),
        "enabled": auto.schedule_enabled(state, sched),
        "next_tick": entry.get("next_at"),
        "last_tick": entry.get("last_tick"),
        "history": history,
    }


def schedules(auto: Automation, view: RunsView | None = None) -> list[dict[str, Any]]:
    """Every schedule of the project, by name."""
    state, _ = auto.states.load()
    return [schedule_row(auto, state, name, view) for name in sorted(auto.schedules)]


def sensor_row(
    auto: Automation, state: AutomationState, name: str, view: RunsView | None = None
) -> dict[str, Any]:
    """One sensor: its definition, on/off, cursor, next evaluation, failures, last
    error and its recent evaluations (newest first)."""
    sensor = auto.sensors.get(name)
    if sensor is None:
        raise NotFoundError(f"no sensor named {name!r}")
    entry = state.sensors.get(name, {})
    evaluations = []
    for item in reversed(entry.get("history") or []):
        evaluations.append(
            {
                "evaluation": int(item["evaluation"]),
                "evaluated_at": item["evaluated_at"],
                "status": item["status"],
                "error": item.get("error"),
                "runs": [
                    {"run_id": r, "run_key": k, "state": _run_state(view, r)}
                    for k, r in zip(
                        item.get("run_keys") or [], item.get("run_ids") or [], strict=False
                    )
                ],
            }
        )
    return {
        **sensor.describe(),
        "enabled": auto.sensor_enabled(state, sensor),
        "cursor": entry.get("cursor"),
        "next_evaluation": entry.get("next_at"),
        "last_evaluated_at": entry.get("last_evaluated_at"),
        "evaluations": int(entry.get("evaluation", 0)),
        "failures": int(entry.get("failures", 0)),
        "last_error": entry.get("last_error"),
        "history": evaluations,
    }


def sensors(auto: Automation, view: RunsView | None = None) -> list[dict[str, Any]]:
    """Every sensor of the project, by name."""
    state, _ = auto.states.load()
    return [sensor_row(auto, state, name, view) for name in sorted(auto.sensors)]


def set_sensor_enabled(auto: Automation, name: str, enabled: bool) -> None:
    """Turn a sensor on or off; on, it is evaluated at the next tick."""
    if name not in auto.sensors:
        raise NotFoundError(f"no sensor named {name!r}")

    def change(state: AutomationState) -> None:
        entry = state.sensors.setdefault(name, {})
        entry["enabled"] = enabled
        entry["next_at"] = None

    auto.states.update(change)


def backfills(store: ObjectStore, scope: Scope) -> list[dict[str, Any]]:
    """Every backfill in the state document, newest first (summary only)."""
    from arco.flow.automation.backfills import load_backfill

    state, _ = StateStore(store, scope).load()
    out = []
    for backfill_id in sorted(state.backfills, reverse=True):
        entry = state.backfills[backfill_id]
        chunks = entry.get("chunks") or {}
        counts: dict[str, int] = {}
        for c in chunks.values():
            counts[c["status"]] = counts.get(c["status"], 0) + 1
        try:
            request = load_backfill(store, scope, backfill_id)
        except NotFoundError:
            continue  # its request was never written (a crash at creation)
        out.append(
            {
                "backfill_id": backfill_id,
                "selection": request.selection,
                "state": entry.get("state", "UNKNOWN"),
                "created_at": request.created_at,
                "finished_at": entry.get("finished_at"),
                "partitions": len(request.partitions),
                "first_partition": request.partitions[0],
                "last_partition": request.partitions[-1],
                "chunks": len(request.chunks),
                "chunks_launched": len(chunks),
                "chunk_counts": counts,
                "max_runs": request.max_runs,
            }
        )
    return out


def check_rows(reader: RunsReader, view: RunsView) -> list[dict[str, Any]]:
    """Every asset check result (compacted and pending), oldest first."""
    snap = reader.domain.read()
    rows: list[dict[str, Any]] = []
    if snap.manifest is not None:
        rows = reader.domain.load_table(snap, "asset_checks").to_pylist()
    seen = {r["event_id"] for r in rows}
    rows += [r for r in view.pending_asset_checks if r["event_id"] not in seen]
    rows.sort(key=lambda r: str(r["event_id"]))
    return rows


def check_out(row: dict[str, Any]) -> dict[str, Any]:
    """A result row as the API and the CLI show it."""
    when = row["evaluated_at"]
    return {
        "event_id": row["event_id"],
        "check": row["check"],
        "asset": row["asset"],
        "partition": row["partition"],
        "run_id": row["run_id"],
        "passed": bool(row["passed"]),
        "severity": row["severity"],
        "blocking": bool(row["blocking"]),
        "description": row["description"],
        "metadata": json.loads(row["metadata_json"] or "{}"),
        "error": row["error"],
        "evaluated_at": when.isoformat() if isinstance(when, datetime) else str(when),
    }


def check_results(
    reader: RunsReader,
    view: RunsView,
    *,
    asset: str | None = None,
    run_id: str | None = None,
    partition: str | None = None,
    latest: bool = False,
) -> list[dict[str, Any]]:
    """Check results, newest first, filtered; ``latest``: only the newest result of
    each (asset, partition, check)."""
    if run_id is not None:
        validate_ulid(run_id)
    rows = [
        r
        for r in check_rows(reader, view)
        if (asset is None or r["asset"] == asset)
        and (run_id is None or r["run_id"] == run_id)
        and (partition is None or r["partition"] == partition)
    ]
    rows.reverse()
    if latest:
        seen: set[tuple[str, str | None, str]] = set()
        kept = []
        for r in rows:
            key = (r["asset"], r["partition"], r["check"])
            if key not in seen:
                seen.add(key)
                kept.append(r)
        rows = kept
    return [check_out(r) for r in rows]


def freshness_status(
    policy: FreshnessPolicy, last: datetime | None, now: datetime | None = None
) -> dict[str, Any]:
    """Whether an asset is ``fresh`` or ``overdue`` now under its policy (the rule
    the daemon applies, evaluated at read time so it holds without a daemon)."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    deadline = policy.deadline(when)
    overdue = last is None or last.astimezone(UTC) < deadline
    return {
        "state": "overdue" if overdue else "fresh",
        "deadline": deadline.isoformat(),
        "last_materialized_at": last.astimezone(UTC).isoformat() if last else None,
        "policy": policy.describe(),
    }


def freshness(
    defs: Definitions, newest: dict[str, datetime], now: datetime | None = None
) -> dict[str, dict[str, Any]]:
    """The freshness of every asset with a policy; ``newest``: each asset's newest
    materialization time."""
    return {
        key: freshness_status(policy, newest.get(key), now)
        for key, policy in sorted(defs.freshness.items())
    }
