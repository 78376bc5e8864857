"""Sensors: functions polled on an interval, with a durable cursor.

Three kinds:

- ``@sensor``: ``fn(context)`` looks at anything and returns run requests (or a
  :class:`SensorResult` with a new cursor, or a :class:`SkipReason`);
- ``@asset_sensor(assets=[...])``: ``fn(context, materializations)`` is called
  with the materializations of the watched assets recorded since its cursor
  (``materialization.recorded`` facts; datasets written by external
  OpenLineage runs are not watched yet);
- ``@run_status_sensor(states=["FAILED"])``: ``fn(context, run)`` once per run
  that reached one of ``states`` since its cursor.

A sensor that raises is recorded (``sensor.evaluated`` with ``status=failed``)
and retried with exponential backoff; the other sensors go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from arco.core.errors import InvalidArgumentError
from arco.core.scope import validate_identifier
from arco.flow.automation.requests import RunRequest, SkipReason

SensorKind = Literal["custom", "asset", "run_status"]
RUN_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
#: The longest wait between retries of a failing sensor.
MAX_BACKOFF_SECONDS = 3600.0


@dataclass(frozen=True)
class SensorContext:
    """What a sensor function sees: its cursor, the evaluation time and number."""

    sensor: str
    cursor: str | None
    evaluated_at: datetime
    evaluation: int
    last_evaluated_at: datetime | None = None


@dataclass(frozen=True)
class SensorResult:
    """Run requests and the cursor to store (None keeps the current one)."""

    run_requests: Sequence[RunRequest] = ()
    cursor: str | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class SensorDef:
    """One sensor."""

    name: str
    fn: Callable[..., Any]
    kind: SensorKind = "custom"
    interval_seconds: float = 30.0
    selection: str | None = None
    assets: tuple[str, ...] = ()
    run_states: tuple[str, ...] = ()
    enabled: bool = True
    description: str | None = None
    tags: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        validate_identifier("sensor name", self.name)
        if not callable(self.fn):
            raise InvalidArgumentError(f"sensor {self.name}: needs a function")
        if not 1.0 <= float(self.interval_seconds) <= 86_400 * 7:
            raise InvalidArgumentError(
                f"sensor {self.name}: interval_seconds must be from 1 to 604800"
            )
        if self.kind == "asset" and not self.assets:
            raise InvalidArgumentError(f"asset sensor {self.name}: name the assets to watch")
        bad = [s for s in self.run_states if s not in RUN_STATES]
        if bad:
            raise InvalidArgumentError(
                f"run status sensor {self.name}: states must be among {', '.join(RUN_STATES)}"
            )

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures."""
        return float(min(self.interval_seconds * 2 ** max(0, failures - 1), MAX_BACKOFF_SECONDS))

    def describe(self) -> dict[str, Any]:
        """JSON form (API, CLI)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "interval_seconds": self.interval_seconds,
            "selection": self.selection,
            "assets": list(self.assets),
            "run_states": list(self.run_states),
            "default_enabled": self.enabled,
            "description": self.description,
        }


def _wrap(
    kind: SensorKind,
    name: str | None,
    interval_seconds: float,
    selection: str | None,
    enabled: bool,
    assets: Sequence[str] = (),
    states: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], SensorDef]:
    def wrap(fn: Callable[..., Any]) -> SensorDef:
        return SensorDef(
            name=name or fn.__name__,
            fn=fn,
            kind=kind,
            interval_seconds=interval_seconds,
            selection=selection,
            assets=tuple(a.key if hasattr(a, "key") else str(a) for a in assets),
            run_states=tuple(states),
            enabled=enabled,
            description=(fn.__doc__ or "").strip() or None,
        )

    return wrap


def sensor(
    *,
    name: str | None = None,
    interval_seconds: float = 30.0,
    selection: str | None = None,
    enabled: bool = True,
) -> Callable[[Callable[[SensorContext], Any]], SensorDef]:
    """Declare a sensor: ``fn(context) -> RunRequest | [RunRequest] | SensorResult |
    SkipReason | None``. Requests without a selection run ``selection``."""
    return _wrap("custom", name, interval_seconds, selection, enabled)


def asset_sensor(
    *,
    assets: Sequence[Any],
    name: str | None = None,
    interval_seconds: float = 30.0,
    selection: str | None = None,
    enabled: bool = True,
) -> Callable[[Callable[..., Any]], SensorDef]:
    """Declare a sensor called with the new materializations of ``assets``:
    ``fn(context, materializations)`` (a list of dicts: asset, partition, run_id,
    recorded_at, materialization_id). Returning None requests ``selection`` once,
    keyed by the newest materialization."""
    return _wrap("asset", name, interval_seconds, selection, enabled, assets=assets)


def run_status_sensor(
    *,
    states: Sequence[str] = ("FAILED",),
    name: str | None = None,
    interval_seconds: float = 30.0,
    selection: str | None = None,
    enabled: bool = True,
) -> Callable[[Callable[..., Any]], SensorDef]:
    """Declare a sensor called once per run that reached one of ``states``:
    ``fn(context, run)`` (a dict: run_id, state, selection, tags, finished_at)."""
    return _wrap("run_status", name, interval_seconds, selection, enabled, states=states)


def normalise(result: Any, sensor_name: str) -> SensorResult:
    """Whatever a sensor function returned, as a :class:`SensorResult`."""
    if result is None:
        return SensorResult()
    if isinstance(result, SensorResult):
        return result
    if isinstance(result, SkipReason):
        return SensorResult(skip_reason=result.reason)
    if isinstance(result, RunRequest):
        return SensorResult(run_requests=(result,))
    if isinstance(result, (list, tuple)) and all(isinstance(r, RunRequest) for r in result):
        return SensorResult(run_requests=tuple(result))
    raise InvalidArgumentError(
        f"sensor {sensor_name} returned {type(result).__name__}; expected RunRequest, a list "
        "of them, SensorResult, SkipReason or None"
    )
