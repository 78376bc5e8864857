"""Asset graph, run list and run page in Chromium, over a project that really ran.

``arco init`` scaffolds the demo project, ``arco run '*'`` materializes it into the
store, and the server serves that project (``ARCO_PROJECT_DIR``) and store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import TENANT, WAIT_MS, WORKSPACE, WebServer, run_web_server

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
    subprocess.run([*ARCO, "init", "demo"], cwd=workdir, check=True, capture_output=True)
    project = workdir / "demo"
    arco("run", "*", cwd=project, store_url=store_url)
    env = {"ARCO_PROJECT_DIR": str(project)}
    with run_web_server(store_url, workdir / "srv", dev=True, env=env) as server:
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


def test_materialize_button_queues_a_run_and_opens_it(
    page: Any, flow_server: WebServer, shot: Any
) -> None:
    # Runs last in this module: it adds a run (no worker here, so it stays QUEUED).
    key = flow_server.api("GET", "/api/v1/assets").json()["assets"][0]["key"]
    before = {r["run_id"] for r in flow_server.api("GET", "/api/v1/runs").json()["runs"]}
    page.goto(flow_server.base_url + "/assets", wait_until="domcontentloaded")
    page.get_by_test_id("asset-graph").locator(f"[data-node='{key}']").click(timeout=WAIT_MS)
    page.get_by_test_id("materialize").click(timeout=WAIT_MS)
    page.get_by_test_id("run-title").wait_for(state="visible", timeout=WAIT_MS)
    runs = flow_server.api("GET", "/api/v1/runs").json()["runs"]
    new = [r for r in runs if r["run_id"] not in before]
    assert len(new) == 1
    assert new[0]["selection"] == key
    assert page.evaluate("location.pathname") == f"/runs/{new[0]['run_id']}"
    assert "QUEUED" in page.get_by_test_id("run-title").inner_text()
    shot(page, "queued-run")
    assert page.page_errors == []
