"""Iceberg REST benchmark: pyiceberg against Arco's ``/iceberg`` vs pyiceberg's own SqlCatalog.

Run standalone::

    .venv/bin/python benchmarks/iceberg.py            # full: 300 loads, 60 appends, 8 x 15
    .venv/bin/python benchmarks/iceberg.py --quick    # smoke run
    .venv/bin/python benchmarks/iceberg.py --json out.json

Both catalogs live on this machine in the same run: Arco as a real ``uvicorn``
process on loopback (file:// store), SqlCatalog in this process (SQLite + a
local folder). ``load_table`` and ``append`` (one small pyarrow batch: data file,
manifest, manifest list and the commit) are timed per call. The concurrency
figure runs 1 and then 8 appender processes, each on its own table, and compares
commits per second. DuckDB's ``ATTACH`` + first ``SELECT`` is timed in the
DuckDB 1.5.5 environment the tests build (``~/.cache/arco-test/duckdb155``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
from _util import Stats, environment, fmt_ms, load_average, print_table, sample, write_json

from arco.api.auth import mint_token

SECRET = "iceberg-benchmark-secret-0123456789-abcdefgh"
WORKSPACE = "bench"
GOAL_LOAD_RATIO = 2.0
GOAL_COMMIT_RATIO = 1.5
GOAL_SCALE = 4.0
ROOT = Path(__file__).resolve().parents[1]
DUCKDB_PY = Path("~/.cache/arco-test/duckdb155/bin/python").expanduser()


def _schema() -> Any:
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

    kinds = [LongType, StringType, TimestamptzType] * 3 + [LongType]
    return Schema(*(NestedField(i + 1, f"c{i}", k(), required=False) for i, k in enumerate(kinds)))


def _batch(n: int = 10) -> pa.Table:
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    schema = schema_to_pyarrow(_schema())
    cols = []
    for field in schema:
        if pa.types.is_integer(field.type):
            cols.append(pa.array(range(n), field.type))
        elif pa.types.is_timestamp(field.type):
            cols.append(pa.array([1_700_000_000_000_000 + i for i in range(n)], field.type))
        else:
            cols.append(pa.array([f"v{i}" for i in range(n)], field.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(store: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A uvicorn process serving Arco on a local folder; returns it and its base URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    env.update(
        ARCO_STORE=f"file://{store}",
        ARCO_JWT_SECRET=SECRET,
        ARCO_RATE_WRITE="1000000",
        ARCO_BURST_WRITE="1000000",
    )
    return start_uvicorn("arco.api.app:create_app", port, env, log)


def start_uvicorn(
    factory: str, port: int, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """``factory`` served by uvicorn on loopback (one worker, no access log), once
    its ``/healthz`` answers; shared by the floor benchmark's raw server."""
    cmd = [sys.executable, "-m", "uvicorn", factory, "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    cmd += ["--no-access-log"]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{factory} did not start: {log.read_text()[-2000:]}")


def token() -> str:
    """A writer token for the benchmark scope."""
    return mint_token(SECRET, tenant="bench", workspace=WORKSPACE, roles=["writer"])


def rest_catalog(base: str) -> Any:
    """pyiceberg's RestCatalog on Arco."""
    from pyiceberg.catalog import load_catalog

    return load_catalog(
        "arco", type="rest", uri=f"{base}/iceberg", token=token(), warehouse=WORKSPACE
    )


def sql_catalog(folder: Path) -> Any:
    """pyiceberg's SqlCatalog (SQLite + local folder) in this process."""
    from pyiceberg.catalog.sql import SqlCatalog

    folder.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(
        "peer", uri=f"sqlite:///{folder / 'catalog.db'}", warehouse=f"file://{folder}/wh"
    )


def measure(cat: Any, loads: int, appends: int) -> dict[str, Stats]:
    """load_table and append p50/p95 on a fresh table of ``cat``."""
    cat.create_namespace("bench")
    props = {"commit.retry.num-retries": "0"}
    cat.create_table("bench.t", schema=_schema(), properties=props)
    batch = _batch()
    cat.load_table("bench.t").append(batch)
    for _ in range(5):  # warm up both paths
        cat.load_table("bench.t")
    load = sample(lambda _i: cat.load_table("bench.t"), loads)
    table = cat.load_table("bench.t")

    def append(_i: int) -> None:
        table.append(batch)

    commit = sample(append, appends)
    return {"load_table": Stats.of(load), "append": Stats.of(commit)}


def _appender(base: str, name: str, count: int, out: Any) -> None:
    cat = rest_catalog(base)
    table = cat.load_table(name)
    batch = _batch()
    commits: list[float] = []
    commit_table = cat.commit_table

    def timed(*args: Any, **kwargs: Any) -> Any:
        # Where an append's time goes: the commit request vs the client's own work.
        t0 = time.perf_counter()
        try:
            return commit_table(*args, **kwargs)
        finally:
            commits.append(time.perf_counter() - t0)

    cat.commit_table = timed  # type: ignore[method-assign]
    cpu0 = time.process_time()
    start = time.perf_counter()
    for _ in range(count):
        table.append(batch)
    wall = time.perf_counter() - start
    out.put((wall, (time.process_time() - cpu0) / count, sorted(commits)[len(commits) // 2]))


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads (Linux), else 0."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def concurrency(base: str, count: int, writers: int, server_pid: int = 0) -> dict[str, float]:
    """Commits per second of 1 appender and of ``writers`` appenders on their own tables.

    Besides the rates: the client's CPU per append, the server's CPU per commit
    (``server_pid``'s CPU over the run), and the rate the machine's cores could
    sustain at most if both were spent on nothing else (the ceiling for the scale).
    """
    cat = rest_catalog(base)
    cat.create_namespace("bench_mt")
    props = {"commit.retry.num-retries": "0"}
    for i in range(writers):
        cat.create_table(f"bench_mt.t{i}", schema=_schema(), properties=props)
    ctx = multiprocessing.get_context("spawn")
    out: dict[str, float] = {}
    for n in (1, writers):
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_appender, args=(base, f"bench_mt.t{i}", count, queue))
            for i in range(n)
        ]
        cpu0 = process_cpu_s(server_pid) if server_pid else 0.0
        start = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        wall = time.perf_counter() - start
        server_cpu = process_cpu_s(server_pid) - cpu0 if server_pid else 0.0
        results = [queue.get() for _ in procs]
        busy = [r[0] for r in results]
        # Throughput over the appending itself (process start-up excluded).
        out[f"commits_per_s_{n}"] = n * count / max(busy)
        out[f"wall_s_{n}"] = wall
        out[f"client_cpu_ms_per_append_{n}"] = 1000 * sum(r[1] for r in results) / n
        out[f"commit_request_ms_p50_{n}"] = 1000 * sorted(r[2] for r in results)[n // 2]
        # Includes the server's idle ticks and process start-up time: an upper bound.
        out[f"server_cpu_ms_per_commit_{n}"] = 1000 * server_cpu / (n * count)
    out["scale"] = out[f"commits_per_s_{writers}"] / out["commits_per_s_1"]
    cores = os.cpu_count() or 1
    # What the clients alone can do on this machine: every core busy with appends.
    out["cpu_bound_commits_per_s"] = 1000 * cores / out["client_cpu_ms_per_append_1"]
    # ... and with the server's CPU per commit on the same cores.
    per_append = out["client_cpu_ms_per_append_1"] + out["server_cpu_ms_per_commit_1"]
    out["cpu_bound_with_server_commits_per_s"] = 1000 * cores / per_append
    out["ceiling_scale"] = out["cpu_bound_with_server_commits_per_s"] / out["commits_per_s_1"]
    out["cores"] = cores
    return out


def server_commits(base: str, count: int, writers: int) -> dict[str, float]:
    """Commits per second the server itself sustains: tiny commits from threads.

    Each commit only sets a property, so the client's own work is negligible and
    the figure is the server's (HTTP, validation, metadata file, catalog commit
    under the lease), with 1 and then ``writers`` concurrent writers on their
    own tables.
    """
    import threading

    cat = rest_catalog(base)
    cat.create_namespace("bench_srv")
    for i in range(writers):
        cat.create_table(f"bench_srv.t{i}", schema=_schema())
    headers = {"Authorization": f"Bearer {token()}"}
    out: dict[str, float] = {}

    def writer(i: int, latencies: list[float]) -> None:
        with httpx.Client(timeout=120) as client:
            for k in range(count):
                body = {"updates": [{"action": "set-properties", "updates": {"k": str(k)}}]}
                start = time.perf_counter()
                answer = client.post(
                    f"{base}/iceberg/v1/{WORKSPACE}/namespaces/bench_srv/tables/t{i}",
                    json=body,
                    headers=headers,
                )
                latencies.append(time.perf_counter() - start)
                answer.raise_for_status()

    for n in (1, writers):
        latencies: list[float] = []
        threads = [threading.Thread(target=writer, args=(i, latencies)) for i in range(n)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out[f"commits_per_s_{n}"] = n * count / (time.perf_counter() - start)
        out[f"p50_ms_{n}"] = 1000 * sorted(latencies)[len(latencies) // 2]
    return out


def duckdb_attach(base: str) -> dict[str, float] | None:
    """ATTACH + first SELECT in DuckDB 1.5.5 (None when its environment is missing)."""
    if not DUCKDB_PY.exists():
        return None
    client = ROOT / "tests" / "api" / "iceberg_duckdb_client.py"
    sql = "SELECT count(*) FROM lake.bench.t"
    start = time.perf_counter()
    done = subprocess.run(
        [str(DUCKDB_PY), str(client), f"{base}/iceberg", token(), WORKSPACE, sql],
        capture_output=True,
        text=True,
        timeout=300,
    )
    total = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "attach_ms": result["attach_s"] * 1000,
        "first_select_ms": result["query_s"] * 1000,
        "process_total_ms": total * 1000,
        "rows": result["rows"][0][0],
    }


def main() -> None:
    """Run the benchmark and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    loads, appends, per_writer = (50, 15, 5) if args.quick else (300, 60, 15)
    warnings.simplefilter("ignore")
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="arco-iceberg-bench-") as tmp:
        work = Path(tmp)
        peer = measure(sql_catalog(work / "peer"), loads, appends)
        proc, base = start_server(work / "store", work / "server.log")
        try:
            arco = measure(rest_catalog(base), loads, appends)
            scale = concurrency(base, per_writer, 8, proc.pid)
            server = server_commits(base, per_writer * 2, 8)
            duck = duckdb_attach(base)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
    rows = []
    for op, goal in (("load_table", GOAL_LOAD_RATIO), ("append", GOAL_COMMIT_RATIO)):
        ratio = arco[op].p50 / peer[op].p50
        rows.append(
            [
                op,
                fmt_ms(arco[op].p50),
                fmt_ms(arco[op].p95),
                fmt_ms(peer[op].p50),
                fmt_ms(peer[op].p95),
                f"{ratio:.2f}x",
                f"<= {goal}x {'ok' if ratio <= goal else 'MISSED'}",
            ]
        )
    print_table(
        ["op", "arco REST p50", "p95", "SqlCatalog p50", "p95", "ratio p50", "goal"],
        rows,
        title="pyiceberg: Arco's REST endpoint (HTTP) vs SqlCatalog (in process)",
    )
    print(
        f"\nappend throughput: 1 appender {scale['commits_per_s_1']:.1f}/s, "
        f"8 appenders on 8 tables {scale['commits_per_s_8']:.1f}/s = {scale['scale']:.2f}x "
        f"(goal >= {GOAL_SCALE}x: {'ok' if scale['scale'] >= GOAL_SCALE else 'MISSED'})"
    )
    print(
        f"  client CPU per append {scale['client_cpu_ms_per_append_1']:.0f} ms (1 appender), "
        f"{scale['client_cpu_ms_per_append_8']:.0f} ms (8); commit request p50 "
        f"{scale['commit_request_ms_p50_1']:.1f} ms (1), {scale['commit_request_ms_p50_8']:.1f} ms "
        f"(8); {scale['cores']} cores can run at most "
        f"{scale['cpu_bound_commits_per_s']:.1f} client appends/s"
    )
    print(
        f"  server CPU per commit {scale['server_cpu_ms_per_commit_1']:.1f} ms (1 appender), "
        f"{scale['server_cpu_ms_per_commit_8']:.1f} ms (8); client + server on {scale['cores']} "
        f"cores: at most {scale['cpu_bound_with_server_commits_per_s']:.1f} appends/s = "
        f"{scale['ceiling_scale']:.2f}x one appender"
    )
    print(
        f"server alone (tiny commits from threads): 1 writer {server['commits_per_s_1']:.1f}/s "
        f"(p50 {server['p50_ms_1']:.1f} ms), 8 writers {server['commits_per_s_8']:.1f}/s "
        f"(p50 {server['p50_ms_8']:.1f} ms)"
    )
    if duck is not None:
        print(
            f"DuckDB 1.5.5 ATTACH {fmt_ms(duck['attach_ms'])}, first SELECT "
            f"{fmt_ms(duck['first_select_ms'])} (process incl. start-up and LOADs "
            f"{fmt_ms(duck['process_total_ms'])})"
        )
    print(f"load average before {load_before}, after {load_average()}")
    if args.json_path:
        write_json(
            args.json_path,
            {
                "environment": environment(),
                "arco": {k: v.to_dict() for k, v in arco.items()},
                "sqlcatalog": {k: v.to_dict() for k, v in peer.items()},
                "concurrency": scale,
                "server_commits": server,
                "duckdb": duck,
            },
        )


if __name__ == "__main__":
    main()
