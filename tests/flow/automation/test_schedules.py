"""Schedules: cron in a time zone (DST edges on a frozen clock), run keys,
catch-up of missed ticks, and ``arco tick`` racing itself."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from arco.core.errors import InvalidArgumentError
from arco.core.storage import ObjectStore
from arco.flow.automation.cron import last_ticks, next_tick, ticks_between
from arco.flow.automation.schedules import ScheduleDef
from arco.flow.automation.tick import Automation
from arco.flow.definitions import Definitions
from arco.flow.queue import load_request, queued_runs
from arco.ledger.compactor import Compactor
from arco.sql.tables import SystemTables

from .conftest import SCOPE

BERLIN = ZoneInfo("Europe/Berlin")
NY = "America/New_York"


def _local(ticks: list[datetime], tz: str) -> list[str]:
    return [t.astimezone(ZoneInfo(tz)).isoformat() for t in ticks]


# ------------------------------------------------------------------ cron + DST
def test_spring_forward_runs_a_skipped_time_once_shifted_by_the_gap() -> None:
    # 2024-03-10 02:30 does not exist in New York: it runs at 03:30 EDT, once.
    got = ticks_between(
        "30 2 * * *", NY, datetime(2024, 3, 9, 12, tzinfo=UTC), datetime(2024, 3, 12, tzinfo=UTC)
    )
    assert _local(got, NY) == ["2024-03-10T03:30:00-04:00", "2024-03-11T02:30:00-04:00"]


def test_fall_back_runs_a_repeated_time_once() -> None:
    # 2024-11-03 01:30 happens twice in New York: a daily schedule runs at the first.
    got = ticks_between(
        "30 1 * * *", NY, datetime(2024, 11, 2, 12, tzinfo=UTC), datetime(2024, 11, 4, tzinfo=UTC)
    )
    assert _local(got, NY) == ["2024-11-03T01:30:00-04:00"]


def test_hourly_schedule_runs_every_real_hour_across_both_transitions() -> None:
    fall = ticks_between(
        "30 * * * *", NY, datetime(2024, 11, 3, 4, tzinfo=UTC), datetime(2024, 11, 3, 8, tzinfo=UTC)
    )
    assert _local(fall, NY) == [
        "2024-11-03T00:30:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-03T02:30:00-05:00",
    ]
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(fall))
    spring = ticks_between(
        "30 * * * *", NY, datetime(2024, 3, 10, 5, tzinfo=UTC), datetime(2024, 3, 10, 9, tzinfo=UTC)
    )
    assert _local(spring, NY) == [
        "2024-03-10T00:30:00-05:00",
        "2024-03-10T01:30:00-05:00",
        "2024-03-10T03:30:00-04:00",  # 02:30 does not exist; 03:30 runs once, not twice
        "2024-03-10T04:30:00-04:00",
    ]


def test_berlin_nightly_at_two_on_both_transition_days() -> None:
    spring = ticks_between(
        "0 2 * * *",
        "Europe/Berlin",
        datetime(2024, 3, 30, 12, tzinfo=UTC),
        datetime(2024, 4, 1, 12, tzinfo=UTC),
    )
    assert _local(spring, "Europe/Berlin") == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:00:00+02:00",
    ]
    autumn = ticks_between(
        "0 2 * * *",
        "Europe/Berlin",
        datetime(2024, 10, 26, 12, tzinfo=UTC),
        datetime(2024, 10, 28, 12, tzinfo=UTC),
    )
    assert _local(autumn, "Europe/Berlin") == [
        "2024-10-27T02:00:00+02:00",
        "2024-10-28T02:00:00+01:00",
    ]


def test_last_ticks_does_not_walk_a_month_of_minutes() -> None:
    got = last_ticks(
        "* * * * *", "UTC", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC), 2
    )
    assert got == [datetime(2024, 1, 31, 23, 59, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)]
    assert next_tick("0 0 30 2 *", "UTC", datetime(2024, 1, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("cron", "tz", "message"),
    [
        ("0 2 * *", "UTC", "5 fields"),
        ("61 2 * * *", "UTC", "not valid"),
        ("0 2 * * *", "Mars/Olympus", "unknown time zone"),
    ],
)
def test_bad_schedules_are_refused(cron: str, tz: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        ScheduleDef(name="bad", cron=cron, selection="*", timezone=tz)


# ------------------------------------------------------------------ ticks
def _auto(store: ObjectStore, defs: Definitions, holder: str = "a") -> Automation:
    auto = Automation(store, SCOPE, defs, holder=holder)
    auto.schedules = {"nightly": defs.schedules["nightly"]}
    auto.sensors = {}
    return auto


def _berlin(y: int, m: int, d: int, h: int, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=BERLIN)


def _tick_events(store: ObjectStore) -> list[dict[str, object]]:
    Compactor(store, SCOPE).compact("executions")
    table = SystemTables(store, SCOPE).table("events")
    return [r for r in table.to_pylist() if r["event_type"] == "schedule.ticked"]


def test_a_tick_launches_the_day_that_ended_under_a_deterministic_run_key(
    store: ObjectStore, defs: Definitions
) -> None:
    auto = _auto(store, defs)
    first = auto.tick(_berlin(2024, 5, 1, 12))
    assert first.launched == []  # a new schedule starts now
    assert auto.tick(_berlin(2024, 5, 2, 1, 59)).idle
    report = auto.tick(_berlin(2024, 5, 2, 2, 0))
    assert [r["run_key"] for r in report.launched] == ["schedule:nightly:2024-05-02T00:00:00Z"]
    run_id = report.launched[0]["run_id"]
    request = load_request(store, SCOPE, run_id)
    assert [t.task_id for t in request.plan.tasks] == ["auto.daily[2024-05-01]"]
    # The same tick again, a retried tick, another daemon: nothing new.
    assert auto.tick(_berlin(2024, 5, 2, 2, 0)).launched == []
    assert _auto(store, defs, "b").tick(_berlin(2024, 5, 2, 2, 1)).launched == []
    assert queued_runs(store, SCOPE) == [run_id]


def test_missed_ticks_are_recorded_and_only_the_last_is_caught_up(
    store: ObjectStore, defs: Definitions
) -> None:
    auto = _auto(store, defs)
    auto.tick(_berlin(2024, 5, 1, 12))
    # Down for five nights.
    report = auto.tick(_berlin(2024, 5, 6, 9))
    assert [r["run_key"] for r in report.launched] == ["schedule:nightly:2024-05-06T00:00:00Z"]
    assert report.missed == 4
    events = _tick_events(store)
    assert len(events) == 5
    assert len(queued_runs(store, SCOPE)) == 1


def test_max_catchup_bounds_how_many_missed_ticks_run(
    store: ObjectStore, defs: Definitions
) -> None:
    sched = ScheduleDef(name="often", cron="0 * * * *", selection="auto.source", max_catchup=3)
    auto = Automation(store, SCOPE, defs, holder="a")
    auto.schedules, auto.sensors = {"often": sched}, {}
    t0 = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    auto.tick(t0)
    report = auto.tick(t0 + timedelta(hours=10))
    assert [r["run_key"][-9:] for r in report.launched] == ["18:00:00Z", "19:00:00Z", "20:00:00Z"]
    assert report.missed == 7


def test_a_disabled_schedule_does_not_run_and_resumes_from_when_it_is_turned_on(
    store: ObjectStore, defs: Definitions
) -> None:
    auto = _auto(store, defs)
    auto.tick(_berlin(2024, 5, 1, 12))
    auto.set_schedule_enabled("nightly", False)
    assert auto.tick(_berlin(2024, 5, 2, 3)).launched == []
    auto.set_schedule_enabled("nightly", True, now=_berlin(2024, 5, 4, 12))
    assert auto.tick(_berlin(2024, 5, 4, 13)).launched == []  # no catch-up of the off time
    report = auto.tick(_berlin(2024, 5, 5, 2, 30))
    assert [r["run_key"] for r in report.launched] == ["schedule:nightly:2024-05-05T00:00:00Z"]


def test_a_tick_whose_partition_does_not_exist_is_recorded_as_failed(
    store: ObjectStore, defs: Definitions
) -> None:
    auto = _auto(store, defs)
    auto.tick(_berlin(2023, 12, 30, 12))
    report = auto.tick(_berlin(2023, 12, 31, 2, 5))  # 2023-12-30 is before the first day
    assert report.launched == []
    assert report.failed
    assert "outside" in report.failed[0]["reason"]
    assert queued_runs(store, SCOPE) == []
    (event,) = _tick_events(store)
    assert event["idempotency_key"].startswith("schedule.ticked:schedule:nightly:")


def test_two_daemons_racing_on_every_tick_launch_each_run_once(
    store: ObjectStore, defs: Definitions
) -> None:
    sched = ScheduleDef(name="often", cron="*/5 * * * *", selection="auto.source")
    autos = []
    for holder in ("a", "b", "c"):
        auto = Automation(store, SCOPE, defs, holder=holder)
        auto.schedules, auto.sensors = {"often": sched}, {}
        autos.append(auto)
    t0 = datetime(2024, 5, 1, 10, 1, tzinfo=UTC)
    autos[0].tick(t0)
    launched: list[str] = []
    lock = threading.Lock()
    for step in range(1, 9):
        now = t0 + timedelta(minutes=5 * step)
        barrier = threading.Barrier(len(autos))

        def go(auto: Automation, now: datetime = now, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            got = auto.tick(now)
            with lock:
                launched.extend(r["run_id"] for r in got.launched)

        threads = [threading.Thread(target=go, args=(a,)) for a in autos]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    runs = queued_runs(store, SCOPE)
    assert len(runs) == 8
    assert sorted(set(launched)) == runs
    Compactor(store, SCOPE).compact("executions")
    created = SystemTables(store, SCOPE).table("runs").to_pylist()
    assert len(created) == 8
