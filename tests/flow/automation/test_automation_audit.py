"""The automation daemon's launches are in the audit trail (issue #16): one record
per run it queued or failed to, never one for a tick that launched nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from arco.core.storage import ObjectStore
from arco.flow.automation.schedules import ScheduleDef
from arco.flow.automation.tick import Automation
from arco.flow.definitions import Definitions
from arco.governance.audit import read_audit

from .conftest import SCOPE

BERLIN = ZoneInfo("Europe/Berlin")


def _launch_rows(store: ObjectStore) -> list[dict[str, object]]:
    return [r for r in read_audit(store, SCOPE) if r["action"] == "automation run launch"]


def test_a_scheduled_launch_is_audited_once_with_its_run_and_key(
    store: ObjectStore, defs: Definitions
) -> None:
    auto = Automation(store, SCOPE, defs, holder="daemon-a")
    auto.schedules, auto.sensors = {"nightly": defs.schedules["nightly"]}, {}
    auto.tick(datetime(2024, 5, 1, 12, tzinfo=BERLIN))
    assert _launch_rows(store) == []  # nothing launched, nothing recorded
    report = auto.tick(datetime(2024, 5, 2, 2, tzinfo=BERLIN))
    (launched,) = report.launched
    # A retried tick and a second daemon launch nothing, so record nothing.
    auto.tick(datetime(2024, 5, 2, 2, tzinfo=BERLIN))
    (row,) = _launch_rows(store)
    assert row["target"] == launched["run_id"]
    assert row["outcome"] == "ok"
    assert row["source"] == "automation"
    assert row["tenant"] == SCOPE.tenant
    assert row["workspace"] == SCOPE.workspace
    assert row["actor"]
    assert row["request_id"]
    detail = json.loads(str(row["detail_json"]))
    assert detail == {
        "run_key": launched["run_key"],
        "origin": "schedule:nightly",
        "holder": "daemon-a",
    }


def test_a_launch_that_fails_to_plan_is_audited_as_an_error(
    store: ObjectStore, defs: Definitions
) -> None:
    auto = Automation(store, SCOPE, defs, holder="a")
    auto.schedules, auto.sensors = {"nightly": defs.schedules["nightly"]}, {}
    auto.tick(datetime(2023, 12, 30, 12, tzinfo=BERLIN))
    report = auto.tick(datetime(2023, 12, 31, 2, 5, tzinfo=BERLIN))
    assert report.launched == []
    assert report.failed
    (row,) = _launch_rows(store)
    assert row["outcome"] == "error"
    assert row["target"] is None
    assert "outside" in json.loads(str(row["detail_json"]))["reason"]


def test_racing_daemons_audit_each_launch_once(store: ObjectStore, defs: Definitions) -> None:
    sched = ScheduleDef(name="often", cron="*/5 * * * *", selection="auto.source")
    autos = []
    for holder in ("a", "b"):
        auto = Automation(store, SCOPE, defs, holder=holder)
        auto.schedules, auto.sensors = {"often": sched}, {}
        autos.append(auto)
    t0 = datetime(2024, 5, 1, 10, 1, tzinfo=UTC)
    autos[0].tick(t0)
    launched = []
    for step in range(1, 5):
        for auto in autos:
            launched += [r["run_id"] for r in auto.tick(t0 + timedelta(minutes=5 * step)).launched]
    rows = _launch_rows(store)
    assert sorted(str(r["target"]) for r in rows) == sorted(launched)
    assert len(launched) == 4


def test_a_trail_that_cannot_be_written_does_not_undo_the_launch(
    store: ObjectStore, defs: Definitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    import arco.governance.audit as audit

    def broken(*_a: object, **_k: object) -> None:
        raise OSError("audit store is read-only")

    monkeypatch.setattr(audit, "write_audit_many", broken)
    auto = Automation(store, SCOPE, defs, holder="a")
    auto.schedules, auto.sensors = {"nightly": defs.schedules["nightly"]}, {}
    auto.tick(datetime(2024, 5, 1, 12, tzinfo=BERLIN))
    report = auto.tick(datetime(2024, 5, 2, 2, tzinfo=BERLIN))
    assert len(report.launched) == 1
    assert any("audit trail not written" in e for e in report.errors)
