"""API under mixed concurrent load on a large catalog, and the search index build.

    .venv/bin/python benchmarks/api_load.py                      # 100,000 tables, 8 clients, 30 s
    .venv/bin/python benchmarks/api_load.py --tables 10000 --seconds 10 --runs 3
    .venv/bin/python benchmarks/api_load.py --build-only          # only the index build figure
    .venv/bin/python benchmarks/api_load.py --skip-build --floor  # and a bare app's figure
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
worker) on loopback, started fresh on the catalog (search index already built),
with its real routes and auth (an admin token, so every request is also audited,
as ADR 019 requires; ``--role reader`` for a reader's token, whose reads are not).
``--clients`` client processes (fork), each with one keep-alive ``http.client``
connection and its request paths made before the clock starts, send requests for
``--seconds`` seconds, each cycling through search (five kinds of query: exact,
qualified, prefix, token, multi-token), get table, list a page of 100 tables, get
namespace and lineage (depth 3). Client threads of one process would queue on
their own GIL and add that wait to every latency. Each request type gets p50 /
p95 over all clients; each run also reports requests/s, the server's CPU per
request (from ``/proc``: less sensitive to other load than latency) and the
clients'. The server's ``VmRSS`` is sampled every 0.5 s; its ``VmHWM`` (peak) is
read at the end. ``--runs`` repeats the load against the same server; the report
gives each run and the median.

*Floor* (``--floor``): the same clients against a bare ASGI app (answers every
request with a fixed 1.7 KB JSON body) in the same uvicorn: what this machine and
the HTTP stack allow before Arco does any work.

The load generator shares the machine with the server (and other jobs), so the
load average is printed with each figure.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _util import Stats, environment, load_average, print_table, start_clients, write_json
from discovery import make_queries, make_tables

from api import SECRET, TENANT, WORKSPACE, Server, new_client
from arco.api.auth import mint_token
from arco.catalog.catalog import Catalog
from arco.core.scope import Scope

BATCH = 5_000
SEED = 20240601
EDGE_TABLES = 1_000
#: Paths each client makes before the clock starts (then it cycles through them).
PLAN_LENGTH = 16_384
#: A request maker: the path (and query) of a client's ``i``-th request.
Request = Callable[[int], str]


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
        "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "print(s, v, hwm[0] if hwm else '')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if status != 0:
        raise RuntimeError(f"index build failed ({status}): {out}")
    fields = out.split()
    seconds = float(fields[0])
    shutil.rmtree(target, ignore_errors=True)
    # The child's own high-water mark: ru_maxrss also counts what a child shared
    # with this process when it was forked (~480 MiB right after a catalog build).
    peak_kib = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else usage.ru_maxrss
    return {
        "seconds": seconds,
        "peak_mib": peak_kib / 1024,
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


def token(role: str = "admin") -> str:
    """A token of the benchmark's scope (an admin's by default: reads and writes)."""
    return mint_token(SECRET, tenant=TENANT, workspace=WORKSPACE, roles=[role], ttl_seconds=7200)


def proc_status(pid: int, field: str) -> float | None:
    """A ``/proc/<pid>/status`` field in MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return None


def requests_for(n: int) -> dict[str, list[Request]]:
    """Request paths per type (each type several variants, picked round-robin)."""
    rng = random.Random(SEED + 2)
    tables = make_tables(n, random.Random(SEED + 1))
    queries = make_queries(tables, 40, rng)
    picks = [tables[rng.randrange(len(tables))] for _ in range(2048)]
    namespaces = sorted({t.namespace for t in tables})
    nodes = [f"{t.namespace}.{t.name}" for t in tables[3 : min(EDGE_TABLES, n) - 3]]

    def search_of(q: str) -> Request:
        path = "/api/v1/search?" + urlencode({"q": q})
        return lambda i: path

    out: dict[str, list[Request]] = {
        f"search {kind}": [search_of(q) for q in qs] for kind, qs in queries.items()
    }

    def get_table(i: int) -> str:
        t = picks[i % len(picks)]
        return f"/api/v1/namespaces/{t.namespace}/tables/{t.name}"

    out["get table"] = [get_table]
    out["list tables page"] = [
        lambda i: f"/api/v1/namespaces/{namespaces[i % len(namespaces)]}/tables?page_size=100"
    ]
    out["get namespace"] = [lambda i: f"/api/v1/namespaces/{namespaces[i % len(namespaces)]}"]
    out["lineage"] = [lambda i: f"/api/v1/lineage/{nodes[i % len(nodes)]}?direction=both&depth=3"]
    return out


def client_plan(reqs: dict[str, list[Request]], client: int, count: int) -> list[tuple[int, str]]:
    """The first ``count`` (type number, path) a client sends, in order."""
    # Search is one type with five kinds of query: it gets five slots per cycle, as
    # the other types get one each, so the mix is about half searches.
    plan = list(reqs.values())
    out = []
    for i in range(client * 7919, client * 7919 + count):
        kind = i % len(plan)
        variants = plan[kind]
        out.append((kind, variants[(i // len(plan)) % len(variants)](i)))
    return out


def _client_process(
    port: int,
    token: str,
    plan: list[tuple[int, str]],
    kinds: int,
    seconds: float,
    go: Any,
    ready: Any,
    results: Any,
) -> None:
    """One client (a process of its own, one keep-alive connection): connect, wait
    for ``go``, send ``plan`` in a loop for ``seconds``, put back the latencies (ms)
    per type, the errors and this process's CPU seconds."""
    headers = {"Authorization": f"Bearer {token}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.connect()
    latencies = [array("d") for _ in range(kinds)]
    errors: list[str] = []
    error_count = 0
    ready.put(True)
    go.wait()
    cpu = time.process_time()
    clock = time.perf_counter
    stop = clock() + seconds
    k = 0
    while clock() < stop:
        kind, path = plan[k % len(plan)]
        k += 1
        start = clock()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                error_count += 1
                if len(errors) < 5:
                    errors.append(f"{path}: HTTP {response.status} {body[:200]!r}")
        except (OSError, http.client.HTTPException) as exc:
            error_count += 1
            if len(errors) < 5:
                errors.append(f"{path}: {exc!r}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        latencies[kind].append((clock() - start) * 1000)
    conn.close()
    results.put(([a.tolist() for a in latencies], errors, error_count, time.process_time() - cpu))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_run(
    server: Server,
    reqs: dict[str, list[Request]],
    clients: int,
    seconds: float,
    role: str = "admin",
) -> dict[str, Any]:
    """``clients`` processes cycling through every request type for ``seconds``.

    One process per client: client threads of one interpreter queue on its GIL, so
    their latencies would include the load generator's own queueing (a bare app
    served ~975 requests/s to 8 thread clients, 4.7-6.3k/s to 8 processes; see
    "OpenLineage ingest: the load generator was the limit" in docs/performance.md).
    Each client's paths are made before the clock starts.
    """
    names = list(reqs)
    assert server.proc is not None
    pid = server.proc.pid
    clients_ready = start_clients(
        _client_process,
        [
            (server.port, token(role), client_plan(reqs, t, PLAN_LENGTH), len(names), seconds)
            for t in range(clients)
        ],
    )
    rss: list[float] = []
    done = threading.Event()

    def sampler() -> None:
        while not done.wait(0.5):
            value = proc_status(pid, "VmRSS")
            if value is not None:
                rss.append(value)

    load_before = load_average()
    cpu_before = cpu_seconds(pid)
    sampling = threading.Thread(target=sampler)
    sampling.start()
    started = time.perf_counter()
    outcomes = clients_ready.run(timeout=seconds + 300)
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(pid) - cpu_before
    done.set()
    sampling.join()
    samples: dict[str, list[float]] = {name: [] for name in names}
    errors: list[str] = []
    error_count = 0
    client_cpu = 0.0
    for lat, errs, count, cpu in outcomes:
        for name, xs in zip(names, lat, strict=True):
            samples[name].extend(xs)
        errors.extend(errs)
        error_count += count
        client_cpu += cpu
    requests = sum(len(xs) for xs in samples.values())
    all_search = [x for name, xs in samples.items() if name.startswith("search") for x in xs]
    per_type = {name: Stats.of(xs).to_dict() for name, xs in samples.items() if xs}
    per_type["search (all)"] = Stats.of(all_search).to_dict()
    return {
        "per_type": per_type,
        "requests": requests,
        "seconds": elapsed,
        "requests_per_s": requests / elapsed,
        "server_cpu_ms_per_request": server_cpu * 1000 / max(requests, 1),
        "server_cpu_share": server_cpu / elapsed,
        "client_cpu_ms_per_request": client_cpu * 1000 / max(requests, 1),
        "errors": error_count,
        "first_error": errors[0] if errors else None,
        "rss_max_mib": max(rss) if rss else None,
        "rss_end_mib": proc_status(pid, "VmRSS"),
        "hwm_mib": proc_status(pid, "VmHWM"),
        "load_before": load_before,
        "load_after": load_average(),
    }


def run_line(res: dict[str, Any]) -> str:
    """One run's throughput, CPU and memory figures."""
    rss = "-" if res["rss_max_mib"] is None else f"{res['rss_max_mib']:.0f}"
    return (
        f"{res['requests']:,} requests ({res['requests_per_s']:.0f}/s), {res['errors']} errors, "
        f"server CPU {res['server_cpu_ms_per_request']:.2f} ms/request "
        f"({res['server_cpu_share']:.2f} cores), clients {res['client_cpu_ms_per_request']:.2f} "
        f"ms/request, RSS max {rss} MiB, HWM {res['hwm_mib']:.0f} MiB, "
        f"load {fmt_load(res['load_before'])} -> {fmt_load(res['load_after'])}"
    )


def fmt_load(load: tuple[float, float, float] | None) -> str:
    """The 1/5/15-minute load average, short."""
    return "-" if load is None else "/".join(f"{x:.2f}" for x in load)


def measure_floor(
    cache: Path, reqs: dict[str, list[Request]], clients: int, seconds: float
) -> dict[str, Any]:
    """The same clients against a bare ASGI app in the same uvicorn: what the machine
    and the HTTP stack allow, with no routing, auth or work per request."""
    here = str(Path(__file__).resolve().parent)
    server = Server(
        cache,
        cache / "floor-server.log",
        app="_util:floor_get_app_factory",
        env={"PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])},
    )
    server.start()
    try:
        return load_run(server, reqs, clients, seconds)
    finally:
        server.stop()


def summary_rows(runs: list[dict[str, Any]]) -> list[list[str]]:
    """p50 / p95 medians of the runs, per request type."""
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
    return rows


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
    parser.add_argument(
        "--role",
        choices=("admin", "reader"),
        default="admin",
        help="the clients' role: an admin's requests are all audited (ADR 019), a reader's not",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure a bare ASGI app in the same uvicorn under the same clients",
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
            res = load_run(server, reqs, args.clients, args.seconds, args.role)
            runs.append(res)
            log(f"run {r + 1}: {run_line(res)}")
            if res["first_error"]:
                log(f"  first error: {res['first_error']}")
    finally:
        server.stop()
    report["runs"] = runs
    headers = ["request", "p50 ms (median)", "p95 ms (median)", "p95 per run", "n per run"]
    print_table(
        headers,
        summary_rows(runs),
        f"{args.clients} clients, {args.seconds:.0f} s per run, {args.tables:,} tables",
    )
    log(
        f"server RSS idle {report['rss_idle_mib']:.0f} MiB; max during runs "
        f"{max(r['rss_max_mib'] for r in runs):.0f} MiB; VmHWM {runs[-1]['hwm_mib']:.0f} MiB; "
        f"server CPU per request "
        + " / ".join(f"{r['server_cpu_ms_per_request']:.2f}" for r in runs)
        + " ms"
    )
    if args.floor:
        floor = measure_floor(cache, reqs, args.clients, args.seconds)
        report["floor"] = floor
        log(f"floor (bare ASGI app, same uvicorn and clients): {run_line(floor)}")
        log(
            f"floor p50 / p95: {floor['per_type']['search (all)']['p50_ms']:.2f} / "
            f"{floor['per_type']['search (all)']['p95_ms']:.2f} ms"
        )
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
