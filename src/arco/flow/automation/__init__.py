"""Automation: schedules, sensors, backfills, asset checks, freshness and alerts.

The declarations (``@schedule``, ``@sensor``, ``@asset_check``, ...) are
re-exported here and from :mod:`arco`; the engine (:mod:`.tick`, :mod:`.daemon`)
is imported where it is used. See ``docs/automation.md`` and ADR 016.
"""

from arco.flow.automation.checks import AssetCheckDef, CheckResult, Output, asset_check
from arco.flow.automation.requests import RunRequest, SkipReason
from arco.flow.automation.schedules import ScheduleContext, ScheduleDef, schedule
from arco.flow.automation.sensors import (
    SensorContext,
    SensorDef,
    SensorResult,
    asset_sensor,
    run_status_sensor,
    sensor,
)

__all__ = [
    "AssetCheckDef",
    "CheckResult",
    "Output",
    "RunRequest",
    "ScheduleContext",
    "ScheduleDef",
    "SensorContext",
    "SensorDef",
    "SensorResult",
    "SkipReason",
    "asset_check",
    "asset_sensor",
    "run_status_sensor",
    "schedule",
    "sensor",
]
