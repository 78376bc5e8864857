"""Read-only SQL over a scope's metadata: the ``system.*`` tables, run in DuckDB.

:class:`SystemTables` builds Arrow tables for one scope from the catalog (Tier 1)
and the compacted ``executions`` and ``lineage`` domains (Tier 2):

``system.namespaces``
    one row per namespace: name, description, properties (map), created_at,
    updated_at, id.
``system.tables``
    one row per table: id, namespace, name, format, location, description,
    properties (map), schema_version, column_count, created_at, updated_at.
``system.columns``
    one row per column: table_id, namespace, table_name, name, ordinal (0-based),
    data_type, nullable, description, column_id.
``system.lineage_edges``
    declared and observed lineage edges: source, target, edge_type, declared,
    observations, first_seen, last_seen, last_run_id, columns, updated_at.
``system.runs``, ``system.tasks``, ``system.materializations``, ``system.logs``
    the compacted ``executions`` state tables, with their state-file columns.
``system.events``
    the compacted event index of both Tier-2 domains: domain, event_id,
    event_type, idempotency_key (events still in the ledger and not yet
    compacted are not listed).
``system.quarantine``
    ledger objects the compactor set aside, from both domains: domain,
    object_id, key, reason, detail, quarantined_at.
``system.external_runs``, ``system.datasets``, ``system.column_edges``
    what OpenLineage producers reported (ADR 013), folded in the ``lineage``
    domain: one row per run id, per dataset (namespace, name) and per column edge.

``as_of_version`` selects a catalog version; the Tier-2 tables always show
their latest compacted state (their versions advance independently).

:func:`run_query` runs one ``SELECT`` (or ``WITH ... SELECT``) statement against
them. The sandbox:

* the text must parse as exactly one SELECT statement (DuckDB's own parser
  decides, so comments and string literals cannot hide a second statement);
* the statement runs in a query worker process (:mod:`arco.sql.worker`),
  on a fresh connection (a cursor) of its DuckDB database, which was started
  with external access, extension auto-install and auto-load, Python
  replacement scans, spilling to disk, persistent secrets and the local file
  system disabled, then had its configuration locked — so no file, URL,
  extension, setting or Python variable is reachable, only the Arrow tables
  registered on that connection for this one query;
* memory: the worker's address space is capped at its idle size plus
  ``ENGINE_MEMORY_BUDGET``, which bounds everything a query allocates —
  DuckDB's ``memory_limit`` alone does not cover a value computed in one step
  (``generate_series(1, 500000000)``, ``repeat('x', 2000000000)``), which
  then fails with :class:`QueryTooLargeError` instead of growing the server;
* time: the worker interrupts the query at ``max_seconds``; a query that does
  not stop (one uninterruptible step) is killed with its worker shortly after;
* results are streamed and stop at ``max_rows`` rows or ``max_bytes`` bytes,
  where each value, however deeply nested, counts at least 8 bytes (a list of
  a million NULLs has almost no Arrow buffers but would be a million Python
  objects).

Workers live as long as the process, each holding the tables it was last sent
(a table is sent again only when the snapshot behind it changed), so a query
costs one round trip, not a process start. DuckDB reserves the
catalog name ``system``, so ``system.<name>`` is rewritten (token by token,
never inside strings or comments) to the connection's ``temp.main.<name>``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any, NoReturn
from uuid import UUID

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from arco.catalog.catalog import Catalog
from arco.catalog.state import CatalogState
from arco.core.errors import ArcoError, InvalidArgumentError, PermissionDeniedError
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore, open_store
from arco.domain.store import DomainStore, Snapshot
from arco.ledger.compactor import tier2_store
from arco.ledger.external_lineage import COLUMN_EDGES, DATASETS, EXTERNAL_RUNS
from arco.ledger.folds import (
    ASSET_CHECKS,
    AUDIT,
    EDGES,
    LOGS,
    MATERIALIZATIONS,
    QUARANTINE,
    RUNS,
    TASKS,
    RowMapState,
)
from arco.sql import worker as _sqlworker
from arco.sql.tabledata import TableData, read_files, resolve_table

_TS = pa.timestamp("ms", tz="UTC")
_PROPS = pa.map_(pa.string(), pa.string())

#: The schema of every ``system.*`` table (a contract: add columns, never change them).
SYSTEM_SCHEMAS: dict[str, pa.Schema] = {
    "namespaces": pa.schema(
        [
            pa.field("name", pa.string(), nullable=False),
            pa.field("description", pa.string()),
            pa.field("properties", _PROPS),
            pa.field("created_at", _TS, nullable=False),
            pa.field("updated_at", _TS, nullable=False),
            pa.field("id", pa.string(), nullable=False),
        ]
    ),
    "tables": pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("namespace", pa.string(), nullable=False),
            pa.field("name", pa.string(), nullable=False),
            pa.field("format", pa.string(), nullable=False),
            pa.field("location", pa.string()),
            pa.field("description", pa.string()),
            pa.field("properties", _PROPS),
            pa.field("schema_version", pa.int32(), nullable=False),
            pa.field("column_count", pa.int32(), nullable=False),
            pa.field("created_at", _TS, nullable=False),
            pa.field("updated_at", _TS, nullable=False),
        ]
    ),
    "columns": pa.schema(
        [
            pa.field("table_id", pa.string(), nullable=False),
            pa.field("namespace", pa.string(), nullable=False),
            pa.field("table_name", pa.string(), nullable=False),
            pa.field("name", pa.string(), nullable=False),
            pa.field("ordinal", pa.int32(), nullable=False),
            pa.field("data_type", pa.string(), nullable=False),
            pa.field("nullable", pa.bool_(), nullable=False),
            pa.field("description", pa.string()),
            pa.field("column_id", pa.int32(), nullable=False),
        ]
    ),
    "lineage_edges": pa.schema(
        [
            EDGES.schema.field(name)
            for name in (
                "source",
                "target",
                "edge_type",
                "declared",
                "observations",
                "first_seen",
                "last_seen",
                "last_run_id",
                "columns",
                "updated_at",
            )
        ]
    ),
    "materializations": MATERIALIZATIONS.schema,
    "runs": RUNS.schema,
    "tasks": TASKS.schema,
    "logs": LOGS.schema,
    "asset_checks": ASSET_CHECKS.schema,
    "events": pa.schema(
        [
            pa.field("domain", pa.string(), nullable=False),
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("event_type", pa.string(), nullable=False),
            pa.field("idempotency_key", pa.string(), nullable=False),
        ]
    ),
    "quarantine": pa.schema([pa.field("domain", pa.string(), nullable=False), *QUARANTINE.schema]),
    # OpenLineage (ADR 013): the state columns less the fold's own bookkeeping.
    "external_runs": pa.schema(
        [
            f
            for f in EXTERNAL_RUNS.schema
            if f.name not in ("last_event_time", "last_rank", "last_event_id")
        ]
    ),
    "datasets": pa.schema(
        [
            f
            for f in DATASETS.schema
            if f.name not in ("last_event_id", "schema_seen", "schema_event_id")
        ]
    ),
    "column_edges": pa.schema([f for f in COLUMN_EDGES.schema if f.name != "last_event_id"]),
    "audit": AUDIT.schema,
}
#: System tables only an admin may read through the API (see :data:`private_tables_visible`).
PRIVATE_TABLES = frozenset({"audit"})
#: Whether the current caller may read :data:`PRIVATE_TABLES`. True for the library and
#: the CLI (whoever holds the store's credentials reads everything anyway); the API
#: sets it per request from the caller's roles.
private_tables_visible: ContextVar[bool] = ContextVar("arco_private_tables", default=True)
#: The ``system.*`` table names.
SYSTEM_TABLE_NAMES: tuple[str, ...] = tuple(SYSTEM_SCHEMAS)

#: Which domains each system table is built from.
_SOURCES: dict[str, tuple[str, ...]] = {
    "namespaces": ("catalog",),
    "tables": ("catalog",),
    "columns": ("catalog",),
    "lineage_edges": ("lineage",),
    "materializations": ("executions",),
    "runs": ("executions",),
    "tasks": ("executions",),
    "logs": ("executions",),
    "asset_checks": ("executions",),
    "events": ("executions", "lineage"),
    "quarantine": ("executions", "lineage"),
    "external_runs": ("lineage",),
    "datasets": ("lineage",),
    "column_edges": ("lineage",),
    "audit": ("audit",),
}
_TIER2 = ("executions", "lineage", "audit")

MiB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, not {raw!r}")
    return int(raw)


#: Query worker processes (each runs one query at a time; more queries wait for one).
#: ``ARCO_QUERY_WORKERS``; the most memory all queries together can take is
#: ``ENGINE_WORKERS * ENGINE_MEMORY_BUDGET``.
ENGINE_WORKERS = _env_int("ARCO_QUERY_WORKERS", max(1, min(2, os.cpu_count() or 1)))
#: DuckDB threads of each worker.
ENGINE_THREADS = max(1, min(4, os.cpu_count() or 1))
#: Memory one query may use, all of it: DuckDB, the values it computes and the result
#: (the worker's address space is capped at its idle size plus this).
#: ``ARCO_QUERY_MEMORY_MB``.
ENGINE_MEMORY_BUDGET = _env_int("ARCO_QUERY_MEMORY_MB", 768) * MiB
#: DuckDB's own buffer limit, below the budget so most queries fail inside DuckDB first.
ENGINE_MEMORY_LIMIT = f"{ENGINE_MEMORY_BUDGET // 2 // MiB}MB"
#: Bytes of table data files one query may read (their stored, compressed size): the
#: worker decodes them inside its memory budget. ``ARCO_QUERY_DATA_MB``.
ENGINE_DATA_BUDGET = _env_int("ARCO_QUERY_DATA_MB", 256) * MiB
#: How long after its deadline a query that did not stop is killed with its worker.
_KILL_GRACE_SECONDS = 1.0
_WORKER_START_SECONDS = 30.0


# --------------------------------------------------------------------- errors
class QueryRejectedError(InvalidArgumentError):
    """The query is not allowed: not a single SELECT, too long, or it tried to leave the sandbox."""

    code = "query-rejected"


class QueryTimeoutError(ArcoError):
    """The query ran longer than its time limit and was interrupted (HTTP 422)."""

    code = "query-timeout"


class QueryTooLargeError(ArcoError):
    """The result has more rows or bytes than allowed, or the query needs more memory (HTTP 413)."""

    code = "query-too-large"


class QueryError(InvalidArgumentError):
    """DuckDB refused or failed the query (syntax, unknown table or column, types...)."""

    code = "query-error"


# ------------------------------------------------------------- system tables
def _sorted_rows(rows: Iterable[dict[str, Any]], key: Sequence[str]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: tuple("" if r[k] is None else r[k] for k in key))


def _props(value: Any) -> list[tuple[str, str]] | None:
    if value is None:
        return None
    return list(value.items()) if isinstance(value, Mapping) else list(value)


def _namespaces_table(state: CatalogState) -> pa.Table:
    rows = [state.namespaces[n] for n in sorted(state.namespaces)]
    return pa.Table.from_pydict(
        {
            "name": [r["name"] for r in rows],
            "description": [r["description"] for r in rows],
            "properties": [_props(r["properties"]) for r in rows],
            "created_at": [r["created_at"] for r in rows],
            "updated_at": [r["updated_at"] for r in rows],
            "id": [r["id"] for r in rows],
        },
        schema=SYSTEM_SCHEMAS["namespaces"],
    )


def _table_rows(state: CatalogState) -> list[dict[str, Any]]:
    return [state.tables[state.by_name[k]] for k in sorted(state.by_name)]


def _tables_table(state: CatalogState) -> pa.Table:
    rows = _table_rows(state)
    return pa.Table.from_pydict(
        {
            "id": [r["id"] for r in rows],
            "namespace": [r["namespace"] for r in rows],
            "name": [r["name"] for r in rows],
            "format": [r["format"] for r in rows],
            "location": [r["location"] for r in rows],
            "description": [r["description"] for r in rows],
            "properties": [_props(r["properties"]) for r in rows],
            "schema_version": [r["schema_version"] for r in rows],
            "column_count": [len(r["columns"] or ()) for r in rows],
            "created_at": [r["created_at"] for r in rows],
            "updated_at": [r["updated_at"] for r in rows],
        },
        schema=SYSTEM_SCHEMAS["tables"],
    )


def _columns_table(state: CatalogState) -> pa.Table:
    out: dict[str, list[Any]] = {name: [] for name in SYSTEM_SCHEMAS["columns"].names}
    for row in _table_rows(state):
        for col in sorted(row["columns"] or (), key=lambda c: c["ordinal"]):
            out["table_id"].append(row["id"])
            out["namespace"].append(row["namespace"])
            out["table_name"].append(row["name"])
            out["name"].append(col["name"])
            out["ordinal"].append(col["ordinal"])
            out["data_type"].append(col["data_type"])
            out["nullable"].append(col["nullable"])
            out["description"].append(col["description"])
            out["column_id"].append(col["column_id"])
    return pa.Table.from_pydict(out, schema=SYSTEM_SCHEMAS["columns"])


def _with_domain(table: pa.Table, domain: str, schema: pa.Schema) -> pa.Table:
    column = pa.array([domain] * table.num_rows, pa.string())
    return pa.Table.from_arrays([column, *table.columns], schema=schema)


@dataclass
class _Part:
    """The built tables of one domain at one version."""

    snapshot: Snapshot[Any]
    tables: dict[str, pa.Table] = field(default_factory=dict)


class SystemTables:
    """The ``system.*`` tables of one scope, as Arrow, cached per domain version.

    Each domain is read once per call (one pointer GET, or none within
    ``max_staleness`` seconds) and a table is built only the first time it is
    asked for at a given domain version; later calls reuse it. Tables read only
    what they need: ``system.tables`` touches the catalog domain alone.
    """

    def __init__(
        self,
        store: ObjectStore | str,
        scope: Scope,
        *,
        catalog: Catalog | None = None,
        max_staleness: float = 0.0,
        cache_size: int = 16,
    ) -> None:
        self.store = open_store(store) if isinstance(store, str) else store
        self.scope = scope
        if catalog is not None and catalog.scope != scope:
            raise InvalidArgumentError("the catalog given belongs to another scope")
        self.catalog = catalog or Catalog(self.store, scope, max_staleness=max_staleness)
        self.max_staleness = max_staleness
        self._tier2: dict[str, DomainStore[RowMapState]] = {
            d: tier2_store(self.store, scope, d, max_staleness=max_staleness) for d in _TIER2
        }
        self._cache: OrderedDict[tuple[str, int, str], _Part] = OrderedDict()
        self._cache_size = max(3, cache_size)
        self._mutex = threading.Lock()

    # ---------------------------------------------------------------- reads
    def versions(self, *, as_of_version: int | None = None) -> dict[str, int]:
        """The version of each domain the tables would be built from now."""
        return {
            d: self._part(d, as_of_version).snapshot.version
            for d in ("catalog", *_TIER2)
            if d not in PRIVATE_TABLES
        }

    def catalog_state(self, *, as_of_version: int | None = None) -> CatalogState:
        """The catalog state the tables are built from (latest, or ``as_of_version``)."""
        state: CatalogState = self._part("catalog", as_of_version).snapshot.state
        return state

    def table(self, name: str, *, as_of_version: int | None = None) -> pa.Table:
        """One system table (``tables`` or ``system.tables``) as Arrow."""
        return self.tables([name], as_of_version=as_of_version)[0][_bare(name)]

    def tables(
        self, names: Iterable[str] | None = None, *, as_of_version: int | None = None
    ) -> tuple[dict[str, pa.Table], dict[str, int]]:
        """The named system tables (all by default) and the domain versions they show.

        ``as_of_version`` picks the catalog version (:class:`NotFoundError` if it
        does not exist or is no longer retained); Tier-2 tables are always latest.
        """
        wanted = [_bare(n) for n in (SYSTEM_TABLE_NAMES if names is None else names)]
        if not private_tables_visible.get():
            if names is None:
                wanted = [n for n in wanted if n not in PRIVATE_TABLES]
            elif hidden := sorted(PRIVATE_TABLES.intersection(wanted)):
                raise PermissionDeniedError(f"system.{hidden[0]} needs the 'admin' role")
        parts: dict[str, _Part] = {}
        out: dict[str, pa.Table] = {}
        for name in wanted:
            pieces = []
            for domain in _SOURCES[name]:
                if domain not in parts:
                    parts[domain] = self._part(domain, as_of_version)
                pieces.append(self._build(domain, parts[domain], name))
            out[name] = pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)
        return out, {d: p.snapshot.version for d, p in parts.items()}

    # ------------------------------------------------------------- plumbing
    def _snapshot(self, domain: str, as_of_version: int | None) -> Snapshot[Any]:
        if domain != "catalog":
            return self._tier2[domain].read()
        if as_of_version is None:
            return self.catalog.snapshot()
        return self.catalog.domain.read_version(as_of_version)

    def _part(self, domain: str, as_of_version: int | None) -> _Part:
        if domain == "catalog" and as_of_version is not None:
            if isinstance(as_of_version, bool) or not isinstance(as_of_version, int):
                raise InvalidArgumentError("as_of_version must be a non-negative integer")
            hit = self._cached_version(as_of_version)
            if hit is not None:
                return hit
        snap = self._snapshot(domain, as_of_version)
        key = (domain, snap.version, snap.manifest.commit_id if snap.manifest else "")
        with self._mutex:
            part = self._cache.get(key)
            if part is None:
                part = _Part(snap)
                self._cache[key] = part
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            return part

    def _cached_version(self, version: int) -> _Part | None:
        """A cached catalog part at ``version``, found by walking manifests (no refold)."""
        head = self.catalog.snapshot()
        if version == head.version:
            return None  # the normal path finds (or builds) it
        if not 0 < version < head.version:
            return None  # read_version raises the right error, or gives the empty state
        with self._mutex:
            candidates = [k for k in self._cache if k[0] == "catalog" and k[1] == version]
        if not candidates:
            return None
        for _key, manifest in self.catalog.domain.history(head.version - version + 1):
            if manifest.version == version:
                with self._mutex:
                    return self._cache.get(("catalog", version, manifest.commit_id))
        return None

    def _build(self, domain: str, part: _Part, name: str) -> pa.Table:
        table = part.tables.get(name)
        if table is not None:
            return table
        snap = part.snapshot
        if domain == "catalog":
            builders: dict[str, Callable[[CatalogState], pa.Table]] = {
                "namespaces": _namespaces_table,
                "tables": _tables_table,
                "columns": _columns_table,
            }
            table = builders[name](snap.state)
        else:
            table = self._tier2_table(domain, snap, name)
        with self._mutex:
            return part.tables.setdefault(name, table)

    def _tier2_table(self, domain: str, snap: Snapshot[RowMapState], name: str) -> pa.Table:
        schema = SYSTEM_SCHEMAS[name]
        if name == "events":
            rows = _sorted_rows(snap.state.rows("event_keys"), ("event_id",))
            return pa.Table.from_pydict(
                {
                    "domain": [domain] * len(rows),
                    "event_id": [r["event_id"] for r in rows],
                    "event_type": [r["event_type"] for r in rows],
                    "idempotency_key": [r["idempotency_key"] for r in rows],
                },
                schema=schema,
            )
        source = "edges" if name == "lineage_edges" else name
        dstore = self._tier2[domain]
        tdef = dstore.state_cls.TABLES[source]
        if tdef.resident:
            data = pa.Table.from_pylist(
                _sorted_rows(snap.state.rows(source), tdef.key), schema=tdef.schema
            )
        else:
            data = dstore.load_table(snap, source)
        if name == "quarantine":
            return _with_domain(data.cast(QUARANTINE.schema), domain, schema)
        return data.select(schema.names).cast(schema)


def _bare(name: str) -> str:
    bare = name.lower().removeprefix("system.")
    if bare not in SYSTEM_SCHEMAS:
        raise InvalidArgumentError(
            f"unknown system table {name!r}; known: "
            + ", ".join(f"system.{n}" for n in SYSTEM_TABLE_NAMES)
        )
    return bare


# ------------------------------------------------------------------- queries
@dataclass(frozen=True)
class QueryLimits:
    """Limits of one query. ``truncate`` cuts at ``max_rows`` instead of failing."""

    max_seconds: float = 10.0
    max_rows: int = 10_000
    max_bytes: int = 10 * MiB
    max_sql_length: int = 100_000
    truncate: bool = False
    #: Bytes of table data files (as stored) the query may read.
    max_data_bytes: int = ENGINE_DATA_BUDGET

    def __post_init__(self) -> None:
        if not (isinstance(self.max_seconds, int | float) and 0 < self.max_seconds <= 3600):
            raise InvalidArgumentError("max_seconds must be between 0 and 3600")
        for name in ("max_rows", "max_bytes", "max_sql_length", "max_data_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive integer")


@dataclass(frozen=True)
class QueryResult:
    """The result of :func:`run_query`; ``rows`` holds JSON-ready values."""

    columns: list[tuple[str, str]]
    rows: list[list[Any]]
    arrow: pa.Table
    row_count: int
    elapsed_ms: float
    truncated: bool = False
    #: The version of each domain the query read (catalog, executions, lineage).
    versions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: columns (name, type), rows, row_count, elapsed_ms, truncated."""
        return {
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "rows": self.rows,
            "row_count": self.row_count,
            "elapsed_ms": self.elapsed_ms,
            "truncated": self.truncated,
        }


class _Parser:
    """A locked-down DuckDB that only parses: statements are checked before tables are built."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db: duckdb.DuckDBPyConnection | None = None
        self._pid = 0

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A new cursor of the parse-only database."""
        with self._lock:
            if self._db is None or self._pid != os.getpid():
                config = {**_sqlworker.CONFIG, "threads": 1, "memory_limit": "64MB"}
                db = duckdb.connect(":memory:", config=config)
                db.execute("SET disabled_filesystems = 'LocalFileSystem'")
                db.execute("SET lock_configuration = true")
                self._db, self._pid = db, os.getpid()
            return self._db.cursor()


_PARSER = _Parser()


class _Worker:
    """One query worker process and the tables it holds from earlier requests."""

    def __init__(self) -> None:
        # malloc for Arrow too: jemalloc/mimalloc reserve address space in big steps,
        # which an address-space cap turns into spurious allocation failures.
        env = {**os.environ, "MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-I",  # no script directory on sys.path: catalog/gc.py would shadow gc
                _sqlworker.__file__,
                str(ENGINE_MEMORY_BUDGET),
                str(ENGINE_THREADS),
                ENGINE_MEMORY_LIMIT,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out = self.proc.stdout.fileno()
        #: name -> the exact system table object the worker holds (identity: tables are
        #: immutable), or the fingerprint (a str) of the table data it holds
        self.held: dict[str, pa.Table | str] = {}
        ready = self.read(time.monotonic() + _WORKER_START_SECONDS, 4096)
        if ready is None or not json.loads(ready).get("ready"):
            self.kill()
            raise QueryError("the query engine did not start")

    def send(self, header: dict[str, Any], frames: list[bytes]) -> None:
        """Write one request (a JSON header and its table frames)."""
        for frame in (json.dumps(header).encode(), *frames):
            self._in.write(len(frame).to_bytes(8, "big"))
            self._in.write(frame)
        self._in.flush()

    def read(self, deadline: float, max_size: int) -> bytes | None:
        """One frame; None if the worker died, sent over ``max_size`` or missed ``deadline``."""
        head = self._read_exact(8, deadline)
        if head is None:
            return None
        size = int.from_bytes(head, "big")
        if size > max_size:
            return None
        return self._read_exact(size, deadline)

    def _read_exact(self, size: int, deadline: float) -> bytes | None:
        chunks: list[bytes] = []
        missing = size
        while missing:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._out], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._out, min(missing, 1 << 20))
            if not chunk:
                return None  # the worker exited
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def kill(self) -> None:
        """Stop the process now and reap it."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class _Pool:
    """At most ``ENGINE_WORKERS`` query workers, started on demand and reused."""

    def __init__(self, size: int) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def run(
        self,
        sql: str,
        tables: dict[str, pa.Table],
        limits: QueryLimits,
        deadline: float,
        data: Sequence[TableData] = (),
        store: ObjectStore | None = None,
    ) -> tuple[list[str], list[str], pa.Table, bool]:
        """Run ``sql`` on a worker; the query's own deadline is ``deadline`` (monotonic)."""
        if not self._slots.acquire(timeout=max(deadline - time.monotonic(), 0)):
            raise QueryTimeoutError(
                f"the query waited {limits.max_seconds:g} s for a free query engine and was "
                "not run; the server is busy"
            )
        worker: _Worker | None = None
        try:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None or worker.proc.poll() is not None:
                worker = _Worker()
            result = self._ask(worker, sql, tables, limits, deadline, data, store)
            with self._lock:
                self._idle.append(worker)
            worker = None
            return result
        finally:
            if worker is not None:
                worker.kill()
            self._slots.release()

    def _ask(
        self,
        worker: _Worker,
        sql: str,
        tables: dict[str, pa.Table],
        limits: QueryLimits,
        deadline: float,
        data: Sequence[TableData] = (),
        store: ObjectStore | None = None,
    ) -> tuple[list[str], list[str], pa.Table, bool]:
        frames: list[bytes] = []
        items: list[dict[str, Any]] = []
        for name, table in tables.items():
            send = worker.held.get(name) is not table
            items.append({"name": name, "send": send})
            if send:
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, table.schema) as writer:
                    writer.write_table(table)
                frames.append(sink.getvalue().to_pybytes())
                worker.held.pop(name, None)
        read = 0
        for source in data:
            # Table data is sent as the files' bytes: the worker decodes them inside its
            # memory cap, so the server holds at most the stored (compressed) bytes.
            send = worker.held.get(source.name) != source.fingerprint
            item: dict[str, Any] = {"name": source.name, "send": send, "kind": "parquet"}
            items.append(item)
            if not send:
                continue
            worker.held.pop(source.name, None)
            assert store is not None
            item["files"] = len(source.files)
            item["schema"] = source.schema is not None
            for blob in read_files(store, source):
                read += len(blob)
                if read > limits.max_data_bytes:
                    raise _data_too_large(limits, data)
                frames.append(blob)
            if source.schema is not None:
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, source.schema) as writer:
                    pass
                frames.append(sink.getvalue().to_pybytes())
        header = {
            "sql": sql,
            "remaining": max(deadline - time.monotonic(), 0.001),
            "max_rows": limits.max_rows,
            "max_bytes": limits.max_bytes,
            "truncate": limits.truncate,
            "tables": items,
        }
        try:
            worker.send(header, frames)
        except OSError:
            raise QueryError("the query engine stopped unexpectedly; try again") from None
        del frames
        for name, table in tables.items():
            worker.held[name] = table
        # The worker drops table data a request does not use (it counts against its
        # memory cap); so does this mirror of what it holds.
        for name in [n for n, v in worker.held.items() if isinstance(v, str)]:
            worker.held.pop(name)
        for source in data:
            worker.held[source.name] = source.fingerprint
        # The worker interrupts itself at the deadline; the grace covers its answer.
        # A value DuckDB computes in one step cannot be interrupted: then the process goes.
        hard = deadline + _KILL_GRACE_SECONDS
        raw = worker.read(hard, 1 << 20)
        if raw is None:
            self._lost(worker, limits, hard)
        answer = json.loads(raw)
        if not answer["ok"]:
            for source in data:
                # The worker may not have built it: send it again next time.
                worker.held.pop(source.name, None)
            kind, message = answer["kind"], answer["message"]
            if kind == "fatal":
                worker.kill()
            raise _worker_error(kind, message, limits)
        # Arrow framing adds a little to the values the worker counted.
        result = worker.read(hard, 2 * limits.max_bytes + MiB)
        if result is None:
            self._lost(worker, limits, hard)
        arrow = pa.ipc.open_stream(result).read_all()
        return answer["names"], answer["types"], arrow, bool(answer["truncated"])

    @staticmethod
    def _lost(worker: _Worker, limits: QueryLimits, hard: float) -> NoReturn:
        timed_out = time.monotonic() >= hard
        worker.proc.poll()
        worker.kill()
        if timed_out:
            raise QueryTimeoutError(_timeout_message(limits))
        raise QueryTooLargeError(
            "the query engine stopped: the query needs more than its memory budget of "
            f"{ENGINE_MEMORY_BUDGET // MiB} MiB"
        )

    def close(self) -> None:
        """Stop the idle workers (at interpreter exit)."""
        with self._lock:
            idle, self._idle = self._idle, []
        if os.getpid() != self._pid:
            return  # a forked child: the processes belong to the parent
        for worker in idle:
            worker.kill()


def _timeout_message(limits: QueryLimits) -> str:
    return f"the query ran longer than its time limit of {limits.max_seconds:g} s and was stopped"


def _worker_error(kind: str, message: str, limits: QueryLimits) -> ArcoError:
    if kind == "timeout":
        return QueryTimeoutError(_timeout_message(limits))
    if kind == "too-large":
        return QueryTooLargeError(message)
    if kind == "rejected":
        return QueryRejectedError(message)
    if kind == "unknown-table":
        return QueryError(
            message
            + "; name a catalog table as namespace.table, or a system table: "
            + ", ".join(f"system.{n}" for n in SYSTEM_TABLE_NAMES)
        )
    return QueryError(message)


def _data_too_large(limits: QueryLimits, data: Sequence[TableData]) -> QueryTooLargeError:
    total = sum(d.size for d in data)
    names = ", ".join(f"{d.name} ({d.size} bytes in {len(d.files)} files)" for d in data)
    return QueryTooLargeError(
        f"the tables this query reads hold {total} bytes of data files, more than its "
        f"data budget of {limits.max_data_bytes} bytes: {names}; query a smaller table or "
        "raise the budget (ARCO_QUERY_DATA_MB)"
    )


_POOLS: dict[int, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool() -> _Pool:
    with _POOLS_LOCK:
        pool = _POOLS.get(os.getpid())
        if pool is None:
            _POOLS.clear()  # after fork: the parent's workers are not ours to use
            pool = _POOLS[os.getpid()] = _Pool(ENGINE_WORKERS)
        return pool


@atexit.register
def _close_pools() -> None:
    for pool in list(_POOLS.values()):
        pool.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
        kinds = [s.type for s in statements]
    except duckdb.Error as exc:
        raise QueryError(_first_line(exc)) from exc
    except ValueError as exc:  # a statement type the Python enum does not know
        raise QueryRejectedError("only a single SELECT statement is allowed") from exc
    if not kinds:
        raise QueryRejectedError("the query is empty")
    if len(kinds) > 1:
        raise QueryRejectedError(
            f"only a single SELECT statement is allowed, got {len(kinds)} statements"
        )
    if kinds[0] != duckdb.StatementType.SELECT:
        raise QueryRejectedError(
            f"only a single SELECT statement is allowed, not {kinds[0].name.replace('_', ' ')}"
        )


_NAME_TOKENS = (duckdb.token_type.identifier, duckdb.token_type.keyword)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].replace('""', '"')
    return text.lower()


def rewrite_system_names(sql: str) -> tuple[str, set[str]]:
    """Point ``system.<table>`` at the connection's ``temp.main.<table>``.

    Only two consecutive name tokens ``system`` ``.`` ``<known table>`` not
    preceded by a ``.`` are rewritten, so strings, comments, ``x.system.y`` and
    other names are left alone. Returns the new text and the tables it names.
    """
    tokens = duckdb.tokenize(sql)
    spans: list[tuple[int, Any, str]] = []
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        spans.append((start, kind, sql[start:end].rstrip()))
    pieces: list[str] = []
    used: set[str] = set()
    last = 0
    for i in range(len(spans) - 2):
        start, kind, text = spans[i]
        if kind not in _NAME_TOKENS or _unquote(text) != "system":
            continue
        if spans[i + 1][2] != "." or (i > 0 and spans[i - 1][2] == "."):
            continue
        if spans[i + 2][1] not in _NAME_TOKENS:
            continue
        name = _unquote(spans[i + 2][2])
        if name not in SYSTEM_SCHEMAS:
            continue
        pieces.append(sql[last:start])
        pieces.append("temp.main")
        last = start + len(text)
        used.add(name)
    pieces.append(sql[last:])
    return "".join(pieces), used


@dataclass(frozen=True)
class TableRef:
    """A table the query names by a qualified name (``ns.t``, ``"a.b".t``, ``a.b.t``).

    ``start``/``end`` are UTF-8 byte offsets of the whole reference in the query
    text (name, alias, column aliases and ``AT (...)`` clause).
    """

    parts: tuple[str, ...]
    alias: str
    column_aliases: tuple[str, ...]
    start: int
    end: int
    snapshot_id: int | None = None
    as_of: datetime | None = None


def _constant_text(expr: Any) -> str | None:
    if not isinstance(expr, dict):
        return None
    if expr.get("class") == "CAST":
        return _constant_text(expr.get("child"))
    if expr.get("class") == "CONSTANT":
        literal = expr.get("literal") or {}
        text = literal.get("text")
        return text if isinstance(text, str) else None
    return None


def _at_clause(at: Any, shown: str) -> tuple[int | None, datetime | None]:
    if not at:
        return None, None
    unit = str(at.get("unit", "")).upper()
    text = _constant_text(at.get("expr"))
    if text is None:
        raise QueryRejectedError(f"{shown} AT (...) takes a constant snapshot id or timestamp")
    if unit == "VERSION":
        try:
            return int(text), None
        except ValueError:
            raise QueryRejectedError(
                f"{shown} AT (VERSION => ...) takes an Iceberg snapshot id, not {text!r}"
            ) from None
    if unit == "TIMESTAMP":
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            raise QueryRejectedError(
                f"{shown} AT (TIMESTAMP => ...) takes an ISO timestamp, not {text!r}"
            ) from None
        return None, when if when.tzinfo else when.replace(tzinfo=UTC)
    raise QueryRejectedError(f"{shown} AT ({unit} => ...): use VERSION or TIMESTAMP")


def table_references(con: duckdb.DuckDBPyConnection, sql: str) -> list[TableRef]:
    """Every qualified table name in ``sql`` except ``system.*``, from DuckDB's own parse tree.

    ``AT (VERSION => <snapshot id>)`` and ``AT (TIMESTAMP => '<iso time>')`` after a
    name select an Iceberg snapshot.
    """
    row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree = json.loads(row[0]) if row else {}
    if tree.get("error"):
        raise QueryError(str(tree.get("error_message") or "the query could not be parsed"))
    found: list[TableRef] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("type") == "BASE_TABLE" and node.get("schema_name"):
            catalog, schema = node.get("catalog_name") or "", node["schema_name"]
            if not (catalog == "" and schema.lower() == "system"):
                parts = tuple(p for p in (catalog, schema, node["table_name"]) if p)
                snapshot_id, as_of = _at_clause(node.get("at_clause"), ".".join(parts))
                start = int(node.get("query_location", -1))
                length = int(node.get("query_location_length", 0))
                found.append(
                    TableRef(
                        parts=parts,
                        alias=node.get("alias") or "",
                        column_aliases=tuple(node.get("column_name_alias") or ()),
                        start=start,
                        end=start + length,
                        snapshot_id=snapshot_id,
                        as_of=as_of,
                    )
                )
        for value in node.values():
            walk(value)

    walk(tree.get("statements"))
    return found


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _leading_name(text: str) -> list[str]:
    """The dotted name a table reference starts with, unquoted and lower-cased."""
    parts: list[str] = []
    tokens = duckdb.tokenize(text)
    expect_name = True
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(text)
        piece = text[start:end].strip()
        if expect_name and kind in _NAME_TOKENS:
            parts.append(_unquote(piece))
        elif not expect_name and piece == ".":
            pass
        else:
            break
        expect_name = not expect_name
    return parts


def _find_table(state: CatalogState, parts: tuple[str, ...]) -> dict[str, Any] | None:
    """The catalog row a reference names: exact first, then ignoring case (as SQL does)."""
    namespace, name = ".".join(parts[:-1]), parts[-1]
    row = state.table_row(namespace, name)
    if row is not None:
        return row
    folded = (namespace.casefold(), name.casefold())
    matches = [k for k in state.by_name if (k[0].casefold(), k[1].casefold()) == folded]
    if len(matches) == 1:
        return state.table_row(*matches[0])
    return None


def resolve_data_tables(
    system: SystemTables,
    con: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    as_of_version: int | None = None,
) -> tuple[str, list[TableData]]:
    """Rewrite each catalog table ``sql`` names to the table data the worker registers.

    Tables are looked up in the catalog at ``as_of_version``; a qualified name that
    is no catalog table is left alone (DuckDB then says it does not exist). Returns
    the new text and the data to send, one entry per distinct table (and snapshot).
    """
    refs = table_references(con, sql)
    if not refs:
        return sql, []
    state = system.catalog_state(as_of_version=as_of_version)
    keys = Keys(system.scope)
    text = sql.encode()
    chosen: dict[tuple[str, int | None, datetime | None], TableData] = {}
    edits: list[tuple[int, int, bytes]] = []
    for ref in refs:
        row = _find_table(state, ref.parts)
        if row is None:
            namespace = ".".join(ref.parts[:-1])
            if state.namespace(namespace) is not None:
                raise QueryError(
                    f"namespace {namespace} has no table {ref.parts[-1]}"
                    + ("" if as_of_version is None else f" at catalog version {as_of_version}")
                )
            continue
        span = text[ref.start : ref.end].decode(errors="replace") if ref.start >= 0 else ""
        if _leading_name(span)[: len(ref.parts)] != [p.lower() for p in ref.parts]:
            raise QueryError(f"could not locate the table reference {'.'.join(ref.parts)}")
        key = (row["id"], ref.snapshot_id, ref.as_of)
        data = chosen.get(key)
        if data is None:
            data = resolve_table(
                system.store,
                keys,
                row,
                materializations=lambda: system.table("materializations"),
                snapshot_id=ref.snapshot_id,
                as_of=ref.as_of,
            )
            chosen[key] = data
        alias = _quote(ref.alias or row["name"])
        if ref.column_aliases:
            alias += "(" + ", ".join(_quote(c) for c in ref.column_aliases) + ")"
        edits.append((ref.start, ref.end, f"temp.main.{_quote(data.name)} AS {alias}".encode()))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    unique = {d.name: d for d in chosen.values()}
    return text.decode(), list(unique.values())


def run_query(
    system: SystemTables,
    sql: str,
    *,
    as_of_version: int | None = None,
    limits: QueryLimits | None = None,
) -> QueryResult:
    """Run one read-only SELECT over ``system``'s tables and the catalog's tables, in ``limits``.

    A qualified name of a catalog table (``ns.table``) reads that table's data
    files (see :mod:`arco.sql.tabledata`): Arco lists and reads them through
    the store and hands the bytes to the worker, so the engine opens no path.
    The query runs in a worker process whose memory is capped (see the module
    docstring): :class:`QueryTooLargeError` when the result, the table data
    (``max_data_bytes``) or the memory the query needs is over its limit,
    :class:`QueryTimeoutError` past ``max_seconds``.
    """
    limits = limits or QueryLimits()
    started = time.perf_counter()
    if not isinstance(sql, str):
        raise InvalidArgumentError("the query must be a string")
    if len(sql) > limits.max_sql_length:
        raise QueryRejectedError(
            f"the query is {len(sql)} characters long; at most {limits.max_sql_length} allowed"
        )
    if "\x00" in sql:
        raise QueryRejectedError("the query must not contain NUL characters")
    con = _PARSER.connection()
    try:
        _check_statement(con, sql)
        with_data, data = resolve_data_tables(system, con, sql, as_of_version=as_of_version)
        rewritten, used = rewrite_system_names(with_data)
        if rewritten != sql:
            _check_statement(con, rewritten)
    finally:
        con.close()
    if sum(d.size for d in data) > limits.max_data_bytes:
        raise _data_too_large(limits, data)
    tables, versions = system.tables(sorted(used), as_of_version=as_of_version)
    deadline = time.monotonic() + limits.max_seconds - (time.perf_counter() - started)
    names, types, arrow, truncated = _pool().run(
        rewritten, tables, limits, deadline, data, system.store
    )
    json_rows = to_json_rows(arrow)
    return QueryResult(
        columns=list(zip(names, types, strict=True)),
        rows=json_rows,
        arrow=arrow,
        row_count=arrow.num_rows,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        truncated=truncated,
        versions=versions,
    )


# ---------------------------------------------------------------------- JSON
def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _scalar(value: Any) -> Any:
    """A JSON-ready form of one Python value (recursing into containers)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, pa.MonthDayNano):  # a named tuple: before the tuple case
        return {"months": value.months, "days": value.days, "nanoseconds": value.nanoseconds}
    if isinstance(value, dict):
        return {str(k): _scalar(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scalar(v) for v in value]
    return str(value)


def _converter(dtype: pa.DataType) -> Callable[[Any], Any] | None:
    """A function turning one value of ``dtype`` (as ``to_pylist`` gives it) into JSON.

    None when the values are JSON-ready as they are.
    """
    if pa.types.is_map(dtype):
        key = _converter(dtype.key_type) or _same
        item = _converter(dtype.item_type) or _same
        string_keys = pa.types.is_string(dtype.key_type) or pa.types.is_large_string(dtype.key_type)

        def conv_map(value: Any) -> Any:
            if value is None:
                return None
            if string_keys:
                return {k: item(v) for k, v in value}
            return [{"key": key(k), "value": item(v)} for k, v in value]

        return conv_map
    if (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_fixed_size_list(dtype)
    ):
        inner = _converter(dtype.value_type)
        if inner is None:
            return None
        return lambda v: None if v is None else [inner(x) for x in v]
    if pa.types.is_struct(dtype):
        fields = [(f.name, _converter(f.type) or _same) for f in dtype]
        return lambda v: None if v is None else {n: c(v.get(n)) for n, c in fields}
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_null(dtype)
    ):
        return None
    return _scalar


def _same(value: Any) -> Any:
    return value


def _as_strings(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Top-level temporal and decimal columns formatted by Arrow, not value by value.

    Python ``datetime`` objects cost ~20 µs each to make; this is ~100 times cheaper.
    Timestamps hold UTC instants, so dropping the zone label keeps the UTC wall time.
    """
    dtype = column.type
    if pa.types.is_timestamp(dtype):
        wall = column.cast(pa.timestamp(dtype.unit)).cast(pa.string())
        text = pc.replace_substring(wall, " ", "T", max_replacements=1)
        return pc.binary_join_element_wise(text, "+00:00", "") if dtype.tz else text
    if pa.types.is_date(dtype) or pa.types.is_time(dtype) or pa.types.is_decimal(dtype):
        return column.cast(pa.string())
    return None


def to_json_rows(table: pa.Table) -> list[list[Any]]:
    """Rows of ``table`` as lists of JSON-ready values.

    Timestamps, dates and times become ISO 8601 strings, decimals strings, bytes
    base64, durations seconds, non-finite floats ``"NaN"``/``"Infinity"``; maps
    with string keys become objects (others lists of key/value objects), structs
    objects and lists lists.
    """
    columns = []
    for column in table.columns:
        text = _as_strings(column)
        if text is not None:
            columns.append(text.to_pylist())
            continue
        convert = _converter(column.type)
        values = column.to_pylist()
        columns.append(values if convert is None else [convert(v) for v in values])
    return [list(row) for row in zip(*columns, strict=True)] if columns else []
