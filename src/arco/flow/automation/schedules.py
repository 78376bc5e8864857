"""Schedules: a cron expression in a time zone that launches a selection.

A schedule is declared with :func:`schedule` (a decorator, or a plain call for a
schedule without a function) or in ``arco.toml``::

    [[automation.schedules]]
    name = "nightly"
    cron = "0 2 * * *"
    timezone = "Europe/Berlin"
    select = "analytics.*"
    partitions = "last_complete"     # the day that just ended

Every tick has the run key ``schedule:{name}:{scheduled time, UTC}``: two
daemons, a retried tick or a restart name the same run and launch it once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

from arco.core.errors import InvalidArgumentError
from arco.core.scope import validate_identifier
from arco.flow.automation.cron import validate_cron, zone
from arco.flow.automation.requests import RunRequest, SkipReason
from arco.flow.partitions import PartitionsDefinition, TimeWindowPartitions

#: ``"last_complete"``: the time window of each partitioned asset that ended last
#: at the scheduled time; or a function of the scheduled time giving the keys.
PartitionRule = str | Callable[[datetime], str | Sequence[str] | None] | None

DEFAULT_MAX_CATCHUP = 1


@dataclass(frozen=True)
class ScheduleContext:
    """What a schedule function sees: its name and the tick's scheduled time."""

    schedule: str
    scheduled_at: datetime


@dataclass(frozen=True)
class ScheduleDef:
    """One schedule. ``fn`` (optional) may return run requests or a :class:`SkipReason`."""

    name: str
    cron: str
    selection: str
    timezone: str = "UTC"
    partitions: PartitionRule = None
    max_catchup: int = DEFAULT_MAX_CATCHUP
    enabled: bool = True
    description: str | None = None
    fn: Callable[[ScheduleContext], Any] | None = None
    tags: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        validate_identifier("schedule name", self.name)
        validate_cron(self.cron)
        zone(self.timezone)
        if not isinstance(self.selection, str) or not self.selection.strip():
            raise InvalidArgumentError(f"schedule {self.name}: a selection is required")
        if not isinstance(self.max_catchup, int) or not 1 <= self.max_catchup <= 1000:
            raise InvalidArgumentError(
                f"schedule {self.name}: max_catchup must be an integer from 1 to 1000"
            )
        if isinstance(self.partitions, str) and self.partitions != "last_complete":
            raise InvalidArgumentError(
                f"schedule {self.name}: partitions must be 'last_complete' or a function"
            )

    def run_key(self, scheduled_at: datetime) -> str:
        """The tick's run key: the schedule and its scheduled instant in UTC."""
        return f"schedule:{self.name}:{_utc_second(scheduled_at)}"

    def describe(self) -> dict[str, Any]:
        """JSON form (API, CLI)."""
        return {
            "name": self.name,
            "cron": self.cron,
            "timezone": self.timezone,
            "selection": self.selection,
            "partitions": self.partitions
            if isinstance(self.partitions, str)
            else (None if self.partitions is None else "function"),
            "max_catchup": self.max_catchup,
            "default_enabled": self.enabled,
            "description": self.description,
        }


@functools.lru_cache(maxsize=4096)
def _utc_second(when: datetime) -> str:
    # Every schedule due at one instant names its run with it: formatted once.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@overload
def schedule(fn: Callable[[ScheduleContext], Any], /) -> ScheduleDef: ...


@overload
def schedule(
    fn: None = None,
    /,
    *,
    cron: str,
    selection: str,
    name: str | None = None,
    timezone: str = "UTC",
    partitions: PartitionRule = None,
    max_catchup: int = DEFAULT_MAX_CATCHUP,
    enabled: bool = True,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Callable[[Callable[[ScheduleContext], Any]], ScheduleDef]: ...


def schedule(
    fn: Callable[[ScheduleContext], Any] | None = None,
    /,
    *,
    cron: str = "",
    selection: str = "",
    name: str | None = None,
    timezone: str = "UTC",
    partitions: PartitionRule = None,
    max_catchup: int = DEFAULT_MAX_CATCHUP,
    enabled: bool = True,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> ScheduleDef | Callable[[Callable[[ScheduleContext], Any]], ScheduleDef]:
    """Declare a schedule: ``@schedule(cron="0 2 * * *", selection="analytics.*")``.

    The decorated function receives a :class:`ScheduleContext` and may return
    ``None`` (run the selection), a :class:`RunRequest` or a list of them, or a
    :class:`SkipReason`. A schedule without a function is a :class:`ScheduleDef`
    built directly (or a ``[[automation.schedules]]`` entry of ``arco.toml``).
    """
    if fn is not None:
        raise InvalidArgumentError("use @schedule(cron=..., selection=...) with arguments")

    def wrap(func: Callable[[ScheduleContext], Any]) -> ScheduleDef:
        return ScheduleDef(
            name=name or func.__name__,
            cron=cron,
            selection=selection,
            timezone=timezone,
            partitions=partitions,
            max_catchup=max_catchup,
            enabled=enabled,
            description=description or (func.__doc__ or "").strip() or None,
            fn=func,
            tags=tuple(sorted((tags or {}).items())),
        )

    return wrap


def schedules_from_config(section: Any) -> list[ScheduleDef]:
    """Schedules declared in ``arco.toml`` (``[[automation.schedules]]``)."""
    if section is None:
        return []
    if not isinstance(section, list):
        raise InvalidArgumentError("[[automation.schedules]] must be a list of tables")
    out = []
    for item in section:
        if not isinstance(item, dict):
            raise InvalidArgumentError("each [[automation.schedules]] entry must be a table")
        unknown = set(item) - {
            "name",
            "cron",
            "timezone",
            "select",
            "partitions",
            "max_catchup",
            "enabled",
            "description",
        }
        if unknown:
            raise InvalidArgumentError(
                f"[[automation.schedules]] {item.get('name', '?')}: unknown keys "
                f"{', '.join(sorted(unknown))}"
            )
        try:
            out.append(
                ScheduleDef(
                    name=str(item["name"]),
                    cron=str(item["cron"]),
                    selection=str(item["select"]),
                    timezone=str(item.get("timezone", "UTC")),
                    partitions=item.get("partitions"),
                    max_catchup=item.get("max_catchup", DEFAULT_MAX_CATCHUP),
                    enabled=bool(item.get("enabled", True)),
                    description=item.get("description"),
                )
            )
        except KeyError as exc:
            raise InvalidArgumentError(
                f"[[automation.schedules]] {item.get('name', '?')}: {exc.args[0]} is required"
            ) from exc
    return out


def last_complete(partitions: PartitionsDefinition, at: datetime) -> str | None:
    """The key of the time window that ended last at ``at`` (the day that just
    ended, for a daily scheme), or None for schemes without time windows."""
    if not isinstance(partitions, TimeWindowPartitions):
        return None
    tz = zone(partitions.timezone)
    current = partitions._floor(at.astimezone(tz))
    previous = partitions._floor((current - partitions.step).astimezone(tz))
    return partitions.format(previous)


def tick_requests(
    sched: ScheduleDef, scheduled_at: datetime, partitioned: Sequence[PartitionsDefinition]
) -> list[RunRequest] | SkipReason:
    """The run requests of one tick (run keys filled in).

    ``partitioned``: the partition schemes of the selected assets, in selection order.
    """
    base_key = sched.run_key(scheduled_at)
    parts: list[str] = []
    rule = sched.partitions
    if rule == "last_complete":
        for pdef in partitioned:
            key = last_complete(pdef, scheduled_at)
            if key is not None:
                parts = [key]
                break
        else:
            return SkipReason("partitions='last_complete' but no selected asset has time windows")
    elif callable(rule):
        got = rule(scheduled_at)
        if got is None:
            return SkipReason("the partition function returned None")
        parts = [got] if isinstance(got, str) else list(got)
    tags = dict(sched.tags)
    if sched.fn is None:
        return [RunRequest(sched.selection, tuple(parts), base_key, tags)]
    result = sched.fn(ScheduleContext(sched.name, scheduled_at))
    if isinstance(result, SkipReason):
        return result
    if result is None:
        return [RunRequest(sched.selection, tuple(parts), base_key, tags)]
    items = [result] if isinstance(result, RunRequest) else list(result)
    out = []
    for i, req in enumerate(items):
        if not isinstance(req, RunRequest):
            raise InvalidArgumentError(
                f"schedule {sched.name} returned {type(req).__name__}; expected RunRequest, "
                "a list of them, SkipReason or None"
            )
        key = (
            base_key
            if len(items) == 1 and req.run_key is None
            else (f"{base_key}:{req.run_key or i}")
        )
        out.append(
            RunRequest(
                req.selection or sched.selection,
                tuple(req.partitions) or tuple(parts),
                key,
                {**tags, **dict(req.tags)},
            )
        )
    return out
