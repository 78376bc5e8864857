"""Folds of the Tier-2 domains (``executions``, ``lineage``, ``audit``).

Every fold is commutative and idempotent once duplicates are removed by
idempotency key: entity rows merge by a defined order — the payload's ``seq``,
then ``event_id`` (edges: ``occurred_at``, then ``event_id``) — never by arrival, so any permutation
of the same events, split over any number of compactions, gives the same state. The
OpenLineage folds (:mod:`arco.ledger.external_folds`) state their rule per field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from arco.ledger.events import Envelope
from arco.ledger.external_folds import fold_openlineage, observe
from arco.ledger.states import (
    ASSET_CHECKS,
    AUDIT,
    EDGES,
    EVENT_KEYS,
    LEDGER_OBJECTS,
    LOGS,
    MATERIALIZATIONS,
    QUARANTINE,
    RUNS,
    TASKS,
    AuditState,
    ExecutionsState,
    LineageState,
    RowMapState,
)

# The state tables and classes lived here before ``arco.ledger.states``; importers keep
# their ``from arco.ledger.folds import ...``.
__all__ = [
    "ASSET_CHECKS",
    "AUDIT",
    "EDGES",
    "EVENT_KEYS",
    "LEDGER_OBJECTS",
    "LOGS",
    "MATERIALIZATIONS",
    "QUARANTINE",
    "RUNS",
    "TASKS",
    "TERMINAL_RUN_STATES",
    "TERMINAL_TASK_STATES",
    "AuditState",
    "ExecutionsState",
    "Folder",
    "LineageState",
    "RowMapState",
]

TERMINAL_TASK_STATES = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"})
TERMINAL_RUN_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


def _order(row: dict[str, Any] | None) -> tuple[int, str]:
    if row is None:
        return (-1, "")
    return (int(row["seq"]), str(row["last_event_id"]))


def _min_ts(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _max_ts(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class Folder:
    """Folds envelopes into row changes against a working copy of resident rows."""

    def __init__(self, state: RowMapState) -> None:
        self.state = state
        self.upserts: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        self.appends: dict[str, list[dict[str, Any]]] = {}

    def current(self, table: str, key: tuple[Any, ...]) -> dict[str, Any] | None:
        """The latest row for ``key``: from this fold if touched, else from state."""
        touched = self.upserts.get(table, {}).get(key)
        return touched if touched is not None else self.state.table(table).get(key)

    def row(
        self, table: str, key: tuple[Any, ...], fresh: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The row for ``key`` that this fold owns, to update in place.

        The first touch copies the state's row (or makes ``fresh()``) and records it;
        later touches return the same dict. Copying on every event cost more than the
        fold itself when thousands of events hit the same few rows (datasets, edges).
        List values may be shared with the state's row: replace them, never mutate.
        """
        touched = self.upserts.get(table)
        if touched is None:
            touched = self.upserts[table] = {}
        row = touched.get(key)
        if row is None:
            old = self.state.table(table).get(key)
            row = touched[key] = dict(old) if old is not None else fresh()
        return row

    def owned(self, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The rows of ``table`` this fold owns, by key: a hot fold looks a row up here
        first and calls :meth:`row` (with its ``fresh``) only on a miss."""
        touched = self.upserts.get(table)
        if touched is None:
            touched = self.upserts[table] = {}
        return touched

    def put(self, table: str, key: tuple[Any, ...], row: dict[str, Any]) -> None:
        """Record the merged row for ``key``."""
        self.upserts.setdefault(table, {})[key] = row

    def append(self, table: str, row: dict[str, Any]) -> None:
        """Record a new fact row."""
        self.appends.setdefault(table, []).append(row)

    def fold(self, env: Envelope, when: datetime) -> None:
        """Fold one (upcast) envelope."""
        p = env.payload
        kind = env.event_type
        if kind == "materialization.recorded":
            self.append(
                "materializations",
                {
                    "materialization_id": env.event_id,
                    "asset": p["asset"],
                    "partition": p.get("partition"),
                    "run_id": p.get("run_id"),
                    "task_id": p.get("task_id"),
                    "location": p.get("location"),
                    "row_count": p.get("row_count"),
                    "byte_size": p.get("byte_size"),
                    "schema_json": json.dumps(p.get("schema")) if p.get("schema") else None,
                    "code_version": p.get("code_version"),
                    "data_version": p.get("data_version"),
                    "inputs_json": json.dumps(p.get("inputs") or []),
                    "metadata_json": json.dumps(p.get("metadata") or {}, sort_keys=True),
                    "recorded_at": when,
                },
            )
        elif kind == "run.log":
            for i, line in enumerate(p["lines"]):
                self.append(
                    "logs",
                    {
                        "event_id": env.event_id,
                        "line_no": i,
                        "run_id": p["run_id"],
                        "task_id": p.get("task_id"),
                        "level": p.get("level", "INFO"),
                        "line": line,
                        "logged_at": when,
                    },
                )
        elif kind in ("run.created", "run.state_changed"):
            self._fold_run(env, when)
        elif kind == "task.state_changed":
            self._fold_task(env, when)
        elif kind == "lineage.edges_observed":
            for edge in p["edges"]:
                self._fold_edge(env, edge, when)
        elif kind == "openlineage.event":
            fold_openlineage(self, env, when)
        elif kind == "asset_check.evaluated":
            self.append(
                "asset_checks",
                {
                    "event_id": env.event_id,
                    "check": p["check"],
                    "asset": p["asset"],
                    "partition": p.get("partition"),
                    "run_id": p.get("run_id"),
                    "task_id": p.get("task_id"),
                    "passed": bool(p["passed"]),
                    "severity": p.get("severity", "error"),
                    "blocking": bool(p.get("blocking")),
                    "description": p.get("description"),
                    "metadata_json": json.dumps(p.get("metadata") or {}, sort_keys=True),
                    "error": p.get("error"),
                    "evaluated_at": when,
                },
            )
        elif kind == "audit.recorded":
            self.append(
                "audit",
                {
                    "event_id": env.event_id,
                    "recorded_at": when,
                    "actor": p["actor"],
                    "tenant": p["tenant"],
                    "workspace": p["workspace"],
                    "action": p["action"],
                    "target": p.get("target"),
                    "outcome": p["outcome"],
                    "status": p.get("status"),
                    "request_id": p.get("request_id"),
                    "roles": ",".join(p.get("roles") or []),
                    "duration_ms": p.get("duration_ms"),
                    "detail_json": json.dumps(p.get("detail") or {}, sort_keys=True),
                    "source": env.source,
                },
            )

    def _fold_run(self, env: Envelope, when: datetime) -> None:
        p = env.payload
        key = (p["run_id"],)
        old = self.current("runs", key)
        mine = (int(p["seq"]), env.event_id)
        newer = mine > _order(old)
        row = (
            dict(old)
            if old is not None
            else {
                "run_id": p["run_id"],
                "state": "QUEUED",
                "selection": None,
                "plan_fingerprint": None,
                "parent_run_id": None,
                "tags_json": None,
                "reason": None,
                "created_at": None,
                "started_at": None,
                "finished_at": None,
                "updated_at": when,
                "seq": -1,
                "last_event_id": "",
            }
        )
        if env.event_type == "run.created":
            row["selection"] = p.get("selection")
            row["plan_fingerprint"] = p.get("plan_fingerprint")
            row["parent_run_id"] = p.get("parent_run_id")
            row["tags_json"] = json.dumps(p.get("tags") or {}, sort_keys=True)
            row["created_at"] = _min_ts(row["created_at"], when)
        else:
            if p["state"] == "RUNNING":
                row["started_at"] = _min_ts(row["started_at"], when)
            if p["state"] in TERMINAL_RUN_STATES and newer:
                row["finished_at"] = when
            if newer:
                row["state"] = p["state"]
                row["reason"] = p.get("reason")
        if newer:
            row["seq"], row["last_event_id"] = mine
            row["updated_at"] = when
        self.put("runs", key, row)

    def _fold_task(self, env: Envelope, when: datetime) -> None:
        p = env.payload
        key = (p["run_id"], p["task_id"])
        old = self.current("tasks", key)
        mine = (int(p["seq"]), env.event_id)
        newer = mine > _order(old)
        row = (
            dict(old)
            if old is not None
            else {
                "run_id": p["run_id"],
                "task_id": p["task_id"],
                "asset": p.get("asset"),
                "partition": p.get("partition"),
                "state": p["state"],
                "attempt": 0,
                "error": None,
                "started_at": None,
                "finished_at": None,
                "updated_at": when,
                "seq": -1,
                "last_event_id": "",
            }
        )
        if p["state"] == "RUNNING":
            row["started_at"] = _min_ts(row["started_at"], when)
        if row["asset"] is None and p.get("asset"):
            row["asset"] = p.get("asset")
            row["partition"] = p.get("partition")
        if newer:
            row["state"] = p["state"]
            row["attempt"] = int(p.get("attempt") or 0)
            row["error"] = p.get("error")
            row["finished_at"] = when if p["state"] in TERMINAL_TASK_STATES else None
            row["seq"], row["last_event_id"] = mine
            row["updated_at"] = when
        self.put("tasks", key, row)

    def _fold_edge(self, env: Envelope, edge: dict[str, Any], when: datetime) -> None:
        self.fold_edge(env.event_id, edge, when)

    def fold_edge(self, event_id: str, edge: dict[str, Any], when: datetime) -> None:
        """Count one observation of ``edge`` by event ``event_id`` at ``when``."""
        self.observe_edge(
            (edge["source"], edge["target"], edge.get("edge_type") or "derives"),
            edge.get("run_id"),
            edge.get("columns"),
            event_id,
            when,
        )

    def observe_edge(
        self,
        key: tuple[str, str, str],
        run_id: str | None,
        columns: Sequence[str] | None,
        event_id: str,
        when: datetime,
    ) -> None:
        """:meth:`fold_edge` of an edge given by its key ``(source, target, edge_type)``."""
        row = self.owned("edges").get(key)
        if row is None:
            row = self.row(
                "edges",
                key,
                lambda: {
                    "source": key[0],
                    "target": key[1],
                    "edge_type": key[2],
                    "declared": False,
                    "observations": 0,
                    "first_seen": None,
                    "last_seen": None,
                    "last_run_id": None,
                    "last_event_id": None,
                    "columns": [],
                    "updated_at": when,
                },
            )
        observe(row, when, event_id, run_id)
        if columns or row["columns"] is None:
            row["columns"] = sorted(set(row["columns"] or []) | set(columns or []))
        updated_at = row["updated_at"]
        if updated_at is None or when > updated_at:
            row["updated_at"] = when
