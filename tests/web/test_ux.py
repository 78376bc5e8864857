"""Issue #10, web UI items 14-21 (catalog side): reloads, phones, accessibility,
lineage nodes without a table, search display and typeahead, signing out and back in.

Layout checks run at a desktop (1400 px) and a phone (390 px) viewport; accessibility
is checked with axe-core (web/node_modules, a devDependency) on every page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import DESKTOP, PHONE, WAIT_MS, WebServer, axe_serious, fits_width

pytestmark = pytest.mark.timeout(300)

VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}

#: (path, what shows the page has rendered, words of the tab title)
PAGES = [
    ("/catalog", "[data-testid=history]", "Catalog"),
    ("/catalog/analytics.marketing", "[data-testid=table-list]", "analytics.marketing"),
    ("/tables/raw/orders", "[data-testid=lineage-graph]", "raw.orders"),
    ("/search?q=customer", "[data-testid=search-results]", "Search"),
    ("/lineage/reports.campaign_dashboard", "[data-testid=lineage-graph]", "Lineage"),
    # This server has no project: the automation pages say so (test_automation_ui.py
    # checks them, and the check results, over a project).
    ("/automation/schedules", "[data-testid=no-project]", "Schedules"),
    ("/automation/sensors", "[data-testid=no-project]", "Sensors"),
    ("/automation/backfills", "[data-testid=create-backfill]", "Backfills"),
    # Last: the test goes on with a query in the console.
    ("/sql", "[data-testid=sql-input]", "SQL console"),
]


def open_page(pg: Any, base_url: str, path: str, ready: str) -> None:
    pg.goto(base_url + path, wait_until="domcontentloaded")
    pg.wait_for_selector(ready, state="visible", timeout=WAIT_MS)


def test_every_route_survives_a_reload(page: Any, dev_server: WebServer) -> None:
    """Item 14: a namespace, table or node name with dots is not a file name."""
    for path, ready, _ in PAGES:
        open_page(page, dev_server.base_url, path, ready)
        page.reload(wait_until="domcontentloaded")
        page.wait_for_selector(ready, state="visible", timeout=WAIT_MS)
        assert "Not found" not in page.inner_text("main"), path
    title = page.goto(dev_server.base_url + "/catalog/analytics.marketing")
    assert title is not None
    assert title.status == 200
    assert page.get_by_test_id("namespace-title").inner_text(timeout=WAIT_MS) == (
        "analytics.marketing"
    )
    assert page.page_errors == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_pages_are_accessible_and_titled(
    new_page: Callable[[int, int], Any], dev_server: WebServer, viewport: str, shot: Any
) -> None:
    """Item 16: zero serious axe-core violations, a title per page; item 15: at 390 px
    nothing makes the page scroll sideways."""
    pg = new_page(*VIEWPORTS[viewport])
    titles = set()
    for path, ready, words in PAGES:
        open_page(pg, dev_server.base_url, path, ready)
        pg.wait_for_function(f"document.title.includes({words!r})", timeout=WAIT_MS)
        titles.add(pg.title())
        assert axe_serious(pg) == [], path
        assert fits_width(pg) == [], path
        if viewport == "phone":
            shot(pg, path.strip("/").replace("/", "_").replace("?", "_") or "root")
    assert len(titles) == len(PAGES)
    # The SQL console with a result, and the sign-in page.
    pg.get_by_test_id("sql-input").fill("SELECT namespace, name FROM system.tables LIMIT 5")
    pg.get_by_test_id("run-sql").click()
    pg.get_by_test_id("result-table").wait_for(state="visible", timeout=WAIT_MS)
    assert axe_serious(pg) == []
    assert fits_width(pg) == []
    pg.get_by_test_id("sign-out").click()
    pg.get_by_test_id("token-input").wait_for(state="visible", timeout=WAIT_MS)
    assert axe_serious(pg) == []
    assert fits_width(pg) == []
    assert pg.page_errors == []


def test_phone_layout_is_usable(phone: Any, dev_server: WebServer, shot: Any) -> None:
    """Item 15: at 390 px the header wraps (search box full width, "Sign out" on the
    dark bar), the namespace list folds away once a namespace is open."""
    open_page(phone, dev_server.base_url, "/catalog/raw", "[data-testid=table-list]")
    header = phone.locator("header.top").bounding_box()
    search = phone.get_by_test_id("search-input").bounding_box()
    assert search["width"] >= 300
    sign_out = phone.get_by_test_id("sign-out")
    box = sign_out.bounding_box()
    assert box["x"] + box["width"] <= PHONE[0]
    assert header["y"] <= box["y"]
    assert box["y"] + box["height"] <= header["y"] + header["height"]
    # The namespace list is folded: the namespace's own title is near the top.
    assert phone.get_by_test_id("sidebar").bounding_box()["height"] < 60
    assert phone.get_by_test_id("namespace-title").bounding_box()["y"] < 250
    shot(phone, "namespace")
    phone.locator("[data-testid=sidebar] summary").click()
    phone.get_by_test_id("namespace-list").get_by_role("link", name="analytics", exact=True).click()
    phone.wait_for_url(re.compile(r"/catalog/analytics$"), timeout=WAIT_MS)
    # The lineage graph is laid out top to bottom and fits the screen's width.
    open_page(phone, dev_server.base_url, "/tables/analytics/customer_ltv", "[data-node]")
    graph = phone.get_by_test_id("lineage-graph")
    assert graph.get_attribute("data-direction") == "TB"
    root_y = graph.locator("[data-node='analytics.customer_ltv']").bounding_box()["y"]
    assert graph.locator("[data-node='raw.orders']").bounding_box()["y"] < root_y
    for node in graph.locator("[data-node]").all():
        b = node.bounding_box()
        assert b["x"] >= 0, node.get_attribute("data-node")
        assert b["x"] + b["width"] <= PHONE[0], node.get_attribute("data-node")
    shot(phone, "lineage")
    assert fits_width(phone) == []
    assert phone.page_errors == []


def test_graph_nodes_work_from_the_keyboard(page: Any, dev_server: WebServer) -> None:
    """Item 16: lineage nodes are in the tab order and open with Enter."""
    open_page(page, dev_server.base_url, "/tables/analytics/customer_ltv", "[data-node]")
    node = page.get_by_test_id("lineage-graph").locator("[data-node='raw.orders']")
    assert node.evaluate("e => e.tabIndex") == 0
    assert node.get_attribute("role") == "button"
    node.focus()
    assert page.evaluate("document.activeElement.dataset.node") == "raw.orders"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/tables/raw/orders$"), timeout=WAIT_MS)
    # Tab reaches the nodes of the new page's graph too.
    page.get_by_test_id("lineage-graph").wait_for(state="visible", timeout=WAIT_MS)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.node || ''"):
            break
    assert page.evaluate("document.activeElement.dataset.node") in {
        "raw.orders",
        "analytics.daily_revenue",
        "analytics.customer_ltv",
    }
    assert page.page_errors == []


def test_a_lineage_node_without_a_table_has_a_page(page: Any, dev_server: WebServer) -> None:
    """Item 17: a node that is not a catalog table opens its lineage page, not a 404."""
    path = "/tables/analytics.marketing/campaign_attribution"
    open_page(page, dev_server.base_url, path, "[data-node]")
    page.locator("[data-node='reports.campaign_dashboard']").click()
    page.wait_for_url(re.compile(r"/lineage/reports\.campaign_dashboard$"), timeout=WAIT_MS)
    assert page.get_by_test_id("node-title").inner_text() == "reports.campaign_dashboard"
    facts = page.get_by_test_id("node-facts")
    facts.wait_for(state="visible", timeout=WAIT_MS)
    assert "Not a table in the catalog" in facts.inner_text()
    graph = page.get_by_test_id("lineage-graph")
    graph.wait_for(state="visible", timeout=WAIT_MS)
    assert sorted(graph.locator("[data-node]").evaluate_all("es => es.map(e => e.dataset.node)"))
    assert page.get_by_test_id("error").count() == 0
    # Its upstream node is a table: clicking it opens the table page.
    graph.locator("[data-node='analytics.marketing.campaign_attribution']").click()
    page.wait_for_url(re.compile(r"/tables/analytics\.marketing/campaign_attribution$"))
    page.get_by_test_id("columns").wait_for(state="visible", timeout=WAIT_MS)
    assert page.page_errors == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_search_speaks_words_and_suggests_as_you_type(
    new_page: Callable[[int, int], Any], dev_server: WebServer, viewport: str, shot: Any
) -> None:
    """Item 19: no raw scores or index field codes; typeahead with the keyboard."""
    pg = new_page(*VIEWPORTS[viewport])
    open_page(pg, dev_server.base_url, "/search?q=customer", "[data-testid=search-results]")
    text = pg.get_by_test_id("search-results").inner_text()
    assert not re.search(r"\b\d+\.\d\d\b", text), text
    assert not re.search(r"\b[ndp]:", text), text
    assert "Matched: " in text
    assert "name (customer)" in text
    box = pg.get_by_test_id("search-input")
    box.fill("revenue")
    suggestions = pg.get_by_test_id("suggestions")
    suggestions.locator("[role=option]", has_text="analytics.daily_revenue").first.wait_for(
        state="visible", timeout=WAIT_MS
    )
    assert box.get_attribute("aria-expanded") == "true"
    options = suggestions.locator("[role=option]").all_inner_texts()
    shot(pg, "typeahead")
    index = options.index("TABLE analytics.daily_revenue")
    for _ in range(index + 1):
        box.press("ArrowDown")
    assert box.get_attribute("aria-activedescendant") == f"suggestion-{index}"
    box.press("Enter")
    pg.wait_for_url(re.compile(r"/tables/analytics/daily_revenue$"), timeout=WAIT_MS)
    pg.get_by_test_id("columns").wait_for(state="visible", timeout=WAIT_MS)
    assert fits_width(pg) == []
    assert pg.page_errors == []


def test_sign_out_is_not_a_dead_end(page: Any, dev_server: WebServer) -> None:
    """Item 21: under arco dev, signing out offers the way back in, and either way
    (developer button or a pasted token) lands where the user was."""
    where = "/tables/raw/customers"
    open_page(page, dev_server.base_url, where, "[data-testid=columns]")
    page.get_by_test_id("sign-out").click()
    page.wait_for_url(re.compile(r"/signin\?next="), timeout=WAIT_MS)
    page.reload(wait_until="domcontentloaded")
    page.get_by_test_id("token-input").wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("sessionStorage.getItem('arco.token')") is None
    page.get_by_test_id("dev-sign-in").click(timeout=WAIT_MS)
    page.wait_for_url(re.compile(re.escape(where) + "$"), timeout=WAIT_MS)
    page.get_by_test_id("columns").wait_for(state="visible", timeout=WAIT_MS)
    # Out again; a pasted token also returns to the page.
    page.get_by_test_id("sign-out").click()
    page.get_by_test_id("token-input").fill(dev_server.token)
    page.get_by_test_id("sign-in").click()
    page.wait_for_url(re.compile(re.escape(where) + "$"), timeout=WAIT_MS)
    assert page.get_by_test_id("table-title").inner_text(timeout=WAIT_MS) == "raw.customers"
    # A "next" pointing to another site is ignored.
    page.get_by_test_id("sign-out").click()
    page.goto(dev_server.base_url + "/signin?next=//evil.example/x")
    page.get_by_test_id("dev-sign-in").click(timeout=WAIT_MS)
    page.wait_for_url(dev_server.base_url + "/", timeout=WAIT_MS)
    assert page.page_errors == []
