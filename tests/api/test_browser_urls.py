"""``POST /api/v1/browser/urls`` and the ``/blob`` route (contract 1 in CONTRACTS.md).

The scope is populated with real commits and compactions (with the merge thresholds
lowered so bases, merged deltas and level-0 deltas all occur), the files are fetched
through the signed URLs the route hands out, and every view's SQL is run in native
DuckDB over them: its rows must equal ``SystemTables``' rows, which is what
``POST /query`` answers. The blob route is then attacked: tampered, expired,
wrong-key, out-of-scope and non-state keys are refused with 403 problem+json.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import duckdb
import httpx
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from arco.api.blob import parse_range, servable
from arco.api.settings import RateLimit
from arco.catalog import Catalog
from arco.core.ids import new_ulid
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import HmacSigner, open_store
from arco.domain import tableset
from arco.ledger.compactor import Compactor
from arco.ledger.log import Ledger
from arco.openlineage.ingest import ingest
from arco.openlineage.mapping import OpenLineageConfig
from arco.sql.browser import FILE_PREFIX, build_views
from arco.sql.tables import PRIVATE_TABLES, SYSTEM_SCHEMAS, SystemTables

from .conftest import PROBLEM_JSON, SECRET, Tokens, in_process_client, make_app

TENANT, WORKSPACE = "acme", "main"
SCOPE = Scope(TENANT, WORKSPACE)
URLS = "/api/v1/browser/urls"
ALL_DOMAINS = ["catalog", "lineage", "executions"]


# ------------------------------------------------------------------ populating
def populate_catalog(cat: Catalog) -> list[int]:
    """Commits with creates, alters, renames and drops; returns versions worth reading."""
    marks: list[int] = []
    cat.create_namespace("sales", "Sales data", {"owner": "ana", "tier": "gold"})
    cat.create_namespace("ops")
    for i in range(12):
        cat.create_table(
            "sales",
            f"t{i:02d}",
            ["id:int64", "amount:decimal(18,2)", "note:string"],
            description=f"table {i}",
            properties={"k": str(i)},
        )
    marks.append(cat.version)
    cat.update_table("sales", "t01", description="changed", add_columns=["extra:date"])
    cat.update_table("sales", "t02", drop_columns=["note"], rename_columns={"amount": "total"})
    cat.rename_table("sales", "t03", "moved", new_namespace="ops")
    cat.drop_table("sales", "t04")
    cat.update_namespace("sales", description="Sales, renamed", remove_properties=["tier"])
    marks.append(cat.version)
    with cat.transaction() as tx:
        tx.create_namespace("tmp")
        tx.create_table("tmp", "gone", ["x:int32"])
    cat.drop_namespace("tmp", cascade=True)
    cat.create_table("ops", "t04", ["id:int64"], location="s3://lake/ops/t04")
    marks.append(cat.version)
    return marks


def _ol_event(r: int) -> dict[str, Any]:
    """An OpenLineage run event: runs 0 and 1 start, then complete (r = 2, 3)."""
    producer = "https://example.test/producer"
    facet = {"_producer": producer, "_schemaURL": producer}
    source = f"raw.s{r % 2}"
    return {
        "eventType": "START" if r < 2 else "COMPLETE",
        "eventTime": f"2026-03-01T12:00:0{r}Z",
        "producer": producer,
        "schemaURL": producer,
        "run": {"runId": f"00000000-0000-4000-8000-00000000000{r % 2}"},
        "job": {"namespace": "dbt", "name": f"model.m{r % 2}"},
        "inputs": [{"namespace": "pg", "name": source}],
        "outputs": [
            {
                "namespace": "pg",
                "name": "sales.t00",
                "facets": {
                    "schema": {**facet, "fields": [{"name": f"c{r}", "type": "INT"}]},
                    "columnLineage": {
                        **facet,
                        "fields": {
                            f"c{r}": {
                                "inputFields": [
                                    {"namespace": "pg", "name": source, "field": f"c{r}"}
                                ]
                            }
                        },
                    },
                },
            }
        ],
    }


def populate_tier2(store: Any, scope: Scope) -> None:
    """Runs, tasks, materializations, logs, edges and a quarantined object, compacted often."""
    ledger = Ledger(store, scope)
    compactor = Compactor(store, scope)
    for r in range(4):
        run_id = f"run-{r}"
        ledger.append("executions", "run.created", {"run_id": run_id, "seq": 0, "selection": "*"})
        for t in range(3):
            task = {"run_id": run_id, "task_id": f"task-{t}", "asset": f"sales.t{t:02d}"}
            ledger.append(
                "executions", "task.state_changed", {**task, "seq": 1, "state": "RUNNING"}
            )
            state = "FAILED" if (r, t) == (2, 1) else "SUCCEEDED"
            ledger.append(
                "executions",
                "task.state_changed",
                {**task, "seq": 2, "state": state, "error": "boom" if state == "FAILED" else None},
            )
            ledger.append(
                "executions",
                "materialization.recorded",
                {
                    "asset": task["asset"],
                    "run_id": run_id,
                    "task_id": task["task_id"],
                    "row_count": t,
                },
            )
            ledger.append(
                "executions",
                "asset_check.evaluated",
                {
                    "check": "rows_positive",
                    "asset": task["asset"],
                    "run_id": run_id,
                    "task_id": task["task_id"],
                    "passed": t > 0,
                    "metadata": {"rows": t},
                },
            )
        ledger.append("executions", "run.log", {"run_id": run_id, "lines": ["a", "b"]})
        ledger.append(
            "executions", "run.state_changed", {"run_id": run_id, "seq": 9, "state": "RUNNING"}
        )
        ledger.append(
            "lineage",
            "lineage.edges_observed",
            {
                "edges": [
                    {
                        "source": f"raw.s{r % 2}",
                        "target": "sales.t00",
                        "run_id": run_id,
                        "columns": [f"c{r}"],
                    }
                ]
            },
        )
        # OpenLineage: two runs, each START then COMPLETE over later compactions.
        ingest(ledger, [_ol_event(r)], OpenLineageConfig().mapper(scope))
        compactor.compact("executions")
        compactor.compact("lineage")
    for r in range(2):  # later state changes: deltas that update resident rows
        ledger.append(
            "executions",
            "run.state_changed",
            {"run_id": f"run-{r}", "seq": 10, "state": "SUCCEEDED"},
        )
        compactor.compact("executions")
    bad = Keys(scope).ledger_event("executions", datetime.now(UTC), new_ulid())
    store.put(bad, b"{not json", "create")
    compactor.compact("executions")


@pytest.fixture
def small_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge and rewrite thresholds low enough that a few commits make every file shape."""
    monkeypatch.setattr(tableset, "FANOUT", 3)
    monkeypatch.setattr(tableset, "BASE_MIN_DELTA_ROWS", 6)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def populated(store_dir: Path, small_merges: None) -> dict[str, Any]:
    store = open_store(f"file://{store_dir}")
    cat = Catalog(store, SCOPE)
    marks = populate_catalog(cat)
    populate_tier2(store, SCOPE)
    other = Catalog(store, Scope("other", WORKSPACE))
    other.create_namespace("secret")
    other.create_table("secret", "payroll", ["salary:int64"])
    return {"store": store, "catalog": cat, "marks": marks}


@pytest.fixture
def api(store_dir: Path, populated: dict[str, Any]) -> Iterator[TestClient]:
    with in_process_client(make_app(f"file://{store_dir}")) as client:
        yield client


def mint(client: TestClient, tokens: Tokens, **body: Any) -> dict[str, Any]:
    body.setdefault("domains", ALL_DOMAINS)
    response = client.post(URLS, json=body, headers=tokens.headers(TENANT, WORKSPACE, ("reader",)))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def fetch(client: TestClient, url: str, **kwargs: Any) -> httpx.Response:
    """GET a signed URL: in process for the blob route, over the network otherwise."""
    if url.startswith("http://testserver/"):
        return client.get(url, **kwargs)
    return httpx.get(url, timeout=10, **kwargs)


# ------------------------------------------------------------------ views
def download(client: TestClient, answer: dict[str, Any], into: Path) -> dict[str, Path]:
    """Every signed file, fetched with GET into ``into``; ``arco://path`` -> local file."""
    into.mkdir(parents=True, exist_ok=True)
    local: dict[str, Path] = {}
    for item in answer["urls"]:
        response = fetch(client, item["url"])
        assert response.status_code == 200, (item["path"], response.text)
        assert len(response.content) == item["size"]
        target = into / f"{len(local):05d}.parquet"
        target.write_bytes(response.content)
        local[FILE_PREFIX + item["path"]] = target
    return local


def localize(sql: str, local: dict[str, Path]) -> str:
    """Point every ``'arco://<path>'`` of the view SQL at its downloaded copy."""
    names = re.findall(r"'(arco://[^']*)'", sql)
    assert names or "WHERE false" in sql
    for name in names:
        assert name in local, f"the view reads {name}, which has no signed URL"
        sql = sql.replace(f"'{name}'", f"'{local[name]}'")
    return sql


def normalized(table: pa.Table, name: str) -> list[Any]:
    schema = SYSTEM_SCHEMAS[name]
    assert table.column_names == schema.names
    # The views promise no order (like SQL without ORDER BY): compare as sorted rows.
    return sorted(table.cast(schema).to_pylist(), key=repr)


def run_view(sql: str) -> pa.Table:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def assert_views_match(
    client: TestClient, answer: dict[str, Any], system: SystemTables, tmp: Path, **kw: Any
) -> dict[str, int]:
    local = download(client, answer, tmp)
    counts = {}
    for name, sql in answer["views"].items():
        got = run_view(localize(sql, local))
        want = system.table(name, **kw)
        assert normalized(got, name) == normalized(want, name), name
        counts[name] = got.num_rows
    return counts


def test_every_view_equals_system_tables(
    api: TestClient, tokens: Tokens, populated: dict[str, Any], tmp_path: Path
) -> None:
    answer = mint(api, tokens)
    # The browser gets every system table but the admin-only ones (system.audit).
    public = set(SYSTEM_SCHEMAS) - PRIVATE_TABLES
    assert set(answer["views"]) == public
    system = SystemTables(populated["store"], SCOPE)
    assert answer["versions"] == system.versions()
    counts = assert_views_match(api, answer, system, tmp_path / "files")
    # Every table has rows, so the comparison is not vacuous.
    assert counts["tables"] == 12
    assert counts["namespaces"] == 2
    assert all(counts[n] > 0 for n in public), counts
    # The merge thresholds made bases, merged deltas and level-0 deltas.
    shapes = {(u["domain"], u["kind"], u["level"]) for u in answer["urls"]}
    assert {("catalog", "base", 0), ("catalog", "delta", 0), ("executions", "base", 0)} <= shapes
    assert any(kind == "delta" and level > 0 for _, kind, level in shapes), shapes


def test_views_read_an_earlier_catalog_version(
    api: TestClient, tokens: Tokens, populated: dict[str, Any], tmp_path: Path
) -> None:
    system = SystemTables(populated["store"], SCOPE)
    for i, version in enumerate(populated["marks"]):
        answer = mint(api, tokens, as_of_version=version)
        assert answer["versions"]["catalog"] == version
        assert_views_match(api, answer, system, tmp_path / f"v{i}", as_of_version=version)
    first = mint(api, tokens, as_of_version=populated["marks"][0])
    names = run_view(localize(first["views"]["tables"], download(api, first, tmp_path / "again")))
    assert "t04" in names.column("name").to_pylist()  # dropped later, present then


def test_views_follow_new_commits(
    api: TestClient, tokens: Tokens, populated: dict[str, Any], tmp_path: Path
) -> None:
    cat: Catalog = populated["catalog"]
    system = SystemTables(populated["store"], SCOPE)
    renamed = ["t00", "t01", "t02", "t11", "t10"]
    for step in range(5):  # each commit adds a delta; merges and base rewrites follow
        cat.drop_table("sales", f"t{5 + step:02d}")
        cat.rename_table("sales", renamed[step], f"r{step}", new_namespace="ops")
        answer = mint(api, tokens, domains=["catalog"])
        assert set(answer["views"]) == {"namespaces", "tables", "columns"}
        assert_views_match(api, answer, system, tmp_path / f"s{step}")


WASM_DIST = Path(__file__).resolve().parents[2] / "web/node_modules/@duckdb/duckdb-wasm/dist"


def run_views_in_wasm(
    views: dict[str, str],
    local: dict[str, Path],
    out: Path,
    queries: Sequence[str] = (),
    sweep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build every view as a table in DuckDB-WASM under Node, as the web UI does.

    Rows land in ``out/<name>.arrow``; the rows of ``queries`` (SQL over
    ``arco_sys.<name>``) in ``out/query-<i>.arrow``. ``sweep`` (``view``, ``from``,
    ``to``) builds one view again with its SQL padded to each length in the range;
    ``failed`` lists the lengths that failed and why.
    """
    from conftest import require_or_skip

    node = shutil.which("node")
    if node is None or not (WASM_DIST / "duckdb-node-blocking.cjs").is_file():
        require_or_skip(
            "node or web/node_modules (@duckdb/duckdb-wasm) missing: npm ci --prefix web"
        )
    out.mkdir(parents=True, exist_ok=True)
    job = out / "job.json"
    job.write_text(
        json.dumps(
            {
                "dist": str(WASM_DIST),
                "files": {k: str(v) for k, v in local.items()},
                "views": views,
                "out": str(out),
                "queries": list(queries),
                "sweep": sweep,
            }
        )
    )
    script = Path(__file__).with_name("wasm_views.cjs")
    done = subprocess.run(
        [str(node), str(script), str(job)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=out,  # DuckDB-WASM's Node runtime reaches the real file system: keep it in tmp
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_every_view_runs_in_duckdb_wasm_1_28(
    api: TestClient, tokens: Tokens, populated: dict[str, Any], tmp_path: Path
) -> None:
    """The web UI's engine (DuckDB 0.9 inside DuckDB-WASM 1.28.0) gives the same rows."""
    system = SystemTables(populated["store"], SCOPE)
    for label, body in (("latest", {}), ("old", {"as_of_version": populated["marks"][1]})):
        answer = mint(api, tokens, **body)
        local = download(api, answer, tmp_path / label / "files")
        ran = run_views_in_wasm(answer["views"], local, tmp_path / label / "out")
        assert ran["version"] == "v0.9.1"
        assert ran["errors"] == {}
        for name in answer["views"]:
            with pa.ipc.open_stream(tmp_path / label / "out" / f"{name}.arrow") as reader:
                got = reader.read_all()
            want = system.table(name, as_of_version=body.get("as_of_version"))
            assert normalized(got, name) == normalized(want, name), (label, name)


#: Grouping queries a console user writes; DuckDB-WASM 1.28.0 trapped on these over views.
GROUPINGS = {
    "SELECT namespace AS k, count(*) AS n FROM arco_sys.tables GROUP BY 1": ("tables", "namespace"),
    "SELECT data_type AS k, count(*) AS n FROM arco_sys.columns GROUP BY ALL ORDER BY 2 DESC": (
        "columns",
        "data_type",
    ),
    "SELECT table_name AS k, count(*) AS n FROM arco_sys.columns GROUP BY 1": (
        "columns",
        "table_name",
    ),
    "SELECT edge_type AS k, count(*) AS n FROM arco_sys.lineage_edges GROUP BY 1": (
        "lineage_edges",
        "edge_type",
    ),
    "SELECT state AS k, count(*) AS n FROM arco_sys.tasks GROUP BY 1": ("tasks", "state"),
}


def test_grouping_queries_run_in_duckdb_wasm_1_28(
    api: TestClient, tokens: Tokens, populated: dict[str, Any], tmp_path: Path
) -> None:
    """Aggregates over the system tables as the UI builds them, against Python's counts."""
    system = SystemTables(populated["store"], SCOPE)
    answer = mint(api, tokens)
    local = download(api, answer, tmp_path / "files")
    ran = run_views_in_wasm(answer["views"], local, tmp_path / "out", list(GROUPINGS))
    assert ran["errors"] == {}
    assert set(ran["queries"].values()) == {None}, ran["queries"]
    for i, (name, column) in enumerate(GROUPINGS.values()):
        with pa.ipc.open_stream(tmp_path / "out" / f"query-{i}.arrow") as reader:
            got = {r["k"]: r["n"] for r in reader.read_all().to_pylist()}
        want = Counter(r[column] for r in system.table(name).to_pylist())
        assert want, (name, "the fixture must populate it")
        assert got == dict(want), name


def test_system_tables_build_in_duckdb_wasm_whatever_the_heap_layout(
    api: TestClient, tokens: Tokens, populated: dict[str, Any], tmp_path: Path
) -> None:
    """DuckDB-WASM 1.28.0 trapped ("memory access out of bounds") building
    system.columns when the window choosing each key's newest delta row carried the
    LIST/MAP columns - on some heap layouts only: the same files failed or not with
    the length of the SQL (a 45th table, the schema's name). Every length from the
    view's own to 2,900 characters is built (file names shortened so that the range
    covers the layouts that failed: 2,256-2,271, 2,497-2,559 and 2,833-2,879)."""
    answer = mint(api, tokens, domains=["catalog"])
    local = download(api, answer, tmp_path / "files")
    short = {name: f"arco://f{i}" for i, name in enumerate(sorted(local, key=len, reverse=True))}
    views = {}
    for view in ("tables", "columns"):
        sql = answer["views"][view]
        for name, alias in short.items():
            sql = sql.replace(f"'{name}'", f"'{alias}'")
        views[view] = sql
    ran = run_views_in_wasm(
        views,
        {short[name]: path for name, path in local.items()},
        tmp_path / "out",
        sweep={"view": "columns", "from": 0, "to": 2_900},
    )
    assert ran["errors"] == {}
    assert ran["failed"] == []
    with pa.ipc.open_stream(tmp_path / "out" / "columns.arrow") as reader:
        got = reader.read_all()
    want = SystemTables(populated["store"], SCOPE).table("columns")
    assert normalized(got, "columns") == normalized(want, "columns")


def test_an_empty_scope_gives_typed_empty_views(
    api: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    response = api.post(
        URLS, json={"domains": ALL_DOMAINS}, headers=tokens.headers("nobody", "here", ("reader",))
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["urls"] == []
    assert answer["versions"] == {"catalog": 0, "lineage": 0, "executions": 0}
    for name, sql in answer["views"].items():
        got = run_view(sql)
        assert got.num_rows == 0
        assert got.schema.names == SYSTEM_SCHEMAS[name].names
        got.cast(SYSTEM_SCHEMAS[name])  # the types line up too


def test_view_sql_names_files_only_as_arco_urls(
    api: TestClient, tokens: Tokens, populated: dict[str, Any]
) -> None:
    answer = mint(api, tokens)
    paths = {u["path"] for u in answer["urls"]}
    for sql in answer["views"].values():
        for name in re.findall(r"'(arco://[^']*)'", sql):
            assert name.removeprefix(FILE_PREFIX) in paths
    # Only the state tables the views read are signed by default (no idempotency records).
    assert {u["table"] for u in answer["urls"] if u["domain"] == "catalog"} == {
        "namespaces",
        "tables",
    }


def test_build_views_without_manifests_is_empty_sql() -> None:
    views = build_views({"catalog": None})
    assert set(views) == {"namespaces", "tables", "columns"}
    assert all(sql.endswith("WHERE false") for sql in views.values())


# ------------------------------------------------------------------ the route
def test_urls_carry_the_contract_fields(
    api: TestClient, tokens: Tokens, populated: dict[str, Any]
) -> None:
    before = datetime.now(UTC)
    answer = mint(api, tokens)
    expires = datetime.fromisoformat(answer["expires_at"].replace("Z", "+00:00"))
    # The default TTL, 15 minutes, rounded up to a whole second (plus the call itself).
    assert 890 <= (expires - before).total_seconds() <= 902
    item = answer["urls"][0]
    assert set(item) == {
        "path", "url", "expires_at", "domain", "table", "kind", "level",
        "min_version", "max_version", "rows", "size",
    }  # fmt: skip
    for item in answer["urls"]:
        assert item["path"].startswith(SCOPE.prefix + "snapshots/")
        assert item["url"].startswith("http://testserver/blob/")
        query = parse_qs(urlsplit(item["url"]).query)
        assert set(query) == {"expires", "sig"}


def test_ttl_is_capped(store_dir: Path, populated: dict[str, Any], tokens: Tokens) -> None:
    with in_process_client(make_app(f"file://{store_dir}", signed_url_ttl_max=120)) as client:
        answer = mint(client, tokens, ttl_seconds=100_000)
        expires = int(parse_qs(urlsplit(answer["urls"][0]["url"]).query)["expires"][0])
        assert expires - time.time() <= 121
        short = mint(client, tokens, ttl_seconds=5)
        expires = int(parse_qs(urlsplit(short["urls"][0]["url"]).query)["expires"][0])
        assert expires - time.time() <= 6
    # The hard ceiling holds even when the settings ask for more.
    with in_process_client(make_app(f"file://{store_dir}", signed_url_ttl_max=86_400)) as client:
        answer = mint(client, tokens, ttl_seconds=86_400)
        expires = int(parse_qs(urlsplit(answer["urls"][0]["url"]).query)["expires"][0])
        assert expires - time.time() <= 3601


def test_paths_narrow_the_set(api: TestClient, tokens: Tokens, populated: dict[str, Any]) -> None:
    answer = mint(api, tokens)
    wanted = [u["path"] for u in answer["urls"][:2]]
    narrowed = mint(api, tokens, paths=wanted)
    assert [u["path"] for u in narrowed["urls"]] == wanted


def _refused(response: httpx.Response, status: int = 403) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def test_paths_outside_live_manifests_are_refused(
    api: TestClient, tokens: Tokens, populated: dict[str, Any], store_dir: Path
) -> None:
    keys = Keys(SCOPE)
    cat: Catalog = populated["catalog"]
    manifest_key = cat.snapshot().manifest_key
    ledger_key = next(
        str(p.relative_to(store_dir)) for p in (store_dir / SCOPE.prefix / "ledger").rglob("*.json")
    )
    other = next(
        str(p.relative_to(store_dir)) for p in (store_dir / "tenant=other").rglob("*.parquet")
    )
    attempts = [
        keys.pointer("catalog"),
        keys.lock("catalog"),
        manifest_key,
        ledger_key,
        other,
        SCOPE.prefix + "snapshots/catalog/../../../tenant=other/x.parquet",
        "/etc/passwd",
        "anything",
    ]
    headers = tokens.headers(TENANT, WORKSPACE, ("reader",))
    for path in attempts:
        response = api.post(URLS, json={"domains": ALL_DOMAINS, "paths": [path]}, headers=headers)
        body = _refused(response)
        assert "/blob/" not in response.text
        assert "sig=" not in response.text
        assert body["type"] == "urn:arco:problem:forbidden"
    # A file another tenant's manifest names is refused even for that domain.
    response = api.post(URLS, json={"domains": ["catalog"], "paths": [other]}, headers=headers)
    _refused(response)
    # A file the live manifest no longer references (superseded by a base rewrite).
    live = {u["path"] for u in mint(api, tokens, paths=None)["urls"]}
    stale = [
        str(p.relative_to(store_dir))
        for p in (store_dir / SCOPE.prefix / "snapshots").rglob("*.parquet")
        if str(p.relative_to(store_dir)) not in live
    ]
    assert stale
    _refused(api.post(URLS, json={"domains": ALL_DOMAINS, "paths": stale[:1]}, headers=headers))


def test_bad_requests(api: TestClient, tokens: Tokens, populated: dict[str, Any]) -> None:
    reader = tokens.headers(TENANT, WORKSPACE, ("reader",))
    assert _refused(api.post(URLS, json={"domains": ["nope"]}, headers=reader), 400)
    assert _refused(api.post(URLS, json={"domains": []}, headers=reader), 422)
    assert _refused(api.post(URLS, json={"ttl_seconds": 0}, headers=reader), 422)
    assert _refused(api.post(URLS, json={"bogus": 1}, headers=reader), 422)
    assert _refused(api.post(URLS, json={"as_of_version": 10_000}, headers=reader), 404)
    assert _refused(api.post(URLS, json={}), 401)
    assert _refused(api.post(URLS, json={}, headers=tokens.headers(roles=())), 403)


def test_search_domain_files_are_signed_without_views(
    api: TestClient, tokens: Tokens, populated: dict[str, Any]
) -> None:
    answer = mint(api, tokens, domains=["search", "search"])
    assert answer["views"] == {}
    assert set(answer["versions"]) == {"search"}


def test_minting_is_audited_without_urls(
    api: TestClient, tokens: Tokens, populated: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="arco.audit"):
        answer = mint(api, tokens, ttl_seconds=60)
    records = [r for r in caplog.records if r.name == "arco.audit"]
    assert len(records) == 1
    record = records[0]
    text = record.getMessage()
    assert f"tenant={TENANT}" in text
    assert f"workspace={WORKSPACE}" in text
    assert f"urls={len(answer['urls'])}" in text
    assert "ttl=60s" in text
    assert record.__dict__["subject"].startswith("local:")
    assert record.__dict__["domains"] == ALL_DOMAINS
    for item in answer["urls"]:
        sig = parse_qs(urlsplit(item["url"]).query)["sig"][0]
        assert sig not in text
        assert item["url"] not in text
        assert all(sig not in str(v) for v in record.__dict__.values())


def test_minting_is_rate_limited(
    store_dir: Path, populated: dict[str, Any], tokens: Tokens
) -> None:
    limits = {"query": RateLimit(rate=0.001, burst=2)}
    with in_process_client(make_app(f"file://{store_dir}", rate_limits=limits)) as client:
        mint(client, tokens)
        mint(client, tokens)
        response = client.post(
            URLS, json={}, headers=tokens.headers(TENANT, WORKSPACE, ("reader",))
        )
        _refused(response, 429)
        assert int(response.headers["retry-after"]) >= 1


# ------------------------------------------------------------------ the blob route
@pytest.fixture
def signed(api: TestClient, tokens: Tokens) -> dict[str, Any]:
    answer = mint(api, tokens)
    return max(answer["urls"], key=lambda u: u["size"])  # type: ignore[no-any-return]


def test_blob_get_head_and_cors(api: TestClient, signed: dict[str, Any], store_dir: Path) -> None:
    data = (store_dir / signed["path"]).read_bytes()
    got = api.get(signed["url"], headers={"Origin": "http://elsewhere.example"})
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip().lower() for h in got.headers["access-control-expose-headers"].split(",")}
    assert exposed == {"content-length", "content-range", "accept-ranges", "etag"}
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["cache-control"].startswith("private")
    assert got.headers["content-length"] == str(len(data))
    etag = got.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    head = api.head(signed["url"])
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["etag"] == etag
    again = api.get(signed["url"], headers={"If-None-Match": etag})
    assert again.status_code == 304
    preflight = api.options(
        signed["url"],
        headers={
            "Origin": "http://elsewhere.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "range" in preflight.headers["access-control-allow-headers"].lower()
    assert "HEAD" in preflight.headers["access-control-allow-methods"]


def test_blob_ranges(api: TestClient, signed: dict[str, Any], store_dir: Path) -> None:
    data = (store_dir / signed["path"]).read_bytes()
    size = len(data)
    cases = {
        "bytes=0-3": (0, 4),
        "bytes=4-": (4, size),
        "bytes=-8": (size - 8, size),
        f"bytes=10-{size + 100}": (10, size),
    }
    for header, (start, end) in cases.items():
        got = api.get(signed["url"], headers={"Range": header})
        assert got.status_code == 206, header
        assert got.content == data[start:end]
        assert got.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert got.headers["content-length"] == str(end - start)
        head = api.head(signed["url"], headers={"Range": header})
        assert head.status_code == 206
        assert head.headers["content-length"] == str(end - start)
    for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=-0", "bytes=9-3"):
        got = api.get(signed["url"], headers={"Range": header})
        _refused(got, 416)
        assert got.headers["content-range"] == f"bytes */{size}"
        assert got.headers["access-control-allow-origin"] == "*"
    # Malformed or multi-range headers are ignored: the whole file.
    for header in ("bytes=a-b", "items=0-1", "bytes=0-1,4-5"):
        got = api.get(signed["url"], headers={"Range": header})
        assert got.status_code == 200
        assert got.content == data


def _with(url: str, **changes: str) -> str:
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    path = changes.pop("path", split.path)
    query.update(changes)
    return f"{split.scheme}://{split.netloc}{path}?" + "&".join(
        f"{k}={v}" for k, v in query.items()
    )


def test_blob_refuses_bad_urls(api: TestClient, signed: dict[str, Any], store_dir: Path) -> None:
    url = signed["url"]
    query = parse_qs(urlsplit(url).query)
    sig, expires = query["sig"][0], int(query["expires"][0])
    other_file = next(
        str(p.relative_to(store_dir))
        for p in (store_dir / SCOPE.prefix / "snapshots").rglob("*.parquet")
        if str(p.relative_to(store_dir)) != signed["path"]
    )
    other_tenant = next(
        str(p.relative_to(store_dir)) for p in (store_dir / "tenant=other").rglob("*.parquet")
    )
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    bad = {
        "other tenant's file": _with(url, path="/blob/" + quote(other_tenant)),
        "tampered signature": _with(url, sig=flipped),
        "longer expiry": _with(url, expires=str(expires + 3600)),
        "other key": _with(url, path="/blob/" + quote(other_file)),
        "no signature": url.split("?")[0],
        "garbage expiry": _with(url, expires="soon"),
        "empty signature": _with(url, sig=""),
    }
    for why, target in bad.items():
        for method in ("GET", "HEAD"):
            got = api.request(method, target)
            assert got.status_code == 403, (why, method)
            assert got.headers["access-control-allow-origin"] == "*"
            if method == "GET":
                assert _refused(got)["type"] == "urn:arco:problem:bad-signature", why
                assert got.content != (store_dir / signed["path"]).read_bytes()


def test_blob_refuses_expired_urls(
    store_dir: Path, populated: dict[str, Any], tokens: Tokens
) -> None:
    with in_process_client(make_app(f"file://{store_dir}")) as client:
        item = mint(client, tokens, ttl_seconds=1)["urls"][0]
        assert client.get(item["url"]).status_code == 200
        time.sleep(2.1)
        assert _refused(client.get(item["url"]))["type"] == "urn:arco:problem:url-expired"
        assert client.head(item["url"]).status_code == 403


def test_blob_refuses_another_servers_key(
    store_dir: Path, populated: dict[str, Any], tokens: Tokens
) -> None:
    with in_process_client(make_app(f"file://{store_dir}")) as first:
        url = mint(first, tokens)["urls"][0]["url"]
        assert first.get(url).status_code == 200
    other_jwt = make_app(f"file://{store_dir}", jwt_secret=SECRET + "-other")
    with in_process_client(other_jwt) as second:
        _refused(second.get(url))
    explicit = make_app(f"file://{store_dir}", url_secret="a-configured-url-secret")
    with in_process_client(explicit) as third:
        _refused(third.get(url))
    # Two servers with the same JWT secret accept each other's URLs (derived key).
    with in_process_client(make_app(f"file://{store_dir}")) as twin:
        assert twin.get(url).status_code == 200


def test_blob_serves_only_state_files(
    store_dir: Path, populated: dict[str, Any], tokens: Tokens
) -> None:
    """Even a correctly signed URL (a leaked secret) cannot reach other objects."""
    app = make_app(f"file://{store_dir}")
    signer: HmacSigner = app.state.url_signer
    keys = Keys(SCOPE)
    cat: Catalog = populated["catalog"]
    forbidden = [
        keys.pointer("catalog"),
        keys.lock("catalog"),
        str(cat.snapshot().manifest_key),
        next(
            str(p.relative_to(store_dir))
            for p in (store_dir / SCOPE.prefix / "ledger").rglob("*.json")
        ),
        ".cas-locks/x",
    ]
    with in_process_client(app) as client:
        for key in forbidden:
            assert store_dir.joinpath(key).exists() or key.startswith(".cas")
            url = signer.sign(key, 60, base_url="http://testserver")
            got = client.get(url)
            assert _refused(got)["type"] == "urn:arco:problem:forbidden", key
        missing = SCOPE.prefix + f"snapshots/catalog/{0:020d}-{new_ulid()}-tables.L0.parquet"
        _refused(client.get(signer.sign(missing, 60, base_url="http://testserver")), 404)


def test_blob_needs_no_bearer_token(api: TestClient, signed: dict[str, Any]) -> None:
    got = api.get(signed["url"], headers={"Authorization": "Bearer not-a-token"})
    assert got.status_code == 200


def test_servable_and_parse_range_units() -> None:
    ulid = new_ulid()
    good = f"tenant=a/workspace=b/snapshots/catalog/{1:020d}-{ulid}-tables.L0.parquet"
    assert servable(good)
    for key in (
        good.replace("snapshots", "ledger"),
        good.replace(".parquet", ".json"),
        f"tenant=a/workspace=b/snapshots/catalog/../x/{1:020d}-{ulid}-t.parquet",
        "tenant=a/workspace=b/manifests/catalog.pointer.json",
        "/" + good,
        good + "\n",
    ):
        assert not servable(key), key
    assert parse_range("bytes=0-0", 10) == (0, 1)
    assert parse_range("bytes=-20", 10) == (0, 10)
    assert parse_range("bytes=-", 10) is None
    with pytest.raises(ValueError, match="beyond the end"):
        parse_range("bytes=10-", 10)
    with pytest.raises(ValueError, match="beyond the end"):
        parse_range("bytes=0-", 0)


# ------------------------------------------------------------------ S3 (SeaweedFS)
@pytest.mark.s3
def test_presigned_s3_urls(
    seaweed: Any, tokens: Tokens, small_merges: None, tmp_path: Path
) -> None:
    url = seaweed.fresh_url()
    store = open_store(url)
    populate_catalog(Catalog(store, SCOPE))
    populate_tier2(store, SCOPE)
    Catalog(store, Scope("other", WORKSPACE)).create_namespace("secret")
    with in_process_client(make_app(url)) as client:
        answer = mint(client, tokens, ttl_seconds=600)
        assert answer["urls"]
        for item in answer["urls"]:
            split = urlsplit(item["url"])
            assert f"{split.scheme}://{split.netloc}" == seaweed.endpoint
            assert "X-Amz-Signature" in item["url"]
        # The browser's path: GET each presigned URL, run the views over the bytes.
        system = SystemTables(store, SCOPE)
        assert_views_match(client, answer, system, tmp_path / "s3")
        item = answer["urls"][0]
        data = store.get(item["path"])[0]
        got = httpx.get(item["url"], headers={"Origin": "http://elsewhere.example"}, timeout=10)
        assert got.status_code == 200
        assert got.content == data
        # CORS: SeaweedFS answers a cross-origin GET with an allow-origin header.
        assert got.headers.get("access-control-allow-origin") in ("*", "http://elsewhere.example")
        # A presigned GET refuses HEAD (why the browser GETs and registers buffers; ADR 008).
        assert httpx.head(item["url"], timeout=10).status_code == 403
        # Tampered: another key, or a changed expiry, under the same signature.
        other = next(u for u in answer["urls"] if u["path"] != item["path"])
        tampered = item["url"].replace(
            quote(item["path"], safe="/"), quote(other["path"], safe="/")
        )
        assert tampered != item["url"]
        assert httpx.get(tampered, timeout=10).status_code == 403
        longer = re.sub(r"X-Amz-Expires=\d+", "X-Amz-Expires=604800", item["url"])
        assert longer != item["url"]
        assert httpx.get(longer, timeout=10).status_code == 403
        # Expired.
        short = mint(client, tokens, ttl_seconds=1, paths=[item["path"]])["urls"][0]["url"]
        time.sleep(2.5)
        assert httpx.get(short, timeout=10).status_code == 403
        # Another tenant's file, or objects no manifest lists as state: never signed.
        other_key = next(m.key for m in store.list("tenant=other/") if m.key.endswith(".parquet"))
        keys = Keys(SCOPE)
        ledger_key = next(m.key for m in store.list(keys.ledger_prefix("executions")))
        for path in (other_key, keys.pointer("catalog"), keys.lock("catalog"), ledger_key):
            response = client.post(
                URLS,
                json={"domains": ALL_DOMAINS, "paths": [path]},
                headers=tokens.headers(TENANT, WORKSPACE, ("reader",)),
            )
            _refused(response)
            assert "X-Amz-Signature" not in response.text


# ------------------------------------------------------------------ a real browser
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000
#: Runs in a page of another origin: what a cross-origin reader can see of a signed URL.
READ_JS = """async ([url, headers]) => {
  const r = await fetch(url, {method: "GET", headers, credentials: "omit"});
  const body = new Uint8Array(await r.arrayBuffer());
  return {status: r.status, length: body.length, first: Array.from(body.slice(0, 4)),
          range: r.headers.get("content-range"), etag: r.headers.get("etag"),
          size: r.headers.get("content-length"), ranges: r.headers.get("accept-ranges")};
}"""


@pytest.fixture
def other_origin() -> Iterator[str]:
    """A blank page on another origin (a throwaway HTTP server on loopback)."""
    import http.server
    import threading

    class Blank(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>elsewhere</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blank)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def chromium_page(other_origin: str) -> Iterator[Any]:
    from conftest import require_or_skip

    if not Path(CHROMIUM).is_file():
        require_or_skip(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip("pip playwright is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=WAIT_MS)
        try:
            context = browser.new_context()
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.goto(other_origin, timeout=WAIT_MS)
            yield page
        finally:
            browser.close()


def _cross_origin_reads(
    page: Any, answer: dict[str, Any], data: dict[str, bytes], *, exposes: bool = True
) -> None:
    """Whole-file GET (the UI's path), then a ranged GET (a preflighted request)."""
    item = max(answer["urls"], key=lambda u: u["size"])
    full = page.evaluate(READ_JS, [item["url"], {}])
    assert full["status"] == 200
    assert full["length"] == item["size"]
    assert bytes(full["first"]) == data[item["path"]][:4] == b"PAR1"
    # A Range header makes the browser send a CORS preflight first.
    part = page.evaluate(READ_JS, [item["url"], {"Range": "bytes=0-3"}])
    assert part["status"] == 206
    assert part["length"] == 4
    if exposes:  # the headers a range reader needs are readable cross-origin
        assert full["etag"]
        assert full["size"] == str(item["size"])
        assert part["range"] == f"bytes 0-3/{item['size']}"
        assert part["ranges"] == "bytes"


@pytest.mark.timeout(240)
def test_a_page_on_another_origin_reads_blob_urls(
    chromium_page: Any, store_dir: Path, populated: dict[str, Any], tmp_path: Path
) -> None:
    from .conftest import run_server

    with run_server(f"file://{store_dir}", tmp_path / "srv") as server:
        response = httpx.post(
            server.base_url + URLS,
            json={"domains": ALL_DOMAINS},
            headers=server.tokens.headers(TENANT, WORKSPACE, ("reader",)),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["urls"][0]["url"].startswith(server.base_url + "/blob/")
        data = {u["path"]: (store_dir / u["path"]).read_bytes() for u in answer["urls"]}
        _cross_origin_reads(chromium_page, answer, data)
        # A refused URL is still readable cross-origin, so the page can say why.
        bad = answer["urls"][0]["url"].replace("sig=", "sig=0", 1)
        refused = chromium_page.evaluate(READ_JS, [bad, {}])
        assert refused["status"] == 403


@pytest.mark.s3
@pytest.mark.timeout(240)
def test_a_page_on_another_origin_reads_presigned_s3_urls(
    chromium_page: Any, seaweed: Any, tokens: Tokens, tmp_path: Path
) -> None:
    url = seaweed.fresh_url()
    store = open_store(url)
    cat = Catalog(store, SCOPE)
    cat.create_namespace("sales")
    for i in range(3):
        cat.create_table("sales", f"t{i}", ["id:int64", "note:string"])
    with in_process_client(make_app(url)) as client:
        answer = mint(client, tokens, domains=["catalog"])
    data = {u["path"]: store.get(u["path"])[0] for u in answer["urls"]}
    # SeaweedFS allows any origin but exposes no headers without a bucket CORS rule;
    # the UI reads only status and body (ADR 008), so that is all it needs here.
    _cross_origin_reads(chromium_page, answer, data, exposes=False)
