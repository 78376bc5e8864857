"""SQL over table data through real servers: ``POST /query``, ``POST /browser/tables``,
the blob route, an Iceberg table written by pyiceberg through ``/iceberg``, ``arco sql``,
tenant isolation and the data byte budget (issue #13)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import open_store

from .conftest import PROBLEM_JSON, LiveServer, run_server
from .test_iceberg_clients import rest, write_orders
from .test_iceberg_rest import WORKSPACE


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


class Api:
    """A tenant's view of a live server."""

    def __init__(self, server: LiveServer, tenant: str, workspace: str = "main") -> None:
        self.server = server
        self.scope = Scope(tenant, workspace)
        self.store = open_store(server.store_url)
        self.http = httpx.Client(
            base_url=server.base_url,
            headers=server.tokens.headers(tenant, workspace, ["writer"]),
            timeout=60,
        )

    def table(self, ns: str, name: str, location: str | None, fmt: str = "parquet") -> None:
        r = self.http.post("/api/v1/namespaces", json={"name": ns})
        assert r.status_code in (201, 409), r.text
        body: dict[str, Any] = {
            "name": name,
            "format": fmt,
            "columns": [{"name": "id", "type": "int64"}],
        }
        if location is not None:
            body["location"] = location
        r = self.http.post(f"/api/v1/namespaces/{ns}/tables", json=body)
        assert r.status_code == 201, r.text

    def query(self, sql: str, **extra: Any) -> httpx.Response:
        return self.http.post("/api/v1/query", json={"sql": sql, **extra})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("table-data")
    with run_server(f"file://{workdir / 'store'}", workdir) as live:
        yield live


def _tenant(server: LiveServer) -> Api:
    return Api(server, f"t{uuid.uuid4().hex[:10]}")


def _orders(api: Api) -> str:
    folder = Keys(api.scope).warehouse_prefix() + "sales/orders/"
    api.store.put(folder + "a.parquet", _parquet(pa.table({"id": [1, 2, 3], "r": list("xyx")})))
    api.store.put(folder + "b.parquet", _parquet(pa.table({"id": [4, 5], "r": list("zz")})))
    api.table("sales", "orders", folder)
    return folder


def test_query_a_parquet_table_and_join_system_tables(server: LiveServer) -> None:
    api = _tenant(server)
    _orders(api)
    r = api.query("SELECT count(*) AS n, sum(id) AS s FROM sales.orders")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[5, "15"]]
    r = api.query(
        "SELECT o.r, count(*) AS n, any_value(t.format) AS f FROM sales.orders o "
        "JOIN system.tables t ON t.namespace = 'sales' AND t.name = 'orders' GROUP BY 1 ORDER BY 1"
    )
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [["x", 2, "parquet"], ["y", 1, "parquet"], ["z", 2, "parquet"]]


def test_another_tenants_data_is_refused_and_never_read(server: LiveServer) -> None:
    victim = _tenant(server)
    folder = Keys(victim.scope).warehouse_prefix() + "secret/"
    victim.store.put(folder + "s.parquet", _parquet(pa.table({"id": [424242]})))
    victim.table("hr", "salaries", folder)
    assert victim.query("SELECT id FROM hr.salaries").json()["rows"] == [[424242]]

    attacker = _tenant(server)
    store_root = server.store_url.rstrip("/")
    for name, location in [
        ("by_key", folder),
        ("by_url", f"{store_root}/{folder}s.parquet"),
        ("absolute", "/etc/passwd"),
        ("file_url", "file:///etc/passwd"),
        ("traversal", f"{attacker.scope.prefix}warehouse/../../../{folder}"),
        ("own_metadata", f"{attacker.scope.prefix}manifests/"),
    ]:
        attacker.table("steal", name, location)
        r = attacker.query(f"SELECT * FROM steal.{name}")
        assert r.status_code == 422, (name, r.status_code, r.text)
        assert r.headers["content-type"].startswith(PROBLEM_JSON)
        problem = r.json()
        assert problem["type"].endswith("table-location-forbidden"), problem
        assert "424242" not in r.text
        # The browser path refuses the same tables: no URL is ever minted for them.
        r = attacker.http.post("/api/v1/browser/tables", json={"tables": [f"steal.{name}"]})
        assert r.status_code == 422, (name, r.text)
        assert "sig=" not in r.text


def test_unreadable_format_and_missing_files_are_clear(server: LiveServer) -> None:
    api = _tenant(server)
    root = Keys(api.scope).warehouse_prefix()
    api.table("raw", "events", root + "events.csv", fmt="csv")
    api.table("raw", "gone", root + "gone.parquet")
    r = api.query("SELECT * FROM raw.events")
    assert r.status_code == 422
    assert "format 'csv'" in r.json()["detail"]
    r = api.query("SELECT * FROM raw.gone")
    assert r.status_code == 404
    assert "does not exist" in r.json()["detail"]
    r = api.query("SELECT * FROM raw.nothere")
    assert r.status_code == 400
    assert "namespace raw has no table nothere" in r.json()["detail"]


def test_browser_tables_signs_exactly_the_data_files(server: LiveServer, tmp_path: Path) -> None:
    api = _tenant(server)
    folder = _orders(api)
    r = api.http.post(
        "/api/v1/browser/tables", json={"tables": ["sales.orders", "o.id"], "ignore_missing": True}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["missing"] == ["o.id"]
    (table,) = body["tables"]
    assert sorted(u["path"] for u in table["urls"]) == [folder + "a.parquet", folder + "b.parquet"]
    # Fetch each URL without a bearer token (the signature is the credential) and
    # run the returned SQL over the downloaded files, as DuckDB-WASM does.
    sql = table["sql"]
    for u in table["urls"]:
        got = httpx.get(u["url"])
        assert got.status_code == 200
        assert got.content == api.store.get(u["path"])[0]
        # The same key layout (tenant=…/workspace=… folders) as the browser's arco:// names.
        local = tmp_path / u["path"]
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(got.content)
        sql = sql.replace("arco://" + u["path"], str(local))
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*), sum(id) FROM ({sql})").fetchall() == [(5, 15)]
    assert [c[0] for c in con.execute(f"DESCRIBE {sql}").fetchall()] == ["id", "r"]
    # A signature is bound to its key: pointing it at another file is refused.
    tampered = table["urls"][0]["url"].replace("a.parquet", "b.parquet")
    assert httpx.get(tampered).status_code == 403
    # Without ignore_missing an unknown name is a 404.
    r = api.http.post("/api/v1/browser/tables", json={"tables": ["sales.nope"]})
    assert r.status_code == 404


def test_iceberg_table_written_by_pyiceberg(server: LiveServer, tmp_path: Path) -> None:
    cat = rest(server)
    ns, expected = write_orders(cat)
    table = cat.load_table(f"{ns}.orders")
    first = min(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
    api = Api(server, "acme", WORKSPACE)
    r = api.query(f"SELECT count(*), sum(id), count(note) FROM {ns}.orders")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[10, str(sum(e[0] for e in expected)), 4]]
    r = api.query(f"SELECT count(*), max(id) FROM {ns}.orders AT (VERSION => {first.snapshot_id})")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[6, 5]]
    r = api.query(f"SELECT count(*) FROM {ns}.orders AT (VERSION => 12345)")
    assert r.status_code == 404
    assert "has no snapshot 12345" in r.json()["detail"]

    # arco sql on the same store, same scope: exits 0 with the right answer.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "arco.cli.main",
            "--store",
            server.store_url,
            "--tenant",
            "acme",
            "--workspace",
            WORKSPACE,
            "--json",
            "sql",
            f"SELECT count(*) AS n FROM {ns}.orders",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == [[10]]


def test_data_over_the_byte_budget_is_413(tmp_path: Path) -> None:
    with run_server(
        f"file://{tmp_path / 'store'}", tmp_path, env={"ARCO_QUERY_DATA_MB": "1"}
    ) as live:
        api = _tenant(live)
        key = Keys(api.scope).warehouse_prefix() + "big/huge.parquet"
        numbers = pa.array(range(600_000), pa.int64())
        api.store.put(
            key, _parquet(pa.table({"id": numbers, "x": pa.compute.multiply(numbers, 7)}))
        )
        assert api.store.head(key).size > 1024 * 1024
        api.table("big", "huge", key)
        r = api.query("SELECT count(*) FROM big.huge")
        assert r.status_code == 413, r.text
        assert "data budget" in r.json()["detail"]
        r = api.http.post("/api/v1/browser/tables", json={"tables": ["big.huge"]})
        assert r.status_code == 413, r.text
        # The server is still healthy and answers small tables.
        small = Keys(api.scope).warehouse_prefix() + "small.parquet"
        api.store.put(small, _parquet(pa.table({"id": [1]})))
        api.table("big", "small", small)
        assert api.query("SELECT count(*) FROM big.small").json()["rows"] == [[1]]
