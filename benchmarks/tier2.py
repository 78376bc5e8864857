"""Tier-2 benchmark: event ledger ingest and compaction (arco, file:// by default).

Run standalone::

    .venv/bin/python benchmarks/tier2.py            # full: histories of 1k / 100k / 1M events
    .venv/bin/python benchmarks/tier2.py --quick    # smoke run: 1k / 10k / 30k events
    .venv/bin/python benchmarks/tier2.py --json out.json
    .venv/bin/python benchmarks/tier2.py --store file:///some/dir   # a fresh scope per phase

What is measured
----------------
1. Ingest throughput: ``Ledger.append`` one event at a time (one object per event)
   and ``Ledger.append_batch`` in batches of 1,000 (one object per batch), then
   the compaction of everything just ingested (all ids from the last minutes).
2. Compaction of a history of N ``materialization.recorded`` events (domain
   ``executions``; payloads with asset, partition, run, task, location, row and
   byte counts, code version, inputs and metadata), plus N/50 (at least 10)
   ``lineage.edges_observed`` events of 4 edges each in the ``lineage`` domain:
   the time of ``Compactor.compact("executions")`` (and of ``compact("lineage")``)
   on a domain that has never been compacted. If that one-chunk compaction
   outlives the compactor's lease (``FencedError``, nothing published), it is
   reported as a failure and redone with ``Compactor(max_objects=100)`` (commits
   of 100 objects), which is then the figure shown.
3. Incremental compaction: 1,000 new events appended with ``Ledger.append_batch``
   on top of each compacted history, then ``compact("executions")`` on the same
   (long-lived, warm) ``Compactor``; several rounds, median reported. The goal is
   a cost independent of history: within 2x of the 1,000-event history. For each
   bigger history a fresh 1,000-event baseline history, in its own process, takes
   its rounds in turn with it (ABBA order), and the ratio of the two medians is
   what is compared with the goal, so load from other jobs on the machine hits
   both sides alike. A "cold" round uses a new ``Compactor`` object (it has to
   load the domain state first, as a restarted compactor process would).

How the history is written
--------------------------
The compactor only looks back ``window + horizon`` (10 minutes + 1 day by
default) from its watermark when it lists the ledger (apart from a full-listing
audit once per ``audit_interval``, an hour by default). A history written by
``append_batch`` in the minutes before the measurement would put every object
inside that look-back, so every incremental run would list (and skip) the whole
history, which is not what a production ledger that has been written over
weeks looks like. The history is therefore written as production would have
left it: batch number ``b`` of 1,000 events gets a time ``ts`` spread evenly over
the past HISTORY_DAYS days (ending an hour ago); each event is built with
``build_envelope(domain, type, payload, event_id=str(ULID.from_datetime(ts + i ms)),
occurred_at=ts + i ms)`` (validated exactly as ``append_batch`` validates it), and
the batch object ``{"events": [...]}`` is written create-only under
``Keys(scope).ledger_batch(domain, day, batch_id)`` with ``batch_id`` a ULID of the
same time: the same layout and bytes ``append_batch`` writes, only with the
clock of the past. New events for the incremental rounds go through
``Ledger.append_batch`` (ids from now).

Each phase runs in a forked child process (``--in-process`` to disable) so its
peak RSS (``resource.getrusage``) is its own; the figure includes the ~100 MB of
the interpreter and imports. The machine may be shared with other work, so
treat small differences as noise.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _util import (
    Stats,
    environment,
    fmt_ms,
    fmt_s,
    load_average,
    print_table,
    rss_mb,
    write_json,
)
from ulid import ULID

from arco.core import FencedError, Keys, Scope, new_ulid, open_store
from arco.core.storage import ObjectStore
from arco.ledger.compactor import CompactionReport, Compactor
from arco.ledger.events import build_envelope
from arco.ledger.log import Ledger

BATCH = 1_000
HISTORY_DAYS = 30
INCREMENT = 1_000
ASSETS = 2_000
ASSET_NAMESPACES = ("raw", "staging", "marts", "sales", "finance", "ops")
LINEAGE_EVERY = 50  # one lineage.edges_observed event per 50 materializations
EDGES_PER_EVENT = 4

GOAL_COMPACT_1K_S = 0.5
SEED_BUDGET_1K_S = 5.0
GOAL_INCREMENTAL_RATIO = 2.0
COMPACT_BUDGET_S = 300.0  # a single compaction above 5 minutes is "unreasonable"
#: Objects per commit when a default compaction's single chunk outlives its lease.
FALLBACK_OBJECTS = 100


@dataclass
class Sizes:
    """How big each phase is."""

    single: int
    batch_events: int
    histories: list[int]
    rounds: int


def sizes_for(args: argparse.Namespace) -> Sizes:
    """Full or quick sizes, with command-line overrides."""
    if args.quick:
        sz = Sizes(single=300, batch_events=20_000, histories=[1_000, 10_000, 30_000], rounds=5)
    else:
        sz = Sizes(
            single=2_000, batch_events=200_000, histories=[1_000, 100_000, 1_000_000], rounds=10
        )
    if args.histories:
        sz.histories = [int(x.replace("_", "")) for x in args.histories.split(",") if x.strip()]
    if args.rounds is not None:
        sz.rounds = args.rounds
    return sz


def log(msg: str) -> None:
    """Progress line (flushed, so a long run shows where it is)."""
    print(msg, flush=True)


def current_rss_mb() -> float:
    """Resident set size right now, in MB (Linux; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
    except (OSError, ValueError, IndexError):
        return rss_mb()


# ------------------------------------------------------------------ events
def asset_name(k: int) -> str:
    """One of ASSETS asset keys, ``namespace.table_NNNN``."""
    k %= ASSETS
    return f"{ASSET_NAMESPACES[k % len(ASSET_NAMESPACES)]}.table_{k:04d}"


def materialization(n: int, tag: str) -> dict[str, Any]:
    """A realistic, unique ``materialization.recorded`` payload (v2)."""
    k = (n * 7919) % ASSETS
    asset = asset_name(k)
    day = n % 365
    return {
        "asset": asset,
        "partition": f"date={2024 + day // 365:04d}-{day // 28 % 12 + 1:02d}-{day % 28 + 1:02d}",
        "run_id": f"{tag}-run-{n // 50:08d}",
        "task_id": f"{asset}#{n % 50}",
        "location": f"s3://lake/{asset.replace('.', '/')}/part-{tag}-{n:08d}.parquet",
        "row_count": (n * 2_654_435_761) % 5_000_000,
        "byte_size": (n * 40_503) % 900_000_000,
        "code_version": f"git:{n % 97:04x}",
        "data_version": f"dv-{n:08d}",
        "inputs": [{"asset": asset_name(k + 1)}, {"asset": asset_name(k + 17)}],
        "metadata": {"rows_written": n % 10_000, "duration_s": round((n % 600) / 7, 2)},
    }


def edges_observed(n: int, tag: str) -> dict[str, Any]:
    """A ``lineage.edges_observed`` payload of EDGES_PER_EVENT edges between assets."""
    k = (n * 104_729) % ASSETS
    return {
        "edges": [
            {
                "source": asset_name(k + j * 13),
                "target": asset_name(k + j * 13 + 1 + (n % 5)),
                "run_id": f"{tag}-run-{n:08d}",
                "columns": ["id", f"col_{j}"],
            }
            for j in range(EDGES_PER_EVENT)
        ]
    }


def write_history(
    store: ObjectStore,
    scope: Scope,
    domain: str,
    event_type: str,
    make_payload: Callable[[int, str], dict[str, Any]],
    n_events: int,
    start: datetime,
    end: datetime,
) -> int:
    """Write ``n_events`` as batch objects whose ids are spread from ``start`` to ``end``.

    See the module docstring: envelopes come from ``build_envelope`` with ULIDs of
    the past; objects go where ``Ledger.append_batch`` would have put them then.
    Returns the number of objects written.
    """
    keys = Keys(scope)
    n_batches = max(1, math.ceil(n_events / BATCH))
    span = end - start
    for b in range(n_batches):
        ts = start + span * (b / n_batches)
        envelopes = []
        when = ts
        for i in range(b * BATCH, min(n_events, (b + 1) * BATCH)):
            when = ts + timedelta(milliseconds=i - b * BATCH)
            envelopes.append(
                build_envelope(
                    domain,
                    event_type,
                    make_payload(i, "hist"),
                    event_id=str(ULID.from_datetime(when)),
                    occurred_at=when,
                    source="bench-history",
                )
            )
        batch_time = when + timedelta(milliseconds=1)
        batch_id = str(ULID.from_datetime(batch_time))
        body = json.dumps({"events": [e.to_dict() for e in envelopes]}, separators=(",", ":"))
        store.put(keys.ledger_batch(domain, batch_time, batch_id), body.encode(), "create")
    return n_batches


def append_batches(ledger: Ledger, n_events: int, tag: str) -> list[float]:
    """Append ``n_events`` materializations with ``append_batch``; per-batch times (ms)."""
    out: list[float] = []
    for start in range(0, n_events, BATCH):
        items = [
            {"type": "materialization.recorded", "payload": materialization(i, tag)}
            for i in range(start, min(n_events, start + BATCH))
        ]
        t0 = time.perf_counter_ns()
        ledger.append_batch("executions", items, source="bench")
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def timed_compact(
    compactor: Compactor, domain: str, chunks: list[float] | None = None
) -> tuple[float, CompactionReport]:
    """Seconds taken by one ``compact(domain)`` call, and its report.

    ``chunks`` (if given) receives the seconds of each chunk (one commit each).
    """
    gc.collect()
    t0 = time.perf_counter()
    marks = [t0]

    def progress(done: int, total: int) -> None:
        marks.append(time.perf_counter())

    report = compactor.compact(domain, progress=progress)
    if chunks is not None:
        chunks.extend(b - a for a, b in itertools.pairwise(marks))
    return time.perf_counter() - t0, report


def compact_history(
    store: ObjectStore, scope: Scope, out: dict[str, Any]
) -> tuple[Compactor, float, CompactionReport]:
    """First compaction of ``executions`` with a default Compactor.

    If its one big chunk outlives the compactor's lease (``FencedError``: nothing is
    published), that is recorded and the compaction is redone with chunks of
    FALLBACK_OBJECTS objects, which is what an operator would have to do.
    """
    compactor = Compactor(store, scope)
    chunks: list[float] = []
    t0 = time.perf_counter()
    try:
        seconds, rep = timed_compact(compactor, "executions", chunks)
        out["chunk_s"] = chunks
        return compactor, seconds, rep
    except FencedError as exc:
        failed = time.perf_counter() - t0
        out["default_failed"] = {
            "seconds": failed,
            "error": str(exc),
            "max_objects": compactor.max_objects,
            "lock_ttl": compactor.domain_store("executions").lock.ttl,
        }
        log(
            f"  FAILED after {fmt_s(failed)} with the default Compactor "
            f"(max_objects={compactor.max_objects:,} objects per commit, "
            f"{compactor.domain_store('executions').lock.ttl:g} s lease): "
            f"{type(exc).__name__}: {exc}"
        )
    log(f"  retrying with Compactor(max_objects={FALLBACK_OBJECTS}) ...")
    compactor = Compactor(store, scope, max_objects=FALLBACK_OBJECTS)
    out["max_objects"] = FALLBACK_OBJECTS
    seconds, rep = timed_compact(compactor, "executions", chunks)
    out["chunk_s"] = chunks
    return compactor, seconds, rep


def report_dict(r: CompactionReport) -> dict[str, Any]:
    """The interesting fields of a compaction report."""
    return {
        "objects": r.objects,
        "events": r.events,
        "duplicates": r.duplicates,
        "quarantined": r.quarantined,
        "commits": r.commits,
        "version": r.version,
    }


# ------------------------------------------------------------------ phases
@dataclass(frozen=True)
class Target:
    """Where a phase writes: a store URL and the scope to use in it."""

    url: str
    tenant: str
    workspace: str

    def open(self) -> tuple[ObjectStore, Scope]:
        """The store and scope."""
        return open_store(self.url), Scope(self.tenant, self.workspace)


def phase_ingest(target: Target, n_single: int, n_batch: int) -> dict[str, Any]:
    """Single and batch append throughput, then compaction of what was ingested."""
    store, scope = target.open()
    ledger = Ledger(store, scope)
    out: dict[str, Any] = {"rss_start_mb": current_rss_mb()}

    log(f"[ingest] Ledger.append x {n_single:,} (one object per event) ...")
    payloads = [materialization(i, "single") for i in range(n_single)]
    single: list[float] = []
    for p in payloads:
        t0 = time.perf_counter_ns()
        ledger.append("executions", "materialization.recorded", p, source="bench")
        single.append((time.perf_counter_ns() - t0) / 1e6)
    s_stats = Stats.of(single)
    out["single"] = {
        "events": n_single,
        "seconds": sum(single) / 1000,
        "events_per_s": n_single / (sum(single) / 1000),
        "latency": s_stats,
    }
    log(f"  {out['single']['events_per_s']:,.0f} events/s; per call {s_stats.short()}")

    log(f"[ingest] Ledger.append_batch: {n_batch:,} events in batches of {BATCH:,} ...")
    batches = append_batches(ledger, n_batch, "batch")
    b_stats = Stats.of(batches)
    out["batch"] = {
        "events": n_batch,
        "batch_size": BATCH,
        "seconds": sum(batches) / 1000,
        "events_per_s": n_batch / (sum(batches) / 1000),
        "latency_per_batch": b_stats,
    }
    log(f"  {out['batch']['events_per_s']:,.0f} events/s; per batch {b_stats.short()}")

    total = n_single + n_batch
    log(f"[ingest] compact('executions') of the {total:,} events just ingested ...")
    chunks: list[float] = []
    seconds, rep = timed_compact(Compactor(store, scope), "executions", chunks)
    out["compact_ingested"] = {
        "seconds": seconds,
        "chunk_s": chunks,
        "events_per_s": rep.events / seconds if seconds else None,
        **report_dict(rep),
    }
    log(
        f"  {fmt_s(seconds)} ({rep.events:,} events, {rep.objects:,} objects, "
        f"{rep.commits} commits of {', '.join(fmt_s(c) for c in chunks)}, "
        f"{rep.events / seconds:,.0f} events/s)"
    )
    out["peak_rss_mb"] = rss_mb()
    return out


class History:
    """One history of ``n_events`` in its own store: prepared once, then rounds on demand.

    Lives in a worker process (see :class:`Worker`) so a baseline history and a big
    one can take incremental rounds in turn, and load on the machine hits both alike.
    """

    def __init__(self, target: Target, n_events: int, label: str) -> None:
        self.store, self.scope = target.open()
        self.n_events = n_events
        self.label = label
        self.compactor: Compactor | None = None
        self.ledger = Ledger(self.store, self.scope)
        self.rounds = 0

    def prepare(self, quiet: bool = False) -> dict[str, Any]:
        """Write the spread history and compact it (executions, then lineage)."""
        say = (lambda _msg: None) if quiet else log
        store, scope, n_events = self.store, self.scope, self.n_events
        out: dict[str, Any] = {"history_events": n_events, "rss_start_mb": current_rss_mb()}
        n_lineage = max(10, n_events // LINEAGE_EVERY)
        end = datetime.now(UTC) - timedelta(hours=1)
        start = end - timedelta(days=HISTORY_DAYS)
        say(
            f"[{self.label}] writing {n_events:,} materializations + {n_lineage:,} "
            f"lineage events spread over {HISTORY_DAYS} days ..."
        )
        t0 = time.perf_counter()
        objects = write_history(
            store,
            scope,
            "executions",
            "materialization.recorded",
            materialization,
            n_events,
            start,
            end,
        )
        write_s = time.perf_counter() - t0
        write_history(
            store, scope, "lineage", "lineage.edges_observed", edges_observed, n_lineage, start, end
        )
        out["write"] = {"seconds": write_s, "objects": objects, "events_per_s": n_events / write_s}
        say(
            f"  executions: {objects:,} objects in {fmt_s(write_s)} "
            f"({n_events / write_s:,.0f} events/s incl. build_envelope)"
        )

        say(f"[{self.label}] compact('executions') ...")
        info: dict[str, Any] = {"max_objects": Compactor(store, scope).max_objects}
        compactor, seconds, rep = compact_history(store, scope, info)
        self.compactor = compactor
        out["compact"] = {
            "seconds": seconds,
            "events_per_s": rep.events / seconds if seconds else None,
            "over_budget": seconds > COMPACT_BUDGET_S,
            "slowest_commit_s": max(info["chunk_s"], default=None),
            **info,
            **report_dict(rep),
        }
        out["rss_after_compact_mb"] = current_rss_mb()
        say(
            f"  {fmt_s(seconds)}: {rep.events:,} events, {rep.objects:,} objects, {rep.commits} "
            f"commit(s) (slowest {fmt_s(out['compact']['slowest_commit_s'])}), "
            f"{rep.events / seconds:,.0f} events/s; RSS now "
            f"{out['rss_after_compact_mb']:.0f} MB, peak {rss_mb():.0f} MB"
        )
        if rep.events != n_events or rep.quarantined or rep.duplicates:
            log(f"  WARNING: expected {n_events:,} events folded, got {rep}")

        say(f"[{self.label}] compact('lineage') ({n_lineage:,} events) ...")
        l_seconds, l_rep = timed_compact(compactor, "lineage")
        out["compact_lineage"] = {"seconds": l_seconds, **report_dict(l_rep)}
        say(f"  {fmt_s(l_seconds)}: {l_rep.events:,} events, {l_rep.objects} objects")
        return out

    def incremental(self) -> float:
        """Append INCREMENT events with ``append_batch``; milliseconds of the compaction."""
        assert self.compactor is not None
        append_batches(self.ledger, INCREMENT, f"inc{self.rounds}")
        self.rounds += 1
        seconds, rep = timed_compact(self.compactor, "executions")
        if rep.events != INCREMENT:
            log(f"  WARNING: a round folded {rep.events} events, expected {INCREMENT}")
        return seconds * 1000

    def cold(self) -> float:
        """Seconds of one incremental compaction by a brand-new Compactor object."""
        append_batches(self.ledger, INCREMENT, "cold")
        gc.collect()
        t0 = time.perf_counter()
        Compactor(self.store, self.scope).compact("executions")
        return time.perf_counter() - t0

    def peak_rss(self) -> float:
        """Peak RSS of this process, MB."""
        return rss_mb()


def _serve(conn: Any, args: tuple[Any, ...]) -> None:
    """Worker loop: build a History from ``args``, then run the methods asked for."""
    try:
        obj = History(*args)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", None))
    while True:
        method, margs = conn.recv()
        if method is None:
            return
        try:
            conn.send(("ok", getattr(obj, method)(*margs)))
        except BaseException:
            conn.send(("error", traceback.format_exc()))


class Worker:
    """A :class:`History` in a forked child process (or in this one)."""

    def __init__(self, isolated: bool, timeout: float, *args: Any) -> None:
        self.timeout = timeout
        self.local: History | None = None
        self.proc: Any = None
        if not isolated:
            self.local = History(*args)
            return
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, args), daemon=True)
        self.proc.start()
        self._reply()

    def _reply(self) -> Any:
        if not self.conn.poll(self.timeout):
            self.close()
            raise TimeoutError(f"worker did not answer within {self.timeout:.0f} s")
        status, value = self.conn.recv()
        if status != "ok":
            self.close()
            raise RuntimeError(f"worker failed:\n{value}")
        return value

    def call(self, method: str, *args: Any) -> Any:
        """Run ``History.method(*args)`` and return its result."""
        if self.local is not None:
            return getattr(self.local, method)(*args)
        self.conn.send((method, args))
        return self._reply()

    def close(self) -> None:
        """End the worker process."""
        if self.proc is not None and self.proc.is_alive():
            with contextlib.suppress(OSError, BrokenPipeError):
                self.conn.send((None, ()))
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.terminate()
        self.local = None


def measure_history(
    places: Places, n: int, base_n: int, rounds: int, isolated: bool, timeout: float
) -> dict[str, Any]:
    """Prepare a history of ``n``; incremental rounds (interleaved with a fresh
    ``base_n`` history's rounds when ``n != base_n``); a cold round; peak RSS."""
    label = f"history {n:,}"
    worker = Worker(isolated, timeout, places.target(f"history-{n}"), n, label)
    baseline: Worker | None = None
    try:
        out = worker.call("prepare")
        mine: list[float] = []
        theirs: list[float] = []
        if n == base_n:
            log(
                f"[{label}] incremental: {rounds} rounds of append_batch({INCREMENT:,}) + "
                "compact('executions') on the same Compactor ..."
            )
            mine = [worker.call("incremental") for _ in range(rounds)]
        else:
            log(
                f"[{label}] incremental: {rounds} rounds of append_batch({INCREMENT:,}) + "
                f"compact('executions'), taken in turn with a fresh {base_n:,}-event history "
                "(ABBA order) so machine load hits both alike ..."
            )
            baseline = Worker(
                isolated, timeout, places.target(f"baseline-{n}"), base_n, f"baseline {base_n:,}"
            )
            baseline.call("prepare", True)
            for r in range(rounds):
                pair = (worker, baseline) if r % 2 == 0 else (baseline, worker)
                for w in pair:
                    (mine if w is worker else theirs).append(w.call("incremental"))
            baseline.close()
        i_stats = Stats.of(mine)
        out["incremental"] = {
            "rounds_ms": mine,
            "stats": i_stats,
            "median_s": statistics.median(mine) / 1000,
        }
        log(f"  per round: {i_stats.short()}; rounds: {', '.join(fmt_ms(x) for x in mine)}")
        if theirs:
            b_stats = Stats.of(theirs)
            out["baseline"] = {
                "history_events": base_n,
                "rounds_ms": theirs,
                "stats": b_stats,
                "median_s": statistics.median(theirs) / 1000,
            }
            out["ratio_median"] = statistics.median(mine) / statistics.median(theirs)
            out["ratio_min"] = min(mine) / min(theirs)
            log(
                f"  interleaved {base_n:,}-event baseline: {b_stats.short()}; ratio of medians "
                f"{out['ratio_median']:.2f}x (of minima {out['ratio_min']:.2f}x)"
            )
        log(f"[{label}] cold incremental: a new Compactor object ...")
        out["incremental_cold_s"] = worker.call("cold")
        log(f"  {fmt_s(out['incremental_cold_s'])} (includes loading the domain state)")
        out["peak_rss_mb"] = worker.call("peak_rss")
        log(f"  peak RSS of this phase: {out['peak_rss_mb']:.0f} MB")
        return out
    finally:
        worker.close()
        if baseline is not None:
            baseline.close()


def run_isolated(
    isolated: bool, timeout: float, fn: Callable[..., dict[str, Any]], *args: Any
) -> dict[str, Any]:
    """``fn(*args)`` in a forked child process (its own peak RSS), or in-process."""
    if not isolated:
        return fn(*args)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        pending = pool.apply_async(fn, args)
        try:
            return pending.get(timeout)
        except multiprocessing.TimeoutError:
            log(f"  phase did not finish within {timeout:.0f} s; stopped")
            return {"error": f"timed out after {timeout:.0f} s"}


def nice_floor(n: float) -> int:
    """The largest of 1, 2, 2.5, 5 x 10^k not above ``n``."""
    if n < 1_000:
        return 1_000
    k = 10 ** int(math.log10(n))
    for m in (5, 2.5, 2, 1):
        if m * k <= n:
            return int(m * k)
    return int(k)


# ------------------------------------------------------------------ main
class Places:
    """Hands out a fresh (store URL, scope) per phase."""

    def __init__(self, store_url: str | None, tmp: Path) -> None:
        self.store_url = store_url
        self.tmp = tmp
        self.run = new_ulid().lower()[-8:]
        self.made: list[Path] = []

    def target(self, phase: str) -> Target:
        """A fresh place for ``phase``."""
        if self.store_url:
            return Target(self.store_url, "default", f"bench-t2-{self.run}-{phase}")
        path = self.tmp / phase
        path.mkdir()
        self.made.append(path)
        return Target(f"file://{path}", "default", "default")

    def cleanup(self) -> None:
        """Remove the temp folders written so far (free disk between phases)."""
        for path in self.made:
            shutil.rmtree(path, ignore_errors=True)
        self.made.clear()


def summary(results: dict[str, Any], sz: Sizes) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Summary table rows and their JSON records."""
    rows: list[list[str]] = []
    records: list[dict[str, Any]] = []

    def add(metric: str, value: str, goal: str = "", met: bool | None = None, raw: Any = None):
        rows.append([metric, value, goal, "" if met is None else ("yes" if met else "NO")])
        records.append({"metric": metric, "value": raw, "goal": goal or None, "met": met})

    ing = results.get("ingest", {})
    if "single" in ing:
        s = ing["single"]
        add(
            f"Ledger.append x {s['events']:,}",
            f"{s['events_per_s']:,.0f} events/s (p50 {fmt_ms(s['latency'].p50)}, "
            f"p95 {fmt_ms(s['latency'].p95)} per call)",
            raw=s["events_per_s"],
        )
        b = ing["batch"]
        add(
            f"Ledger.append_batch {b['events']:,} events, {BATCH:,}/batch",
            f"{b['events_per_s']:,.0f} events/s (p50 {fmt_ms(b['latency_per_batch'].p50)}, "
            f"p95 {fmt_ms(b['latency_per_batch'].p95)} per batch)",
            raw=b["events_per_s"],
        )
        c = ing["compact_ingested"]
        add(
            f"compact {c['events']:,} just-ingested events ({c['objects']:,} objects)",
            f"{fmt_s(c['seconds'])} ({c['events_per_s']:,.0f} events/s, {c['commits']} commits; "
            f"slowest {fmt_s(max(c['chunk_s'], default=None))})",
            raw=c["seconds"],
        )
    for n, h in results.get("histories", {}).items():
        if "error" in h:
            add(f"history {n:,}", h["error"])
            continue
        c = h["compact"]
        goal, met = "", None
        if n == 1_000:
            goal = f"< {GOAL_COMPACT_1K_S:g} s (seed budget {SEED_BUDGET_1K_S:g} s)"
            met = c["seconds"] < GOAL_COMPACT_1K_S
        elif c["over_budget"]:
            goal, met = f"< {COMPACT_BUDGET_S:.0f} s (feasibility)", False
        failed = c.get("default_failed")
        if failed:
            add(
                f"compact {n:,} events, default Compactor",
                f"FAILED after {fmt_s(failed['seconds'])} (FencedError, see note)",
                "must not fail",
                False,
                raw=failed,
            )
        add(
            f"compact {n:,} events (executions, first run)"
            + (f", max_objects={c['max_objects']}" if failed else ""),
            f"{fmt_s(c['seconds'])} ({c['events_per_s']:,.0f} events/s, "
            f"{c['objects']:,} objects, {c['commits']} commit(s), slowest "
            f"{fmt_s(c['slowest_commit_s'])})",
            goal,
            met,
            raw=c["seconds"],
        )
        lin = h["compact_lineage"]
        add(
            f"  compact lineage ({lin['events']:,} events x {EDGES_PER_EVENT} edges)",
            fmt_s(lin["seconds"]),
            raw=lin["seconds"],
        )
        add(
            f"  history write rate (build_envelope + put, {h['write']['objects']:,} objects)",
            f"{h['write']['events_per_s']:,.0f} events/s",
            raw=h["write"]["events_per_s"],
        )
        inc = h["incremental"]
        med = inc["median_s"]
        goal, met = "", None
        ratio_txt = ""
        if "ratio_median" in h:
            ratio = h["ratio_median"]
            goal = f"ratio <= {GOAL_INCREMENTAL_RATIO:g}x"
            met = ratio <= GOAL_INCREMENTAL_RATIO
            ratio_txt = (
                f"; {ratio:.2f}x the interleaved {h['baseline']['history_events']:,}-event "
                f"baseline ({fmt_ms(h['baseline']['median_s'] * 1000)}; minima "
                f"{h['ratio_min']:.2f}x)"
            )
        add(
            f"  incremental {INCREMENT:,} on top of {n:,} (median of {len(inc['rounds_ms'])})",
            f"{fmt_ms(med * 1000)} (min {fmt_ms(inc['stats'].min)}, max "
            f"{fmt_ms(inc['stats'].max)}){ratio_txt}",
            goal,
            met,
            raw={
                "median_s": med,
                "ratio_median": h.get("ratio_median"),
                "ratio_min": h.get("ratio_min"),
            },
        )
        add(
            "  incremental, new Compactor object (cold)",
            fmt_s(h["incremental_cold_s"]),
            raw=h["incremental_cold_s"],
        )
        add("  peak RSS of the phase", f"{h['peak_rss_mb']:.0f} MB", raw=h["peak_rss_mb"])
    return rows, records


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run with small sizes")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--store", metavar="URL", help="store URL (default: file:// in a temp dir)")
    parser.add_argument(
        "--histories", metavar="N,N,...", help="history sizes to compact (default 1k,100k,1M)"
    )
    parser.add_argument("--rounds", type=int, help="incremental rounds per history")
    parser.add_argument(
        "--budget",
        type=float,
        default=COMPACT_BUDGET_S,
        help="largest acceptable single compaction, seconds (default 300)",
    )
    parser.add_argument("--in-process", action="store_true", help="run every phase in this process")
    parser.add_argument("--skip-ingest", action="store_true", help="skip the ingest phase")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="give up on a phase after this many seconds"
    )
    args = parser.parse_args(argv)
    sz = sizes_for(args)
    isolated = not args.in_process

    env = environment()
    mode = "quick" if args.quick else "full"
    log(
        f"arco Tier-2 benchmark ({mode} mode): ingest {sz.single:,} single + "
        f"{sz.batch_events:,} batched events; histories {', '.join(f'{n:,}' for n in sz.histories)}"
        f" events; {sz.rounds} incremental rounds of {INCREMENT:,}"
    )
    log(
        f"python {env['python']} on {env['platform']}, {env['cpu_count']} cores, "
        f"load average {env['load_average']}"
    )
    log(
        "note: this machine has 2 cores and runs other jobs in parallel, so figures are "
        "noisy;\n  compare within one run. Store: "
        f"{args.store or 'file:// in a temp dir'}; each phase in "
        f"{'a forked child process' if isolated else 'this process'}; baseline RSS "
        f"{current_rss_mb():.0f} MB."
    )

    started = time.perf_counter()
    results: dict[str, Any] = {"histories": {}}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="arco-tier2-") as tmpdir:
        places = Places(args.store, Path(tmpdir))
        if not args.skip_ingest:
            results["ingest"] = run_isolated(
                isolated,
                args.timeout,
                phase_ingest,
                places.target("ingest"),
                sz.single,
                sz.batch_events,
            )
            places.cleanup()
        per_event: float | None = None
        base_n = min(sz.histories)
        for n in sorted(sz.histories):
            if per_event is not None:
                estimate = per_event * n * 1.25
                if estimate > args.budget:
                    feasible = nice_floor(args.budget / (per_event * 1.25))
                    note = (
                        f"compacting {n:,} events is estimated at {fmt_s(estimate)} "
                        f"(> {args.budget:.0f} s budget) from the previous size; measuring "
                        f"{feasible:,} events instead"
                    )
                    log(f"NOTE: {note}")
                    notes.append(note)
                    n = feasible
                    if n in results["histories"]:
                        continue
            try:
                res = measure_history(places, n, base_n, sz.rounds, isolated, args.timeout)
            except (RuntimeError, TimeoutError) as exc:
                log(f"  history {n:,} failed: {exc}")
                res = {"error": str(exc).splitlines()[-1]}
            places.cleanup()
            results["histories"][n] = res
            if "compact" in res:
                per_event = res["compact"]["seconds"] / n
                if res["compact"]["over_budget"]:
                    note = (
                        f"compacting {n:,} events took {fmt_s(res['compact']['seconds'])}, over "
                        f"the {args.budget:.0f} s budget"
                    )
                    log(f"NOTE: {note}")
                    notes.append(note)

    for n, h in results["histories"].items():
        failed = h.get("compact", {}).get("default_failed")
        if failed:
            notes.append(
                f"the default Compactor could not compact the {n:,}-event history: its one "
                f"chunk (up to {failed['max_objects']:,} objects) ran "
                f"{fmt_s(failed['seconds'])}, past its {failed['lock_ttl']:g} s lease, and "
                f"publishing raised FencedError: {failed['error']}. Measured with "
                f"max_objects={h['compact']['max_objects']} instead."
            )
    rows, records = summary(results, sz)
    print_table(["metric", "value", "goal", "met?"], rows, title=f"Summary ({mode} mode)")
    for note in notes:
        print(f"note: {note}")
    elapsed = time.perf_counter() - started
    print(
        f"total {fmt_s(elapsed)}; peak RSS of this (parent) process {rss_mb():.0f} MB; "
        f"load average at end {load_average()} on {os.cpu_count()} cores "
        "(other jobs share this machine)"
    )
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "tier2",
                "mode": mode,
                "sizes": sz.__dict__,
                "environment": env,
                "store": args.store or "file:// temp dir",
                "load_average_end": load_average(),
                "elapsed_s": elapsed,
                "results": {
                    "ingest": results.get("ingest"),
                    "histories": {str(k): v for k, v in results["histories"].items()},
                },
                "summary": records,
                "notes": notes,
            },
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
