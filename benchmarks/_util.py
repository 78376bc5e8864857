"""Shared helpers for the benchmark scripts: timing, percentiles, tables and JSON."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


async def asgi_lifespan(receive: Any, send: Any) -> None:
    """Answer an ASGI lifespan conversation of an app with nothing to set up."""
    message = await receive()
    if message["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})


async def send_json(send: Any, status: int, body: bytes) -> None:
    """Send one whole ``application/json`` response over ASGI."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: The body the floor app answers every GET with: about the size of a small page of
#: search hits (what a bare server spends to send a few KiB back).
FLOOR_BODY = b'{"items": [' + b", ".join([b'{"name": "x", "score": 1.0}'] * 60) + b"]}"


def floor_get_app_factory() -> Any:
    """A bare ASGI app (uvicorn ``--factory``) that answers every request 200 with
    :data:`FLOOR_BODY`: no routing, auth or work, the least any Python server does."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await asgi_lifespan(receive, send)
            return
        await send_json(send, 200, FLOOR_BODY)

    return app


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ``values``, linearly interpolated."""
    if not values:
        return math.nan
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    lo = math.floor(rank)
    hi = math.ceil(rank)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


@dataclass
class Stats:
    """Summary of a list of samples, in milliseconds."""

    n: int
    p50: float
    p95: float
    mean: float
    min: float
    max: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Stats:
        """Summarise ``samples_ms``."""
        if not samples_ms:
            nan = math.nan
            return cls(0, nan, nan, nan, nan, nan)
        return cls(
            n=len(samples_ms),
            p50=percentile(samples_ms, 50),
            p95=percentile(samples_ms, 95),
            mean=sum(samples_ms) / len(samples_ms),
            min=min(samples_ms),
            max=max(samples_ms),
        )

    def to_dict(self) -> dict[str, float]:
        """JSON-friendly form (milliseconds)."""
        return {
            "n": self.n,
            "p50_ms": self.p50,
            "p95_ms": self.p95,
            "mean_ms": self.mean,
            "min_ms": self.min,
            "max_ms": self.max,
        }

    def short(self) -> str:
        """``p50 / p95 (n=…)`` for progress lines."""
        return (
            f"p50 {fmt_ms(self.p50)}  p95 {fmt_ms(self.p95)}  max {fmt_ms(self.max)}  (n={self.n})"
        )


def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; return (elapsed milliseconds, its result)."""
    start = time.perf_counter_ns()
    result = fn()
    return (time.perf_counter_ns() - start) / 1e6, result


def sample(fn: Callable[[int], Any], n: int) -> list[float]:
    """Call ``fn(i)`` for ``i`` in ``range(n)``, timing each call in milliseconds."""
    out: list[float] = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        fn(i)
        out.append((clock() - start) / 1e6)
    return out


@dataclass
class Timer:
    """Wall-clock stopwatch: ``with timer() as t: ...; t.seconds``."""

    start: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    @property
    def ms(self) -> float:
        """Elapsed milliseconds."""
        return self.seconds * 1000


@contextmanager
def timer() -> Iterator[Timer]:
    """Time the body of a ``with`` block."""
    t = Timer()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - t.start


def fmt_ms(value: float | None) -> str:
    """A millisecond figure with sensible precision."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value < 0.1:
        return f"{value * 1000:.1f} µs"
    if value < 10:
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.1f} ms"
    return f"{value / 1000:.2f} s"


def fmt_s(value: float | None) -> str:
    """A seconds figure."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """Print rows as an aligned plain-text table."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    rule = "-+-".join("-" * w for w in widths)
    if title:
        print(f"\n{title}")
    print(" | ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)))
    print(rule)
    for row in cells[1:]:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 1024 / 1024


def load_average() -> tuple[float, float, float] | None:
    """The 1/5/15-minute load average, if the platform has one."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def environment() -> dict[str, Any]:
    """Facts about the machine a run happened on."""
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": load_average(),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, Stats):
        return value.to_dict()
    if isinstance(value, float) and math.isnan(value):
        return None
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    return str(value)


def _clean(value: Any) -> Any:
    """Replace NaN by None (JSON has no NaN) and Stats by dicts, recursively."""
    if isinstance(value, Stats):
        return _clean(value.to_dict())
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path``."""
    Path(path).write_text(
        json.dumps(_clean(data), indent=2, default=_json_default) + "\n", encoding="utf-8"
    )


@dataclass
class Clients:
    """Client processes forked by :func:`start_clients`, each waiting for the go."""

    procs: list[Any]
    go: Any
    results: Any

    def run(self, timeout: float) -> list[Any]:
        """Start every client at once; what each put on its results queue."""
        self.go.set()
        outcomes = [self.results.get(timeout=timeout) for _ in self.procs]
        for p in self.procs:
            p.join()
        return outcomes


def start_clients(target: Callable[..., None], per_client: Sequence[tuple[Any, ...]]) -> Clients:
    """Fork a process per client, each running ``target(*args, go, ready, results)``,
    and wait until every one has put on ``ready`` (its requests made).

    A process each, not threads: client threads of one interpreter queue on its GIL,
    which capped a bare server near 1,000 requests/s (docs/performance.md, "the load
    generator was the limit").
    """
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    ready, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, go, ready, results)) for args in per_client]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    return Clients(procs, go, results)
