"""Discovery benchmark: lineage traversal and catalog search (arco, file:// by default).

Run standalone::

    .venv/bin/python benchmarks/discovery.py            # full: 100,000 edges, 100,000 tables
    .venv/bin/python benchmarks/discovery.py --quick    # smoke run: 10,000 edges, 10,000 tables
    .venv/bin/python benchmarks/discovery.py --json out.json

What is measured
----------------
Lineage: a random, mostly acyclic graph of E edges over E/2 nodes in 12
namespaces. Nodes are ordered like pipeline layers; 90% of the edges go from a
node to one a little further down the order (exponential offset, mean 200),
8% leave one of the "hub" nodes (one node in 500, like a shared dimension table)
towards any later node, and 2% point backwards, which makes cycles. The edges
are inserted as declared edges (the row shape of ``LineageGraph.add_edge``) with
``graph.domain.commit`` in commits of 10,000. Figures: ``traverse(root,
direction="both", depth=5)`` from random roots on one warm ``LineageGraph``
(hot), the first traversal on a new object (cold: reads the pointer, manifest
and edge files and builds the adjacency index), and the graph build time.

Search: a catalog of T tables in 20 namespaces, built with ``Catalog.transaction``
(5,000 tables per commit); each table has 2-3 columns, a name of two words from
a small vocabulary plus a number, and a description of 6-10 words from a small
vocabulary (so common tokens match thousands of tables). Figures: the index
build (``SearchIndex.refresh`` of the whole catalog), an incremental refresh
after one more table, the first query on a new ``SearchIndex`` (cold: bucket
files are read; with the warm ``Catalog`` object, and with a new ``Catalog``
too), and hot p50/p95 per query kind (exact table names, exact qualified names
``namespace.table``, name prefixes, single tokens, multi-token queries) after one
warm-up pass over the same queries; for exact queries the number that found
their table is shown too. Last, one more table is created, the index refreshed
incrementally, and the same queries timed once more (their buckets may have to
be read again). If the full index build outlives the search domain's lease
(``FencedError``), that is reported as a failure and the build is redone with
the lease raised (``index.domain.lock.ttl``) so the remaining figures exist.

Each part runs in a forked child process (``--in-process`` to disable) so its
peak RSS is its own (including ~100 MB of interpreter and imports). The
machine may be shared with other work, so treat small differences as noise.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    sample,
    write_json,
)

from arco.catalog.catalog import Catalog
from arco.core import FencedError, Scope, new_ulid, open_store, utc_now
from arco.core.storage import ObjectStore
from arco.discovery.lineage import LineageGraph
from arco.discovery.search import SearchIndex
from arco.domain.store import Change, Snapshot
from arco.ledger.folds import RowMapState

SEED = 20240601
DEPTH = 5
EDGE_COMMIT = 10_000
TABLE_TXN = 5_000
#: Lease of the search domain for a full index build when the default one runs out.
REFRESH_FALLBACK_TTL = 1_800.0

GOAL_TRAVERSE_P95_MS = 10.0
SEED_TRAVERSE_MS = 100.0
GOAL_SEARCH_P95_MS = 20.0
SEED_SEARCH_MS = 500.0

NODE_NAMESPACES = (
    "raw",
    "staging",
    "intermediate",
    "marts",
    "sales",
    "finance",
    "marketing",
    "ops",
    "product",
    "growth",
    "risk",
    "ml",
)
NAME_WORDS = (
    "customer",
    "order",
    "revenue",
    "daily",
    "weekly",
    "product",
    "inventory",
    "session",
    "event",
    "payment",
    "refund",
    "account",
    "user",
    "click",
    "campaign",
    "ledger",
    "invoice",
    "shipment",
    "supplier",
    "region",
    "store",
    "price",
    "discount",
    "subscription",
    "churn",
    "forecast",
    "cohort",
    "funnel",
    "marketing",
    "warehouse",
)
DESC_WORDS = (
    *NAME_WORDS,
    "table",
    "raw",
    "cleaned",
    "aggregated",
    "metrics",
    "per",
    "from",
    "source",
    "system",
    "snapshot",
    "history",
    "latest",
    "deduplicated",
    "joined",
    "with",
    "and",
    "by",
    "monthly",
    "export",
    "crm",
)
COLUMN_WORDS = (
    "id",
    "customer_id",
    "order_id",
    "amount",
    "currency",
    "created_at",
    "updated_at",
    "status",
    "region",
    "quantity",
    "price",
    "user_id",
    "session_id",
    "event_name",
    "country",
)
COLUMN_TYPES = ("int64", "string", "timestamp[us, UTC]", "float64")


@dataclass
class Sizes:
    """How big each part is."""

    edges: int
    roots: int
    cold_traversals: int
    tables: int
    queries_per_kind: int
    cold_queries: int


def sizes_for(args: argparse.Namespace) -> Sizes:
    """Full or quick sizes, with command-line overrides."""
    quick = Sizes(10_000, 100, 3, 10_000, 20, 2)  # 5 query kinds x 20
    full = Sizes(100_000, 200, 5, 100_000, 40, 3)  # 5 query kinds x 40
    sz = quick if args.quick else full
    if args.edges is not None:
        sz.edges = args.edges
    if args.tables is not None:
        sz.tables = args.tables
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


@dataclass(frozen=True)
class Target:
    """Where a part writes: a store URL and the scope to use in it."""

    url: str
    tenant: str
    workspace: str

    def open(self) -> tuple[ObjectStore, Scope]:
        """The store and scope."""
        return open_store(self.url), Scope(self.tenant, self.workspace)


# ----------------------------------------------------------------- lineage
def node_name(i: int) -> str:
    """The name of node ``i``."""
    return f"{NODE_NAMESPACES[i % len(NODE_NAMESPACES)]}.node_{i:06d}"


def make_edges(n_edges: int, rng: random.Random) -> list[tuple[int, int]]:
    """``n_edges`` distinct (source, target) node pairs (see the module docstring)."""
    n_nodes = max(100, n_edges // 2)
    hubs = list(range(0, n_nodes, 500))
    edges: set[tuple[int, int]] = set()
    while len(edges) < n_edges:
        r = rng.random()
        if r < 0.02:  # backwards: closes a cycle
            target = rng.randrange(n_nodes - 1)
            source = min(n_nodes - 1, target + 1 + int(rng.expovariate(1 / 50)))
        elif r < 0.10:  # from a hub
            source = rng.choice(hubs)
            target = rng.randrange(source + 1, n_nodes)
        else:
            source = rng.randrange(n_nodes - 1)
            target = min(n_nodes - 1, source + 1 + int(rng.expovariate(1 / 200)))
        if source != target:
            edges.add((source, target))
    return sorted(edges)


def insert_edges(graph: LineageGraph, edges: list[tuple[int, int]]) -> list[float]:
    """Declare ``edges`` in commits of EDGE_COMMIT; seconds per commit."""
    times: list[float] = []
    for start in range(0, len(edges), EDGE_COMMIT):
        chunk = edges[start : start + EDGE_COMMIT]
        now = utc_now()

        def mutate(
            snap: Snapshot[RowMapState], chunk: list[tuple[int, int]] = chunk, now: Any = now
        ) -> Change:
            change = Change(operation={"ops": [{"op": "bench_declare_edges", "n": len(chunk)}]})
            for s, t in chunk:
                change.upsert(
                    "edges",
                    {
                        "source": node_name(s),
                        "target": node_name(t),
                        "edge_type": "derives",
                        "declared": True,
                        "observations": 0,
                        "first_seen": None,
                        "last_seen": None,
                        "last_run_id": None,
                        "last_event_id": None,
                        "columns": [],
                        "updated_at": now,
                    },
                )
            return change

        t0 = time.perf_counter()
        graph.domain.commit(mutate)
        times.append(time.perf_counter() - t0)
    return times


def part_lineage(target: Target, sz: Sizes) -> dict[str, Any]:
    """Build the graph, then hot and cold traversals."""
    store, scope = target.open()
    rng = random.Random(SEED)
    out: dict[str, Any] = {"edges": sz.edges}
    edges = make_edges(sz.edges, rng)
    nodes = sorted({n for e in edges for n in e})
    out["nodes"] = len(nodes)
    log(f"[lineage] declaring {len(edges):,} edges over {len(nodes):,} nodes ...")
    builder = LineageGraph(store, scope)
    commit_s = insert_edges(builder, edges)
    out["build_s"] = sum(commit_s)
    out["build_commit_s"] = commit_s
    log(
        f"  {fmt_s(out['build_s'])} in {len(commit_s)} commits "
        f"(slowest {fmt_s(max(commit_s))}); RSS {current_rss_mb():.0f} MB"
    )
    del builder
    gc.collect()

    roots = [node_name(rng.choice(nodes)) for _ in range(sz.roots)]
    graph = LineageGraph(store, scope)
    t0 = time.perf_counter_ns()
    first = graph.traverse(roots[0], direction="both", depth=DEPTH)
    out["first_ms"] = (time.perf_counter_ns() - t0) / 1e6
    log(
        f"[lineage] first traversal on a new LineageGraph: {fmt_ms(out['first_ms'])} "
        f"({len(first.nodes)} nodes, {len(first.edges)} edges)"
    )

    sizes: list[tuple[int, int]] = []

    def hot(i: int) -> None:
        res = graph.traverse(roots[i], direction="both", depth=DEPTH)
        sizes.append((len(res.nodes), len(res.edges)))

    gc.collect()
    hot_ms = sample(hot, len(roots))
    out["hot"] = Stats.of(hot_ms)
    n_nodes = [s[0] for s in sizes]
    n_edges = [s[1] for s in sizes]
    out["result_nodes"] = {"mean": sum(n_nodes) / len(n_nodes), "max": max(n_nodes)}
    out["result_edges"] = {"mean": sum(n_edges) / len(n_edges), "max": max(n_edges)}
    log(
        f"[lineage] hot traverse(both, depth={DEPTH}) x {len(roots)}: {out['hot'].short()}; "
        f"results: {out['result_nodes']['mean']:.0f} nodes / "
        f"{out['result_edges']['mean']:.0f} edges on average (max "
        f"{out['result_nodes']['max']} / {out['result_edges']['max']})"
    )

    down_ms = sample(
        lambda i: graph.traverse(roots[i], direction="downstream", depth=DEPTH), len(roots)
    )
    out["hot_downstream"] = Stats.of(down_ms)
    log(f"[lineage] hot traverse(downstream, depth={DEPTH}): {out['hot_downstream'].short()}")

    cold: list[float] = []
    for i in range(sz.cold_traversals):
        gc.collect()
        t0 = time.perf_counter_ns()
        LineageGraph(store, scope).traverse(roots[-1 - i], direction="both", depth=DEPTH)
        cold.append((time.perf_counter_ns() - t0) / 1e6)
    out["cold"] = Stats.of(cold)
    log(f"[lineage] cold (new LineageGraph + traverse) x {len(cold)}: {out['cold'].short()}")
    out["peak_rss_mb"] = rss_mb()
    log(f"  peak RSS of this part: {out['peak_rss_mb']:.0f} MB")
    return out


# ------------------------------------------------------------------ search
@dataclass(frozen=True)
class TableSpec:
    """One generated table."""

    namespace: str
    name: str
    columns: tuple[str, ...]
    description: str


def make_tables(n: int, rng: random.Random) -> list[TableSpec]:
    """``n`` tables (see the module docstring)."""
    out = []
    for i in range(n):
        k = i % 20
        ns = f"{NODE_NAMESPACES[k % len(NODE_NAMESPACES)]}_{k:02d}"
        name = f"{rng.choice(NAME_WORDS)}_{rng.choice(NAME_WORDS)}_{i:06d}"
        cols = rng.sample(COLUMN_WORDS, rng.choice((2, 3)))
        columns = tuple(f"{c}:{rng.choice(COLUMN_TYPES)}" for c in cols)
        description = " ".join(rng.choice(DESC_WORDS) for _ in range(rng.randint(6, 10)))
        out.append(TableSpec(ns, name, columns, description.capitalize()))
    return out


def make_queries(
    tables: list[TableSpec], per_kind: int, rng: random.Random
) -> dict[str, list[str]]:
    """Queries by kind: exact names (bare and qualified), prefixes, tokens, multi-token."""
    picks = rng.sample(tables, per_kind * 3)
    exact = [t.name for t in picks[:per_kind]]
    qualified = [f"{t.namespace}.{t.name}" for t in picks[per_kind : 2 * per_kind]]
    prefixes = [t.name[: rng.randint(3, 12)] for t in picks[2 * per_kind :]]
    tokens = [rng.choice(DESC_WORDS) for _ in range(per_kind)]
    multi = [
        " ".join(rng.sample(NAME_WORDS, 2) + ([rng.choice(DESC_WORDS)] if i % 3 == 0 else []))
        for i in range(per_kind)
    ]
    return {
        "exact": exact,
        "qualified": qualified,
        "prefix": prefixes,
        "token": tokens,
        "multi-token": multi,
    }


def part_search(target: Target, sz: Sizes) -> dict[str, Any]:
    """Build the catalog, index it, then cold and hot queries."""
    store, scope = target.open()
    rng = random.Random(SEED + 1)
    out: dict[str, Any] = {"tables": sz.tables}
    tables = make_tables(sz.tables, rng)
    cat = Catalog(store, scope)
    namespaces = sorted({t.namespace for t in tables})
    log(
        f"[search] building a {sz.tables:,}-table catalog in {len(namespaces)} namespaces "
        f"({TABLE_TXN:,} tables per transaction) ..."
    )
    t0 = time.perf_counter()
    with cat.transaction() as tx:
        for ns in namespaces:
            tx.create_namespace(ns, description=f"{ns.rsplit('_', 1)[0]} data")
    txn_s: list[float] = []
    for start in range(0, len(tables), TABLE_TXN):
        t1 = time.perf_counter()
        with cat.transaction() as tx:
            for t in tables[start : start + TABLE_TXN]:
                tx.create_table(t.namespace, t.name, t.columns, description=t.description)
        txn_s.append(time.perf_counter() - t1)
    out["catalog_build_s"] = time.perf_counter() - t0
    out["catalog_txn_s"] = Stats.of([s * 1000 for s in txn_s])
    out["catalog_txn_list_s"] = txn_s
    log(
        f"  {fmt_s(out['catalog_build_s'])} ({len(txn_s)} transactions, "
        f"p50 {fmt_s(out['catalog_txn_s'].p50 / 1000)}, max "
        f"{fmt_s(out['catalog_txn_s'].max / 1000)}); RSS {current_rss_mb():.0f} MB"
    )
    log(f"  per transaction: {', '.join(f'{x:.1f}' for x in txn_s)} s")

    log("[search] index build: SearchIndex.refresh() of the whole catalog ...")
    gc.collect()
    index = SearchIndex(store, scope, catalog=cat)
    t0 = time.perf_counter()
    try:
        index.refresh()
        out["refresh_full_s"] = time.perf_counter() - t0
    except FencedError as exc:
        failed = time.perf_counter() - t0
        out["refresh_default_failed"] = {
            "seconds": failed,
            "error": str(exc),
            "lock_ttl": index.domain.lock.ttl,
        }
        log(
            f"  FAILED after {fmt_s(failed)} with the default SearchIndex "
            f"({index.domain.lock.ttl:g} s lease): {type(exc).__name__}: {exc}"
        )
        log(
            f"  retrying with the search domain's lease raised to {REFRESH_FALLBACK_TTL:g} s "
            "(benchmark workaround: index.domain.lock.ttl) ..."
        )
        del index
        gc.collect()
        index = SearchIndex(store, scope, catalog=cat)
        index.domain.lock.ttl = REFRESH_FALLBACK_TTL
        t0 = time.perf_counter()
        index.refresh()
        out["refresh_full_s"] = time.perf_counter() - t0
        out["refresh_lock_ttl"] = REFRESH_FALLBACK_TTL
    out["rss_after_refresh_mb"] = current_rss_mb()
    log(
        f"  {fmt_s(out['refresh_full_s'])}; RSS now {out['rss_after_refresh_mb']:.0f} MB, "
        f"peak {rss_mb():.0f} MB"
    )
    del index
    gc.collect()

    queries = make_queries(tables, sz.queries_per_kind, rng)
    first_q = queries["token"][0]

    cold_warm_cat: list[float] = []
    for i in range(sz.cold_queries):
        gc.collect()
        q = queries["multi-token"][i]
        t0 = time.perf_counter_ns()
        SearchIndex(store, scope, catalog=cat).search(q)
        cold_warm_cat.append((time.perf_counter_ns() - t0) / 1e6)
    out["cold_query_ms"] = Stats.of(cold_warm_cat)
    log(f"[search] first query on a new SearchIndex (warm Catalog): {out['cold_query_ms'].short()}")
    gc.collect()
    t0 = time.perf_counter_ns()
    SearchIndex(store, scope, catalog=Catalog(store, scope)).search(first_q)
    out["cold_query_new_catalog_ms"] = (time.perf_counter_ns() - t0) / 1e6
    log(
        f"[search] first query on a new SearchIndex and new Catalog (reads the catalog "
        f"state too): {fmt_ms(out['cold_query_new_catalog_ms'])}"
    )

    index = SearchIndex(store, scope, catalog=cat)
    all_queries = [(kind, q) for kind, qs in queries.items() for q in qs]
    totals: dict[str, list[int]] = {k: [] for k in queries}
    warm: list[float] = []
    for kind, q in all_queries:
        t0 = time.perf_counter_ns()
        res = index.search(q)
        warm.append((time.perf_counter_ns() - t0) / 1e6)
        totals[kind].append(res.total)
    out["warmup_pass"] = Stats.of(warm)
    log(
        f"[search] warm-up pass ({len(all_queries)} queries, loads buckets): "
        f"{out['warmup_pass'].short()}"
    )

    gc.collect()
    per_kind: dict[str, list[float]] = {k: [] for k in queries}
    for kind, q in all_queries:
        t0 = time.perf_counter_ns()
        index.search(q)
        per_kind[kind].append((time.perf_counter_ns() - t0) / 1e6)
    out["hot"] = {k: Stats.of(v) for k, v in per_kind.items()}
    out["hot_all"] = Stats.of([x for v in per_kind.values() for x in v])
    out["matches"] = {
        k: {"mean": sum(v) / len(v), "max": max(v), "found": sum(1 for x in v if x), "n": len(v)}
        for k, v in totals.items()
    }
    for kind, stats in out["hot"].items():
        m = out["matches"][kind]
        log(
            f"[search] hot {kind:<11} {stats.short()}; {m['found']}/{m['n']} queries found "
            f"something, {m['mean']:.1f} matches on average (max {m['max']:,})"
        )
    log(f"[search] hot, all queries: {out['hot_all'].short()}")

    log("[search] incremental refresh after one more create_table ...")
    cat.create_table(namespaces[0], "brand_new_table", ["id:int64"], description="fresh one")
    t0 = time.perf_counter()
    index.refresh()
    out["refresh_incremental_s"] = time.perf_counter() - t0
    found = index.search("brand_new_table").total
    log(f"  {fmt_s(out['refresh_incremental_s'])} (new table found: {found > 0})")
    gc.collect()
    after: list[float] = []
    for _kind, q in all_queries:
        t0 = time.perf_counter_ns()
        index.search(q)
        after.append((time.perf_counter_ns() - t0) / 1e6)
    out["after_change"] = Stats.of(after)
    log(
        "[search] the same queries once more after that change (buckets whose files "
        f"changed are read again): {out['after_change'].short()}"
    )
    out["peak_rss_mb"] = rss_mb()
    log(f"  peak RSS of this part: {out['peak_rss_mb']:.0f} MB")
    return out


# -------------------------------------------------------------------- main
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
            log(f"  part did not finish within {timeout:.0f} s; stopped")
            return {"error": f"timed out after {timeout:.0f} s"}


def summary(results: dict[str, Any], sz: Sizes) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Summary table rows and their JSON records."""
    rows: list[list[str]] = []
    records: list[dict[str, Any]] = []

    def add(metric: str, value: Any, goal: str = "", met: bool | None = None) -> None:
        if isinstance(value, Stats):
            text = f"p50 {fmt_ms(value.p50)} / p95 {fmt_ms(value.p95)} (n={value.n})"
        elif isinstance(value, str):
            text = value
        else:
            text = fmt_ms(value)
        rows.append([metric, text, goal, "" if met is None else ("yes" if met else "NO")])
        records.append({"metric": metric, "value": value, "goal": goal or None, "met": met})

    lin = results.get("lineage")
    if lin and "error" not in lin:
        e, n = lin["edges"], lin["nodes"]
        add(f"lineage: build {e:,} edges / {n:,} nodes", fmt_s(lin["build_s"]))
        add(
            f"traverse both, depth {DEPTH}, hot ({sz.roots} roots)",
            lin["hot"],
            f"p95 < {GOAL_TRAVERSE_P95_MS:g} ms (seed budget {SEED_TRAVERSE_MS:g} ms)",
            lin["hot"].p95 < GOAL_TRAVERSE_P95_MS,
        )
        add(
            "  result size (mean nodes / edges)",
            f"{lin['result_nodes']['mean']:.0f} / {lin['result_edges']['mean']:.0f}",
        )
        add(f"traverse downstream, depth {DEPTH}, hot", lin["hot_downstream"])
        add("traverse cold: first on a new LineageGraph", lin["first_ms"])
        add("traverse cold: new LineageGraph each", lin["cold"])
        add("  peak RSS (lineage part)", f"{lin['peak_rss_mb']:.0f} MB")
    elif lin:
        add("lineage", lin["error"])
    srch = results.get("search")
    if srch and "error" not in srch:
        add(f"search: build {srch['tables']:,}-table catalog", fmt_s(srch["catalog_build_s"]))
        failed = srch.get("refresh_default_failed")
        if failed:
            add(
                "index build, default SearchIndex",
                f"FAILED after {fmt_s(failed['seconds'])}: lease ({failed['lock_ttl']:g} s) "
                "expired before publish (FencedError)",
                "must not fail",
                False,
            )
        add(
            "index build (full refresh)"
            + (f", lease raised to {srch['refresh_lock_ttl']:g} s" if failed else ""),
            fmt_s(srch["refresh_full_s"]),
        )
        add("incremental refresh (+1 table)", fmt_s(srch["refresh_incremental_s"]))
        add("queries right after that change", srch["after_change"])
        add("first query, new SearchIndex (warm Catalog)", srch["cold_query_ms"])
        add("first query, new SearchIndex + new Catalog", srch["cold_query_new_catalog_ms"])
        add("warm-up pass (bucket loads)", srch["warmup_pass"])
        for kind, stats in srch["hot"].items():
            m = srch["matches"][kind]
            found = f"{m['found']}/{m['n']} found" if kind in ("exact", "qualified") else ""
            add(f"search hot: {kind}", stats, found, (m["found"] == m["n"]) if found else None)
        add(
            "search hot: all queries",
            srch["hot_all"],
            f"p95 < {GOAL_SEARCH_P95_MS:g} ms (seed budget {SEED_SEARCH_MS:g} ms)",
            srch["hot_all"].p95 < GOAL_SEARCH_P95_MS,
        )
        add("  peak RSS (search part)", f"{srch['peak_rss_mb']:.0f} MB")
    elif srch:
        add("search", srch["error"])
    return rows, records


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 10,000 edges and tables")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--store", metavar="URL", help="store URL (default: file:// in a temp dir)")
    parser.add_argument("--edges", type=int, help="override the number of lineage edges")
    parser.add_argument("--tables", type=int, help="override the number of catalog tables")
    parser.add_argument(
        "--only", choices=("lineage", "search"), help="run only one of the two parts"
    )
    parser.add_argument("--in-process", action="store_true", help="run every part in-process")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="give up on a part after this many seconds"
    )
    args = parser.parse_args(argv)
    sz = sizes_for(args)
    if sz.edges < 100 or sz.tables < 3 * sz.queries_per_kind:
        parser.error("--edges must be at least 100 and --tables at least 120")
    isolated = not args.in_process

    env = environment()
    mode = "quick" if args.quick else "full"
    log(
        f"arco discovery benchmark ({mode} mode): lineage {sz.edges:,} edges, "
        f"search {sz.tables:,} tables"
    )
    log(
        f"python {env['python']} on {env['platform']}, {env['cpu_count']} cores, "
        f"load average {env['load_average']}"
    )
    log(
        "note: this machine has 2 cores and runs other jobs in parallel, so figures are "
        "noisy;\n  compare within one run. Store: "
        f"{args.store or 'file:// in a temp dir'}; each part in "
        f"{'a forked child process' if isolated else 'this process'}."
    )

    started = time.perf_counter()
    results: dict[str, Any] = {}
    run_id = new_ulid().lower()[-8:]
    with tempfile.TemporaryDirectory(prefix="arco-discovery-") as tmpdir:
        for part, fn in (("lineage", part_lineage), ("search", part_search)):
            if args.only and args.only != part:
                continue
            if args.store:
                target = Target(args.store, "default", f"bench-disc-{run_id}-{part}")
            else:
                path = Path(tmpdir) / part
                path.mkdir()
                target = Target(f"file://{path}", "default", "default")
            results[part] = run_isolated(isolated, args.timeout, fn, target, sz)
            if not args.store:
                shutil.rmtree(Path(tmpdir) / part, ignore_errors=True)

    rows, records = summary(results, sz)
    print_table(["metric", "value", "goal", "met?"], rows, title=f"Summary ({mode} mode)")
    elapsed = time.perf_counter() - started
    print(
        f"total {fmt_s(elapsed)}; load average at end {load_average()} on {os.cpu_count()} "
        "cores (other jobs share this machine)"
    )
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "discovery",
                "mode": mode,
                "sizes": sz.__dict__,
                "environment": env,
                "store": args.store or "file:// temp dir",
                "load_average_end": load_average(),
                "elapsed_s": elapsed,
                "results": results,
                "summary": records,
            },
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
