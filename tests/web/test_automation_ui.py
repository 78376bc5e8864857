"""Issue #15 in Chromium: the Automation pages (schedules, sensors, backfills), check
results on the asset and run pages, and freshness on the assets page.

The server serves ``tests/flow/automation/apiassets.py`` (two schedules, a sensor, a
partitioned asset with a blocking check, a freshness policy); ticks and runs happen in
this process with the library, as ``arco daemon`` and a run worker would, and every
assertion compares what the page shows with what the API answers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from arco.core import Scope
from arco.core.storage import ObjectStore, open_store
from arco.flow.automation.config import build
from arco.flow.automation.tick import Automation
from arco.flow.definitions import Definitions, load_definitions
from arco.flow.planner import plan
from arco.flow.runner import RunOptions, Scheduler
from arco.flow.worker import RunWorker

from .conftest import (
    DESKTOP,
    PHONE,
    TENANT,
    WAIT_MS,
    WORKSPACE,
    WebServer,
    axe_serious,
    fits_width,
    run_web_server,
)

pytestmark = pytest.mark.timeout(300)

AUTO_TESTS = Path(__file__).resolve().parents[1] / "flow" / "automation"
SCOPE = Scope(TENANT, WORKSPACE)
MODULES = ("apiassets", "autoassets")


@dataclass
class Auto:
    """The served project, its store and the state files its assets read."""

    server: WebServer
    store: ObjectStore
    store_url: str
    state: Path
    defs: Definitions
    run_id: str

    def get(self, path: str, **kw: Any) -> Any:
        return self.server.api("GET", "/api/v1" + path, **kw).json()

    def automation(self, *, schedules: bool, sensors: bool) -> Automation:
        auto = build(self.store, SCOPE, self.defs)
        if not schedules:
            auto.schedules = {}
        if not sensors:
            auto.sensors = {}
        return auto

    def work(self) -> list[str]:
        """Execute every queued run, as a worker would."""
        return RunWorker(self.store, SCOPE, self.defs, store_url=self.store_url).poll_once()

    def materialize(self, selection: str, partitions: list[str] | None = None) -> str:
        return (
            Scheduler(
                self.store,
                SCOPE,
                self.defs,
                store_url=self.store_url,
                options=RunOptions(register_tables=False),
            )
            .run(plan(self.defs, selection, partitions=partitions))
            .run_id
        )


@pytest.fixture(scope="module")
def auto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Auto]:
    """A dev server over the automation project, after one run whose blocking check
    failed on 2024-02-02."""
    workdir = tmp_path_factory.mktemp("web-auto")
    state = workdir / "state"
    state.mkdir()
    (state / "blocked_days").write_text("2024-02-02")
    store_url = f"file://{workdir / 'store'}"
    old_state = os.environ.get("ARCO_TEST_STATE")
    os.environ["ARCO_TEST_STATE"] = str(state)
    env = {
        "ARCO_PROJECT_MODULE": "apiassets",
        "ARCO_PROJECT_DIR": str(AUTO_TESTS),
        "ARCO_TEST_STATE": str(state),
        "PYTHONPATH": os.pathsep.join([str(AUTO_TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    for name in MODULES:
        sys.modules.pop(name, None)
    try:
        defs = load_definitions("apiassets", path=AUTO_TESTS)
        store = open_store(store_url)
        with run_web_server(store_url, workdir / "srv", dev=True, env=env) as server:
            made = Auto(server, store, store_url, state, defs, "")
            made.run_id = made.materialize("auto.daily+", ["2024-02-01", "2024-02-02"])
            yield made
    finally:
        if str(AUTO_TESTS) in sys.path:
            sys.path.remove(str(AUTO_TESTS))
        for name in MODULES:
            sys.modules.pop(name, None)
        if old_state is None:
            os.environ.pop("ARCO_TEST_STATE", None)
        else:
            os.environ["ARCO_TEST_STATE"] = old_state


def open_page(pg: Any, auto: Auto, path: str, ready: str) -> None:
    pg.goto(auto.server.base_url + path, wait_until="domcontentloaded")
    pg.wait_for_selector(ready, state="visible", timeout=WAIT_MS)


def shown_when(iso: str) -> str:
    """An instant as the UI's ``when()`` writes it."""
    stamp = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%SZ")


def test_failed_blocking_check_shows_on_the_asset_and_run_pages_and_freshness(
    page: Any, auto: Auto
) -> None:
    latest = auto.get("/asset-checks", params={"asset": "auto.daily", "latest": True})["results"]
    failed = [r for r in latest if not r["passed"]]
    assert [(r["check"], r["partition"], r["blocking"]) for r in failed] == [
        ("not_blocked", "2024-02-02", True)
    ]
    open_page(page, auto, "/assets?asset=auto.daily", "[data-testid=check-results]")
    table = page.get_by_test_id("asset-panel").get_by_test_id("check-results")
    rows = table.locator("[data-check]")
    got = rows.evaluate_all(
        "els => els.map(e => [e.dataset.check, e.dataset.partition, e.dataset.passed])"
    )
    assert sorted(got) == sorted(
        [r["check"], r["partition"], str(r["passed"]).lower()] for r in latest
    )
    bad = table.locator("[data-check=not_blocked][data-partition='2024-02-02']")
    text = bad.inner_text()
    assert "failed" in text
    assert "blocking" in text
    assert failed[0]["severity"] in text
    assert shown_when(failed[0]["evaluated_at"]) in text
    bad.get_by_role("link", name=auto.run_id).click()
    page.wait_for_function(f"location.pathname === '/runs/{auto.run_id}'", timeout=WAIT_MS)

    # The run page lists the checks that ran in that run.
    by_run = auto.get("/asset-checks", params={"run_id": auto.run_id})["results"]
    run_checks = page.get_by_test_id("check-results")
    run_checks.wait_for(state="visible", timeout=WAIT_MS)
    run_rows = run_checks.locator("tbody tr")
    assert run_rows.count() == len(by_run)
    assert {r["asset"] for r in by_run} == {"auto.daily", "auto.daily_total"}
    failed_row = run_checks.locator("tr[data-passed=false]")
    assert failed_row.count() == 1
    assert "not_blocked" in failed_row.inner_text()
    assert "2024-02-02" in failed_row.inner_text()
    assert "failed" in failed_row.inner_text()
    assert "yes" in failed_row.inner_text()  # blocking

    # Freshness: auto.source has a policy and was never materialized: overdue.
    assets = {a["key"]: a for a in auto.get("/assets")["assets"]}
    assert assets["auto.source"]["freshness"] == "overdue"
    open_page(page, auto, "/assets?asset=auto.source", "[data-testid=asset-freshness]")
    assert page.get_by_test_id("asset-freshness").inner_text() == "overdue"
    assert page.get_by_test_id("overdue-count").inner_text() == "1"
    assert "OVERDUE" in page.locator("[data-node='auto.source']").text_content()
    assert "OVERDUE" not in page.locator("[data-node='auto.daily']").text_content()
    auto.materialize("auto.source")
    assert auto.get("/freshness")["assets"][0]["state"] == "fresh"
    # The page polls: it follows the API without a reload.
    page.wait_for_function(
        "document.querySelector('[data-testid=asset-freshness]').innerText === 'fresh'",
        timeout=WAIT_MS,
    )
    assert page.get_by_test_id("overdue-count").inner_text() == "0"
    assert page.page_errors == []


def test_schedules_page_shows_ticks_with_runs_and_toggles_through_the_api(
    page: Any, auto: Auto
) -> None:
    ticker = auto.automation(schedules=True, sensors=False)
    ticker.tick(datetime(2024, 5, 1, 10, tzinfo=UTC))
    launched = ticker.tick(datetime(2024, 5, 2, 0, 0, 30, tzinfo=UTC)).launched
    assert launched
    schedules = {s["name"]: s for s in auto.get("/schedules")["schedules"]}
    nightly = schedules["nightly"]
    page.goto(auto.server.base_url + "/catalog", wait_until="domcontentloaded")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Automation").click()
    listing = page.get_by_test_id("schedule-list")
    listing.wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("location.pathname") == "/automation/schedules"
    names = listing.locator("tbody tr").evaluate_all("els => els.map(e => e.dataset.schedule)")
    assert sorted(names) == sorted(schedules)
    row = listing.locator("tr[data-schedule=nightly]")
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == nightly["cron"] == "0 2 * * *"
    assert cells[2] == nightly["timezone"] == "Europe/Berlin"
    assert cells[3] == f"{nightly['selection']} [{nightly['partitions']}]"
    assert row.get_by_test_id("next-tick").inner_text() == shown_when(nightly["next_tick"])
    ticks = page.get_by_test_id("ticks-nightly").locator("tbody tr")
    assert ticks.count() == len(nightly["history"]) >= 1
    tick = nightly["history"][0]
    first = ticks.first
    assert shown_when(tick["scheduled_at"]) in first.inner_text()
    assert tick["status"] in first.inner_text()
    run_id = tick["runs"][0]["run_id"]
    assert run_id in {r["run_id"] for r in launched}
    assert tick["runs"][0]["state"] in first.inner_text()
    quarterly_rows = page.get_by_test_id("ticks-quarterly").locator("tbody tr")
    assert quarterly_rows.count() == len(schedules["quarterly"]["history"])
    assert "missed" in page.get_by_test_id("ticks-quarterly").inner_text()

    # Off from the UI: the API says so; on again.
    switch = row.get_by_role("switch")
    assert switch.get_attribute("aria-checked") == "true"
    switch.click()
    page.wait_for_selector(
        "tr[data-schedule=nightly] [role=switch][aria-checked=false]", timeout=WAIT_MS
    )
    assert auto.get("/schedules/nightly")["enabled"] is False
    assert auto.get("/schedules/quarterly")["enabled"] is True
    assert row.get_by_test_id("next-tick").inner_text() == "off"
    switch.press("Enter")  # keyboard-usable
    page.wait_for_selector(
        "tr[data-schedule=nightly] [role=switch][aria-checked=true]", timeout=WAIT_MS
    )
    assert auto.get("/schedules/nightly")["enabled"] is True

    first.get_by_role("link", name=run_id).click()
    page.get_by_test_id("run-title").wait_for(state="visible", timeout=WAIT_MS)
    assert page.evaluate("location.pathname") == f"/runs/{run_id}"
    assert page.page_errors == []


def test_sensors_page_shows_cursor_evaluations_and_failure_backoff(page: Any, auto: Auto) -> None:
    ticker = auto.automation(schedules=False, sensors=True)
    inbox = auto.state / "inbox"
    inbox.mkdir(exist_ok=True)
    (inbox / "a.csv").write_text("x")
    t = datetime(2024, 6, 1, 12, tzinfo=UTC)
    ticker.tick(t)
    (auto.state / "sensor_raises").write_text("1")
    try:
        ticker.tick(t + timedelta(minutes=5))
    finally:
        (auto.state / "sensor_raises").unlink()
    files = auto.get("/sensors/files")
    assert files["failures"] == 1
    open_page(page, auto, "/automation/sensors", "[data-testid=sensor-list]")
    row = page.locator("tr[data-sensor=files]")
    assert row.get_by_test_id("cursor").inner_text() == files["cursor"] == "a.csv"
    health = row.get_by_test_id("health").inner_text()
    assert "failing" in health
    assert "1 consecutive failure" in health
    assert shown_when(files["next_evaluation"]) in health
    assert "60 s" in row.inner_text()  # interval_seconds=60
    section = page.get_by_test_id("evaluations-files")
    assert "the inbox is unreachable" in section.get_by_test_id("last-error").inner_text()
    evals = section.locator("tbody tr")
    assert evals.count() == len(files["history"]) == 2
    assert evals.evaluate_all("els => els.map(e => Number(e.dataset.evaluation))") == [
        e["evaluation"] for e in files["history"]
    ]
    assert "failed" in evals.nth(0).inner_text()
    assert "the inbox is unreachable" in evals.nth(0).inner_text()
    requested = files["history"][1]
    assert requested["status"] == "requested"
    evals.nth(1).get_by_role("link", name=requested["runs"][0]["run_id"]).wait_for(
        state="visible", timeout=WAIT_MS
    )

    row.get_by_role("switch").click()
    page.wait_for_selector(
        "tr[data-sensor=files] [role=switch][aria-checked=false]", timeout=WAIT_MS
    )
    assert auto.get("/sensors/files")["enabled"] is False
    row.get_by_role("switch").click()
    page.wait_for_selector(
        "tr[data-sensor=files] [role=switch][aria-checked=true]", timeout=WAIT_MS
    )
    assert auto.get("/sensors/files")["enabled"] is True
    assert page.page_errors == []


def bar_of(page: Any, asset: str) -> dict[str, str]:
    """The partition cells of an asset's bar: partition -> status."""
    cells = page.locator(f"[data-testid=partition-bar][data-asset='{asset}'] [data-partition]")
    return dict(cells.evaluate_all("els => els.map(e => [e.dataset.partition, e.dataset.status])"))


def counts_of(page: Any) -> dict[str, int]:
    legend = page.get_by_test_id("backfill-counts").locator("[data-count]")
    return {
        k: int(v)
        for k, v in legend.evaluate_all("els => els.map(e => [e.dataset.count, e.innerText])")
    }


def test_backfill_form_detail_partition_bar_and_actions(page: Any, auto: Auto) -> None:
    (auto.state / "bad_days").write_text("2024-03-03")
    before = {b["backfill_id"] for b in auto.get("/backfills")["backfills"]}
    open_page(page, auto, "/automation/backfills", "[data-testid=create-backfill]")
    page.get_by_label("Selection").fill("auto.daily")
    page.get_by_label("From partition").fill("2024-03-01")
    page.get_by_label("To partition").fill("2024-03-05")
    page.get_by_label("Partitions per run").fill("2")
    page.get_by_test_id("create-backfill").click()
    page.get_by_test_id("backfill-title").wait_for(state="visible", timeout=WAIT_MS)
    made = [b for b in auto.get("/backfills")["backfills"] if b["backfill_id"] not in before]
    assert len(made) == 1
    bf = made[0]
    assert (bf["selection"], bf["partitions"], bf["chunks"]) == ("auto.daily", 5, 3)
    assert page.evaluate("location.pathname") == f"/automation/backfills/{bf['backfill_id']}"
    days = [f"2024-03-0{i}" for i in range(1, 6)]
    assert bar_of(page, "auto.daily") == dict.fromkeys(days, "missing")
    assert counts_of(page) == {"materialized": 0, "failed": 0, "in progress": 0, "missing": 5}

    # Pause and resume from the page: the API follows.
    page.get_by_test_id("backfill-pause").click()
    page.wait_for_selector("[data-testid=backfill-resume]:not([disabled])", timeout=WAIT_MS)
    assert auto.get(f"/backfills/{bf['backfill_id']}")["state"] == "PAUSED"
    page.get_by_test_id("backfill-resume").click()
    page.wait_for_selector("[data-testid=backfill-pause]:not([disabled])", timeout=WAIT_MS)
    assert auto.get(f"/backfills/{bf['backfill_id']}")["state"] == "RUNNING"

    # A tick launches the three runs, a worker runs them: 2024-03-03 fails.
    ticker = auto.automation(schedules=False, sensors=False)
    now = datetime.now(UTC)
    assert len(ticker.tick(now).launched) == 3
    auto.work()
    ticker.tick(now + timedelta(seconds=1))
    shown = auto.get(f"/backfills/{bf['backfill_id']}")
    assert shown["assets"]["auto.daily"]["2024-03-03"] == "failed"
    assert shown["assets"]["auto.daily"]["2024-03-01"] == "materialized"
    page.wait_for_function(
        "document.querySelector(\"[data-partition='2024-03-03']\")?.dataset.status === 'failed'",
        timeout=WAIT_MS,
    )
    page.wait_for_selector("[data-testid=backfill-runs]", timeout=WAIT_MS)
    assert bar_of(page, "auto.daily") == shown["assets"]["auto.daily"]
    expected = {s: shown["counts"].get(s, 0) for s in ("materialized", "failed", "in progress")}
    assert counts_of(page) == {**expected, "missing": shown["counts"].get("missing", 0)}
    assert counts_of(page)["failed"] >= 1
    assert counts_of(page)["materialized"] >= 1
    bar = page.locator("[data-testid=partition-bar][data-asset='auto.daily']")
    assert (
        f"failed {shown['counts']['failed']}" in bar.get_by_test_id("partition-counts").inner_text()
    )
    runs = page.get_by_test_id("backfill-runs").locator("tbody tr")
    assert runs.count() == 3
    assert {r["run_id"] for r in shown["runs"].values()} == set(runs.locator("a").all_inner_texts())

    # Retry the failed partitions: the failed chunk becomes a new attempt.
    retry = page.get_by_test_id("backfill-retry")
    assert "(1)" in retry.inner_text()
    retry.click()
    page.wait_for_selector("[data-testid=backfill-retry][disabled]", timeout=WAIT_MS)
    after = auto.get(f"/backfills/{bf['backfill_id']}")
    assert after["state"] == "RUNNING"
    assert sorted(c["status"] for c in after["runs"].values()) == [
        "retry",
        "succeeded",
        "succeeded",
    ]

    # Cancel: the list shows it cancelled, and the actions are off.
    page.get_by_test_id("backfill-cancel").click()
    page.wait_for_selector("[data-testid=backfill-cancel][disabled]", timeout=WAIT_MS)
    assert auto.get(f"/backfills/{bf['backfill_id']}")["state"] == "CANCELLED"
    page.wait_for_selector("[data-testid=backfill-pause][disabled]", timeout=WAIT_MS)
    page.get_by_role("link", name="Backfills").first.click()
    listed = page.locator(f"tr[data-backfill='{bf['backfill_id']}']")
    listed.wait_for(state="visible", timeout=WAIT_MS)
    assert "CANCELLED" in listed.inner_text()
    assert "5: 2024-03-01 … 2024-03-05" in listed.inner_text()
    (auto.state / "bad_days").write_text("")
    assert page.page_errors == []


def test_backfill_form_shows_the_api_refusal(page: Any, auto: Auto) -> None:
    open_page(page, auto, "/automation/backfills", "[data-testid=create-backfill]")
    page.get_by_label("Selection").fill("auto.source")  # not partitioned
    page.get_by_label("From partition").fill("2024-03-01")
    page.get_by_label("To partition").fill("2024-03-02")
    page.get_by_test_id("create-backfill").click()
    error = page.get_by_test_id("backfill-error")
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert "400" in error.inner_text() or "partition" in error.inner_text().lower()
    assert page.evaluate("location.pathname") == "/automation/backfills"


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_automation_pages_are_accessible(
    new_page: Any, auto: Auto, viewport: str, shot: Any
) -> None:
    pg = new_page(*(DESKTOP if viewport == "desktop" else PHONE))
    backfills = auto.get("/backfills")["backfills"]
    pages = [
        ("/automation/schedules", "[data-testid=schedule-list]", "Schedules"),
        ("/automation/sensors", "[data-testid=sensor-list]", "Sensors"),
        ("/automation/backfills", "[data-testid=create-backfill]", "Backfills"),
        ("/assets?asset=auto.daily", "[data-testid=check-results]", "auto.daily"),
        (f"/runs/{auto.run_id}", "[data-testid=check-results]", "Run"),
    ]
    if backfills:
        pages.append(
            (
                f"/automation/backfills/{backfills[0]['backfill_id']}",
                "[data-testid=partition-bar]",
                "Backfill",
            )
        )
    for path, ready, words in pages:
        open_page(pg, auto, path, ready)
        pg.wait_for_function(f"document.title.includes({words!r})", timeout=WAIT_MS)
        assert axe_serious(pg) == [], path
        if viewport == "phone":
            assert fits_width(pg) == [], path
            shot(pg, path.strip("/").replace("/", "_").replace("?", "_"))
    assert pg.page_errors == []
