"""Partitions: static, daily, hourly and multi-dimensional, with canonical keys.

A partition key is a string in one canonical form so that plans, task ids and
ledger events agree across processes: ``2024-05-01`` (daily),
``2024-05-01T13:00`` (hourly, in the definition's time zone), the key itself
(static), and ``dim=value|dim=value`` with dimensions sorted by name (multi).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from arco.core.errors import InvalidArgumentError

_MAX_PARTITIONS = 1_000_000


class PartitionsDefinition:
    """Base class of partition schemes."""

    kind: str = "abstract"

    def keys(self) -> list[str]:
        """Every partition key, in order."""
        raise InvalidArgumentError(f"{type(self).__name__} does not enumerate keys")

    def validate(self, key: str) -> str:
        """Return ``key`` if it belongs to this scheme, else raise InvalidArgumentError."""
        if key not in set(self.keys()):
            raise InvalidArgumentError(f"partition {key!r} is not one of this asset's partitions")
        return key

    def range(self, start: str, end: str) -> list[str]:
        """Keys from ``start`` to ``end`` inclusive."""
        keys = self.keys()
        # validate() gives the canonical form, which is what keys() holds.
        i, j = keys.index(self.validate(start)), keys.index(self.validate(end))
        if i > j:
            raise InvalidArgumentError(f"partition range {start!r}..{end!r} is reversed")
        return keys[i : j + 1]

    def describe(self) -> dict[str, object]:
        """A JSON-able description (part of a plan's fingerprint)."""
        return {"kind": self.kind}


@dataclass(frozen=True)
class StaticPartitions(PartitionsDefinition):
    """A fixed list of keys (e.g. regions)."""

    values: tuple[str, ...]
    kind: str = field(default="static", init=False)

    def __init__(self, values: Iterable[str]) -> None:
        vals = tuple(values)
        if not vals:
            raise InvalidArgumentError("static partitions need at least one key")
        if len(set(vals)) != len(vals):
            raise InvalidArgumentError("static partition keys must be unique")
        for v in vals:
            if not isinstance(v, str) or not v or any(c in v for c in "|=\n\r\t") or len(v) > 128:
                raise InvalidArgumentError(f"static partition key {v!r} is not allowed")
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "kind", "static")

    def keys(self) -> list[str]:
        """The keys in declaration order."""
        return list(self.values)

    def validate(self, key: str) -> str:
        """Check membership."""
        if key not in self.values:
            raise InvalidArgumentError(f"partition {key!r} is not one of {list(self.values)[:10]}")
        return key

    def describe(self) -> dict[str, object]:
        """JSON form."""
        return {"kind": "static", "values": list(self.values)}


def _tz(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgumentError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True)
class TimeWindowPartitions(PartitionsDefinition):
    """Daily or hourly windows from ``start`` to ``end`` (exclusive; default: now)."""

    cadence: Literal["daily", "hourly"]
    start: datetime
    end: datetime | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        tz = _tz(self.timezone)
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=tz)
        object.__setattr__(self, "start", self._floor(start.astimezone(tz)))
        if self.end is not None:
            end = self.end if self.end.tzinfo else self.end.replace(tzinfo=tz)
            object.__setattr__(self, "end", self._floor(end.astimezone(tz)))
            if self.end <= self.start:
                raise InvalidArgumentError("partition end must be after start")

    @property
    def kind(self) -> str:  # type: ignore[override]
        """``daily`` or ``hourly``."""
        return self.cadence

    @property
    def step(self) -> timedelta:
        """The window length."""
        return timedelta(days=1) if self.cadence == "daily" else timedelta(hours=1)

    def _floor(self, when: datetime) -> datetime:
        if self.cadence == "daily":
            return when.replace(hour=0, minute=0, second=0, microsecond=0)
        return when.replace(minute=0, second=0, microsecond=0)

    def format(self, when: datetime) -> str:
        """Canonical key of the window starting at ``when``."""
        return when.strftime("%Y-%m-%d" if self.cadence == "daily" else "%Y-%m-%dT%H:00")

    def parse(self, key: str) -> datetime:
        """Start of the window named by ``key``."""
        fmt = "%Y-%m-%d" if self.cadence == "daily" else "%Y-%m-%dT%H:%M"
        try:
            naive = datetime.strptime(key, fmt)
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(
                f"partition {key!r} is not a {self.cadence} key like "
                f"{'2024-05-01' if self.cadence == 'daily' else '2024-05-01T13:00'}"
            ) from exc
        if self.cadence == "hourly" and naive.minute != 0:
            raise InvalidArgumentError(f"hourly partition {key!r} must be on the hour")
        return naive.replace(tzinfo=_tz(self.timezone))

    def _end(self) -> datetime:
        if self.end is not None:
            return self.end
        return self._floor(datetime.now(_tz(self.timezone)))

    def keys(self) -> list[str]:
        """Every window from start to end (exclusive), oldest first."""
        out: list[str] = []
        cur, end = self.start, self._end()
        while cur < end:
            out.append(self.format(cur))
            cur = (cur + self.step).astimezone(_tz(self.timezone))
            cur = self._floor(cur)
            if len(out) > _MAX_PARTITIONS:
                raise InvalidArgumentError("too many partitions; set an end")
        return out

    def validate(self, key: str) -> str:
        """Check ``key`` is a window of this definition: a well-formed key from the
        first window up to the last complete one (``end``, else now, is exclusive)."""
        when = self.parse(key)
        end = self._end()
        if when < self.start or when >= end:
            first = self.format(self.start)
            if end <= self.start:
                raise InvalidArgumentError(
                    f"partition {key!r} does not exist: the first {self.cadence} partition, "
                    f"{first}, is not complete yet"
                )
            last = self.format(self._floor((end - self.step).astimezone(_tz(self.timezone))))
            raise InvalidArgumentError(
                f"partition {key!r} is outside this asset's {self.cadence} partitions "
                f"{first}..{last}"
            )
        return self.format(when)

    def range(self, start: str, end: str) -> list[str]:
        """Windows from ``start`` to ``end`` inclusive."""
        a, b = self.parse(self.validate(start)), self.parse(self.validate(end))
        if a > b:
            raise InvalidArgumentError(f"partition range {start!r}..{end!r} is reversed")
        out = []
        while a <= b:
            out.append(self.format(a))
            a = self._floor((a + self.step).astimezone(_tz(self.timezone)))
        return out

    def describe(self) -> dict[str, object]:
        """JSON form."""
        return {
            "kind": self.cadence,
            "start": self.format(self.start),
            "end": self.format(self.end) if self.end else None,
            "timezone": self.timezone,
        }


def DailyPartitions(  # noqa: N802 - reads like a class at the call site
    start: str | date | datetime, end: str | date | datetime | None = None, timezone: str = "UTC"
) -> TimeWindowPartitions:
    """Daily windows (keys ``YYYY-MM-DD``)."""
    return TimeWindowPartitions("daily", _as_dt(start), _as_dt(end) if end else None, timezone)


def HourlyPartitions(  # noqa: N802
    start: str | date | datetime, end: str | date | datetime | None = None, timezone: str = "UTC"
) -> TimeWindowPartitions:
    """Hourly windows (keys ``YYYY-MM-DDTHH:00``)."""
    return TimeWindowPartitions("hourly", _as_dt(start), _as_dt(end) if end else None, timezone)


def _as_dt(value: str | date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidArgumentError(f"{value!r} is not an ISO date") from exc


@dataclass(frozen=True)
class MultiPartitions(PartitionsDefinition):
    """The product of named dimensions: keys ``a=x|b=y`` with dimensions sorted by name."""

    dimensions: tuple[tuple[str, PartitionsDefinition], ...]

    def __init__(self, dimensions: dict[str, PartitionsDefinition]) -> None:
        if len(dimensions) != 2:
            raise InvalidArgumentError("multi-partitions take exactly two dimensions")
        for name, dim in dimensions.items():
            if not name.isidentifier():
                raise InvalidArgumentError(f"dimension name {name!r} must be an identifier")
            if isinstance(dim, MultiPartitions):
                raise InvalidArgumentError("dimensions cannot themselves be multi-partitioned")
        object.__setattr__(self, "dimensions", tuple(sorted(dimensions.items())))

    @property
    def kind(self) -> str:  # type: ignore[override]
        """``multi``."""
        return "multi"

    def dimension(self, name: str) -> PartitionsDefinition:
        """One dimension by name."""
        for n, d in self.dimensions:
            if n == name:
                return d
        raise InvalidArgumentError(f"no dimension {name!r}")

    def join(self, parts: dict[str, str]) -> str:
        """Canonical key from per-dimension keys."""
        return "|".join(f"{n}={parts[n]}" for n, _ in self.dimensions)

    def example(self) -> str:
        """A key of this scheme, for error messages (its first key)."""
        parts = {}
        for n, d in self.dimensions:
            try:
                first = d.keys()[:1]
            except InvalidArgumentError:
                first = []
            parts[n] = first[0] if first else "..."
        return self.join(parts)

    def split(self, key: str) -> dict[str, str]:
        """Per-dimension keys of a key (each dimension named exactly once)."""
        names = [n for n, _ in self.dimensions]
        parts: dict[str, str] = {}
        pieces = key.split("|")
        for piece in pieces:
            name, sep, value = piece.partition("=")
            if not sep or name in parts:
                parts = {}
                break
            parts[name] = value
        if len(pieces) != len(names) or sorted(parts) != names:
            raise InvalidArgumentError(
                f"multi-partition key {key!r} must name each of the dimensions "
                f"{', '.join(names)} once, like {self.example()!r}"
            )
        return parts

    def keys(self) -> list[str]:
        """The product of the dimensions' keys."""
        (n1, d1), (n2, d2) = self.dimensions
        keys1, keys2 = d1.keys(), d2.keys()
        return [self.join({n1: a, n2: b}) for a in keys1 for b in keys2]

    def validate(self, key: str) -> str:
        """Check each dimension."""
        parts = self.split(key)
        checked = {}
        for n, d in self.dimensions:
            try:
                checked[n] = d.validate(parts[n])
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(
                    f"multi-partition key {key!r}, dimension {n!r}: {exc}"
                ) from exc
        return self.join(checked)

    def describe(self) -> dict[str, object]:
        """JSON form."""
        return {"kind": "multi", "dimensions": {n: d.describe() for n, d in self.dimensions}}


# ------------------------------------------------------------------- mappings
class PartitionMapping(ABC):
    """Which upstream partitions a downstream partition depends on."""

    name = "abstract"

    @abstractmethod
    def upstream(
        self,
        downstream_key: str | None,
        downstream: PartitionsDefinition | None,
        upstream: PartitionsDefinition | None,
    ) -> list[str | None]:
        """Upstream keys (``[None]`` for an unpartitioned upstream)."""


class IdentityMapping(PartitionMapping):
    """Same key on both sides."""

    name = "identity"

    def upstream(
        self,
        downstream_key: str | None,
        downstream: PartitionsDefinition | None,
        upstream: PartitionsDefinition | None,
    ) -> list[str | None]:
        """The same key (or every upstream key when the downstream is unpartitioned)."""
        if upstream is None:
            return [None]
        if downstream_key is None:
            return list(upstream.keys())
        return [upstream.validate(downstream_key)]


class AllPartitionsMapping(PartitionMapping):
    """Every upstream partition."""

    name = "all"

    def upstream(
        self,
        downstream_key: str | None,
        downstream: PartitionsDefinition | None,
        upstream: PartitionsDefinition | None,
    ) -> list[str | None]:
        """All upstream keys."""
        return [None] if upstream is None else list(upstream.keys())


class TimeWindowMapping(PartitionMapping):
    """Upstream windows overlapping the downstream window (e.g. 24 hours of a day)."""

    name = "time_window"

    def upstream(
        self,
        downstream_key: str | None,
        downstream: PartitionsDefinition | None,
        upstream: PartitionsDefinition | None,
    ) -> list[str | None]:
        """Upstream windows that fall inside the downstream window."""
        if upstream is None:
            return [None]
        if not isinstance(upstream, TimeWindowPartitions) or not isinstance(
            downstream, TimeWindowPartitions
        ):
            raise InvalidArgumentError("time-window mapping needs time partitions on both sides")
        if downstream_key is None:
            return list(upstream.keys())
        start = downstream.parse(downstream_key)
        end = start + downstream.step
        out: list[str | None] = []
        cur = upstream._floor(start.astimezone(_tz(upstream.timezone)))
        while cur < end:
            if cur >= upstream.start and (upstream.end is None or cur < upstream.end):
                out.append(upstream.format(cur))
            cur = upstream._floor((cur + upstream.step).astimezone(_tz(upstream.timezone)))
        return out


def default_mapping(
    downstream: PartitionsDefinition | None, upstream: PartitionsDefinition | None
) -> PartitionMapping:
    """Identity for equal schemes, time-window between time schemes, else all."""
    if upstream is None or downstream is None:
        return AllPartitionsMapping() if downstream is None else IdentityMapping()
    if downstream == upstream:
        return IdentityMapping()
    if isinstance(downstream, TimeWindowPartitions) and isinstance(upstream, TimeWindowPartitions):
        return TimeWindowMapping()
    return AllPartitionsMapping()


def select_keys(
    partitions: PartitionsDefinition,
    keys: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> list[str]:
    """Validated keys from an explicit list or a ``start..end`` range (default: all)."""
    if keys and (start or end):
        raise InvalidArgumentError("give partition keys or a start..end range, not both")
    if keys:
        return list(dict.fromkeys(partitions.validate(k) for k in keys))
    if start or end:
        all_keys = [] if start and end else partitions.keys()
        if not all_keys and not (start and end):
            raise InvalidArgumentError("the asset has no partitions yet to start or end a range")
        return partitions.range(start or all_keys[0], end or all_keys[-1])
    return partitions.keys()
