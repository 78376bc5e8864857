"""SQL over the system tables: schemas, contents, time travel, caching, the sandbox, limits."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from arco.catalog import Catalog
from arco.core import (
    ArcoError,
    InvalidArgumentError,
    Keys,
    NotFoundError,
    ObjectStore,
    Scope,
    new_ulid,
    open_store,
)
from arco.discovery.lineage import LineageGraph
from arco.governance.audit import AuditRecord, write_audit
from arco.ledger.compactor import Compactor, tier2_store
from arco.ledger.log import Ledger
from arco.openlineage.ingest import ingest
from arco.openlineage.mapping import OpenLineageConfig
from arco.sql import tables as systables
from arco.sql.browser import FILE_PREFIX, NOT_IN_BROWSER, VIEW_DOMAINS, build_views
from arco.sql.convert import to_json_rows
from arco.sql.engine import run_query
from arco.sql.errors import QueryError, QueryRejectedError, QueryTimeoutError, QueryTooLargeError
from arco.sql.limits import QueryLimits
from arco.sql.resolve import rewrite_system_names
from arco.sql.tables import (
    PRIVATE_TABLES,
    SYSTEM_SCHEMAS,
    SYSTEM_TABLE_NAMES,
    SYSTEM_TABLES,
    SystemTables,
)

SCOPE = Scope("acme", "prod")
OTHER = Scope("globex", "prod")
SECRET = "TOPSECRET-7f3a9c"


def memory_store() -> ObjectStore:
    return open_store(f"memory://{uuid.uuid4().hex}")


def populate(store: ObjectStore, scope: Scope = SCOPE) -> None:
    """Namespaces, tables, Tier-2 events of every kind, a declared edge, a quarantined object."""
    cat = Catalog(store, scope)
    cat.create_namespace("raw", "Raw data", {"owner": "ana", "tier": "bronze"})
    cat.create_namespace("raw.web", "Web events")
    cat.create_namespace("mart")
    cat.create_table(
        "raw",
        "orders",
        [
            "id:bigint:not-null",
            {"name": "amount", "type": "decimal(12,2)", "description": "Order total"},
            "ordered_at:timestamp[us, UTC]",
        ],
        location="s3://lake/raw/orders",
        description="All orders",
        properties={"pii": "no"},
    )
    cat.create_table("raw.web", "clicks", ["url:string", "at:timestamp[ms, UTC]"], format="delta")
    cat.create_table("mart", "daily", ["day:date32:not-null", "total:decimal(14,2)"])

    ledger = Ledger(store, scope)
    ledger.append("executions", "run.created", {"run_id": "r1", "seq": 0, "selection": "*"})
    ledger.append("executions", "run.state_changed", {"run_id": "r1", "seq": 1, "state": "RUNNING"})
    ledger.append(
        "executions",
        "task.state_changed",
        {"run_id": "r1", "task_id": "t1", "seq": 2, "state": "SUCCEEDED", "asset": "mart.daily"},
    )
    ledger.append(
        "executions", "run.log", {"run_id": "r1", "task_id": "t1", "lines": ["start", "done"]}
    )
    ledger.append(
        "executions",
        "materialization.recorded",
        {"asset": "mart.daily", "run_id": "r1", "task_id": "t1", "row_count": 31},
        idempotency_key="mat-1",
    )
    ledger.append(
        "executions",
        "asset_check.evaluated",
        {"check": "not_empty", "asset": "mart.daily", "run_id": "r1", "passed": True},
    )
    ledger.append(
        "lineage",
        "lineage.edges_observed",
        {"edges": [{"source": "raw.orders", "target": "mart.daily", "run_id": "r1"}]},
    )
    bad_id = new_ulid()
    store.put(
        Keys(scope).ledger_event("executions", datetime.now(UTC), bad_id), b"not json", "create"
    )
    LineageGraph(store, scope).add_edge("raw.web.clicks", "mart.daily", columns=["url"])
    # An OpenLineage run that wrote mart.daily (no inputs: no new table edge).
    ingest(ledger, [OL_EVENT], OpenLineageConfig().mapper(scope))
    write_audit(
        store,
        AuditRecord("POST /api/v1/namespaces", "ok", "ana", scope.tenant, scope.workspace),
    )
    Compactor(store, scope).compact_all()


OL_PRODUCER = "https://example.test/producer"
OL_RUN_ID = "0190b2a4-8f9e-7c3d-9a1b-2c3d4e5f6a7b"
OL_EVENT: dict[str, Any] = {
    "eventType": "FAIL",
    "eventTime": "2026-03-01T12:00:00Z",
    "producer": OL_PRODUCER,
    "schemaURL": OL_PRODUCER,
    "run": {
        "runId": OL_RUN_ID,
        "facets": {
            "errorMessage": {
                "_producer": OL_PRODUCER,
                "_schemaURL": OL_PRODUCER,
                "message": "disk full",
                "programmingLanguage": "sql",
            }
        },
    },
    "job": {"namespace": "dbt", "name": "model.daily"},
    "outputs": [
        {
            "namespace": "pg",
            "name": "mart.daily",
            "facets": {
                "schema": {
                    "_producer": OL_PRODUCER,
                    "_schemaURL": OL_PRODUCER,
                    "fields": [{"name": "total", "type": "NUMERIC"}],
                },
                "columnLineage": {
                    "_producer": OL_PRODUCER,
                    "_schemaURL": OL_PRODUCER,
                    "fields": {
                        "total": {
                            "inputFields": [
                                {"namespace": "pg", "name": "raw.orders", "field": "amount"}
                            ],
                            "transformationType": "AGGREGATION",
                        }
                    },
                },
            },
            "outputFacets": {
                "outputStatistics": {
                    "_producer": OL_PRODUCER,
                    "_schemaURL": OL_PRODUCER,
                    "rowCount": 31,
                }
            },
        }
    ],
}


@pytest.fixture
def store() -> ObjectStore:
    s = memory_store()
    populate(s)
    return s


@pytest.fixture
def system(store: ObjectStore) -> SystemTables:
    return SystemTables(store, SCOPE)


def q(system: SystemTables, sql: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Rows of a query as dicts."""
    result = run_query(system, sql, **kwargs)
    names = [n for n, _ in result.columns]
    return [dict(zip(names, row, strict=True)) for row in result.rows]


# ------------------------------------------------------------------ schemas
DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("ms", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
    pa.map_(pa.string(), pa.string()): "MAP(VARCHAR, VARCHAR)",
    pa.list_(pa.string()): "VARCHAR[]",
    pa.float64(): "DOUBLE",
}


@pytest.mark.parametrize("populated", [True, False], ids=["populated", "empty"])
@pytest.mark.parametrize("name", SYSTEM_TABLE_NAMES)
def test_every_system_table_exists_with_its_schema(name: str, populated: bool) -> None:
    store = memory_store()
    if populated:
        populate(store)
    system = SystemTables(store, SCOPE)
    table = system.table(name)
    assert table.schema == SYSTEM_SCHEMAS[name]
    assert (table.num_rows > 0) == populated
    result = run_query(system, f"SELECT * FROM system.{name}")
    expected = [(f.name, DUCK_TYPES[f.type]) for f in SYSTEM_SCHEMAS[name]]
    assert result.columns == expected
    assert result.row_count == table.num_rows
    json.dumps(result.rows, allow_nan=False)


def test_empty_scope_has_empty_quarantine_too() -> None:
    system = SystemTables(memory_store(), SCOPE)
    for name in SYSTEM_TABLE_NAMES:
        assert run_query(system, f"SELECT count(*) AS n FROM system.{name}").rows == [[0]]
    # The audit trail is a private table: its domain's version is not shown.
    assert system.versions() == {"catalog": 0, "executions": 0, "lineage": 0}


def test_namespaces_content(system: SystemTables) -> None:
    rows = q(system, "SELECT * FROM system.namespaces ORDER BY name")
    assert [r["name"] for r in rows] == ["mart", "raw", "raw.web"]
    raw = rows[1]
    assert raw["description"] == "Raw data"
    assert raw["properties"] == {"owner": "ana", "tier": "bronze"}
    assert rows[0]["properties"] == {}
    assert datetime.fromisoformat(raw["created_at"]).tzinfo is not None
    assert len(raw["id"]) == 26
    owner = q(system, "SELECT properties['owner'] AS o FROM system.namespaces WHERE name = 'raw'")
    assert owner == [{"o": "ana"}]


def test_tables_content(system: SystemTables) -> None:
    rows = q(system, "SELECT * FROM system.tables ORDER BY namespace, name")
    assert [(r["namespace"], r["name"]) for r in rows] == [
        ("mart", "daily"),
        ("raw", "orders"),
        ("raw.web", "clicks"),
    ]
    orders = rows[1]
    assert orders["format"] == "parquet"
    assert orders["location"] == "s3://lake/raw/orders"
    assert orders["description"] == "All orders"
    assert orders["properties"] == {"pii": "no"}
    assert orders["schema_version"] == 1
    assert orders["column_count"] == 3
    assert rows[2]["format"] == "delta"
    cat = Catalog(system.store, SCOPE)
    assert orders["id"] == cat.get_table("raw", "orders").id
    assert run_query(system, "SELECT count(*) FROM system.tables").rows == [[3]]


def test_columns_content_and_join(system: SystemTables) -> None:
    rows = q(
        system,
        "SELECT t.namespace || '.' || t.name AS tbl, c.name, c.ordinal, c.data_type, "
        "c.nullable, c.description FROM system.tables t "
        "JOIN system.columns c ON c.table_id = t.id ORDER BY tbl, c.ordinal",
    )
    orders = [r for r in rows if r["tbl"] == "raw.orders"]
    assert [(r["name"], r["ordinal"], r["nullable"]) for r in orders] == [
        ("id", 0, False),
        ("amount", 1, True),
        ("ordered_at", 2, True),
    ]
    assert orders[0]["data_type"] == "int64"
    assert orders[1]["data_type"] == "decimal(12,2)"
    assert orders[1]["description"] == "Order total"
    assert len(rows) == 7
    counts = q(
        system,
        "SELECT t.name, t.column_count, count(c.name) AS n FROM system.tables t "
        "LEFT JOIN system.columns c ON c.table_id = t.id GROUP BY ALL ORDER BY t.name",
    )
    assert all(r["column_count"] == r["n"] for r in counts)


def test_executions_tables_content(system: SystemTables) -> None:
    runs = q(system, "SELECT * FROM system.runs")
    assert len(runs) == 1
    assert runs[0]["run_id"] == "r1"
    assert runs[0]["state"] == "RUNNING"
    assert runs[0]["selection"] == "*"
    assert runs[0]["started_at"] is not None
    tasks = q(system, "SELECT * FROM system.tasks")
    assert [(t["run_id"], t["task_id"], t["state"], t["asset"]) for t in tasks] == [
        ("r1", "t1", "SUCCEEDED", "mart.daily")
    ]
    logs = q(system, "SELECT line_no, line, task_id FROM system.logs ORDER BY line_no")
    assert logs == [
        {"line_no": 0, "line": "start", "task_id": "t1"},
        {"line_no": 1, "line": "done", "task_id": "t1"},
    ]
    mats = q(system, "SELECT asset, run_id, row_count FROM system.materializations")
    assert mats == [{"asset": "mart.daily", "run_id": "r1", "row_count": 31}]


def test_openlineage_tables_content(system: SystemTables) -> None:
    runs = q(system, "SELECT * FROM system.external_runs")
    assert [
        (r["run_id"], r["job_namespace"], r["job_name"], r["state"], r["error_message"])
        for r in runs
    ] == [(OL_RUN_ID, "dbt", "model.daily", "FAIL", "disk full")]
    assert runs[0]["outputs"] == ["pg::mart.daily"]
    assert runs[0]["inputs"] == []
    assert runs[0]["events"] == 1
    assert runs[0]["finished_at"] is not None
    # What OpenLineage saw, joined to the catalog through the mapped name.
    seen = q(
        system,
        "SELECT d.namespace, d.name, d.qualified_name, d.roles, d.row_count, d.schema_json, "
        "t.id IS NOT NULL AS registered FROM system.datasets d LEFT JOIN system.tables t "
        "ON t.namespace || '.' || t.name = d.qualified_name",
    )
    assert seen == [
        {
            "namespace": "pg",
            "name": "mart.daily",
            "qualified_name": "mart.daily",
            "roles": ["output"],
            "row_count": 31,
            "schema_json": json.dumps([{"name": "total", "type": "NUMERIC"}]),
            "registered": True,
        }
    ]
    cols = q(
        system,
        "SELECT source, source_column, target, target_column, transformation, declared, "
        "observations, last_run_id FROM system.column_edges",
    )
    assert cols == [
        {
            "source": "raw.orders",
            "source_column": "amount",
            "target": "mart.daily",
            "target_column": "total",
            "transformation": "AGGREGATION",
            "declared": False,
            "observations": 1,
            "last_run_id": OL_RUN_ID,
        }
    ]


def test_lineage_events_and_quarantine_content(system: SystemTables) -> None:
    edges = q(system, "SELECT * FROM system.lineage_edges ORDER BY source")
    assert [(e["source"], e["target"], e["declared"], e["observations"]) for e in edges] == [
        ("raw.orders", "mart.daily", False, 1),
        ("raw.web.clicks", "mart.daily", True, 0),
    ]
    assert edges[0]["last_run_id"] == "r1"
    assert edges[0]["first_seen"] is not None
    assert edges[1]["columns"] == ["url"]
    events = q(system, "SELECT domain, event_type, idempotency_key FROM system.events")
    by_type = {(e["domain"], e["event_type"]) for e in events}
    assert by_type == {
        ("executions", "run.created"),
        ("executions", "run.state_changed"),
        ("executions", "task.state_changed"),
        ("executions", "run.log"),
        ("executions", "materialization.recorded"),
        ("executions", "asset_check.evaluated"),
        ("lineage", "lineage.edges_observed"),
        ("lineage", "openlineage.event"),
    }
    assert {"domain": "executions", "event_type": "materialization.recorded"} | {
        "idempotency_key": "mat-1"
    } in events
    quarantine = q(system, "SELECT domain, reason, key FROM system.quarantine")
    assert len(quarantine) == 1
    assert quarantine[0]["domain"] == "executions"
    assert quarantine[0]["reason"] == "invalid"


def test_cross_domain_join(system: SystemTables) -> None:
    rows = q(
        system,
        "WITH m AS (SELECT asset, sum(row_count) AS n FROM system.materializations GROUP BY 1) "
        "SELECT t.namespace || '.' || t.name AS tbl, m.n FROM system.tables t "
        "JOIN m ON m.asset = t.namespace || '.' || t.name",
    )
    assert rows == [{"tbl": "mart.daily", "n": "31"}]  # sum() of BIGINT is a HUGEINT (decimal)


# -------------------------------------------------------------- time travel
def test_as_of_version_reads_an_older_catalog() -> None:
    store = memory_store()
    cat = Catalog(store, SCOPE)
    cat.create_namespace("ns")  # v1
    cat.create_table("ns", "a", ["x:int"])  # v2
    cat.create_table("ns", "b", ["y:int", "z:int"])  # v3
    cat.update_table("ns", "a", description="changed")  # v4
    system = SystemTables(store, SCOPE)
    sql = "SELECT name, description FROM system.tables ORDER BY name"
    assert q(system, sql) == [
        {"name": "a", "description": "changed"},
        {"name": "b", "description": None},
    ]
    assert q(system, sql, as_of_version=2) == [{"name": "a", "description": None}]
    assert q(system, sql, as_of_version=1) == []
    assert run_query(system, "SELECT count(*) FROM system.namespaces", as_of_version=0).rows == [
        [0]
    ]
    result = run_query(system, "SELECT count(*) FROM system.columns", as_of_version=3)
    assert result.rows == [[3]]
    assert result.versions == {"catalog": 3}
    with pytest.raises(NotFoundError):
        run_query(system, sql, as_of_version=99)
    with pytest.raises(NotFoundError):
        run_query(system, sql, as_of_version=-1)
    with pytest.raises(InvalidArgumentError):
        run_query(system, sql, as_of_version="2")  # type: ignore[arg-type]


def test_as_of_version_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    store = memory_store()
    cat = Catalog(store, SCOPE)
    cat.create_namespace("ns")
    cat.create_table("ns", "a", ["x:int"])
    cat.create_table("ns", "b", ["x:int"])
    system = SystemTables(store, SCOPE)
    calls = []
    original = system.catalog.domain.read_version

    def counting(version: int) -> Any:
        calls.append(version)
        return original(version)

    monkeypatch.setattr(system.catalog.domain, "read_version", counting)
    for _ in range(3):
        assert run_query(system, "SELECT count(*) FROM system.tables", as_of_version=2).rows == [
            [1]
        ]
    assert calls == [2]


def test_tier2_tables_show_latest_state_under_as_of(system: SystemTables) -> None:
    old = run_query(system, "SELECT count(*) FROM system.runs", as_of_version=1)
    assert old.rows == [[1]]


# ------------------------------------------------------------------ caching
def test_tables_are_built_once_per_version(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real_tables, real_columns = systables._tables_table, systables._columns_table

    def tables(state: Any) -> pa.Table:
        built.append("tables")
        return real_tables(state)

    def columns(state: Any) -> pa.Table:
        built.append("columns")
        return real_columns(state)

    monkeypatch.setattr(systables, "_tables_table", tables)
    monkeypatch.setattr(systables, "_columns_table", columns)
    system = SystemTables(store, SCOPE)
    for _ in range(3):
        run_query(system, "SELECT count(*) FROM system.tables")
    assert built == ["tables"]
    run_query(system, "SELECT * FROM system.tables JOIN system.columns ON table_id = id")
    assert built == ["tables", "columns"]
    Catalog(store, SCOPE).create_table("mart", "weekly", ["w:int"])
    assert run_query(system, "SELECT count(*) FROM system.tables").rows == [[4]]
    assert built == ["tables", "columns", "tables"]


def test_system_tables_api(system: SystemTables) -> None:
    assert system.table("system.tables").num_rows == 3
    assert system.table("TABLES").num_rows == 3
    tables, versions = system.tables(["namespaces", "events"])
    assert set(tables) == {"namespaces", "events"}
    assert set(versions) == {"catalog", "executions", "lineage"}
    with pytest.raises(InvalidArgumentError, match="unknown system table"):
        system.table("system.secrets")
    with pytest.raises(InvalidArgumentError):
        SystemTables(system.store, OTHER, catalog=system.catalog)


# ------------------------------------------------------------ browser views
def test_every_system_table_is_a_browser_view_or_excluded_with_a_reason() -> None:
    """The browser's views (arco.sql.browser) and the server's tables cannot drift apart."""
    views, excluded = set(VIEW_DOMAINS), set(NOT_IN_BROWSER)
    assert views | excluded == set(SYSTEM_SCHEMAS), "a table on one side only"
    assert not views & excluded
    assert all(NOT_IN_BROWSER[name].strip() for name in excluded), "an exclusion needs a reason"
    # An admin-only table must never reach a reader's browser.
    assert excluded >= PRIVATE_TABLES
    for name in views:
        assert VIEW_DOMAINS[name] == SYSTEM_TABLES[name].domains, name


def _run_view(sql: str, files: dict[str, Path]) -> pa.Table:
    for path, local in files.items():
        sql = sql.replace(f"'{FILE_PREFIX}{path}'", f"'{local}'")
    assert FILE_PREFIX not in sql
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def test_browser_views_have_the_columns_and_rows_of_the_system_tables(
    store: ObjectStore, system: SystemTables, tmp_path: Path
) -> None:
    """Run every view over the scope's state files: same columns (names, types), same rows."""
    manifests = {"catalog": system.catalog.snapshot().manifest}
    for domain in ("executions", "lineage"):
        manifests[domain] = tier2_store(store, SCOPE, domain).read().manifest
    files: dict[str, Path] = {}
    for manifest in manifests.values():
        assert manifest is not None
        for entry in manifest.files:
            local = tmp_path / f"{len(files)}.parquet"
            local.write_bytes(store.get(entry.path)[0])
            files[entry.path] = local
    views = build_views(manifests)
    assert set(views) == set(VIEW_DOMAINS)
    empty = build_views(dict.fromkeys(manifests))
    for name, sql in views.items():
        schema = SYSTEM_SCHEMAS[name]
        got, want = _run_view(sql, files), system.table(name)
        assert got.schema.names == schema.names == want.schema.names, name
        assert got.num_rows > 0, f"system.{name} has no rows: the comparison would be vacuous"
        rows = sorted(got.cast(schema).to_pylist(), key=repr)
        assert rows == sorted(want.to_pylist(), key=repr), name
        # Over no files, the view still has the columns, typed.
        none = _run_view(empty[name], {})
        assert none.num_rows == 0
        assert none.cast(schema).schema == schema, name


# ------------------------------------------------------------------ sandbox
def _assert_never_leaks(exc: pytest.ExceptionInfo[Exception]) -> None:
    assert SECRET not in str(exc.value)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.csv"
    path.write_text(f"name,value\n{SECRET},1\n")
    return path


REJECTED_STATEMENTS = [
    "EXPLAIN SELECT 1",
    "EXPLAIN ANALYZE SELECT * FROM system.tables",
    "PRAGMA version",
    "PRAGMA database_list",
    "SET threads = 1",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "SET VARIABLE x = 1",
    "COPY (SELECT 1) TO '{tmp}/out.csv'",
    "COPY (SELECT * FROM system.tables) TO '{tmp}/out.parquet' (FORMAT parquet)",
    "ATTACH '{tmp}/other.db' AS other",
    "DETACH memory",
    "INSTALL httpfs",
    "LOAD httpfs",
    "LOAD '{tmp}/evil.duckdb_extension'",
    "CREATE TABLE t AS SELECT 1",
    "CREATE VIEW v AS SELECT 1",
    "CREATE MACRO m() AS 1",
    "CREATE SECRET s (TYPE s3, KEY_ID 'x', SECRET 'y')",
    "CALL pragma_version()",
    "CALL duckdb_settings()",
    "EXPORT DATABASE '{tmp}/export'",
    "IMPORT DATABASE '{tmp}/export'",
    "USE memory",
    "BEGIN TRANSACTION",
    "CHECKPOINT",
    "VACUUM",
    "UPDATE EXTENSIONS",
    "INSERT INTO t VALUES (1)",
    "DROP TABLE t",
    "PREPARE p AS SELECT 1",
    "SELECT 1; SELECT 2",
    "SELECT 1; DROP TABLE x",
    "SELECT * FROM system.tables; COPY (SELECT 1) TO '{tmp}/x.csv'",
    "/* hello */ SELECT 1 -- ; still a comment\n; PRAGMA version",
    "SELECT ';' AS s; SET threads = 1",
    "",
    "-- only a comment",
    ";",
]


@pytest.mark.parametrize("sql", REJECTED_STATEMENTS)
def test_only_a_single_select_is_allowed(system: SystemTables, tmp_path: Path, sql: str) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(QueryRejectedError):
        run_query(system, sql.format(tmp=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


READS = [
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_csv_auto('{secret}')",
    "SELECT * FROM '{secret}'",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_blob('{secret}')",
    "SELECT * FROM read_json('{secret}')",
    "SELECT * FROM sniff_csv('{secret}')",
    "SELECT * FROM query_table('{secret}')",
    "SELECT * FROM read_parquet('{secret}')",
    "SELECT * FROM parquet_metadata('{secret}')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM glob('{dir}/*')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM 'https://example.com/data.csv'",
    "WITH x AS (SELECT * FROM read_csv('{secret}')) SELECT * FROM x",
    "SELECT (SELECT count(*) FROM read_text('{secret}'))",
    "SELECT * FROM query('SELECT * FROM read_csv(''{secret}'')')",
    "SELECT * FROM duckdb_extensions()",
]


@pytest.mark.parametrize("sql", READS)
def test_files_and_urls_are_unreachable(system: SystemTables, secret_file: Path, sql: str) -> None:
    with pytest.raises(QueryRejectedError) as exc:
        run_query(system, sql.format(secret=secret_file, dir=secret_file.parent))
    _assert_never_leaks(exc)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT getenv('HOME')",
        "SELECT * FROM secret_table",
        "SELECT * FROM secret_frame",
        "SELECT * FROM other_system",
    ],
)
def test_no_environment_or_python_variables(system: SystemTables, sql: str) -> None:
    secret_table = pa.table({"s": [SECRET]})  # Python replacement scans would find these
    secret_frame = secret_table
    other_system = SystemTables(memory_store(), OTHER)
    with pytest.raises(QueryError) as exc:
        run_query(system, sql)
    _assert_never_leaks(exc)
    assert secret_frame.num_rows == 1
    assert other_system.scope == OTHER


def test_settings_are_locked_and_reveal_no_paths(system: SystemTables) -> None:
    rows = q(
        system,
        "SELECT name, value FROM duckdb_settings() WHERE name IN "
        "('enable_external_access', 'lock_configuration', 'home_directory', "
        "'temp_directory', 'extension_directory', 'autoload_known_extensions', "
        "'autoinstall_known_extensions', 'allowed_directories')",
    )
    settings = {r["name"]: r["value"] for r in rows}
    assert settings["enable_external_access"] == "false"
    assert settings["lock_configuration"] == "true"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["home_directory"] == ""
    assert settings["temp_directory"] == ""
    assert settings["allowed_directories"] == "[]"
    assert q(system, "SELECT current_setting('home_directory') AS h") == [{"h": ""}]


def test_another_tenants_files_are_unreachable_by_path(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'store'}")
    populate(store, SCOPE)
    Catalog(store, SCOPE).create_table("raw", "secret_orders_" + SECRET.split("-")[1], ["x:int"])
    files = sorted((tmp_path / "store").rglob("*.parquet"))
    assert files
    mine = SystemTables(store, OTHER)
    for path in files[:5]:
        for sql in (
            f"SELECT * FROM read_parquet('{path}')",
            f"SELECT * FROM '{path}'",
            f"SELECT * FROM parquet_scan('{path.parent}/*.parquet')",
        ):
            with pytest.raises(QueryRejectedError) as exc:
                run_query(mine, sql)
            assert "secret_orders" not in str(exc.value)
    assert run_query(mine, "SELECT count(*) FROM system.tables").rows == [[0]]


def test_strings_and_comments_are_not_rewritten(system: SystemTables) -> None:
    rows = q(
        system,
        "SELECT 'system.tables' AS s, count(*) AS n -- system.columns\n"
        "FROM /* system.runs */ system.tables",
    )
    assert rows == [{"s": "system.tables", "n": 3}]
    sql, used = rewrite_system_names(
        'SELECT "system"."Tables".name, system . columns.x, a.system.tables, '
        "'system.runs', $$system.logs$$ FROM system.namespaces"
    )
    assert used == {"tables", "columns", "namespaces"}
    assert sql == (
        'SELECT temp.main."Tables".name, temp.main . columns.x, a.system.tables, '
        "'system.runs', $$system.logs$$ FROM temp.main.namespaces"
    )


def test_query_errors_are_typed(system: SystemTables) -> None:
    with pytest.raises(QueryError, match="Parser Error"):
        run_query(system, "SELEC 1")
    with pytest.raises(QueryError, match=r"system\.tables"):
        run_query(system, "SELECT * FROM system.secrets")
    with pytest.raises(QueryError, match="Binder Error"):
        run_query(system, "SELECT no_such_column FROM system.tables")
    with pytest.raises(QueryError, match="Conversion Error"):
        run_query(system, "SELECT 'x'::INTEGER")
    with pytest.raises(QueryError) as exc:
        run_query(system, "SELECT * FROM system.tables WHERE name = 'unterminated")
    assert "\n" not in str(exc.value)
    for cls in (QueryError, QueryRejectedError):
        assert issubclass(cls, InvalidArgumentError)
    # Limits are not bad arguments: they have statuses of their own (413, 422).
    for cls in (QueryTimeoutError, QueryTooLargeError):
        assert issubclass(cls, ArcoError)
        assert not issubclass(cls, InvalidArgumentError)
    codes = {c.code for c in (QueryError, QueryRejectedError, QueryTimeoutError)}
    assert codes == {"query-error", "query-rejected", "query-timeout"}
    assert QueryTooLargeError.code == "query-too-large"


def test_allowed_select_forms(system: SystemTables) -> None:
    assert run_query(system, "SELECT 1 AS one;").rows == [[1]]
    assert run_query(system, "FROM system.tables SELECT count(*)").rows == [[3]]
    assert run_query(system, "WITH t AS (FROM system.tables) SELECT count(*) FROM t").rows == [[3]]
    assert run_query(system, "VALUES (1), (2)").row_count == 2
    assert run_query(system, "SELECT 1 UNION ALL SELECT 2").row_count == 2
    assert run_query(system, "DESCRIBE system.tables").row_count == len(SYSTEM_SCHEMAS["tables"])
    assert run_query(system, "SUMMARIZE system.tables").row_count > 0


# ------------------------------------------------------------------- limits
SLOW = "SELECT count(*) FROM range(1000000000) a, range(1000) b WHERE (a.range + b.range) % 7 = 3"


def test_timeout_interrupts_the_query(system: SystemTables) -> None:
    started = time.perf_counter()
    with pytest.raises(QueryTimeoutError):
        run_query(system, SLOW, limits=QueryLimits(max_seconds=0.5))
    assert time.perf_counter() - started < 3.0
    assert run_query(system, "SELECT count(*) FROM system.tables").rows == [[3]]


def test_a_timeout_does_not_stop_other_queries(system: SystemTables) -> None:
    results: dict[str, Any] = {}

    def slow() -> None:
        try:
            run_query(system, SLOW, limits=QueryLimits(max_seconds=0.5))
        except QueryTimeoutError as exc:
            results["slow"] = exc

    def fast() -> None:
        results["fast"] = run_query(
            system, "SELECT sum(range) FROM range(20000000)", limits=QueryLimits(max_seconds=20)
        ).rows

    threads = [threading.Thread(target=slow), threading.Thread(target=fast)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(results["slow"], QueryTimeoutError)
    assert results["fast"] == [[str(sum(range(20_000_000)))]]


def test_row_limit(system: SystemTables) -> None:
    with pytest.raises(QueryTooLargeError, match="more than 10 rows"):
        run_query(system, "SELECT * FROM range(11)", limits=QueryLimits(max_rows=10))
    assert run_query(system, "SELECT * FROM range(10)", limits=QueryLimits(max_rows=10)).rows == [
        [i] for i in range(10)
    ]
    started = time.perf_counter()
    cut = run_query(
        system, "SELECT * FROM range(10000000000)", limits=QueryLimits(max_rows=5, truncate=True)
    )
    assert time.perf_counter() - started < 2.0  # streamed, not materialised
    assert cut.truncated
    assert cut.row_count == 5
    assert cut.arrow.num_rows == 5
    with pytest.raises(QueryTooLargeError):
        run_query(system, "SELECT * FROM range(100000)")  # default limit: 10,000 rows


def test_byte_limit(system: SystemTables) -> None:
    sql = "SELECT repeat('x', 1000) AS s FROM range(100)"
    with pytest.raises(QueryTooLargeError, match="bytes"):
        run_query(system, sql, limits=QueryLimits(max_bytes=10_000))
    assert run_query(system, sql, limits=QueryLimits(max_bytes=1_000_000)).row_count == 100


def test_sql_length_limit(system: SystemTables) -> None:
    long_sql = "SELECT 1" + " " * 200 + "AS x"
    with pytest.raises(QueryRejectedError, match="characters"):
        run_query(system, long_sql, limits=QueryLimits(max_sql_length=100))
    assert run_query(system, long_sql, limits=QueryLimits(max_sql_length=1000)).rows == [[1]]
    with pytest.raises(QueryRejectedError):
        run_query(system, "SELECT 1\x00")


def test_limits_are_validated() -> None:
    for bad in ({"max_seconds": 0}, {"max_rows": 0}, {"max_bytes": -1}, {"max_rows": True}):
        with pytest.raises(InvalidArgumentError):
            QueryLimits(**bad)


# ---------------------------------------------------------- tenant isolation
def test_tenant_isolation() -> None:
    store = memory_store()
    populate(store, SCOPE)
    other = Catalog(store, OTHER)
    other.create_namespace("theirs")
    other.create_table("theirs", "only_b", ["x:int"])
    a, b = SystemTables(store, SCOPE), SystemTables(store, OTHER)
    assert q(b, "SELECT namespace, name FROM system.tables") == [
        {"namespace": "theirs", "name": "only_b"}
    ]
    assert run_query(b, "SELECT count(*) FROM system.runs").rows == [[0]]
    assert run_query(b, "SELECT count(*) FROM system.events").rows == [[0]]
    assert run_query(b, "SELECT count(*) FROM system.lineage_edges").rows == [[0]]
    assert run_query(a, "SELECT count(*) FROM system.tables WHERE name = 'only_b'").rows == [[0]]
    # queries on a shared database never see each other's registered tables
    errors: list[BaseException] = []

    def worker(system: SystemTables, expected: int) -> None:
        try:
            for _ in range(20):
                rows = run_query(system, "SELECT count(*) FROM system.tables").rows
                assert rows == [[expected]]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s, n)) for s, n in ((a, 3), (b, 1)) * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


# ---------------------------------------------------------------- JSON values
def test_json_conversion(system: SystemTables) -> None:
    result = run_query(
        system,
        "SELECT 1.50::DECIMAL(10,2) AS d, 'ab'::BLOB AS b, "
        "TIMESTAMPTZ '2024-01-02 03:04:05.123+00' AS ts, TIMESTAMP '2024-01-02 03:04:05' AS tn, "
        "DATE '2024-01-02' AS dt, TIME '12:30:00' AS tm, MAP {'a': 1} AS m, MAP {1: 'x'} AS mi, "
        "{'k': [1, 2], 'd': 2.5::DECIMAL(4,1)} AS st, [DATE '2024-01-01'] AS l, "
        "'nan'::DOUBLE AS f, 'inf'::DOUBLE AS inf, 0.5::DOUBLE AS half, INTERVAL 3 DAY AS iv, "
        "'5b3e0b4a-0000-4000-8000-000000000000'::UUID AS u, NULL AS n, "
        "170141183460469231731687303715884105727::HUGEINT AS h",
    )
    row = dict(zip([name for name, _ in result.columns], result.rows[0], strict=True))
    assert row["d"] == "1.50"
    assert row["b"] == "YWI="
    assert row["ts"] == "2024-01-02T03:04:05.123000+00:00"
    assert row["tn"] == "2024-01-02T03:04:05.000000"
    assert row["dt"] == "2024-01-02"
    assert row["tm"] == "12:30:00.000000"
    assert row["m"] == {"a": 1}
    assert row["mi"] == [{"key": 1, "value": "x"}]
    assert row["st"] == {"k": [1, 2], "d": "2.5"}
    assert row["l"] == ["2024-01-01"]
    assert row["f"] == "NaN"
    assert row["inf"] == "Infinity"
    assert row["half"] == 0.5
    assert row["iv"] == {"months": 0, "days": 3, "nanoseconds": 0}
    assert row["u"] == "5b3e0b4a-0000-4000-8000-000000000000"
    assert row["n"] is None
    assert row["h"] == "170141183460469231731687303715884105727"
    json.dumps(result.rows, allow_nan=False)
    assert dict(result.columns)["ts"] == "TIMESTAMP WITH TIME ZONE"
    assert to_json_rows(pa.table({"x": pa.array([], pa.int64())})) == []


def test_result_to_dict(system: SystemTables) -> None:
    result = run_query(system, "SELECT name FROM system.namespaces ORDER BY name LIMIT 1")
    as_dict = result.to_dict()
    assert as_dict["columns"] == [{"name": "name", "type": "VARCHAR"}]
    assert as_dict["rows"] == [["mart"]]
    assert as_dict["row_count"] == 1
    assert as_dict["truncated"] is False
    assert isinstance(as_dict["elapsed_ms"], float)
    assert result.arrow.column_names == ["name"]


# -------------------------------------------------------------- performance
def test_full_scan_of_1000_tables_is_fast() -> None:
    store = memory_store()
    cat = Catalog(store, SCOPE)
    with cat.transaction() as tx:
        tx.create_namespace("bench")
        for i in range(1000):
            tx.create_table(
                "bench",
                f"t{i:04d}",
                ["id:bigint:not-null", "name:string", "amount:decimal(12,2)", "at:timestamp"],
                description=f"table number {i}",
                properties={"owner": f"team{i % 10}"},
            )
    system = SystemTables(store, SCOPE)
    sql = "SELECT * FROM system.tables"
    assert run_query(system, sql).row_count == 1000  # cold: builds the Arrow table
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        result = run_query(system, sql)
        timings.append(time.perf_counter() - started)
        assert result.row_count == 1000
    assert min(timings) < 0.2, timings
    joined = run_query(
        system,
        "SELECT count(*) FROM system.tables t JOIN system.columns c ON c.table_id = t.id",
    )
    assert joined.rows == [[4000]]
