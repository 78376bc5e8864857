"""The web UI in Chromium against real Arco servers (file:// and SeaweedFS S3).

Each test drives the built single-page app with Playwright; every wait is bounded
(``WAIT_MS``) because a broken asset (e.g. a wrong MIME type for DuckDB-WASM) makes
the page hang rather than fail. Screenshots land in test-output/web/.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import httpx
import pytest

from .conftest import TABLES, WAIT_MS, WebServer

pytestmark = pytest.mark.timeout(240)


def expect_no_page_errors(page: Any) -> None:
    assert page.page_errors == [], f"JavaScript errors on the page: {page.page_errors}"
    # The static boot placeholder goes once the app renders (it once stayed below it).
    assert "Loading Arco" not in page.inner_text("body")


def run_sql(page: Any, base_url: str, sql: str) -> None:
    """Open the console, type ``sql`` and run it (the caller waits for the outcome)."""
    page.goto(base_url + "/sql", wait_until="domcontentloaded")
    box = page.get_by_test_id("sql-input")
    box.wait_for(state="visible", timeout=WAIT_MS)
    box.fill(sql)
    page.get_by_test_id("run-sql").click(timeout=WAIT_MS)


def wait_result(page: Any) -> None:
    """Wait for the console's result; fail with the console's error message if it shows one."""
    page.wait_for_selector("[data-testid=row-count], [data-testid=sql-error]", timeout=WAIT_MS)
    error = page.get_by_test_id("sql-error")
    if error.count():
        pytest.fail(f"the SQL console failed: {error.inner_text()}")


def first_cell(page: Any) -> str:
    cell = page.locator("[data-testid=result-table] tbody tr >> nth=0").locator("td >> nth=0")
    cell.wait_for(state="visible", timeout=WAIT_MS)
    return str(cell.inner_text(timeout=WAIT_MS))


def test_dev_sign_in_browse_to_table_and_columns(
    page: Any, dev_server: WebServer, shot: Any
) -> None:
    page.goto(dev_server.base_url + "/", wait_until="domcontentloaded")
    # Auto sign-in through GET /api/v1/dev/token: the catalog appears without a token prompt.
    namespaces = page.get_by_test_id("namespace-list")
    namespaces.wait_for(state="visible", timeout=WAIT_MS)
    assert namespaces.locator("a").all_inner_texts() == [
        "analytics",
        "analytics.marketing",
        "bulk",
        "raw",
    ]
    overview = page.get_by_test_id("namespace-overview")
    assert "raw data" in overview.inner_text(timeout=WAIT_MS)
    history = page.get_by_test_id("history")
    history.wait_for(state="visible", timeout=WAIT_MS)
    assert "create table bulk.filler_039" in history.inner_text()
    shot(page, "catalog")
    namespaces.get_by_role("link", name="raw").click()
    tables = page.get_by_test_id("table-list")
    tables.wait_for(state="visible", timeout=WAIT_MS)
    assert page.get_by_test_id("namespace-title").inner_text() == "raw"
    assert "raw data" in page.locator(".description").first.inner_text()
    tables.get_by_role("link", name="orders", exact=True).click()
    columns = page.get_by_test_id("columns")
    columns.wait_for(state="visible", timeout=WAIT_MS)
    assert page.get_by_test_id("table-title").inner_text() == "raw.orders"
    names = columns.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert names == ["order_id", "customer_id", "total"]
    types = columns.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert types[2].startswith("decimal(12")
    assert "Orders exported hourly" in page.locator(".description").first.inner_text()
    assert "data-team" in page.get_by_test_id("properties").inner_text()
    assert page.evaluate("location.pathname") == "/tables/raw/orders"
    shot(page, "table")
    # A client route loaded directly (SPA fallback on the server) renders the same page.
    page.goto(dev_server.base_url + "/tables/raw/customers", wait_until="domcontentloaded")
    page.get_by_test_id("columns").wait_for(state="visible", timeout=WAIT_MS)
    assert page.get_by_test_id("table-title").inner_text() == "raw.customers"
    # Signing out forgets the token and stays signed out, even on a dev server.
    page.get_by_test_id("sign-out").click()
    page.get_by_test_id("token-input").wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("sessionStorage.getItem('arco.token')") is None
    expect_no_page_errors(page)


def test_search_ranks_and_navigates(page: Any, dev_server: WebServer, shot: Any) -> None:
    page.goto(dev_server.base_url + "/catalog", wait_until="domcontentloaded")
    box = page.get_by_test_id("search-input")
    box.wait_for(state="visible", timeout=WAIT_MS)
    box.fill("customer")
    box.press("Enter")
    results = page.get_by_test_id("search-results")
    results.wait_for(state="visible", timeout=WAIT_MS)
    links = results.locator("li > a").all_inner_texts()
    api = dev_server.api("GET", "/api/v1/search", params={"q": "customer", "limit": 50}).json()
    # Tables and columns, in the server's rank order, best first.
    assert links == [h["qualified_name"] for h in api["hits"]]
    assert {"analytics.customer_ltv", "raw.customers", "raw.orders.customer_id"} <= set(links)
    kinds = results.locator(".kind").all_inner_texts()
    assert {k.lower() for k in kinds} == {"table", "column"}
    assert f"{api['total']} results" in page.get_by_test_id("search-total").inner_text()
    shot(page, "search")
    # A column hit opens its table, at that column.
    results.get_by_role("link", name="raw.orders.customer_id", exact=True).click()
    page.get_by_test_id("columns").wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("location.pathname") == "/tables/raw/orders"
    assert page.evaluate("location.search") == "?column=customer_id"
    highlighted = page.get_by_test_id("columns").locator("tr.highlight")
    assert highlighted.locator("td:nth-child(2)").all_inner_texts() == ["customer_id"]
    # An exact table name ranks that table first.
    page.get_by_test_id("search-input").fill("customers")
    page.get_by_test_id("search-input").press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=customers$"), timeout=WAIT_MS)
    first = page.get_by_test_id("search-results").locator("li > a").first
    assert first.inner_text(timeout=WAIT_MS) == "raw.customers"
    expect_no_page_errors(page)


def test_lineage_graph_shows_both_directions_and_nodes_navigate(
    page: Any, dev_server: WebServer, shot: Any
) -> None:
    page.goto(dev_server.base_url + "/tables/analytics/customer_ltv", wait_until="domcontentloaded")
    graph = page.get_by_test_id("lineage-graph")
    graph.wait_for(state="visible", timeout=WAIT_MS)
    nodes = sorted(graph.locator("[data-node]").evaluate_all("els => els.map(e => e.dataset.node)"))
    assert nodes == ["analytics.customer_ltv", "raw.customers", "raw.orders"]
    edges = sorted(graph.locator("[data-edge]").evaluate_all("els => els.map(e => e.dataset.edge)"))
    assert edges == ["raw.customers->analytics.customer_ltv", "raw.orders->analytics.customer_ltv"]
    # Upstream nodes are laid out left of the root (dagre, rankdir LR).
    root_x = graph.locator("[data-node='analytics.customer_ltv']").bounding_box()["x"]
    up_x = graph.locator("[data-node='raw.orders']").bounding_box()["x"]
    assert up_x < root_x
    shot(page, "lineage")
    graph.locator("[data-node='raw.orders']").click()
    page.wait_for_url(re.compile(r"/tables/raw/orders$"), timeout=WAIT_MS)
    graph = page.get_by_test_id("lineage-graph")
    graph.wait_for(state="visible", timeout=WAIT_MS)
    downstream = graph.locator("[data-node]").evaluate_all("els => els.map(e => e.dataset.node)")
    assert sorted(downstream) == ["analytics.customer_ltv", "analytics.daily_revenue", "raw.orders"]
    assert "0 upstream, 2 downstream" in page.get_by_test_id("lineage").inner_text()
    expect_no_page_errors(page)


def test_sql_console_counts_system_tables_in_the_browser(
    page: Any, dev_server: WebServer, shot: Any
) -> None:
    browser_requests: list[str] = []
    page.on("request", lambda r: browser_requests.append(r.url))
    run_sql(page, dev_server.base_url, "SELECT count(*) FROM system.tables")
    wait_result(page)
    assert first_cell(page) == str(len(TABLES))
    assert page.get_by_test_id("row-count").inner_text() == "1 row"
    assert float(page.get_by_test_id("elapsed").get_attribute("data-ms")) >= 0
    # The first query naming system.tables built it from the snapshot, and says so.
    assert "building system.tables" in page.get_by_test_id("prepared").inner_text()
    shot(page, "sql")
    # The query ran in the browser: the page fetched signed URLs, never POST /query, and
    # DuckDB-WASM came from this origin.
    assert not any(u.endswith("/api/v1/query") for u in browser_requests)
    assert any("/api/v1/browser/urls" in u for u in browser_requests)
    wasm = [u for u in browser_requests if u.endswith(".wasm")]
    assert wasm
    assert all(u.startswith(dev_server.base_url + "/assets/") for u in wasm)
    # Columns of a table, joined to tables: the same rows as the REST API.
    page.get_by_test_id("sql-input").fill(
        "SELECT c.name FROM system.columns c JOIN system.tables t ON t.id = c.table_id "
        "WHERE t.namespace = 'raw' AND t.name = 'orders' ORDER BY c.ordinal"
    )
    page.get_by_test_id("run-sql").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=row-count]')?.dataset.rows === '3'",
        timeout=WAIT_MS,
    )
    cells = page.locator("[data-testid=result-table] tbody td").all_inner_texts()
    assert cells == ["order_id", "customer_id", "total"]
    # system.tables was built once: this query built only system.columns.
    assert page.get_by_test_id("prepared").inner_text().count("system.") == 1
    # A grouping query (DuckDB-WASM 1.28.0 trapped on these over views).
    by_namespace = Counter(t[0] for t in TABLES)
    page.get_by_test_id("sql-input").fill(
        "SELECT namespace, count(*) AS n FROM system.tables GROUP BY ALL ORDER BY namespace"
    )
    # The previous result may have as many rows: wait for the console's query counter.
    done = int(page.evaluate("window.arcoTimings.queries"))
    page.get_by_test_id("run-sql").click()
    page.wait_for_function(
        f"window.arcoTimings.queries > {done}"
        " || !!document.querySelector('[data-testid=sql-error]')",
        timeout=WAIT_MS,
    )
    assert not page.get_by_test_id("sql-error").count()
    first = sorted(by_namespace)[0]
    page.wait_for_function(  # the new result is on screen, not only computed
        f"document.querySelector('[data-testid=result-table] tbody td')?.innerText === '{first}'",
        timeout=WAIT_MS,
    )
    cells = page.locator("[data-testid=result-table] tbody td").all_inner_texts()
    assert cells == [x for ns in sorted(by_namespace) for x in (ns, str(by_namespace[ns]))]
    assert not page.get_by_test_id("prepared").count()  # nothing left to build
    expect_no_page_errors(page)


def test_sql_console_shows_decimals_and_hugeints_as_numbers(
    page: Any, dev_server: WebServer
) -> None:
    """DuckDB's DECIMAL and HUGEINT (sum of integers) reach the page as 128-bit decimals."""
    run_sql(
        page,
        dev_server.base_url,
        "SELECT 2.5::DECIMAL(10,2) AS d, (-0.05)::DECIMAL(9,3) AS n, 10::HUGEINT AS h, "
        "sum(x) AS s, 7::BIGINT AS b FROM (VALUES (1), (2)) AS t(x)",
    )
    wait_result(page)
    cells = page.locator("[data-testid=result-table] tbody td").all_inner_texts()
    assert cells == ["2.50", "-0.050", "10", "3", "7"]
    # Other types Arrow hands over raw: dates, times, bytes, nested decimals, intervals.
    done = int(page.evaluate("window.arcoTimings.queries"))
    page.get_by_test_id("sql-input").fill(
        "SELECT DATE '2026-12-04' AS d, TIME '12:34:56.5' AS t, 'ab\\x01'::BLOB AS b, "
        "[1.5::DECIMAL(4,2)] AS l, {'x': 2::HUGEINT} AS st, INTERVAL 3 DAY AS i"
    )
    page.get_by_test_id("run-sql").click()
    page.wait_for_function(f"window.arcoTimings.queries > {done}", timeout=WAIT_MS)
    page.wait_for_function(
        "document.querySelector('[data-testid=result-table] tbody td')?.innerText === '2026-12-04'",
        timeout=WAIT_MS,
    )
    cells = page.locator("[data-testid=result-table] tbody td").all_inner_texts()
    assert cells[:5] == ["2026-12-04", "12:34:56.5", "ab\\x01", '["1.50"]', '{"x":"2"}']
    assert "cast it to VARCHAR" in cells[5]
    expect_no_page_errors(page)


def test_sql_console_errors_say_what_is_wrong(page: Any, dev_server: WebServer) -> None:
    run_sql(page, dev_server.base_url, "SELECT * FROM system.nope")
    error = page.get_by_test_id("sql-error")
    error.wait_for(state="visible", timeout=WAIT_MS)
    text = error.inner_text()
    assert "system.nope is not a system table" in text
    assert "system.tables" in text
    page.get_by_test_id("sql-input").fill("SELEC count(*) FROM system.tables")
    page.get_by_test_id("run-sql").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=sql-error]')?.innerText.includes('syntax error')",
        timeout=WAIT_MS,
    )
    page.get_by_test_id("sql-input").fill("SELECT no_such_column FROM system.tables")
    page.get_by_test_id("run-sql").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=sql-error]')?.innerText.includes('no_such_column')",
        timeout=WAIT_MS,
    )
    assert "arco_sys" not in error.inner_text()
    expect_no_page_errors(page)


def test_paste_token_sign_in_and_sql_over_seaweedfs_s3(
    page: Any, seaweed: Any, start_server: Any, shot: Any
) -> None:
    server: WebServer = start_server(seaweed.fresh_url(), False)
    # Not a dev server: no automatic token.
    assert httpx.get(server.base_url + "/api/v1/dev/token", timeout=10).status_code == 404
    page.goto(server.base_url + "/", wait_until="domcontentloaded")
    field = page.get_by_test_id("token-input")
    field.wait_for(state="visible", timeout=WAIT_MS)
    field.fill("not-a-token")
    page.get_by_test_id("sign-in").click()
    refused = page.get_by_test_id("signin-error")
    refused.wait_for(state="visible", timeout=WAIT_MS)
    assert "refused" in refused.inner_text()
    shot(page, "signin")
    field.fill(server.token)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("namespace-list").wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("sessionStorage.getItem('arco.token')") == server.token
    fetched: list[str] = []
    page.on("requestfinished", lambda r: fetched.append(r.url))
    run_sql(page, server.base_url, "SELECT count(*) FROM system.tables")
    wait_result(page)
    assert first_cell(page) == str(len(TABLES))
    # The files came straight from SeaweedFS (presigned, cross-origin), not through Arco.
    endpoint = seaweed.endpoint
    assert any(u.startswith(endpoint) for u in fetched), fetched
    shot(page, "sql-s3")
    expect_no_page_errors(page)
