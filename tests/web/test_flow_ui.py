"""Asset graph, run list and run page in Chromium, over a project that really ran.

As ``make dev`` does: ``python -m arco.demo`` builds the demo catalog, ``arco init``
scaffolds the demo project, ``arco run '*'`` materializes it into the same store, and
the server serves that project (``ARCO_PROJECT_DIR``) and store.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arco.catalog import Catalog
from arco.core.scope import Scope
from arco.demo import build

from .conftest import (
    PHONE,
    TENANT,
    WAIT_MS,
    WORKSPACE,
    WebServer,
    axe_serious,
    fits_width,
    run_web_server,
)

pytestmark = pytest.mark.timeout(240)
ARCO = [sys.executable, "-m", "arco.cli.main"]


def arco(*args: str, cwd: Path, store_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    cmd = [*ARCO, "--store", store_url, "--tenant", TENANT, "--workspace", WORKSPACE, *args]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def flow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """A dev server over a store where the scaffolded demo project ran once."""
    workdir = tmp_path_factory.mktemp("web-flow")
    store_url = f"file://{workdir / 'store'}"
    build(Catalog(store_url, Scope(TENANT, WORKSPACE)))
    subprocess.run([*ARCO, "init", "demo"], cwd=workdir, check=True, capture_output=True)
    project = workdir / "demo"
    arco("run", "*", cwd=project, store_url=store_url)
    env = {"ARCO_PROJECT_DIR": str(project)}
    with run_web_server(store_url, workdir / "srv", dev=True, env=env) as server:
        server.project = project  # type: ignore[attr-defined]
        yield server


def test_asset_graph_is_laid_out_and_coloured_by_state(
    page: Any, flow_server: WebServer, shot: Any
) -> None:
    assets = flow_server.api("GET", "/api/v1/assets").json()["assets"]
    assert assets, "the demo project defines assets"
    page.goto(flow_server.base_url + "/assets", wait_until="domcontentloaded")
    graph = page.get_by_test_id("asset-graph")
    graph.wait_for(state="visible", timeout=WAIT_MS)
    drawn = graph.locator("[data-node]").evaluate_all(
        "els => els.map(e => [e.dataset.node, e.getAttribute('class')])"
    )
    assert sorted(n for n, _ in drawn) == sorted(a["key"] for a in assets)
    expected = {
        a["key"]: "never" if not a["last_materialization"] else "stale" if a["stale"] else "fresh"
        for a in assets
    }
    assert {n: next(k for k in ("fresh", "stale", "never") if k in c) for n, c in drawn} == (
        expected
    )
    assert all(v == "fresh" for v in expected.values())  # the run materialized everything
    edges = graph.locator("[data-edge]").evaluate_all("els => els.map(e => e.dataset.edge)")
    assert sorted(edges) == sorted(f"{d}->{a['key']}" for a in assets for d in a["deps"])
    # Layered: every dependency sits left of the asset that reads it.
    for a in assets:
        right = graph.locator(f"[data-node='{a['key']}']").bounding_box()["x"]
        for dep in a["deps"]:
            assert graph.locator(f"[data-node='{dep}']").bounding_box()["x"] < right
    shot(page, "assets")
    last = assets[-1]
    graph.locator(f"[data-node='{last['key']}']").click()
    panel = page.get_by_test_id("asset-panel")
    panel.wait_for(state="visible", timeout=WAIT_MS)
    assert last["key"] in panel.inner_text()
    assert last["last_materialization"]["run_id"] in panel.inner_text()
    assert page.page_errors == []


def test_run_list_and_run_page_with_timeline_and_logs(
    page: Any, flow_server: WebServer, shot: Any
) -> None:
    runs = flow_server.api("GET", "/api/v1/runs").json()["runs"]
    assert len(runs) == 1
    run_id = runs[0]["run_id"]
    page.goto(flow_server.base_url + "/runs", wait_until="domcontentloaded")
    listing = page.get_by_test_id("run-list")
    listing.wait_for(state="visible", timeout=WAIT_MS)
    row = listing.locator("tbody tr")
    assert row.count() == 1
    assert run_id in row.inner_text()
    assert "SUCCEEDED" in row.inner_text()
    shot(page, "runs")
    row.get_by_role("link", name=run_id).click()
    gantt = page.get_by_test_id("gantt")
    gantt.wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("location.pathname") == f"/runs/{run_id}"
    detail = flow_server.api("GET", f"/api/v1/runs/{run_id}").json()
    bars = gantt.locator("[data-task]")
    assert sorted(bars.evaluate_all("els => els.map(e => e.dataset.task)")) == sorted(
        t["task_id"] for t in detail["tasks"]
    )
    # Every task succeeded, drawn as a bar that starts no earlier than the run's first task.
    assert gantt.locator("g.state-succeeded rect.bar").count() == len(detail["tasks"])
    xs = gantt.locator("rect.bar").evaluate_all("els => els.map(e => +e.getAttribute('x'))")
    assert min(xs) >= 0
    first = min(detail["tasks"], key=lambda t: t["started_at"])
    first_bar = gantt.locator(f"[data-task='{first['task_id']}'] rect.bar")
    assert float(first_bar.get_attribute("x")) == pytest.approx(min(xs))
    lines = flow_server.api("GET", f"/api/v1/runs/{run_id}/logs").json()["lines"]
    if lines:
        logs = page.get_by_test_id("logs")
        logs.wait_for(state="visible", timeout=WAIT_MS)
        assert lines[0]["message"] in logs.inner_text()
    shot(page, "run")
    assert page.page_errors == []


def test_the_demo_tells_one_story(page: Any, flow_server: WebServer, shot: Any) -> None:
    """Item 20: the demo's headline tables are assets that ran, with lineage."""
    assets = {a["key"]: a for a in flow_server.api("GET", "/api/v1/assets").json()["assets"]}
    for key in ("raw.orders", "analytics.daily_revenue", "analytics.customer_lifetime_value"):
        assert assets[key]["last_materialization"] is not None, key
    page.goto(flow_server.base_url + "/tables/analytics/daily_revenue")
    graph = page.get_by_test_id("lineage-graph")
    graph.wait_for(state="visible", timeout=WAIT_MS)
    nodes = graph.locator("[data-node]").evaluate_all("es => es.map(e => e.dataset.node)")
    assert "raw.orders" in nodes
    # Declared by the demo catalog and observed by the run: a solid edge.
    edge = graph.locator("[data-edge='raw.orders->analytics.daily_revenue']")
    assert "dashed" not in (edge.get_attribute("class") or "")
    # The catalog table has the demo's description and the run's columns.
    assert "Revenue per day" in page.locator(".description").first.inner_text()
    shot(page, "daily-revenue")
    edges = flow_server.api("GET", "/api/v1/lineage/edges").json()["items"]
    seen = {(e["source"], e["target"]): e for e in edges}
    assert seen["raw.orders", "analytics.daily_revenue"]["declared"]
    assert seen["raw.orders", "analytics.daily_revenue"]["observed"]
    assert page.page_errors == []


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_assets_runs_and_run_pages_are_accessible(
    new_page: Any, flow_server: WebServer, size: str, shot: Any
) -> None:
    """Items 15 and 16 on the flow pages: axe-core finds nothing serious, nothing makes
    a phone scroll sideways, and the Gantt bars stay on screen."""
    pg = new_page(*((1400, 900) if size == "desktop" else PHONE))
    run_id = flow_server.api("GET", "/api/v1/runs").json()["runs"][-1]["run_id"]
    for path, ready in (
        ("/assets", "[data-testid=asset-graph]"),
        ("/assets?asset=raw.orders", "[data-testid=asset-panel]"),
        ("/runs", "[data-testid=run-list]"),
        (f"/runs/{run_id}", "[data-testid=gantt] svg"),
    ):
        pg.goto(flow_server.base_url + path, wait_until="domcontentloaded")
        pg.wait_for_selector(ready, state="visible", timeout=WAIT_MS)
        assert axe_serious(pg) == [], path
        assert fits_width(pg) == [], path
        if size == "phone":
            shot(pg, path.strip("/").replace("/", "_").replace("?", "_"))
    assert "Run " in pg.title()
    gantt = pg.get_by_test_id("gantt").bounding_box()
    for bar in pg.get_by_test_id("gantt").locator("rect.bar").all():
        b = bar.bounding_box()
        assert b["width"] >= 2
        assert gantt["x"] <= b["x"]
        assert b["x"] + b["width"] <= gantt["x"] + gantt["width"] + 0.5
    assert pg.page_errors == []


def test_phone_asset_panel_keeps_the_graph(phone: Any, flow_server: WebServer) -> None:
    """Item 15: at 390 px a selected asset's panel goes below the graph, not over it."""
    phone.goto(flow_server.base_url + "/assets?asset=analytics.daily_revenue")
    panel = phone.get_by_test_id("asset-panel")
    panel.wait_for(state="visible", timeout=WAIT_MS)
    graph = phone.get_by_test_id("asset-graph").bounding_box()
    assert graph["width"] >= PHONE[0] - 40
    assert graph["height"] >= 150
    box = panel.bounding_box()
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE[0]
    assert box["y"] >= graph["y"] + graph["height"]
    assert phone.page_errors == []


def test_asset_panel_links_closes_and_has_a_url(page: Any, flow_server: WebServer) -> None:
    """Item 17: every asset node leads to pages that exist; the panel closes with its
    button or Esc, and each selected asset has its own URL."""
    page.goto(flow_server.base_url + "/assets", wait_until="domcontentloaded")
    graph = page.get_by_test_id("asset-graph")
    graph.locator("[data-node='analytics.daily_revenue']").click(timeout=WAIT_MS)
    panel = page.get_by_test_id("asset-panel")
    panel.wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("location.search") == "?asset=analytics.daily_revenue"
    assert "analytics.daily_revenue" in page.title()
    panel.get_by_test_id("close-panel").click()
    panel.wait_for(state="detached", timeout=WAIT_MS)
    assert page.evaluate("location.pathname + location.search") == "/assets"
    # Keyboard: Enter on a node opens the panel, Esc closes it.
    node = graph.locator("[data-node='raw.orders']")
    node.focus()
    page.keyboard.press("Enter")
    panel.wait_for(state="visible", timeout=WAIT_MS)
    page.keyboard.press("Escape")
    panel.wait_for(state="detached", timeout=WAIT_MS)
    assert page.evaluate("document.activeElement.dataset.node") == "raw.orders"
    # A URL opens the panel directly; its links lead to pages that exist.
    page.goto(flow_server.base_url + "/assets?asset=analytics.daily_revenue")
    panel.wait_for(state="visible", timeout=WAIT_MS)
    panel.get_by_test_id("open-table").click(timeout=WAIT_MS)
    page.wait_for_url(re.compile(r"/tables/analytics/daily_revenue$"), timeout=WAIT_MS)
    page.get_by_test_id("columns").wait_for(state="visible", timeout=WAIT_MS)
    page.go_back()
    panel.get_by_test_id("open-lineage").click(timeout=WAIT_MS)
    page.wait_for_url(re.compile(r"/lineage/analytics\.daily_revenue$"), timeout=WAIT_MS)
    facts = page.get_by_test_id("node-facts")
    facts.wait_for(state="visible", timeout=WAIT_MS)
    # The facts show first what the lineage answer says, then what the asset read
    # (its own request) adds: wait for that text instead of reading it at once.
    page.wait_for_function(
        "document.querySelector('[data-testid=node-facts]').innerText.includes('asset graph')",
        timeout=WAIT_MS,
    )
    assert "asset graph" in facts.inner_text()
    assert page.get_by_test_id("error").count() == 0
    assert page.page_errors == []


def test_gantt_has_a_legend_and_its_axis_agrees_with_the_run_time(
    page: Any, flow_server: WebServer
) -> None:
    """Item 18: the axis spans exactly the run's "ran" time; the queued line is explained."""
    run_id = flow_server.api("GET", "/api/v1/runs").json()["runs"][-1]["run_id"]
    page.goto(f"{flow_server.base_url}/runs/{run_id}")
    gantt = page.get_by_test_id("gantt")
    gantt.locator("svg").wait_for(state="visible", timeout=WAIT_MS)
    ticks = [t.text_content() for t in gantt.locator("[data-tick]").all()]
    assert ticks[0] == "0 ms"
    assert ticks[-1] == page.get_by_test_id("ran").inner_text()
    legend = page.get_by_test_id("gantt-legend").inner_text()
    assert "waiting to start" in legend
    assert "running" in legend


_FLAKY = """

@asset(namespace="analytics", description="Fails until FIXED exists", ins={"orders": "raw.orders"})
def flaky_report(orders: pa.Table) -> pa.Table:
    import pathlib

    if not (pathlib.Path(__file__).parent / "FIXED").exists():
        raise RuntimeError("the report service is down")
    return orders
"""


def test_rerun_and_rerun_from_failure(page: Any, tmp_path: Path) -> None:
    """Item 18: a finished run offers re-run (the same tasks) and, when some task did not
    succeed, re-run from failure (only those); the worker runs what the UI queued."""
    store_url = f"file://{tmp_path / 'store'}"
    subprocess.run([*ARCO, "init", "demo"], cwd=tmp_path, check=True, capture_output=True)
    project = tmp_path / "demo"
    module = project / "demo_pipeline"
    with (module / "assets.py").open("a") as out:
        out.write(_FLAKY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    scope = ["--store", store_url, "--tenant", TENANT, "--workspace", WORKSPACE]
    failed = subprocess.run(
        [*ARCO, *scope, "run", "*"], cwd=project, env=env, capture_output=True, timeout=180
    )
    assert failed.returncode != 0
    with run_web_server(
        store_url, tmp_path / "srv", dev=True, env={"ARCO_PROJECT_DIR": str(project)}
    ) as server:
        first = server.api("GET", "/api/v1/runs").json()["runs"][0]
        assert first["state"] == "FAILED"
        tasks = server.api("GET", f"/api/v1/runs/{first['run_id']}").json()["tasks"]
        page.goto(f"{server.base_url}/runs/{first['run_id']}")
        retry = page.get_by_test_id("rerun-failed")
        assert retry.inner_text(timeout=WAIT_MS) == "Re-run from failure (1)"
        (module / "FIXED").write_text("")
        retry.click()
        page.wait_for_url(re.compile(r"/runs/(?!" + first["run_id"] + ")"), timeout=WAIT_MS)
        second = page.evaluate("location.pathname").rsplit("/", 1)[-1]
        arco("worker", "--once", "--executor", "inline", cwd=project, store_url=store_url)
        redo = server.api("GET", f"/api/v1/runs/{second}").json()
        assert redo["parent_run_id"] == first["run_id"]
        assert redo["state"] == "SUCCEEDED"
        assert [t["asset_key"] for t in redo["tasks"]] == ["analytics.flaky_report"]
        # The page of the new run follows it to the end, then offers a full re-run.
        page.get_by_test_id("rerun").wait_for(state="visible", timeout=WAIT_MS)
        assert page.get_by_test_id("rerun-failed").count() == 0
        # Re-run of the first run: the same tasks again (selection and partitions).
        page.goto(f"{server.base_url}/runs/{first['run_id']}")
        page.get_by_test_id("rerun").click(timeout=WAIT_MS)
        page.wait_for_url(re.compile(r"/runs/(?!" + first["run_id"] + ")"), timeout=WAIT_MS)
        third = page.evaluate("location.pathname").rsplit("/", 1)[-1]
        arco("worker", "--once", "--executor", "inline", cwd=project, store_url=store_url)
        again = server.api("GET", f"/api/v1/runs/{third}").json()
        assert again["state"] == "SUCCEEDED"
        assert sorted((t["asset_key"], t["partition"]) for t in again["tasks"]) == sorted(
            (t["asset_key"], t["partition"]) for t in tasks
        )
    assert page.page_errors == []


def test_materialize_asks_first_and_picks_partitions(
    page: Any, flow_server: WebServer, shot: Any
) -> None:
    """Item 18: Materialize shows what will run and lets one pick a partition; Esc or
    Cancel queue nothing. Runs last in this module: it adds runs (they stay QUEUED)."""
    key = "analytics.daily_revenue"
    before = {r["run_id"] for r in flow_server.api("GET", "/api/v1/runs").json()["runs"]}
    page.goto(flow_server.base_url + "/assets?asset=" + key, wait_until="domcontentloaded")
    page.get_by_test_id("materialize").click(timeout=WAIT_MS)
    dialog = page.get_by_test_id("materialize-dialog")
    dialog.wait_for(state="visible", timeout=WAIT_MS)
    picker = dialog.get_by_test_id("partition-picker")
    picker.wait_for(state="visible", timeout=WAIT_MS)
    options = picker.locator("option").all_inner_texts()
    assert options == ["all 3 partitions", "2024-01-01", "2024-01-02", "2024-01-03"]
    assert "3 tasks will run" in dialog.get_by_test_id("plan-summary").inner_text()
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached", timeout=WAIT_MS)
    page.get_by_test_id("materialize").click()
    picker.select_option("2024-01-02")
    assert "1 task will run" in dialog.get_by_test_id("plan-summary").inner_text()
    shot(page, "materialize-dialog")
    dialog.get_by_test_id("confirm-materialize").click()
    page.get_by_test_id("run-title").wait_for(state="visible", timeout=WAIT_MS)
    runs = flow_server.api("GET", "/api/v1/runs").json()["runs"]
    new = [r for r in runs if r["run_id"] not in before]
    assert len(new) == 1
    assert new[0]["selection"] == key
    assert page.evaluate("location.pathname") == f"/runs/{new[0]['run_id']}"
    assert "QUEUED" in page.get_by_test_id("run-title").inner_text()
    shot(page, "queued-run")
    project = flow_server.project  # type: ignore[attr-defined]
    arco("worker", "--once", "--executor", "inline", cwd=project, store_url=flow_server.store_url)
    tasks = flow_server.api("GET", f"/api/v1/runs/{new[0]['run_id']}").json()["tasks"]
    assert [(t["asset_key"], t["partition"]) for t in tasks] == [(key, "2024-01-02")]
    assert page.page_errors == []
