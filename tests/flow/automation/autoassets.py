"""Assets, schedules, sensors and checks used by the automation tests."""

from __future__ import annotations

import os
from pathlib import Path

from arco import asset
from arco.flow.automation import (
    CheckResult,
    Output,
    RunRequest,
    SensorResult,
    asset_check,
    schedule,
    sensor,
)
from arco.flow.partitions import DailyPartitions

DAYS = DailyPartitions(start="2024-01-01", end="2030-01-01", timezone="UTC")


def _state() -> Path:
    return Path(os.environ.get("ARCO_TEST_STATE", "/nonexistent"))


@asset(namespace="auto")
def source() -> int:
    return 1


@asset(namespace="auto", partitions=DAYS)
def daily(context) -> dict[str, str]:  # type: ignore[no-untyped-def]
    bad = _state() / "bad_days"
    if bad.exists() and str(context.partition_key) in bad.read_text().split():
        raise RuntimeError(f"bad day {context.partition_key}")
    return {"day": str(context.partition_key)}


@asset(namespace="auto", partitions=DAYS)
def daily_total(daily: dict[str, str]) -> Output:
    # An inline check with the value: the day key is echoed back.
    return Output({"total": daily["day"]}, checks=[CheckResult(passed=True, name="has_day")])


@asset(namespace="auto", partitions=DAYS)
def daily_report(daily_total: dict[str, str]) -> str:
    return f"report {daily_total['total']}"


@asset_check(asset=daily, blocking=True, description="the day is not on the blocklist")
def not_blocked(value: dict[str, str]) -> CheckResult:
    blocked = _state() / "blocked_days"
    days = blocked.read_text().split() if blocked.exists() else []
    return CheckResult(passed=value["day"] not in days, metadata={"day": value["day"]})


@asset_check(asset=daily, severity="warn")
def looks_fine(value: dict[str, str]) -> bool:
    return True


@schedule(
    cron="0 2 * * *", timezone="Europe/Berlin", selection="auto.daily", partitions="last_complete"
)
def nightly(context):  # type: ignore[no-untyped-def]
    """The day that just ended, at 02:00 Berlin time."""
    return None


@schedule(cron="*/15 * * * *", selection="auto.source")
def quarterly(context):  # type: ignore[no-untyped-def]
    return None


@sensor(interval_seconds=60, selection="auto.source")
def files(context):  # type: ignore[no-untyped-def]
    inbox = _state() / "inbox"
    names = sorted(p.name for p in inbox.iterdir()) if inbox.exists() else []
    new = [n for n in names if context.cursor is None or n > context.cursor]
    if (_state() / "sensor_raises").exists():
        raise RuntimeError("the inbox is unreachable")
    return SensorResult(
        run_requests=[RunRequest(run_key=n) for n in new], cursor=new[-1] if new else None
    )
