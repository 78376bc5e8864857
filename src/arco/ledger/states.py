"""The state tables of the Tier-2 domains and the states they fold into.

Schemas of ``executions`` (runs, tasks, materializations, logs, asset checks),
``lineage`` (observed edges and the OpenLineage tables) and ``audit``, plus the
bookkeeping tables every Tier-2 domain has (event keys, ledger objects,
quarantine). The folds that fill them are in :mod:`arco.ledger.folds`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import immutables
import pyarrow as pa

from arco.domain.tableset import OP_DELETE, TableDef
from arco.ledger.external_lineage import EXTERNAL_TABLES

_TS = pa.timestamp("ms", tz="UTC")

EVENT_KEYS = TableDef(
    "event_keys",
    pa.schema(
        [
            pa.field("idempotency_key", pa.string(), nullable=False),
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("event_type", pa.string(), nullable=False),
        ]
    ),
    ("idempotency_key",),
    append_only=True,
)
LEDGER_OBJECTS = TableDef(
    "ledger_objects",
    pa.schema(
        [
            pa.field("object_id", pa.string(), nullable=False),
            pa.field("key", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("events", pa.int32(), nullable=False),
            pa.field("compacted_at", _TS, nullable=False),
        ]
    ),
    ("object_id",),
    append_only=True,
)
QUARANTINE = TableDef(
    "quarantine",
    pa.schema(
        [
            pa.field("object_id", pa.string(), nullable=False),
            pa.field("key", pa.string(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("detail", pa.string()),
            pa.field("quarantined_at", _TS, nullable=False),
        ]
    ),
    ("object_id",),
    append_only=True,
    resident=False,
)
RUNS = TableDef(
    "runs",
    pa.schema(
        [
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("state", pa.string(), nullable=False),
            pa.field("selection", pa.string()),
            pa.field("plan_fingerprint", pa.string()),
            pa.field("parent_run_id", pa.string()),
            pa.field("tags_json", pa.string()),
            pa.field("reason", pa.string()),
            pa.field("created_at", _TS),
            pa.field("started_at", _TS),
            pa.field("finished_at", _TS),
            pa.field("updated_at", _TS, nullable=False),
            pa.field("seq", pa.int64(), nullable=False),
            pa.field("last_event_id", pa.string(), nullable=False),
        ]
    ),
    ("run_id",),
)
TASKS = TableDef(
    "tasks",
    pa.schema(
        [
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("task_id", pa.string(), nullable=False),
            pa.field("asset", pa.string()),
            pa.field("partition", pa.string()),
            pa.field("state", pa.string(), nullable=False),
            pa.field("attempt", pa.int32(), nullable=False),
            pa.field("error", pa.string()),
            pa.field("started_at", _TS),
            pa.field("finished_at", _TS),
            pa.field("updated_at", _TS, nullable=False),
            pa.field("seq", pa.int64(), nullable=False),
            pa.field("last_event_id", pa.string(), nullable=False),
        ]
    ),
    ("run_id", "task_id"),
)
MATERIALIZATIONS = TableDef(
    "materializations",
    pa.schema(
        [
            pa.field("materialization_id", pa.string(), nullable=False),
            pa.field("asset", pa.string(), nullable=False),
            pa.field("partition", pa.string()),
            pa.field("run_id", pa.string()),
            pa.field("task_id", pa.string()),
            pa.field("location", pa.string()),
            pa.field("row_count", pa.int64()),
            pa.field("byte_size", pa.int64()),
            pa.field("schema_json", pa.string()),
            pa.field("code_version", pa.string()),
            pa.field("data_version", pa.string()),
            pa.field("inputs_json", pa.string()),
            pa.field("metadata_json", pa.string()),
            pa.field("recorded_at", _TS, nullable=False),
        ]
    ),
    ("materialization_id",),
    append_only=True,
    resident=False,
)
LOGS = TableDef(
    "logs",
    pa.schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("line_no", pa.int32(), nullable=False),
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("task_id", pa.string()),
            pa.field("level", pa.string(), nullable=False),
            pa.field("line", pa.string(), nullable=False),
            pa.field("logged_at", _TS, nullable=False),
        ]
    ),
    ("event_id", "line_no"),
    append_only=True,
    resident=False,
)
EDGES = TableDef(
    "edges",
    pa.schema(
        [
            pa.field("source", pa.string(), nullable=False),
            pa.field("target", pa.string(), nullable=False),
            pa.field("edge_type", pa.string(), nullable=False),
            pa.field("declared", pa.bool_(), nullable=False),
            pa.field("observations", pa.int64(), nullable=False),
            pa.field("first_seen", _TS),
            pa.field("last_seen", _TS),
            pa.field("last_run_id", pa.string()),
            pa.field("last_event_id", pa.string()),
            pa.field("columns", pa.list_(pa.string())),
            pa.field("updated_at", _TS, nullable=False),
        ]
    ),
    ("source", "target", "edge_type"),
)

AUDIT = TableDef(
    "audit",
    pa.schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("recorded_at", _TS, nullable=False),
            pa.field("actor", pa.string(), nullable=False),
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("workspace", pa.string(), nullable=False),
            pa.field("action", pa.string(), nullable=False),
            pa.field("target", pa.string()),
            pa.field("outcome", pa.string(), nullable=False),
            pa.field("status", pa.int32()),
            pa.field("request_id", pa.string()),
            pa.field("roles", pa.string()),
            pa.field("duration_ms", pa.float64()),
            pa.field("detail_json", pa.string()),
            pa.field("source", pa.string()),
        ]
    ),
    ("event_id",),
    append_only=True,
    resident=False,
)

#: Asset check results (``asset_check.evaluated``): facts, one per evaluation.
ASSET_CHECKS = TableDef(
    "asset_checks",
    pa.schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("check", pa.string(), nullable=False),
            pa.field("asset", pa.string(), nullable=False),
            pa.field("partition", pa.string()),
            pa.field("run_id", pa.string()),
            pa.field("task_id", pa.string()),
            pa.field("passed", pa.bool_(), nullable=False),
            pa.field("severity", pa.string(), nullable=False),
            pa.field("blocking", pa.bool_(), nullable=False),
            pa.field("description", pa.string()),
            pa.field("metadata_json", pa.string()),
            pa.field("error", pa.string()),
            pa.field("evaluated_at", _TS, nullable=False),
        ]
    ),
    ("event_id",),
    append_only=True,
    resident=False,
)


@dataclass(frozen=True)
class RowMapState:
    """Resident tables as persistent maps ``key -> row``; subclasses declare TABLES."""

    TABLES: ClassVar[dict[str, TableDef]] = {}

    maps: immutables.Map[str, immutables.Map[tuple[Any, ...], dict[str, Any]]]

    @classmethod
    def empty(cls) -> Self:
        """No rows."""
        return cls(immutables.Map())

    def table(self, name: str) -> immutables.Map[tuple[Any, ...], dict[str, Any]]:
        """The rows of one resident table by key."""
        return self.maps.get(name, immutables.Map())

    def clear(self, table: str) -> Self:
        """Drop all rows of ``table``."""
        return type(self)(self.maps.delete(table) if table in self.maps else self.maps)

    def apply(self, table: str, rows: Sequence[dict[str, Any]]) -> Self:
        """Apply delta rows in order."""
        names = self.TABLES[table].key
        with self.table(table).mutate() as m:
            for row in rows:
                key = tuple([row[k] for k in names])
                if row.get("_op") == OP_DELETE:
                    m.pop(key, None)
                else:
                    # A C-level copy then two pops: a third of a dict comprehension's cost.
                    kept = row.copy()
                    kept.pop("_op", None)
                    kept.pop("_version", None)
                    m[key] = kept
            new = m.finish()
        return type(self)(self.maps.set(table, new))

    def rows(self, table: str) -> Iterable[dict[str, Any]]:
        """Live rows of one table."""
        return list(self.table(table).values())

    def has_event_key(self, key: str) -> bool:
        """True when an event with this idempotency key was already folded."""
        return (key,) in self.table("event_keys")

    def has_object(self, object_id: str) -> bool:
        """True when this ledger object was already processed or quarantined."""
        return (object_id,) in self.table("ledger_objects")


class ExecutionsState(RowMapState):
    """Runs, tasks, materializations and run logs."""

    TABLES: ClassVar[dict[str, TableDef]] = {
        t.name: t
        for t in (
            EVENT_KEYS,
            LEDGER_OBJECTS,
            QUARANTINE,
            RUNS,
            TASKS,
            MATERIALIZATIONS,
            LOGS,
            ASSET_CHECKS,
        )
    }


class LineageState(RowMapState):
    """Lineage edges (declared and observed)."""

    TABLES: ClassVar[dict[str, TableDef]] = {
        t.name: t for t in (EVENT_KEYS, LEDGER_OBJECTS, QUARANTINE, EDGES, *EXTERNAL_TABLES)
    }


class AuditState(RowMapState):
    """Audit records (who did what, with which outcome); folded into ``system.audit``."""

    TABLES: ClassVar[dict[str, TableDef]] = {
        t.name: t for t in (EVENT_KEYS, LEDGER_OBJECTS, QUARANTINE, AUDIT)
    }
