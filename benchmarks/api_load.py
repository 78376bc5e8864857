"""API under mixed concurrent load on a large catalog, and the search index build.

    .venv/bin/python benchmarks/api_load.py                      # 100,000 tables, 8 clients, 30 s
    .venv/bin/python benchmarks/api_load.py --tables 10000 --seconds 10 --runs 3
    .venv/bin/python benchmarks/api_load.py --build-only          # only the index build figure
    git archive HEAD~3 src | tar -x -C /tmp/old && \
      .venv/bin/python benchmarks/api_load.py --src /tmp/old/src   # another tree, same catalog

What is measured
----------------
A catalog of ``--tables`` tables (20 namespaces, 2-3 columns and a description
each: the tables of ``benchmarks/discovery.py``), committed in transactions of
5,000, plus ~3,000 lineage edges, is built once into ``--cache`` (default
``/tmp/arco-api-load``) and reused.

*Index build*: a new process copies the catalog without its search index and
runs ``SearchIndex.refresh()`` (a full build); wall time and the child's peak
RSS (``ru_maxrss``) and CPU time are reported, for each of ``--build-runs``.

*Mixed load*: one real ``uvicorn`` server (``arco.api.app:create_app``, one
worker) on loopback, started fresh on the catalog (search index already built).
``--clients`` threads, each with its own keep-alive ``httpx.Client``, send
requests for ``--seconds`` seconds, each thread cycling through search (five
kinds of query: exact, qualified, prefix, token, multi-token), get table, list a
page of 100 tables, get namespace and lineage (depth 3, both directions). Each
request type gets p50 / p95 over all threads. The server's ``VmRSS`` is sampled
every 0.5 s; its ``VmHWM`` (peak) is read at the end. ``--runs`` repeats the
load against the same server; the report gives each run and the median.

The load generator shares the machine with the server (and other jobs), so the
load average is printed with each figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _util import Stats, environment, load_average, print_table, write_json
from discovery import make_queries, make_tables

from api import SECRET, TENANT, WORKSPACE, Server, new_client
from arco.api.auth import mint_token
from arco.catalog.catalog import Catalog
from arco.core.scope import Scope

BATCH = 5_000
SEED = 20240601
EDGE_TABLES = 1_000
Request = Callable[[httpx.Client, int], httpx.Response]


def log(msg: str) -> None:
    """Progress line."""
    print(msg, flush=True)


def scope() -> Scope:
    """The benchmark's scope (the API token's tenant and workspace)."""
    return Scope(TENANT, WORKSPACE)


def build_catalog(cache: Path, n: int) -> Path:
    """The catalog folder for ``n`` tables (built once; ``done`` marks it complete)."""
    folder = cache / f"catalog-{n}"
    if (folder / "done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tables = make_tables(n, random.Random(SEED + 1))
    cat = Catalog(f"file://{folder}", scope(), lock_ttl=300.0)
    start = time.perf_counter()
    with cat.transaction() as tx:
        for ns in sorted({t.namespace for t in tables}):
            tx.create_namespace(ns, f"{ns} data products", {"owner": f"team-{ns}"})
    for i in range(0, n, BATCH):
        with cat.transaction() as tx:
            for t in tables[i : i + BATCH]:
                tx.create_table(t.namespace, t.name, list(t.columns), description=t.description)
        log(
            f"  catalog: {min(i + BATCH, n):,} / {n:,} tables ({time.perf_counter() - start:.0f} s)"
        )
    (folder / "done").write_text("ok")
    return folder


def search_domain_dirs(folder: Path) -> list[Path]:
    """Where the search domain's files live (excluded from a build's copy)."""
    return [p for p in folder.rglob("search") if p.is_dir()]


def measure_build(folder: Path, work: Path) -> dict[str, float]:
    """One full index build in a new process on a copy of the catalog without its index."""
    target = work / "build"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(
        folder, target, ignore=shutil.ignore_patterns("search", "search.*", "done", "indexed")
    )
    code = (
        "import sys, time\n"
        "from arco.discovery.search import SearchIndex\n"
        "from arco.core.scope import Scope\n"
        "from arco.core.storage import open_store\n"
        f"idx = SearchIndex(open_store('file://{target}'), Scope({TENANT!r}, {WORKSPACE!r}))\n"
        "t = time.perf_counter(); v = idx.refresh(); s = time.perf_counter() - t\n"
        "print(s, v)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if status != 0:
        raise RuntimeError(f"index build failed ({status}): {out}")
    seconds = float(out.split()[0])
    shutil.rmtree(target, ignore_errors=True)
    return {
        "seconds": seconds,
        "peak_mib": usage.ru_maxrss / 1024,
        # The whole child's CPU (interpreter start and imports too, ~0.5 s).
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def ensure_index_and_lineage(folder: Path, n: int) -> None:
    """Build the search index and the lineage edges into the cached catalog once."""
    if (folder / "indexed").exists():
        return
    from arco.core.storage import open_store
    from arco.discovery.search import SearchIndex

    t = time.perf_counter()
    SearchIndex(open_store(f"file://{folder}"), scope()).refresh()
    log(f"  search index: {time.perf_counter() - t:.1f} s")
    tables = make_tables(n, random.Random(SEED + 1))[:EDGE_TABLES]
    edges = [
        {"source": f"{a.namespace}.{a.name}", "target": f"{b.namespace}.{b.name}"}
        for i, b in enumerate(tables)
        for a in tables[max(0, i - 3) : i]
    ]
    server = Server(folder, folder.parent / "seed-server.log")
    server.start()
    try:
        with new_client(server.base, token()) as c:
            events = [
                {"type": "lineage.edges_observed", "payload": {"edges": edges[i : i + 1000]}}
                for i in range(0, len(edges), 1000)
            ]
            c.post("/api/v1/events/lineage/batch", json={"events": events}).raise_for_status()
            c.post("/api/v1/compaction", json={"domain": "lineage"}).raise_for_status()
    finally:
        server.stop()
    log(f"  lineage: {len(edges):,} edges")
    (folder / "indexed").write_text("ok")


def token() -> str:
    """A reader+writer token of the benchmark's scope."""
    return mint_token(SECRET, tenant=TENANT, workspace=WORKSPACE, roles=["admin"], ttl_seconds=7200)


def proc_status(pid: int, field: str) -> float | None:
    """A ``/proc/<pid>/status`` field in MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


def requests_for(n: int) -> dict[str, list[Request]]:
    """Request makers per type (each type several variants, picked round-robin)."""
    rng = random.Random(SEED + 2)
    tables = make_tables(n, random.Random(SEED + 1))
    queries = make_queries(tables, 40, rng)
    picks = [tables[rng.randrange(len(tables))] for _ in range(2048)]
    namespaces = sorted({t.namespace for t in tables})
    nodes = [f"{t.namespace}.{t.name}" for t in tables[3 : min(EDGE_TABLES, n) - 3]]

    def search_of(q: str) -> Request:
        return lambda c, i: c.get("/api/v1/search", params={"q": q})

    out: dict[str, list[Request]] = {
        f"search {kind}": [search_of(q) for q in qs] for kind, qs in queries.items()
    }

    def get_table(c: httpx.Client, i: int) -> httpx.Response:
        t = picks[i % len(picks)]
        return c.get(f"/api/v1/namespaces/{t.namespace}/tables/{t.name}")

    out["get table"] = [get_table]
    out["list tables page"] = [
        lambda c, i: c.get(
            f"/api/v1/namespaces/{namespaces[i % len(namespaces)]}/tables",
            params={"page_size": 100},
        )
    ]
    out["get namespace"] = [
        lambda c, i: c.get(f"/api/v1/namespaces/{namespaces[i % len(namespaces)]}")
    ]
    out["lineage"] = [
        lambda c, i: c.get(
            f"/api/v1/lineage/{nodes[i % len(nodes)]}", params={"direction": "both", "depth": 3}
        )
    ]
    return out


def load_run(
    server: Server, reqs: dict[str, list[Request]], clients: int, seconds: float
) -> dict[str, Any]:
    """``clients`` threads cycling through every request type for ``seconds``."""
    # Search is one type with five kinds of query: it gets five slots per cycle, as
    # the other types get one each, so the mix is about half searches.
    plan = [(name, variants) for name, variants in reqs.items()]
    samples: dict[str, list[float]] = {name: [] for name in reqs}
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    rss: list[float] = []
    assert server.proc is not None
    pid = server.proc.pid

    def worker(t: int) -> None:
        mine: dict[str, list[float]] = {name: [] for name in reqs}
        with new_client(server.base, token()) as c:
            i = t * 7919
            while time.perf_counter() < stop:
                name, variants = plan[i % len(plan)]
                fn = variants[(i // len(plan)) % len(variants)]
                start = time.perf_counter()
                try:
                    resp = fn(c, i)
                    if resp.status_code != 200:
                        errors.append(f"{name}: HTTP {resp.status_code} {resp.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(f"{name}: {exc!r}")
                mine[name].append((time.perf_counter() - start) * 1000)
                i += 1
        with lock:
            for name, xs in mine.items():
                samples[name].extend(xs)

    def sampler() -> None:
        while time.perf_counter() < stop:
            value = proc_status(pid, "VmRSS")
            if value is not None:
                rss.append(value)
            time.sleep(0.5)

    load_before = load_average()
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(clients)]
    threads.append(threading.Thread(target=sampler))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    all_search = [x for name, xs in samples.items() if name.startswith("search") for x in xs]
    per_type = {name: Stats.of(xs).to_dict() for name, xs in samples.items() if xs}
    per_type["search (all)"] = Stats.of(all_search).to_dict()
    return {
        "per_type": per_type,
        "requests": sum(len(xs) for xs in samples.values()),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "rss_max_mib": max(rss) if rss else None,
        "rss_end_mib": proc_status(pid, "VmRSS"),
        "hwm_mib": proc_status(pid, "VmHWM"),
        "load_before": load_before,
        "load_after": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=100_000)
    parser.add_argument("--cache", default="/tmp/arco-api-load")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--build-runs", type=int, default=1)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--skip-build", action="store_true", help="no index build figure")
    parser.add_argument(
        "--src", help="run the server and the build from this src folder (another tree)"
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.src:
        # The server and the build child inherit it and import arco from there.
        os.environ["PYTHONPATH"] = str(Path(args.src).resolve())
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    log(f"load average {load_average()}; catalog of {args.tables:,} tables in {cache}")
    folder = build_catalog(cache, args.tables)
    report: dict[str, Any] = {"env": environment(), "tables": args.tables}
    if not args.skip_build:
        builds = []
        for _ in range(args.build_runs):
            load = load_average()
            b = measure_build(folder, cache)
            b["load"] = load
            builds.append(b)
            log(
                f"index build: {b['seconds']:.2f} s, peak {b['peak_mib']:.0f} MiB, "
                f"process CPU {b['cpu_seconds']:.2f} s (load {load})"
            )
        report["build"] = builds
        if args.build_only:
            if args.json:
                write_json(args.json, report)
            return 0
    ensure_index_and_lineage(folder, args.tables)
    reqs = requests_for(args.tables)
    server = Server(folder, cache / "server.log")
    server.start()
    assert server.proc is not None
    report["server_ready_s"] = server.started_s
    report["rss_idle_mib"] = proc_status(server.proc.pid, "VmRSS")
    runs = []
    try:
        for r in range(args.runs):
            res = load_run(server, reqs, args.clients, args.seconds)
            runs.append(res)
            log(
                f"run {r + 1}: {res['requests']:,} requests, {res['errors']} errors, "
                f"RSS max {res['rss_max_mib']:.0f} MiB, HWM {res['hwm_mib']:.0f} MiB, "
                f"load {res['load_before']} -> {res['load_after']}"
            )
            if res["first_error"]:
                log(f"  first error: {res['first_error']}")
    finally:
        server.stop()
    report["runs"] = runs
    rows = []
    for name in runs[0]["per_type"]:
        p50s = [r["per_type"][name]["p50_ms"] for r in runs if name in r["per_type"]]
        p95s = [r["per_type"][name]["p95_ms"] for r in runs if name in r["per_type"]]
        counts = [r["per_type"][name]["n"] for r in runs if name in r["per_type"]]
        rows.append(
            [
                name,
                f"{statistics.median(p50s):.1f}",
                f"{statistics.median(p95s):.1f}",
                " / ".join(f"{x:.0f}" for x in p95s),
                f"{statistics.median(counts):.0f}",
            ]
        )
    print_table(
        ["request", "p50 ms (median)", "p95 ms (median)", "p95 per run", "n per run"],
        rows,
        f"{args.clients} clients, {args.seconds:.0f} s per run, {args.tables:,} tables",
    )
    log(
        f"server RSS idle {report['rss_idle_mib']:.0f} MiB; max during runs "
        f"{max(r['rss_max_mib'] for r in runs):.0f} MiB; VmHWM {runs[-1]['hwm_mib']:.0f} MiB"
    )
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
