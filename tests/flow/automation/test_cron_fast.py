"""The fast path of ``next_tick`` (Arco's own wall-clock matcher plus a check that
the zone's offset is constant around the answer) agrees with the exact path
(croniter iterated around DST jumps) on any plain cron, zone and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from arco.flow.automation.cron import (
    _next_tick_fast,
    between_fast,
    iter_ticks,
    last_ticks,
    next_tick,
    ticks_between,
)

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kolkata",
    "America/Santiago",  # DST at midnight
    "Pacific/Chatham",
]


def _field(lo: int, hi: int) -> st.SearchStrategy[str]:
    one = st.integers(lo, hi).map(str)
    step = st.integers(1, max(1, (hi - lo) // 2)).map(lambda n: f"*/{n}")
    listed = st.lists(st.integers(lo, hi), min_size=1, max_size=3, unique=True).map(
        lambda xs: ",".join(map(str, sorted(xs)))
    )
    ranged = st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(
        lambda ab: f"{min(ab)}-{max(ab)}"
    )
    return st.one_of(st.just("*"), one, step, listed, ranged)


CRONS = st.tuples(_field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12), _field(0, 6)).map(
    " ".join
)
TIMES = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None)
@given(expr=CRONS, tz=st.sampled_from(ZONES), after=TIMES)
@example(expr="30 2 * * *", tz="America/New_York", after=datetime(2024, 3, 9, 12, tzinfo=UTC))
@example(expr="30 1 * * *", tz="America/New_York", after=datetime(2024, 11, 2, 12, tzinfo=UTC))
@example(expr="30 * * * *", tz="Europe/Berlin", after=datetime(2024, 10, 27, 0, 10, tzinfo=UTC))
@example(expr="0 0 * * 0", tz="UTC", after=datetime(2024, 5, 5, 0, 0, tzinfo=UTC))
def test_fast_next_tick_agrees_with_the_exact_path(expr: str, tz: str, after: datetime) -> None:
    exact = next(iter_ticks(expr, tz, after), None)
    assert next_tick(expr, tz, after) == exact
    fast = _next_tick_fast(expr, tz, after)
    assert fast is None or fast == exact


def test_the_fast_path_answers_on_ordinary_days_and_declines_near_a_jump() -> None:
    ordinary = datetime(2024, 5, 1, 10, 7, 30, tzinfo=UTC)
    assert _next_tick_fast("0 2 * * *", "Europe/Berlin", ordinary) == datetime(
        2024, 5, 2, 0, 0, tzinfo=UTC
    )
    assert _next_tick_fast("*/15 * * * *", "UTC", ordinary) == ordinary.replace(minute=15, second=0)
    # The night the clocks spring forward in Berlin: the exact path decides.
    jump = datetime(2024, 3, 30, 23, 0, tzinfo=UTC)
    assert _next_tick_fast("30 2 * * *", "Europe/Berlin", jump) is None
    assert next_tick("30 2 * * *", "Europe/Berlin", jump) == datetime(
        2024, 3, 31, 1, 30, tzinfo=UTC
    )
    # Special fields (L, #) are croniter's alone.
    assert _next_tick_fast("0 0 L * *", "UTC", ordinary) is None
    assert next_tick("0 0 L * *", "UTC", ordinary) == datetime(2024, 5, 31, tzinfo=UTC)
    assert next_tick("0 0 * * 5#2", "UTC", ordinary) == datetime(2024, 5, 10, tzinfo=UTC)
    assert next_tick("0 0 * * *", "UTC", ordinary - timedelta(days=1)) == datetime(
        2024, 5, 1, tzinfo=UTC
    )


@settings(max_examples=300, deadline=None)
@given(
    expr=CRONS,
    tz=st.sampled_from(ZONES),
    after=TIMES,
    span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4)),
    n=st.integers(1, 5),
)
@example(
    expr="30 * * * *",
    tz="America/New_York",
    after=datetime(2024, 11, 3, 4, tzinfo=UTC),
    span=timedelta(hours=4),
    n=4,
)
def test_fast_intervals_agree_with_the_exact_path(
    expr: str, tz: str, after: datetime, span: timedelta, n: int
) -> None:
    until = after + span
    exact: list[datetime] = []
    for when in iter_ticks(expr, tz, after):
        if when > until:
            break
        exact.append(when)
    assert ticks_between(expr, tz, after, until) == exact
    assert last_ticks(expr, tz, after, until, n) == exact[-n:]
    fast = between_fast(expr, tz, after, until)
    assert fast is None or fast == exact
