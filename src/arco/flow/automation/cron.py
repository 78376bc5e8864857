"""Cron expressions in an IANA time zone, with daylight-saving time done right.

Parsing and matching are ``croniter``'s; this module decides what a wall-clock
match means on the days the clock jumps. The expression is iterated over naive
*wall-clock* times of the zone, and each match becomes zero, one or two real
instants:

- **An existing, unambiguous wall time** is that instant.
- **A repeated wall time** (the clock falls back; ``01:30`` happens twice): a
  schedule pinned to hours runs at the *first* occurrence only — no double run;
  a schedule that runs every hour (hour field ``*``) runs at both, since they
  are an hour of real time apart.
- **A skipped wall time** (the clock springs forward; ``02:30`` never happens)
  runs at the same wall time shifted by the gap (``03:30``), the rule of
  Python's ``zoneinfo`` (fold 0) — no lost run. Two matches that land on the
  same instant run once.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from arco.core.errors import InvalidArgumentError

#: How far around an interval the wall-clock iteration starts and stops, so a match
#: shifted by a DST jump into the interval is still seen (no zone jumps by more).
_SLACK = timedelta(hours=3)
#: An expression that does not match within this many years never will ("0 0 30 2 *"
#: names a day that does not exist); croniter would otherwise search for a century.
_MAX_YEARS = 5


@functools.lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (:class:`InvalidArgumentError` if unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgumentError(f"unknown time zone {name!r}") from exc


@functools.lru_cache(maxsize=4096)
def validate_cron(expr: str) -> str:
    """``expr`` if it is a 5-field cron expression croniter accepts."""
    if not isinstance(expr, str) or len(expr.split()) != 5:
        raise InvalidArgumentError(
            f"cron expression {expr!r} must have 5 fields (minute hour day month weekday)"
        )
    if not croniter.is_valid(expr):
        raise InvalidArgumentError(f"cron expression {expr!r} is not valid")
    return expr


def _every_hour(expr: str) -> bool:
    return expr.split()[1] == "*"


def _instants(wall: datetime, tz: ZoneInfo, every_hour: bool) -> list[datetime]:
    """The real instants (UTC) that a wall-clock match ``wall`` stands for."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    exists = first.astimezone(tz).replace(tzinfo=None) == wall
    if not exists:
        # In the gap: fold 0 reads it with the offset before the jump, i.e. shifted
        # forward by the gap's length.
        return [first]
    return [first, second] if every_hour else [first]


def _wall(when: datetime, tz: ZoneInfo) -> datetime:
    if when.tzinfo is None:
        raise InvalidArgumentError("times given to the scheduler must carry a time zone")
    return when.astimezone(tz).replace(tzinfo=None)


def iter_ticks(expr: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """The schedule's instants strictly after ``after``, in order (UTC, endless)."""
    tz = zone(timezone)
    every_hour = _every_hour(validate_cron(expr))
    it = croniter(expr, _wall(after, tz) - _SLACK, max_years_between_matches=_MAX_YEARS)
    pending: list[datetime] = []
    last: datetime | None = None
    while True:
        try:
            wall = it.get_next(datetime)
        except CroniterBadDateError:
            return  # e.g. "0 0 30 2 *": never matches
        pending.extend(_instants(wall, tz, every_hour))
        pending.sort()
        # A later match can only map to an instant >= wall - slack: emit what is safe.
        horizon = wall.replace(tzinfo=UTC) - 2 * _SLACK - timedelta(hours=14)
        while pending and pending[0] <= horizon:
            when = pending.pop(0)
            if when > after and (last is None or when > last):
                last = when
                yield when


def next_tick(expr: str, timezone: str, after: datetime) -> datetime | None:
    """The first instant strictly after ``after`` (None if the expression never fires)."""
    fast = _next_tick_fast(expr, timezone, after)
    if fast is not None:
        return fast
    return next(iter_ticks(expr, timezone, after), None)


#: The fast path answers only when the zone's offset is constant over a window this
#: long around the answer; offsets are sampled this often (no zone changes its offset
#: twice within six hours).
_FAST_WINDOW = timedelta(days=3)
_FAST_SAMPLE = timedelta(hours=6)


@functools.lru_cache(maxsize=4096)
def _fields(
    expr: str,
) -> tuple[tuple[int, ...], tuple[int, ...], frozenset[int], frozenset[int], frozenset[int], bool]:
    """croniter's expansion of a plain expression: minutes, hours, days of the month,
    months, days of the week and whether both day fields are restricted (then a day
    matches either, as in cron). ``L``, ``#`` and the like raise ``ValueError``."""
    it = croniter(validate_cron(expr))
    if it.nth_weekday_of_month:
        raise ValueError("nth weekday")
    minutes, hours, doms, months, dows = it.expanded[:5]
    for field in (minutes, hours, doms, months, dows):
        if any(not isinstance(v, int) for v in field if v != "*"):
            raise ValueError("special field")

    def values(field: list[Any], lo: int, hi: int) -> tuple[int, ...]:
        return tuple(range(lo, hi + 1)) if field == ["*"] else tuple(sorted(set(field)))

    dow = frozenset(v % 7 for v in values(dows, 0, 6))
    either = doms != ["*"] and dows != ["*"]
    return (
        values(minutes, 0, 59),
        values(hours, 0, 23),
        frozenset(values(doms, 1, 31)),
        frozenset(values(months, 1, 12)),
        dow,
        either,
    )


def _next_wall(expr: str, wall: datetime) -> datetime | None:
    """The first wall-clock match strictly after ``wall`` (naive), or None when the
    expression is not plain (the caller then asks croniter)."""
    try:
        minutes, hours, doms, months, dows, either = _fields(expr)
    except ValueError:
        return None
    start = wall.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.date()
    for i in range(366 * _MAX_YEARS):
        if day.month in months:
            dom_ok = day.day in doms
            dow_ok = (day.weekday() + 1) % 7 in dows  # cron: Sunday is 0
            if (dom_ok or dow_ok) if either else (dom_ok and dow_ok):
                first = i == 0
                for h in hours:
                    if first and h < start.hour:
                        continue
                    for m in minutes:
                        if first and h == start.hour and m < start.minute:
                            continue
                        return datetime(day.year, day.month, day.day, h, m)
        day += timedelta(days=1)
    return None


def _constant_offset(tz: ZoneInfo, lo: datetime, hi: datetime) -> bool:
    """Whether ``tz``'s UTC offset is the same everywhere in ``[lo, hi]`` (at most
    :data:`_FAST_WINDOW` long; False beyond)."""
    if hi - lo > _FAST_WINDOW:
        return False
    # Widened to whole hours (a wider window only makes the answer more careful), so
    # the schedules of one tick, which share their instants, share the answer.
    hour = timedelta(hours=1)
    lo_h = lo.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hi_h = hi.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + hour
    return _constant_offset_hours(tz, lo_h, hi_h)


@functools.lru_cache(maxsize=4096)
def _constant_offset_hours(tz: ZoneInfo, lo: datetime, hi: datetime) -> bool:
    if hi - lo > _FAST_WINDOW + timedelta(hours=2):
        return False
    offset = lo.astimezone(tz).utcoffset()
    probe = lo
    while probe < hi:
        probe = min(probe + _FAST_SAMPLE, hi)
        if probe.astimezone(tz).utcoffset() != offset:
            return False
    return True


def between_fast(
    expr: str, timezone: str, after: datetime, until: datetime
) -> list[datetime] | None:
    """The instants in ``(after, until]`` by Arco's own matcher when the interval is
    short and far from an offset change (one wall match is one instant there);
    None means "ask the exact path"."""
    tz = zone(timezone)
    try:
        _fields(expr)
    except ValueError:
        return None  # L, #: croniter's alone
    if until <= after:
        return []
    if not _constant_offset(tz, after - _SLACK, until + _SLACK):
        return None
    wall, end = _wall(after, tz), _wall(until, tz)
    out: list[datetime] = []
    while True:
        found = _next_wall(expr, wall)
        if found is None or found > end:
            return out
        out.append(found.replace(tzinfo=tz).astimezone(UTC))
        wall = found


def _next_tick_fast(expr: str, timezone: str, after: datetime) -> datetime | None:
    """:func:`next_tick` without iterating croniter around the answer, when the zone's
    offset does not change anywhere near it (every day but the two a year when the
    clock jumps); None means "ask the exact path"."""
    tz = zone(timezone)
    wall = _next_wall(expr, _wall(after, tz))
    if wall is None:
        return None
    when = wall.replace(tzinfo=tz).astimezone(UTC)
    return when if _constant_offset(tz, after - _SLACK, when + _SLACK) else None


def ticks_between(
    expr: str, timezone: str, after: datetime, until: datetime, *, limit: int = 100_000
) -> list[datetime]:
    """Instants in ``(after, until]``, at most ``limit`` of them (the first ones)."""
    fast = between_fast(expr, timezone, after, until)
    if fast is not None:
        return fast[:limit]
    out: list[datetime] = []
    for when in iter_ticks(expr, timezone, after):
        if when > until or len(out) >= limit:
            break
        out.append(when)
    return out


def last_ticks(
    expr: str, timezone: str, after: datetime, until: datetime, n: int
) -> list[datetime]:
    """The last ``n`` instants in ``(after, until]``, oldest first, without walking
    every instant of a long interval (a daemon down for a month on a minutely cron)."""
    if n <= 0:
        return []
    fast = between_fast(expr, timezone, after, until)
    if fast is not None:
        return fast[-n:]
    tz = zone(timezone)
    every_hour = _every_hour(validate_cron(expr))
    it = croniter(expr, _wall(until, tz) + _SLACK, max_years_between_matches=_MAX_YEARS)
    found: set[datetime] = set()
    floor = _wall(after, tz) - _SLACK
    while True:
        try:
            wall = it.get_prev(datetime)
        except CroniterBadDateError:
            break
        if wall < floor:
            break
        for when in _instants(wall, tz, every_hour):
            if after < when <= until:
                found.add(when)
        # Matches further back than the slack cannot map past the n newest found.
        if len(found) >= n:
            nth = heapq.nlargest(n, found)[-1]
            if wall.replace(tzinfo=UTC) < nth - 2 * _SLACK - timedelta(hours=14):
                break
            found = {w for w in found if w >= nth}
    return sorted(found)[-n:]
