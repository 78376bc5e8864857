"""Issue #14 in the browser: column lineage on the table page, external (OpenLineage)
runs beside Arco's runs, an external run's page, and the lineage-coverage figure.

Real OpenLineage events go through the real API (``POST /api/v1/lineage`` with a
writer token), a compaction folds them, and Chromium shows what the UI makes of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import (
    DESKTOP,
    PHONE,
    WAIT_MS,
    WebServer,
    axe_serious,
    fits_width,
    populate,
    run_web_server,
)

pytestmark = pytest.mark.timeout(300)

PRODUCER = "https://example.test/arco-web-tests"
DB = "postgres://db.example:5432"  # dataset "raw.orders" in it maps to catalog table raw.orders
JOBS = "airflow-prod"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PARENT, LOAD, REFUNDS = (str(uuid.UUID(int=n)) for n in (0xA1, 0xB2, 0xC3))
ERROR = "division by zero in refunds.sql line 12"


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": PRODUCER + "/facet", **fields}


def _schema(*cols: str) -> dict[str, Any]:
    return _facet(fields=[{"name": c, "type": "VARCHAR"} for c in cols])


def _dataset(name: str, *cols: str, lineage: dict[str, list[tuple[str, str]]] | None = None) -> Any:
    facets: dict[str, Any] = {"schema": _schema(*cols)}
    if lineage:
        facets["columnLineage"] = _facet(
            fields={
                col: {
                    "inputFields": [
                        {"namespace": DB, "name": src, "field": src_col} for src, src_col in feeds
                    ]
                }
                for col, feeds in lineage.items()
            }
        )
    return {"namespace": DB, "name": name, "facets": facets}


def _event(kind: str, run_id: str, job: str, seconds: int, **extra: Any) -> dict[str, Any]:
    run_facets = extra.pop("run_facets", {})
    return {
        "eventType": kind,
        "eventTime": (T0 + timedelta(seconds=seconds)).isoformat(),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": run_facets},
        "job": {"namespace": JOBS, "name": job},
        **extra,
    }


def feed_openlineage(server: WebServer) -> None:
    """A parent Airflow run with a task that builds ``analytics.customer_ltv`` from
    ``raw.orders`` and ``raw.customers`` (with column lineage) and a failed one."""
    parent = {"parent": _facet(run={"runId": PARENT}, job={"namespace": JOBS, "name": "nightly"})}
    orders = _dataset("raw.orders", "order_id", "customer_id", "total")
    customers = _dataset("raw.customers", "customer_id", "email")
    ltv = _dataset(
        "analytics.customer_ltv",
        "customer_id",
        "ltv",
        lineage={
            "ltv": [("raw.orders", "total")],
            "customer_id": [("raw.customers", "customer_id"), ("raw.orders", "customer_id")],
        },
    )
    events = [
        _event("START", PARENT, "nightly", 0),
        _event("START", LOAD, "nightly.load_ltv", 1, run_facets=parent),
        _event(
            "COMPLETE",
            LOAD,
            "nightly.load_ltv",
            31,
            run_facets=parent,
            inputs=[orders, customers],
            outputs=[ltv],
        ),
        _event("START", REFUNDS, "nightly.refunds", 2, run_facets=parent),
        _event(
            "FAIL",
            REFUNDS,
            "nightly.refunds",
            5,
            inputs=[orders],
            run_facets={
                **parent,
                "errorMessage": _facet(message=ERROR, programmingLanguage="sql"),
            },
        ),
        _event("COMPLETE", PARENT, "nightly", 60),
    ]
    for event in events:  # one at a time, as producers send them
        server.api("POST", "/api/v1/lineage", json=event)
    server.api("POST", "/api/v1/compaction", json={})


@pytest.fixture(scope="module")
def ol_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """A dev server over the populated catalog plus the OpenLineage runs above."""
    workdir = tmp_path_factory.mktemp("web-openlineage")
    with run_web_server(f"file://{workdir / 'store'}", workdir, dev=True) as server:
        populate(server)
        feed_openlineage(server)
        yield server


def _row(pg: Any, column: str) -> Any:
    return (
        pg.get_by_test_id("columns")
        .locator("tbody tr")
        .filter(has=pg.locator(f"td.mono:text-is('{column}')"))
    )


def _refs(cell: Any) -> list[tuple[str, str]]:
    return [
        (a.inner_text(), a.get_attribute("href")) for a in cell.get_by_test_id("column-ref").all()
    ]


def test_table_page_shows_each_columns_upstream_and_downstream_columns(
    page: Any, ol_server: WebServer, shot: Any
) -> None:
    page.goto(ol_server.base_url + "/tables/analytics/customer_ltv", wait_until="domcontentloaded")
    page.get_by_test_id("column-ref").first.wait_for(state="visible", timeout=WAIT_MS)
    headers = page.get_by_test_id("columns").locator("thead th").all_inner_texts()
    assert headers[-2:] == ["Upstream columns", "Downstream columns"]
    ltv = _row(page, "ltv")
    assert _refs(ltv.get_by_test_id("column-upstream")) == [
        ("raw.orders.total", "/tables/raw/orders?column=total")
    ]
    assert sorted(_refs(_row(page, "customer_id").get_by_test_id("column-upstream"))) == [
        ("raw.customers.customer_id", "/tables/raw/customers?column=customer_id"),
        ("raw.orders.customer_id", "/tables/raw/orders?column=customer_id"),
    ]
    shot(page, "ltv")
    # Following an upstream column opens its table with that column highlighted...
    ltv.get_by_role("link", name="raw.orders.total").click()
    page.wait_for_url("**/tables/raw/orders?column=total", timeout=WAIT_MS)
    highlighted = page.get_by_test_id("columns").locator("tr.highlight")
    highlighted.wait_for(state="visible", timeout=WAIT_MS)
    assert "total" in highlighted.inner_text()
    # ... where the same edge shows downstream.
    page.get_by_test_id("column-ref").first.wait_for(state="visible", timeout=WAIT_MS)
    assert _refs(_row(page, "total").get_by_test_id("column-downstream")) == [
        ("analytics.customer_ltv.ltv", "/tables/analytics/customer_ltv?column=ltv")
    ]
    assert _refs(_row(page, "customer_id").get_by_test_id("column-downstream")) == [
        ("analytics.customer_ltv.customer_id", "/tables/analytics/customer_ltv?column=customer_id")
    ]
    assert _refs(_row(page, "order_id").get_by_test_id("column-downstream")) == []
    # A table without column edges keeps its plain grid.
    page.goto(ol_server.base_url + "/tables/analytics/daily_revenue", wait_until="domcontentloaded")
    page.get_by_test_id("lineage-graph").wait_for(state="visible", timeout=WAIT_MS)
    headers = page.get_by_test_id("columns").locator("thead th").all_inner_texts()
    assert headers == ["#", "Name", "Type", "Nullable", "Description"]
    assert page.page_errors == []


def test_runs_page_lists_external_runs_with_state_job_times_and_error(
    page: Any, ol_server: WebServer, shot: Any
) -> None:
    page.goto(ol_server.base_url + "/runs", wait_until="domcontentloaded")
    coverage = page.get_by_test_id("lineage-coverage")
    coverage.wait_for(state="visible", timeout=WAIT_MS)
    # The parent named no dataset; its two tasks did.
    assert "external runs: 2 of 3 (67 %)" in coverage.inner_text()
    assert "Arco runs: none finished" in coverage.inner_text()
    page.get_by_test_id("runs-openlineage").click()
    listing = page.get_by_test_id("external-run-list")
    listing.wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("location.pathname + location.search") == "/runs?source=openlineage"
    assert page.get_by_test_id("runs-openlineage").get_attribute("aria-current") == "page"
    rows = {r.get_attribute("data-run"): r for r in listing.locator("tbody tr").all()}
    assert set(rows) == {PARENT, LOAD, REFUNDS}
    failed = rows[REFUNDS].inner_text()
    assert "FAIL" in failed
    assert ERROR in failed
    assert "nightly.refunds" in failed
    assert JOBS in failed
    assert "2026-03-01 12:00:02Z" in failed  # started
    assert "3.0 s" in failed  # start to FAIL
    load = rows[LOAD].inner_text()
    assert "COMPLETE" in load
    assert "30.0 s" in load
    # The parent is named by its job and links to its run page.
    assert rows[LOAD].get_by_role("link", name="nightly", exact=True).get_attribute("href") == (
        f"/runs/external/{PARENT}"
    )
    shot(page, "external-runs")
    # The state filter asks the API for that state only.
    page.get_by_label("State").select_option("FAIL")
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=external-run-list] tbody tr').length === 1",
        timeout=WAIT_MS,
    )
    assert listing.locator("tbody tr").get_attribute("data-run") == REFUNDS
    # Back to Arco's runs.
    page.get_by_test_id("runs-arco").click()
    page.wait_for_url("**/runs", timeout=WAIT_MS)
    page.get_by_test_id("lineage-coverage").wait_for(state="visible", timeout=WAIT_MS)
    assert page.get_by_test_id("runs-arco").get_attribute("aria-current") == "page"
    assert page.page_errors == []


def test_external_run_page_shows_inputs_outputs_parent_and_children(
    page: Any, ol_server: WebServer, shot: Any
) -> None:
    page.goto(ol_server.base_url + "/runs?source=openlineage", wait_until="domcontentloaded")
    page.get_by_test_id("external-run-list").get_by_role("link", name="nightly.load_ltv").click()
    title = page.get_by_test_id("external-run-title")
    title.wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("location.pathname") == f"/runs/external/{LOAD}"
    assert "nightly.load_ltv" in title.inner_text()
    assert "COMPLETE" in title.inner_text()
    facts = page.get_by_test_id("external-run-facts").inner_text()
    assert LOAD in facts
    assert JOBS in facts
    assert "30.0 s" in facts
    inputs = page.get_by_test_id("external-inputs")
    assert inputs.locator("li").count() == 2
    orders = inputs.locator(f"[data-dataset='{DB}::raw.orders']")
    assert orders.get_by_role("link", name="raw.orders").get_attribute("href") == (
        "/tables/raw/orders"
    )
    outputs = page.get_by_test_id("external-outputs")
    assert outputs.get_by_role("link", name="analytics.customer_ltv").get_attribute("href") == (
        "/tables/analytics/customer_ltv"
    )
    assert page.get_by_test_id("external-error").count() == 0
    shot(page, "load")
    # Up to the parent, which lists both task runs.
    page.get_by_test_id("external-parent").get_by_role("link").click()
    page.wait_for_url(f"**/runs/external/{PARENT}", timeout=WAIT_MS)
    children = page.get_by_test_id("external-children")
    children.wait_for(state="visible", timeout=WAIT_MS)
    assert sorted(children.get_by_role("link").all_inner_texts()) == [
        "nightly.load_ltv",
        "nightly.refunds",
    ]
    assert "none" in page.get_by_test_id("external-parent").inner_text()
    # The failed one shows its error message.
    children.get_by_role("link", name="nightly.refunds").click()
    error = page.get_by_test_id("external-error")
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert error.inner_text() == ERROR
    # A run id nobody reported says so.
    page.goto(ol_server.base_url + f"/runs/external/{uuid.uuid4()}", wait_until="domcontentloaded")
    page.get_by_test_id("external-run-missing").wait_for(state="visible", timeout=WAIT_MS)
    assert page.page_errors == []


@pytest.mark.parametrize("viewport", {"desktop": DESKTOP, "phone": PHONE})
def test_openlineage_pages_are_accessible_and_fit_a_phone(
    new_page: Callable[[int, int], Any],
    ol_server: WebServer,
    viewport: str,
    shot: Any,
) -> None:
    pg = new_page(*({"desktop": DESKTOP, "phone": PHONE}[viewport]))
    pages = [
        ("/tables/analytics/customer_ltv", "[data-testid=column-ref]", "customer_ltv"),
        ("/tables/raw/orders?column=total", "[data-testid=column-ref]", "raw.orders"),
        ("/runs", "[data-testid=lineage-coverage]", "Runs"),
        ("/runs?source=openlineage", "[data-testid=external-run-list]", "External runs"),
        (f"/runs/external/{REFUNDS}", "[data-testid=external-error]", "External run"),
        (f"/runs/external/{PARENT}", "[data-testid=external-children]", "External run"),
    ]
    for path, ready, words in pages:
        pg.goto(ol_server.base_url + path, wait_until="domcontentloaded")
        pg.locator(ready).first.wait_for(state="visible", timeout=WAIT_MS)
        pg.wait_for_function(f"document.title.includes({words!r})", timeout=WAIT_MS)
        assert axe_serious(pg) == [], path
        assert fits_width(pg) == [], path
        if viewport == "phone":
            shot(pg, path.strip("/").replace("/", "_").replace("?", "_"))
    # The column lineage is on screen, not in a grid column off to the right.
    pg.goto(ol_server.base_url + "/tables/analytics/customer_ltv", wait_until="domcontentloaded")
    link = pg.get_by_role("link", name="raw.orders.total")
    link.wait_for(state="visible", timeout=WAIT_MS)
    box = link.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= pg.viewport_size["width"]
    # Every external run shows its job, state and error without scrolling sideways.
    pg.goto(ol_server.base_url + "/runs?source=openlineage", wait_until="domcontentloaded")
    failed = pg.locator(f"[data-testid=external-run-list] [data-run='{REFUNDS}']")
    failed.wait_for(state="visible", timeout=WAIT_MS)
    assert "nightly.refunds" in failed.inner_text()
    assert "FAIL" in failed.inner_text()
    assert ERROR in failed.inner_text()
    assert failed.get_by_text(ERROR).is_visible()
    # Keyboard: the run-source switch is reachable and works with Enter.
    pg.goto(ol_server.base_url + "/runs", wait_until="domcontentloaded")
    pg.get_by_test_id("runs-openlineage").focus()
    pg.keyboard.press("Enter")
    pg.get_by_test_id("external-run-list").wait_for(state="visible", timeout=WAIT_MS)
    assert pg.page_errors == []
