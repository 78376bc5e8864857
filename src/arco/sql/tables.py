"""The ``system.*`` tables: which exist, their columns, and how each is built.

:data:`SYSTEM_TABLES` is the one description of the system tables: for each, its
schema (a contract: add columns, never change them), the state tables of the
domains it is built from, and whether only an admin may read it. The server side
(:class:`SystemTables`, Arrow built in Python) and the browser side
(:mod:`arco.sql.browser`, DuckDB-WASM views over the same state files) both derive
from it. :class:`SystemTables` builds Arrow tables for one scope from the catalog
(Tier 1) and the compacted ``executions``, ``lineage`` and ``audit`` domains
(Tier 2):

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
    the compacted ``executions`` state tables, with their state-file columns
    (and ``system.asset_checks``, the checks evaluated).
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
``system.audit``
    the audit records (admin only, see :data:`private_tables_visible`).

``as_of_version`` selects a catalog version; the Tier-2 tables always show
their latest compacted state (their versions advance independently).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from arco.catalog.catalog import Catalog
from arco.catalog.state import NAMESPACES, TABLES, CatalogState
from arco.core.errors import InvalidArgumentError, PermissionDeniedError
from arco.core.scope import Scope
from arco.core.storage import ObjectStore, open_store
from arco.domain.store import DomainStore, Snapshot
from arco.domain.tableset import TableDef
from arco.ledger.compactor import tier2_store
from arco.ledger.external_lineage import BOOKKEEPING, COLUMN_EDGES, DATASETS, EXTERNAL_RUNS
from arco.ledger.folds import (
    ASSET_CHECKS,
    AUDIT,
    EDGES,
    EVENT_KEYS,
    LOGS,
    MATERIALIZATIONS,
    QUARANTINE,
    RUNS,
    TASKS,
    RowMapState,
)


@dataclass(frozen=True)
class Source:
    """One state table of one domain that a system table's rows come from."""

    domain: str
    state: TableDef

    @property
    def keyed(self) -> bool:
        """Whether rows fold by key (resident tables) or are concatenated facts."""
        return self.state.resident


@dataclass(frozen=True)
class SystemTable:
    """One ``system.*`` table: its columns and the state tables it is built from."""

    name: str
    schema: pa.Schema
    #: In output order: ``system.events`` lists the executions rows, then lineage's.
    sources: tuple[Source, ...]
    #: Only an admin may read it through the API (see :data:`private_tables_visible`).
    private: bool = False

    @property
    def domains(self) -> tuple[str, ...]:
        """The domains the table is built from, each once, in source order."""
        return tuple(dict.fromkeys(s.domain for s in self.sources))


_TS = pa.timestamp("ms", tz="UTC")
_PROPS = pa.map_(pa.string(), pa.string())


def _columns_of(tdef: TableDef, *names: str) -> pa.Schema:
    return pa.schema([tdef.schema.field(name) for name in names])


def _without(tdef: TableDef, *names: str) -> pa.Schema:
    return pa.schema([f for f in tdef.schema if f.name not in names])


def _catalog(state: TableDef) -> tuple[Source, ...]:
    return (Source("catalog", state),)


def _executions(state: TableDef) -> tuple[Source, ...]:
    return (Source("executions", state),)


def _lineage(state: TableDef) -> tuple[Source, ...]:
    return (Source("lineage", state),)


def _both(state: TableDef) -> tuple[Source, ...]:
    return (Source("executions", state), Source("lineage", state))


_DOMAIN = pa.field("domain", pa.string(), nullable=False)

#: Every ``system.*`` table, in the order they are listed.
SYSTEM_TABLES: dict[str, SystemTable] = {
    t.name: t
    for t in (
        SystemTable(
            "namespaces",
            pa.schema(
                [
                    pa.field("name", pa.string(), nullable=False),
                    pa.field("description", pa.string()),
                    pa.field("properties", _PROPS),
                    pa.field("created_at", _TS, nullable=False),
                    pa.field("updated_at", _TS, nullable=False),
                    pa.field("id", pa.string(), nullable=False),
                ]
            ),
            _catalog(NAMESPACES),
        ),
        SystemTable(
            "tables",
            pa.schema(
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
            _catalog(TABLES),
        ),
        SystemTable(
            "columns",
            pa.schema(
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
            _catalog(TABLES),
        ),
        SystemTable(
            "lineage_edges",
            _columns_of(
                EDGES,
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
            ),
            _lineage(EDGES),
        ),
        SystemTable("materializations", MATERIALIZATIONS.schema, _executions(MATERIALIZATIONS)),
        SystemTable("runs", RUNS.schema, _executions(RUNS)),
        SystemTable("tasks", TASKS.schema, _executions(TASKS)),
        SystemTable("logs", LOGS.schema, _executions(LOGS)),
        SystemTable("asset_checks", ASSET_CHECKS.schema, _executions(ASSET_CHECKS)),
        SystemTable(
            "events",
            _columns_of(EVENT_KEYS, "event_id", "event_type", "idempotency_key").insert(0, _DOMAIN),
            _both(EVENT_KEYS),
        ),
        SystemTable("quarantine", pa.schema([_DOMAIN, *QUARANTINE.schema]), _both(QUARANTINE)),
        # OpenLineage (ADR 013): the state columns less the fold's own bookkeeping.
        SystemTable(
            "external_runs",
            _without(EXTERNAL_RUNS, *BOOKKEEPING["external_runs"]),
            _lineage(EXTERNAL_RUNS),
        ),
        SystemTable(
            "datasets",
            _without(DATASETS, *BOOKKEEPING["datasets"]),
            _lineage(DATASETS),
        ),
        SystemTable(
            "column_edges",
            _without(COLUMN_EDGES, *BOOKKEEPING["column_edges"]),
            _lineage(COLUMN_EDGES),
        ),
        SystemTable("audit", AUDIT.schema, (Source("audit", AUDIT),), private=True),
    )
}
#: The schema of every ``system.*`` table (a contract: add columns, never change them).
SYSTEM_SCHEMAS: dict[str, pa.Schema] = {n: t.schema for n, t in SYSTEM_TABLES.items()}
#: System tables only an admin may read through the API (see :data:`private_tables_visible`).
PRIVATE_TABLES = frozenset(n for n, t in SYSTEM_TABLES.items() if t.private)
#: Whether the current caller may read :data:`PRIVATE_TABLES`. True for the library and
#: the CLI (whoever holds the store's credentials reads everything anyway); the API
#: sets it per request from the caller's roles.
private_tables_visible: ContextVar[bool] = ContextVar("arco_private_tables", default=True)
#: The ``system.*`` table names.
SYSTEM_TABLE_NAMES: tuple[str, ...] = tuple(SYSTEM_TABLES)

#: Which domains each system table is built from.
_SOURCES: dict[str, tuple[str, ...]] = {n: t.domains for n, t in SYSTEM_TABLES.items()}
_TIER2 = ("executions", "lineage", "audit")


# ------------------------------------------------------------------ builders
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
        source = next(s.state.name for s in SYSTEM_TABLES[name].sources if s.domain == domain)
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
