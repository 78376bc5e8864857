"""Backfills: a selection over a partition range, run as chunks with a limit on
how many run at once, a status per partition, pause, resume, cancel and retry.

A backfill is three things: its immutable request
(``control/automation/backfills/{id}.json``: selection, partitions, chunks), a
``backfill.created`` event, and its progress in the automation state document
(``backfills[id]``: state and, per launched chunk, attempt, run id and status).
The tick launches chunks while fewer than ``max_runs`` of its runs are
unfinished; chunk ``c``'s attempt ``a`` has the run key ``backfill:{id}:{c}:{a}``,
so a chunk is never launched twice by two daemons, and a retry is a new attempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arco.core.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    ObjectNotFoundError,
)
from arco.core.ids import new_ulid
from arco.core.keys import Keys, validate_ulid
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.flow.automation.state import AutomationState, StateStore
from arco.flow.definitions import Definitions
from arco.ledger.log import Ledger

if TYPE_CHECKING:
    from arco.flow.automation.tick import Automation

ACTIVE = "RUNNING"
TERMINAL_RUN = {"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "failed"}


@dataclass(frozen=True)
class BackfillRequest:
    """The immutable part of a backfill."""

    backfill_id: str
    selection: str
    partitions: tuple[str, ...]
    chunks: tuple[tuple[str, ...], ...]
    max_runs: int
    created_at: str
    #: The partitioned assets the selection planned (empty in requests written before
    #: this field existed: their progress then names assets once they have tasks).
    assets: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        """JSON encoding."""
        return json.dumps(
            {
                "backfill_id": self.backfill_id,
                "selection": self.selection,
                "partitions": list(self.partitions),
                "chunks": [list(c) for c in self.chunks],
                "max_runs": self.max_runs,
                "created_at": self.created_at,
                "assets": list(self.assets),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> BackfillRequest:
        """Decode."""
        raw = json.loads(data)
        return cls(
            backfill_id=validate_ulid(raw["backfill_id"]),
            selection=str(raw["selection"]),
            partitions=tuple(raw["partitions"]),
            chunks=tuple(tuple(c) for c in raw["chunks"]),
            max_runs=int(raw["max_runs"]),
            created_at=str(raw["created_at"]),
            assets=tuple(raw.get("assets") or ()),
        )


def create_backfill(
    store: ObjectStore,
    scope: Scope,
    defs: Definitions,
    selection: str,
    start: str,
    end: str,
    *,
    chunk_size: int = 1,
    max_runs: int = 4,
    now: datetime | None = None,
) -> BackfillRequest:
    """Plan the range (validating selection and partitions), write the request,
    its event and its entry in the automation state; the next tick launches it."""
    from arco.flow.planner import plan

    if not 1 <= chunk_size <= 10_000:
        raise InvalidArgumentError("chunk size must be from 1 to 10000 partitions")
    if not 1 <= max_runs <= 1000:
        raise InvalidArgumentError("max runs must be from 1 to 1000")
    the_plan = plan(defs, selection, partition_range=(start, end))
    parts = sorted({t.partition for t in the_plan.tasks if t.partition is not None})
    if not parts:
        raise InvalidArgumentError(f"selection {selection!r} has no partitions to backfill")
    chunks = tuple(tuple(parts[i : i + chunk_size]) for i in range(0, len(parts), chunk_size))
    when = (now or datetime.now(UTC)).astimezone(UTC)
    request = BackfillRequest(
        backfill_id=new_ulid(),
        selection=selection,
        partitions=tuple(parts),
        chunks=chunks,
        max_runs=max_runs,
        created_at=when.isoformat(),
        assets=tuple(dict.fromkeys(t.asset for t in the_plan.tasks if t.partition is not None)),
    )
    store.put(Keys(scope).backfill_request(request.backfill_id), request.to_bytes(), "create")
    Ledger(store, scope).append(
        "executions",
        "backfill.created",
        {
            "backfill_id": request.backfill_id,
            "selection": selection,
            "partitions": parts,
            "chunk_size": chunk_size,
            "max_runs": max_runs,
            "chunks": len(chunks),
        },
        idempotency_key=f"backfill.created:{request.backfill_id}",
        source="automation",
    )

    def add(state: AutomationState) -> None:
        state.backfills[request.backfill_id] = {
            "state": ACTIVE,
            "created_at": request.created_at,
            "chunks": {},
            "max_runs": max_runs,
            "total": len(chunks),
        }

    StateStore(store, scope).update(add)
    return request


def load_backfill(store: ObjectStore, scope: Scope, backfill_id: str) -> BackfillRequest:
    """A backfill's request (:class:`NotFoundError` if there is none)."""
    try:
        data, _ = store.get(Keys(scope).backfill_request(validate_ulid(backfill_id)))
    except (ObjectNotFoundError, ValueError) as exc:
        raise NotFoundError(f"no backfill {backfill_id}") from exc
    return BackfillRequest.from_bytes(data)


def _requests(auto: Automation) -> dict[str, BackfillRequest]:
    cache: dict[str, BackfillRequest] = auto.scratch.setdefault("backfill_requests", {})
    return cache


def _request(auto: Automation, backfill_id: str) -> BackfillRequest:
    cache = _requests(auto)
    if backfill_id not in cache:
        cache[backfill_id] = load_backfill(auto.store, auto.scope, backfill_id)
    return cache[backfill_id]


def _run_states(auto: Automation) -> dict[str, str]:
    states: dict[str, str] | None = auto.scratch.get("run_states")
    if states is None:
        from arco.flow.runview import RunsReader

        view = RunsReader.of(auto.ws).view()
        auto.scratch["runs_view"] = view
        states = {run_id: str(row["state"]) for run_id, row in view.runs.items()}
        auto.scratch["run_states"] = states
    return states


def decide(auto: Automation, state: AutomationState, now: datetime) -> bool:
    """Follow running backfills: chunk statuses from their runs, launch chunks up
    to the limit, finish a backfill whose chunks are all done."""
    from arco.flow.automation.requests import run_id_for
    from arco.flow.automation.tick import iso

    changed = False
    for backfill_id, entry in state.backfills.items():
        if entry.get("state") != ACTIVE:
            continue
        request = _request(auto, backfill_id)
        chunks: dict[str, dict[str, Any]] = entry.setdefault("chunks", {})
        in_flight = 0
        if any(c.get("status") == "running" for c in chunks.values()):
            runs = _run_states(auto)
            for chunk in chunks.values():
                if chunk.get("status") != "running":
                    continue
                done = TERMINAL_RUN.get(runs.get(chunk["run_id"], "QUEUED"))
                if done is not None:
                    chunk["status"] = done
                    changed = True
                else:
                    in_flight += 1
        free = request.max_runs - in_flight
        for index in range(len(request.chunks)):
            if free <= 0:
                break
            prior = chunks.get(str(index))
            if prior is not None and prior.get("status") != "retry":
                continue
            attempt = (prior or {}).get("attempt", 0) + 1
            key = f"backfill:{backfill_id}:{index}:{attempt}"
            run_id = run_id_for(key, now)
            parts = list(request.chunks[index])
            chunks[str(index)] = {"attempt": attempt, "run_id": run_id, "status": "running"}
            state.pending[key] = {
                "kind": "launch",
                "origin": f"backfill:{backfill_id}",
                "selection": request.selection,
                "partitions": parts,
                "tags": {"backfill": backfill_id, "chunk": str(index)},
                "at": iso(now),
            }
            state.pending[f"{key}#launched"] = {
                "kind": "event",
                "type": "backfill.chunk_launched",
                "payload": {
                    "backfill_id": backfill_id,
                    "chunk": index,
                    "attempt": attempt,
                    "run_key": key,
                    "run_id": run_id,
                    "partitions": parts,
                },
            }
            free -= 1
            changed = True
        if len(chunks) == len(request.chunks) and all(
            c.get("status") in ("succeeded", "failed") for c in chunks.values()
        ):
            failed = sum(c["status"] == "failed" for c in chunks.values())
            final = "FAILED" if failed else "COMPLETED"
            entry["state"] = final
            entry["finished_at"] = iso(now)
            _state_event(state, backfill_id, final, f"{failed} chunk(s) failed" if failed else None)
            changed = True
    return changed


def _state_event(state: AutomationState, backfill_id: str, new: str, reason: str | None) -> None:
    n = sum(1 for k in state.pending if k.startswith(f"backfill:{backfill_id}#state"))
    stamp = new_ulid()
    state.pending[f"backfill:{backfill_id}#state:{stamp}:{n}"] = {
        "kind": "event",
        "type": "backfill.state_changed",
        "payload": {"backfill_id": backfill_id, "state": new, "reason": reason},
    }


def change_backfill(
    store: ObjectStore, scope: Scope, backfill_id: str, action: str, reason: str | None = None
) -> dict[str, Any]:
    """``pause``, ``resume``, ``cancel`` or ``retry`` (the failed chunks) a backfill.

    An action the backfill's state does not allow (pause a paused one) raises
    :class:`ConflictError`; an unknown action :class:`InvalidArgumentError`.

    The change and its event go through the state document's outbox; the next
    tick writes the event (and launches retried chunks). Cancelling also asks
    the backfill's unfinished runs to stop.
    """
    load_backfill(store, scope, backfill_id)
    cancel_runs: list[str] = []

    def change(state: AutomationState) -> None:
        entry = state.backfills.get(backfill_id)
        if entry is None:
            raise NotFoundError(f"no backfill {backfill_id} in the automation state")
        current = entry.get("state")
        if action == "pause":
            if current != ACTIVE:
                raise ConflictError(f"backfill {backfill_id} is {current}, not running")
            entry["state"] = "PAUSED"
            _state_event(state, backfill_id, "PAUSED", reason)
        elif action == "resume":
            if current != "PAUSED":
                raise ConflictError(f"backfill {backfill_id} is {current}, not paused")
            entry["state"] = ACTIVE
            _state_event(state, backfill_id, ACTIVE, reason)
        elif action == "cancel":
            if current in ("CANCELLED", "COMPLETED"):
                raise ConflictError(f"backfill {backfill_id} is already {current}")
            entry["state"] = "CANCELLED"
            cancel_runs[:] = [
                c["run_id"] for c in entry.get("chunks", {}).values() if c["status"] == "running"
            ]
            _state_event(state, backfill_id, "CANCELLED", reason)
        elif action == "retry":
            failed = [i for i, c in entry.get("chunks", {}).items() if c["status"] == "failed"]
            if not failed:
                raise ConflictError(f"backfill {backfill_id} has no failed partitions")
            for i in failed:
                entry["chunks"][i]["status"] = "retry"
            entry["state"] = ACTIVE
            entry.pop("finished_at", None)
            _state_event(state, backfill_id, ACTIVE, f"retry of chunk(s) {', '.join(failed)}")
        else:
            raise InvalidArgumentError(f"unknown backfill action {action!r}")

    state = StateStore(store, scope).update(change)
    if cancel_runs:
        from arco.flow.queue import request_cancel

        for run_id in cancel_runs:
            request_cancel(store, scope, run_id, reason or f"backfill {backfill_id} cancelled")
    return dict(state.backfills[backfill_id])


def progress(store: ObjectStore, scope: Scope, backfill_id: str) -> dict[str, Any]:
    """A backfill's state and, per asset and partition, ``materialized``,
    ``failed``, ``in progress`` or ``missing`` (from its runs' tasks)."""
    from arco.flow.runview import RunsReader

    request = load_backfill(store, scope, backfill_id)
    state, _ = StateStore(store, scope).load()
    entry = state.backfills.get(backfill_id, {})
    view = RunsReader(store, scope).view()
    # Every planned asset shows, all partitions "missing", before its first chunk runs.
    by_asset: dict[str, dict[str, str]] = {a: {} for a in request.assets}
    rank = {"missing": 0, "failed": 1, "in progress": 2, "materialized": 3}
    chunks = entry.get("chunks", {})
    for index in sorted(chunks, key=int):
        chunk = chunks[index]
        run = view.run(chunk["run_id"])
        if not view.tasks_of(chunk["run_id"]):
            # The run failed (or waits) before it had tasks: its partitions show it.
            status = {"failed": "failed", "succeeded": "materialized"}.get(
                chunk["status"], "in progress"
            )
            for asset in request.assets or (request.selection,):
                for part in request.chunks[int(index)]:
                    by_asset.setdefault(asset, {})[part] = status
        for task in view.tasks_of(chunk["run_id"]):
            status = {
                "SUCCEEDED": "materialized",
                "FAILED": "failed",
                "SKIPPED": "failed",
                "CANCELLED": "failed",
            }.get(str(task["state"]), "in progress")
            if run is None:
                status = "in progress"
            cells = by_asset.setdefault(str(task["asset"]), {})
            part = str(task["partition"])
            # A later attempt that materialized wins over an earlier failure.
            if rank[status] >= rank.get(cells.get(part, "missing"), 0) or status == "in progress":
                cells[part] = status
    counts: dict[str, int] = {}
    for cells in by_asset.values():
        for part in request.partitions:
            cells.setdefault(part, "missing")
            counts[cells[part]] = counts.get(cells[part], 0) + 1
    return {
        "backfill_id": backfill_id,
        "selection": request.selection,
        "state": entry.get("state", "UNKNOWN"),
        "created_at": request.created_at,
        "finished_at": entry.get("finished_at"),
        "partitions": len(request.partitions),
        "chunks": len(request.chunks),
        "chunks_launched": len(chunks),
        "max_runs": request.max_runs,
        "counts": counts,
        "assets": {a: dict(sorted(c.items())) for a, c in sorted(by_asset.items())},
        "runs": {i: c for i, c in sorted(chunks.items(), key=lambda kv: int(kv[0]))},
    }


def install(auto: Automation) -> None:
    """Add the backfill decisions to a tick."""
    auto.hooks.append(decide)
