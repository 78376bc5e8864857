"""Backfills (chunks, limit, status per partition, retry), sensors (cursor, errors
with backoff), alerts to a real loopback webhook, and a daemon killed mid-tick."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from arco.core.storage import ObjectStore, open_store
from arco.core.storage.faults import FaultInjectingStore, SimulatedCrash
from arco.flow.automation import alerts
from arco.flow.automation.backfills import change_backfill, create_backfill, progress
from arco.flow.automation.config import AutomationConfig, build
from arco.flow.automation.schedules import ScheduleDef
from arco.flow.automation.state import StateStore
from arco.flow.automation.tick import Automation
from arco.flow.definitions import Definitions
from arco.flow.queue import queued_runs
from arco.flow.runview import RunsReader
from arco.flow.worker import RunWorker

from .conftest import SCOPE

T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)


def _work(store: ObjectStore, store_url: str, defs: Definitions) -> list[str]:
    return RunWorker(store, SCOPE, defs, store_url=store_url).poll_once()


def _auto(store: ObjectStore, defs: Definitions, **kw: Any) -> Automation:
    auto = build(store, SCOPE, defs, **kw)
    auto.schedules = {}
    return auto


def test_a_backfill_runs_in_chunks_under_its_limit_and_retries_failed_partitions(
    store: ObjectStore, store_url: str, defs: Definitions, state_dir: Path
) -> None:
    (state_dir / "bad_days").write_text("2024-01-03")
    bf = create_backfill(
        store, SCOPE, defs, "auto.daily", "2024-01-01", "2024-01-05", chunk_size=2, max_runs=2
    )
    assert [list(c) for c in bf.chunks] == [
        ["2024-01-01", "2024-01-02"],
        ["2024-01-03", "2024-01-04"],
        ["2024-01-05"],
    ]
    auto = _auto(store, defs)
    auto.sensors = {}
    first = auto.tick(T0)
    assert len(first.launched) == 2  # the limit
    assert auto.tick(T0).launched == []  # still two unfinished
    _work(store, store_url, defs)
    assert len(auto.tick(T0 + timedelta(seconds=1)).launched) == 1
    _work(store, store_url, defs)
    auto.tick(T0 + timedelta(seconds=2))
    shown = progress(store, SCOPE, bf.backfill_id)
    assert shown["state"] == "FAILED"
    assert shown["assets"]["auto.daily"] == {
        "2024-01-01": "materialized",
        "2024-01-02": "materialized",
        "2024-01-03": "failed",
        "2024-01-04": "materialized",
        "2024-01-05": "materialized",
    }
    (state_dir / "bad_days").write_text("")
    change_backfill(store, SCOPE, bf.backfill_id, "retry")
    retry = auto.tick(T0 + timedelta(seconds=3))
    assert [r["run_key"] for r in retry.launched] == [f"backfill:{bf.backfill_id}:1:2"]
    _work(store, store_url, defs)
    auto.tick(T0 + timedelta(seconds=4))
    shown = progress(store, SCOPE, bf.backfill_id)
    assert shown["state"] == "COMPLETED"
    assert set(shown["assets"]["auto.daily"].values()) == {"materialized"}


def test_a_paused_backfill_launches_nothing_until_resumed(
    store: ObjectStore, defs: Definitions
) -> None:
    bf = create_backfill(store, SCOPE, defs, "auto.daily", "2024-01-01", "2024-01-03")
    change_backfill(store, SCOPE, bf.backfill_id, "pause")
    auto = _auto(store, defs)
    auto.sensors = {}
    assert auto.tick(T0).launched == []
    change_backfill(store, SCOPE, bf.backfill_id, "resume")
    assert len(auto.tick(T0).launched) == 3


def test_a_sensor_keeps_its_cursor_and_a_failing_one_backs_off_without_stopping_others(
    store: ObjectStore, defs: Definitions, state_dir: Path
) -> None:
    inbox = state_dir / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text("1")
    auto = _auto(store, defs)
    first = auto.tick(T0)
    assert [r["run_key"] for r in first.launched] == ["sensor:files:a.csv"]
    assert auto.tick(T0 + timedelta(seconds=10)).launched == []  # not due (60 s)
    (inbox / "b.csv").write_text("2")
    again = auto.tick(T0 + timedelta(seconds=61))
    assert [r["run_key"] for r in again.launched] == ["sensor:files:b.csv"]
    (state_dir / "sensor_raises").write_text("1")
    failing = auto.tick(T0 + timedelta(seconds=130))
    assert failing.errors
    assert "unreachable" in failing.errors[0]
    entry = StateStore(store, SCOPE).load()[0].sensors["files"]
    assert entry["failures"] == 1
    assert entry["cursor"] == "b.csv"  # kept
    (state_dir / "sensor_raises").unlink()
    assert auto.tick(T0 + timedelta(seconds=150)).sensors_evaluated == []  # backing off
    assert len(queued_runs(store, SCOPE)) == 2


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(503)
        else:
            _Hook.received.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Any:
    _Hook.received = []
    _Hook.fail_first = 1
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_a_failed_run_and_a_blocking_check_alert_a_webhook_with_retries(
    store: ObjectStore,
    store_url: str,
    defs: Definitions,
    state_dir: Path,
    webhook: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(alerts, "BACKOFF_SECONDS", 0.01)
    config = AutomationConfig(
        webhooks=(
            alerts.Webhook("ops", webhook, "json"),
            alerts.Webhook("chat", webhook, "slack", ("run_failed",)),
        )
    )
    auto = _auto(store, defs, config=config)
    auto.sensors = {}
    auto.tick(T0)  # the watch starts from now
    (state_dir / "blocked_days").write_text("2024-01-02")
    create_backfill(store, SCOPE, defs, "auto.daily+", "2024-01-02", "2024-01-02")
    auto.tick(T0 + timedelta(seconds=1))
    _work(store, store_url, defs)
    report = auto.tick(T0 + timedelta(seconds=2))
    kinds = sorted(b.get("kind", "slack") for b in _Hook.received)
    assert kinds == ["check_failed", "run_failed", "slack"]
    slack = next(b for b in _Hook.received if "text" in b and "kind" not in b)
    assert "failed" in slack["text"]
    assert report.errors == []  # the first 503 was retried
    # Nothing twice.
    auto.tick(T0 + timedelta(seconds=3))
    assert len(_Hook.received) == 3


def test_a_daemon_killed_at_any_store_call_of_a_tick_loses_and_repeats_nothing(
    store: ObjectStore, defs: Definitions
) -> None:
    sched = ScheduleDef(name="often", cron="*/5 * * * *", selection="auto.source", max_catchup=3)
    start = Automation(store, SCOPE, defs, holder="setup")
    start.schedules, start.sensors = {"often": sched}, {}
    start.tick(T0)
    n = 0
    while True:
        faulty = FaultInjectingStore(store)
        faulty.arm("crash", "after" if n % 2 else "before", call=n // 2)
        dying = Automation(faulty, SCOPE, defs, holder=f"d{n}")
        dying.schedules, dying.sensors = {"often": sched}, {}
        now = T0 + timedelta(minutes=15 * (n + 1))
        try:
            dying.tick(now)
            crashed = False
        except SimulatedCrash:
            crashed = True
        heir = Automation(store, SCOPE, defs, holder=f"h{n}")
        heir.schedules, heir.sensors = {"often": sched}, {}
        heir.tick(now)
        # Every tick of the 15 minutes is launched exactly once.
        assert len(queued_runs(store, SCOPE)) == 3 * (n + 1), n
        assert StateStore(store, SCOPE).load()[0].pending == {}
        n += 1
        if not crashed:
            break
    assert n > 10


def test_a_daemon_killed_while_queueing_a_backfill_in_one_batch_loses_and_repeats_nothing(
    tmp_path: Path, defs: Definitions
) -> None:
    # Six chunks: the flush queues them through enqueue_many's concurrent phases.
    n = 0
    while True:
        store = open_store(f"file://{tmp_path}/s{n}")
        bf = create_backfill(
            store, SCOPE, defs, "auto.daily", "2024-01-01", "2024-01-06", max_runs=10
        )
        faulty = FaultInjectingStore(store)
        faulty.arm("crash", "after" if n % 2 else "before", call=n // 2)
        try:
            _auto(faulty, defs, holder="dying").tick(T0)
            crashed = False
        except SimulatedCrash:
            crashed = True
        _auto(store, defs, holder="heir").tick(T0 + timedelta(seconds=1))
        state = StateStore(store, SCOPE).load()[0]
        assert state.pending == {}, n
        chunks = state.backfills[bf.backfill_id]["chunks"]
        run_ids = sorted(c["run_id"] for c in chunks.values())
        assert len(run_ids) == 6, n
        assert queued_runs(store, SCOPE) == run_ids, n  # each chunk queued once
        runs = RunsReader(store, SCOPE).view().runs
        assert sorted(runs) == run_ids, n  # one run.created each (duplicates fold once)
        n += 1
        if not crashed:
            break
    assert n > 20
