"""Retention benchmark: what history costs in storage, and what expiring it reclaims.

    .venv/bin/python benchmarks/retention.py              # 20,000 tables, 1,000 commits
    .venv/bin/python benchmarks/retention.py --quick      # 2,000 tables, 200 commits

A catalog on ``file://`` gets ``--tables`` tables in 20 bulk commits, then
``--commits`` single-table DDL commits (alter a description), the everyday shape of
a catalog's history. Reported: objects and bytes under the scope before, the time
of ``collect_garbage`` with ``keep_versions`` (expire + GC; files older than the
grace period, here 0 s), objects and bytes after, and the latency of reading the
head and of time travel to the oldest retained version after expiry.

Tier 2: ``--days`` days of ``materialization.recorded`` events (10 batch objects a
day, ``--events`` in all) are compacted, then ``Compactor.prune`` keeps 7 days.
Reported: the prune's time, ledger objects before and after, and the time a fresh
process takes to load the domain's resident state (the compactor's first read),
before and after.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _util import Stats, environment, fmt_s, print_table, write_json
from ulid import ULID

from arco.catalog import Catalog
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore, open_store
from arco.domain.retention import RetentionPolicy, floor_version
from arco.ledger.compactor import Compactor, tier2_store
from arco.ledger.events import build_envelope
from arco.maintenance.gc import collect_garbage

SCOPE = Scope("default", "default")


def usage(store: ObjectStore) -> tuple[int, int]:
    """(objects, bytes) under the scope."""
    metas = list(store.list(SCOPE.prefix))
    return len(metas), sum(m.size for m in metas)


def seed_ledger(store: ObjectStore, days: int, events: int) -> None:
    """``events`` materializations over the last ``days`` days, 10 batch objects a day."""
    keys = Keys(SCOPE)
    now = datetime.now(UTC)
    per_batch = max(1, events // (days * 10))
    n = 0
    for day in range(days, 0, -1):
        for b in range(10):
            at = now - timedelta(days=day) + timedelta(hours=2 * b)
            batch_id = str(ULID.from_timestamp(at.timestamp()))
            envs = []
            for _ in range(per_batch):
                event_id = str(ULID.from_timestamp(at.timestamp()))
                envs.append(
                    build_envelope(
                        "executions",
                        "materialization.recorded",
                        {"asset": f"bench.a{n % 500}", "row_count": n},
                        event_id=event_id,
                        occurred_at=at,
                    ).to_dict()
                )
                n += 1
            body = json.dumps({"events": envs}, separators=(",", ":")).encode()
            store.put(keys.ledger_batch("executions", at, batch_id), body, "create")


def load_ms(store: ObjectStore) -> float:
    """ms a fresh process needs to load the executions domain's resident state."""
    t0 = time.perf_counter()
    tier2_store(store, SCOPE, "executions").read()
    return (time.perf_counter() - t0) * 1000


def tier2(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Compact ``args.days`` of events, then prune to 7 days; the figures."""
    store = open_store(f"file://{tmp / 'tier2'}")
    seed_ledger(store, args.days, args.events)
    out: dict[str, Any] = {"days": args.days, "events": args.events}
    t0 = time.perf_counter()
    Compactor(store, SCOPE, max_events=1_000_000).compact("executions")
    out["compact_s"] = time.perf_counter() - t0
    prefix = Keys(SCOPE).ledger_prefix("executions")
    out["ledger_before"] = sum(1 for _ in store.list(prefix))
    out["load_before"] = Stats.of([load_ms(store) for _ in range(3)])
    t0 = time.perf_counter()
    report = Compactor(store, SCOPE).prune("executions", timedelta(days=7))
    out["prune_s"] = time.perf_counter() - t0
    out["pruned_keys"] = report.event_keys
    out["ledger_after"] = sum(1 for _ in store.list(prefix))
    out["load_after"] = Stats.of([load_ms(store) for _ in range(3)])
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 tables, 200 commits")
    parser.add_argument("--tables", type=int)
    parser.add_argument("--commits", type=int)
    parser.add_argument("--keep", type=int, default=10, help="versions to keep")
    parser.add_argument("--days", type=int, default=30, help="Tier 2: days of events")
    parser.add_argument("--events", type=int, help="Tier 2: events in all")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    n_tables = args.tables or (2_000 if args.quick else 20_000)
    n_commits = args.commits or (200 if args.quick else 1_000)
    results: dict[str, Any] = {"tables": n_tables, "commits": n_commits, "keep": args.keep}
    with tempfile.TemporaryDirectory(prefix="arco-retention-") as tmp:
        store = open_store(f"file://{Path(tmp) / 'store'}")
        cat = Catalog(store, SCOPE)
        cat.create_namespace("ns")
        started = time.perf_counter()
        step = max(1, n_tables // 20)
        for first in range(0, n_tables, step):
            with cat.transaction() as tx:
                for i in range(first, min(n_tables, first + step)):
                    tx.create_table("ns", f"t{i:06d}", ["id:int64", "name:string"])
        for i in range(n_commits):
            cat.update_table("ns", f"t{i % n_tables:06d}", description=f"revision {i}")
        results["build_s"] = time.perf_counter() - started
        head = cat.version
        results["objects_before"], results["bytes_before"] = usage(store)
        t0 = time.perf_counter()
        report = collect_garbage(
            store, SCOPE, grace_seconds=0, retention=RetentionPolicy(keep_versions=args.keep)
        )
        results["gc_s"] = time.perf_counter() - t0
        results["deleted"] = len(report.deleted)
        results["objects_after"], results["bytes_after"] = usage(store)
        oldest = floor_version(store, Keys(SCOPE), "catalog")
        fresh = Catalog(store, SCOPE)
        fresh.snapshot(0)  # the first read folds the state; later ones GET the pointer
        head_ms, old_ms = [], []
        for _ in range(20):
            t0 = time.perf_counter()
            fresh.snapshot(0)
            head_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            Catalog(store, SCOPE).at_version(oldest)
            old_ms.append((time.perf_counter() - t0) * 1000)
        results["read_head"] = Stats.of(head_ms)
        results["time_travel_oldest"] = Stats.of(old_ms)
        args.events = args.events or (30_000 if args.quick else 300_000)
        t2 = results["tier2"] = tier2(args, Path(tmp))
    mb = 1e6
    print_table(
        ["metric", "value"],
        [
            [
                "catalog",
                f"{n_tables:,} tables, {head:,} versions (built in {fmt_s(results['build_s'])})",
            ],
            [
                "before: objects / MB",
                f"{results['objects_before']:,} / {results['bytes_before'] / mb:.1f}",
            ],
            [
                f"gc --keep-versions {args.keep} (expire + delete)",
                f"{fmt_s(results['gc_s'])}, {results['deleted']:,} objects deleted",
            ],
            [
                "after: objects / MB",
                f"{results['objects_after']:,} / {results['bytes_after'] / mb:.1f}",
            ],
            ["read head after expiry (pointer GET, cached state)", results["read_head"].short()],
            [
                f"time travel to oldest kept version {oldest} (cold: new Catalog, full fold)",
                results["time_travel_oldest"].short(),
            ],
        ],
        title="History retention (file://)",
    )
    print_table(
        ["metric", "value"],
        [
            [
                "ledger",
                f"{t2['events']:,} events over {t2['days']} days "
                f"(compacted in {fmt_s(t2['compact_s'])})",
            ],
            ["prune to 7 days", f"{fmt_s(t2['prune_s'])}, {t2['pruned_keys']:,} dedup records"],
            ["ledger objects before / after", f"{t2['ledger_before']:,} / {t2['ledger_after']:,}"],
            ["load resident state, before prune", t2["load_before"].short()],
            ["load resident state, after prune", t2["load_after"].short()],
        ],
        title="Tier-2 ledger pruning (file://)",
    )
    if args.json:
        write_json(
            args.json, {"benchmark": "retention", "environment": environment(), "results": results}
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
