"""Retention benchmark: what history costs in storage, and what expiring it reclaims.

    .venv/bin/python benchmarks/retention.py              # 20,000 tables, 1,000 commits
    .venv/bin/python benchmarks/retention.py --quick      # 2,000 tables, 200 commits

A catalog on ``file://`` gets ``--tables`` tables in 20 bulk commits, then
``--commits`` single-table DDL commits (alter a description), the everyday shape of
a catalog's history. Reported: objects and bytes under the scope before, the time
of ``collect_garbage`` with ``keep_versions`` (expire + GC; files older than the
grace period, here 0 s), objects and bytes after, and the latency of reading the
head and of time travel to the oldest retained version after expiry.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _util import Stats, environment, fmt_s, print_table, write_json

from arco.catalog import Catalog
from arco.catalog.gc import collect_garbage
from arco.catalog.retention import RetentionPolicy, floor_version
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore, open_store

SCOPE = Scope("default", "default")


def usage(store: ObjectStore) -> tuple[int, int]:
    """(objects, bytes) under the scope."""
    metas = list(store.list(SCOPE.prefix))
    return len(metas), sum(m.size for m in metas)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 tables, 200 commits")
    parser.add_argument("--tables", type=int)
    parser.add_argument("--commits", type=int)
    parser.add_argument("--keep", type=int, default=10, help="versions to keep")
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
    if args.json:
        write_json(
            args.json, {"benchmark": "retention", "environment": environment(), "results": results}
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
