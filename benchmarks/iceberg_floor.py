"""The floor under pyiceberg's ``RestCatalog.load_table``: how fast can any server answer it?

Run standalone::

    .venv/bin/python benchmarks/iceberg_floor.py            # 400 interleaved rounds
    .venv/bin/python benchmarks/iceberg_floor.py --rounds 100 --json out.json

Four ways to load the same table, interleaved call by call in one run (so load
on the machine hits all of them alike):

- ``raw``: a minimal ASGI app under the same uvicorn configuration Arco runs
  with (``uvicorn --factory``, loop and http ``auto`` = uvloop + httptools when
  installed), answering ``/v1/config`` and the load-table route with the
  pre-encoded bytes of Arco's own LoadTableResult for the table. No auth, no
  routing, no storage: what no server can go below.
- ``arco``: Arco's ``/iceberg`` (a uvicorn process on loopback, file:// store).
- ``sqlcatalog``: pyiceberg's own SqlCatalog in this process (SQLite + a folder).
- ``http-only``: ``requests`` GETs the raw server's load-table bytes (pyiceberg's
  HTTP session, no pydantic parse): the round trip alone.
- ``arco-base`` (with ``--compare-src DIR``): a second Arco server importing
  ``DIR`` (another checkout's ``src``) instead: an A/B of two versions in one run.

Per call it records the wall time and the client's CPU time; per server it
records the server process's CPU (``/proc/<pid>/stat``, all threads) over the
calls made to it. ``raw`` minus ``sqlcatalog`` is the HTTP + client cost that no
server change can remove; ``arco`` minus ``raw`` is what Arco adds.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _util import (
    Stats,
    asgi_lifespan,
    environment,
    fmt_ms,
    load_average,
    print_table,
    send_json,
    write_json,
)
from iceberg import (
    WORKSPACE,
    _batch,
    _free_port,
    _schema,
    rest_catalog,
    sql_catalog,
    start_server,
    start_uvicorn,
    token,
)

TABLE_PATH = f"/iceberg/v1/{WORKSPACE}/namespaces/bench/tables/t"
_TICK = os.sysconf("SC_CLK_TCK")


def raw_app_factory() -> Any:
    """The minimal ASGI app (uvicorn ``--factory``): pre-encoded bytes by exact path."""
    folder = Path(os.environ["ARCO_FLOOR_DIR"])
    answers = {
        "/iceberg/v1/config": (folder / "config.json").read_bytes(),
        TABLE_PATH: (folder / "table.json").read_bytes(),
    }

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await asgi_lifespan(receive, send)
            return
        body = answers.get(scope["path"])
        if scope["path"] == "/healthz":
            body = b"{}"
        status = 200 if body is not None else 404
        body = body if body is not None else b'{"error":"not found"}'
        await send_json(send, status, body)

    return app


def start_raw(folder: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The raw app in a uvicorn process started exactly as the Arco one is."""
    port = _free_port()
    env = dict(os.environ, ARCO_FLOOR_DIR=str(folder))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    return start_uvicorn("iceberg_floor:raw_app_factory", port, env, log)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def interleave(
    ways: dict[str, tuple[Callable[[], Any], int | None]], rounds: int
) -> dict[str, dict[str, Any]]:
    """Call each way once per round (order rotating); wall, client CPU and server CPU."""
    names = list(ways)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, float] = dict.fromkeys(names, 0.0)
    server: dict[str, float] = dict.fromkeys(names, 0.0)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn, pid = ways[name]
            s0 = cpu_seconds(pid) if pid else 0.0
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            wall[name].append((time.perf_counter() - t0) * 1000)
            cpu[name] += time.process_time() - c0
            if pid:
                server[name] += cpu_seconds(pid) - s0
    return {
        n: {
            "wall": Stats.of(wall[n]),
            "client_cpu_ms": 1000 * cpu[n] / rounds,
            "server_cpu_ms": 1000 * server[n] / rounds if ways[n][1] else None,
        }
        for n in names
    }


def main() -> None:
    """Run the floor benchmark and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--compare-src", help="another checkout's src folder (A/B)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="arco-iceberg-floor-") as tmp:
        work = Path(tmp)
        peer = sql_catalog(work / "peer")
        peer.create_namespace("bench")
        peer.create_table("bench.t", schema=_schema()).append(_batch())
        arco_proc, arco_base = start_server(work / "store", work / "server.log")
        raw_proc = base_proc = None
        try:
            arco = rest_catalog(arco_base)
            arco.create_namespace("bench")
            arco.create_table("bench.t", schema=_schema()).append(_batch())
            headers = {"Authorization": f"Bearer {token()}"}
            # The raw server answers Arco's own bytes for this table and its config.
            config = httpx.get(
                f"{arco_base}/iceberg/v1/config", params={"warehouse": WORKSPACE}, headers=headers
            )
            table = httpx.get(arco_base + TABLE_PATH, headers=headers)
            config.raise_for_status()
            table.raise_for_status()
            (work / "config.json").write_bytes(config.content)
            (work / "table.json").write_bytes(table.content)
            raw_proc, raw_base = start_raw(work, work / "raw.log")
            raw = rest_catalog(raw_base)
            session = raw._session  # pyiceberg's requests session, with its headers
            raw_url = raw_base + TABLE_PATH

            def http_only() -> None:
                session.get(raw_url).raise_for_status()

            ways: dict[str, tuple[Callable[[], Any], int | None]] = {
                "raw": (lambda: raw.load_table("bench.t"), raw_proc.pid),
                "arco": (lambda: arco.load_table("bench.t"), arco_proc.pid),
                "sqlcatalog": (lambda: peer.load_table("bench.t"), None),
                "http-only": (http_only, raw_proc.pid),
            }
            if args.compare_src:
                saved = os.environ.get("PYTHONPATH")
                os.environ["PYTHONPATH"] = args.compare_src
                try:
                    base_proc, base_base = start_server(work / "store-b", work / "server-b.log")
                finally:
                    os.environ["PYTHONPATH"] = saved or ""
                other = rest_catalog(base_base)
                other.create_namespace("bench")
                other.create_table("bench.t", schema=_schema()).append(_batch())
                ways["arco-base"] = (lambda: other.load_table("bench.t"), base_proc.pid)
            interleave(ways, 20)  # warm up every path
            result = interleave(ways, args.rounds)
        finally:
            for proc in (arco_proc, raw_proc, base_proc):
                if proc is not None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=10)
    sql_p50 = result["sqlcatalog"]["wall"].p50
    rows = []
    for name, r in result.items():
        server_cpu = r["server_cpu_ms"]
        rows.append(
            [
                name,
                fmt_ms(r["wall"].p50),
                fmt_ms(r["wall"].p95),
                f"{r['wall'].p50 / sql_p50:.2f}x",
                fmt_ms(r["client_cpu_ms"]),
                fmt_ms(server_cpu) if server_cpu is not None else "-",
            ]
        )
    print_table(
        ["load_table via", "p50", "p95", "/ SqlCatalog p50", "client CPU/call", "server CPU/call"],
        rows,
        title=f"pyiceberg load_table, {args.rounds} interleaved rounds "
        f"({len(table.content)} bytes of LoadTableResult)",
    )
    floor = result["raw"]["wall"].p50
    print(
        f"\nfloor (raw server) {fmt_ms(floor)} = {floor / sql_p50:.2f}x SqlCatalog; "
        f"Arco adds {fmt_ms(result['arco']['wall'].p50 - floor)} p50 over the floor"
    )
    print(f"load average before {load_before}, after {load_average()}")
    if args.json_path:
        write_json(
            args.json_path,
            {
                "environment": environment(),
                "rounds": args.rounds,
                "bytes": len(table.content),
                "results": result,
            },
        )


if __name__ == "__main__":
    main()
