"""The SQL console and the table page read catalog tables' data in the browser (issue #13):
DuckDB-WASM over signed URLs of exactly the table's data files, never ``POST /query``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import open_store

from .conftest import TENANT, WAIT_MS, WORKSPACE, WebServer
from .test_ui import expect_no_page_errors, first_cell, run_sql, wait_result

pytestmark = pytest.mark.timeout(240)


def _table(server: WebServer, ns: str, name: str, rows: pa.Table, location: str) -> None:
    sink = io.BytesIO()
    pq.write_table(rows, sink)
    open_store(server.store_url).put(location, sink.getvalue())
    server.api(
        "POST",
        f"/api/v1/namespaces/{ns}/tables",
        json={"name": name, "columns": [{"name": "id", "type": "int64"}], "location": location},
    )


def test_console_queries_a_table_and_the_table_page_previews_it(
    page: Any, start_server: Any, tmp_path: Path, shot: Any
) -> None:
    server: WebServer = start_server(f"file://{tmp_path / 'store'}", True)
    root = Keys(Scope(TENANT, WORKSPACE)).warehouse_prefix()
    server.api("POST", "/api/v1/namespaces", json={"name": "shop"})
    amounts = pa.table({"id": list(range(1, 31)), "amount": [i * 2 for i in range(1, 31)]})
    _table(server, "shop", "sales", amounts, root + "shop/sales/part-0.parquet")
    _table(server, "shop", "stolen", amounts, "tenant=other/workspace=main/x.parquet")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    run_sql(
        page,
        server.base_url,
        "SELECT count(*) AS n, sum(s.amount) AS total, any_value(t.format) AS f "
        "FROM shop.sales s JOIN system.tables t ON t.namespace = 'shop' AND t.name = 'sales'",
    )
    wait_result(page)
    assert first_cell(page) == "30"
    cells = page.locator("[data-testid=result-table] tbody td").all_inner_texts()
    assert cells == ["30", "930", "parquet"]
    assert any(u.endswith("/api/v1/browser/tables") for u in requests)
    assert not any(u.endswith("/api/v1/query") for u in requests)
    # Only the table's own data file was fetched through a signed URL.
    data_fetches = [u for u in requests if "/blob/" in u and "/warehouse/" in u]
    assert len(data_fetches) == 1
    assert "shop/sales/part-0.parquet" in data_fetches[0]
    shot(page, "sql-table-data")

    # A table stored outside the caller's data: a clear error, nothing fetched.
    page.get_by_test_id("sql-input").fill("SELECT * FROM shop.stolen")
    page.get_by_test_id("run-sql").click()
    error = page.get_by_test_id("sql-error")
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert "outside this workspace" in error.inner_text()
    assert not any("x.parquet" in u for u in requests)

    page.goto(server.base_url + "/tables/shop/sales", wait_until="domcontentloaded")
    button = page.get_by_test_id("preview-data")
    button.wait_for(state="visible", timeout=WAIT_MS)
    button.click()
    count = page.get_by_test_id("preview-count")
    count.wait_for(state="visible", timeout=WAIT_MS)
    assert count.get_attribute("data-rows") == "30"
    rows = page.locator("[data-testid=preview-table] tbody tr")
    assert rows.count() == 20
    headers = page.locator("[data-testid=preview-table] thead th").all_inner_texts()
    assert headers == ["id", "amount"]
    shot(page, "table-preview")
    expect_no_page_errors(page)
