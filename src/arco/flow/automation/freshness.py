"""Freshness policies: how old an asset may get before it is overdue.

``freshness(asset=..., max_lag_minutes=60)``: overdue when its newest
materialization (any partition) is older than the lag. With ``cron=``: by each
tick of the cron expression, the asset must have been materialized within
``max_lag_minutes`` before that tick ("fresh by 09:00"). The daemon evaluates
each policy when it is due; a change (fresh <-> overdue) is a
``freshness.evaluated`` event, and becoming overdue raises an alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from arco.core.errors import InvalidArgumentError
from arco.flow.automation.cron import last_ticks, next_tick, validate_cron, zone
from arco.flow.automation.state import AutomationState

if TYPE_CHECKING:
    from arco.flow.automation.tick import Automation

#: How often a lag policy is re-evaluated.
LAG_CHECK_SECONDS = 60.0


@dataclass(frozen=True)
class FreshnessPolicy:
    """The policy of one asset."""

    asset: str
    max_lag_minutes: float = 0.0
    cron: str | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.cron is None and self.max_lag_minutes <= 0:
            raise InvalidArgumentError(f"freshness of {self.asset}: give max_lag_minutes > 0")
        if self.cron is not None:
            validate_cron(self.cron)
        zone(self.timezone)

    def describe(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)

    def deadline(self, now: datetime) -> datetime:
        """The oldest materialization time that still counts as fresh at ``now``."""
        lag = timedelta(minutes=self.max_lag_minutes)
        if self.cron is None:
            return now - lag
        ticks = last_ticks(self.cron, self.timezone, now - timedelta(days=366), now, 1)
        return (ticks[-1] if ticks else now - timedelta(days=366)) - lag

    def next_check(self, now: datetime) -> datetime:
        """When to evaluate again."""
        if self.cron is None:
            return now + timedelta(seconds=LAG_CHECK_SECONDS)
        return next_tick(self.cron, self.timezone, now) or now + timedelta(days=1)


def freshness(
    *, asset: Any, max_lag_minutes: float = 0.0, cron: str | None = None, timezone: str = "UTC"
) -> FreshnessPolicy:
    """Declare the freshness policy of ``asset`` (an asset or its key)."""
    key = asset.key if hasattr(asset, "key") else str(asset)
    return FreshnessPolicy(key, float(max_lag_minutes), cron, timezone)


def decide(auto: Automation, state: AutomationState, now: datetime) -> bool:
    """Evaluate the policies that are due; record changes and raise alerts."""
    from arco.flow.automation.tick import iso, parse_iso

    policies: dict[str, FreshnessPolicy] = auto.defs.freshness
    changed = False
    newest: dict[str, datetime] | None = None
    for key, policy in policies.items():
        entry = state.freshness.setdefault(key, {})
        due = entry.get("next_at")
        if due is not None and parse_iso(due) > now:
            continue
        if newest is None:
            newest = _newest(auto)
        last = newest.get(key)
        deadline = policy.deadline(now)
        new = "fresh" if last is not None and last >= deadline else "overdue"
        entry["next_at"] = iso(policy.next_check(now))
        entry["deadline"] = iso(deadline)
        entry["last_materialized_at"] = iso(last) if last else None
        changed = True
        if entry.get("state") == new:
            continue
        entry["state"] = new
        entry["since"] = iso(now)
        payload = {
            "asset": key,
            "state": new,
            "evaluated_at": iso(now),
            "last_materialized_at": iso(last) if last else None,
            "deadline": iso(deadline),
            "reason": None if new == "fresh" else "no materialization since the deadline",
        }
        ref = f"freshness:{key}:{iso(now)}"
        state.pending[ref] = {"kind": "event", "type": "freshness.evaluated", "payload": payload}
        if new == "overdue":
            from arco.flow.automation.alerts import queue_alert

            queue_alert(
                state,
                f"freshness:{key}:{iso(deadline)}",
                "freshness_overdue",
                key,
                f"asset {key} is overdue: last materialized "
                f"{iso(last) if last else 'never'}, needed since {iso(deadline)}",
                payload,
            )
    return changed


def _newest(auto: Automation) -> dict[str, datetime]:
    from arco.flow.automation.sensor_inputs import all_materializations

    out: dict[str, datetime] = {}
    for row in all_materializations(auto):
        when = row["recorded_at"]
        if isinstance(when, str):
            from arco.flow.automation.tick import parse_iso

            when = parse_iso(when)
        if row["asset"] not in out or when > out[row["asset"]]:
            out[row["asset"]] = when
    return out


def install(auto: Automation) -> None:
    """Add freshness evaluation to a tick."""
    auto.hooks.append(decide)
