"""OpenLineage benchmark: HTTP ingest, compaction, column-lineage traversal.

Run standalone::

    .venv/bin/python benchmarks/openlineage.py            # full
    .venv/bin/python benchmarks/openlineage.py --quick    # smoke run (smaller numbers)

What is measured (goals from issue #14, on this 2-core machine)
----------------------------------------------------------------
1. Sustained ingest over HTTP: a real ``uvicorn`` server (file store; httptools
   and uvloop, as installed with Arco), 8 clients, each a process of its own with
   one keep-alive connection (the standard library's ``http.client``: the clients
   share the 2 cores with the server, and httpx costs more CPU per request than
   the server does; ``--client httpx`` to compare; threads of one process would
   queue on its GIL and cap any server near 1,000 requests/s), POSTing RunEvents (2 inputs,
   1 output with a schema facet) to ``POST /api/v1/lineage`` for a fixed time,
   after one warm-up request: one event per request (what openlineage-python's
   HttpTransport sends), and batches of 100 events per request. Goal: >= 2,000
   events/s. ``--floor`` also measures a bare ASGI app (read, parse, answer 201)
   in the same uvicorn under the same load: the most any Python server does here.
   Also reported: the server's CPU time per event (from /proc, less
   sensitive to other load than the rate), the clients' CPU time per request,
   and the load average. The ingest rate
   limit is raised for the run (``ARCO_RATE_INGEST``).
2. Compaction of 100,000 OpenLineage events (already in the ledger, batches of
   1,000) by one ``Compactor.compact("lineage")``, wall and CPU seconds.
   Goal: <= 10 s.
3. Column-lineage traversal, 5 hops upstream, on 100,000 column edges (500
   tables x 100 columns, each column fed by 2 columns of the previous table),
   p95 over 200 walks from random columns on a warm ``ColumnLineage``.
   Goal: <= 10 ms p95.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _util import asgi_lifespan, send_json, start_clients

from arco.api.auth import mint_token
from arco.core import Scope, open_store
from arco.discovery.lineage import ColumnLineage, LineageGraph
from arco.ledger.compactor import Compactor
from arco.ledger.log import Ledger
from arco.openlineage.ingest import ingest
from arco.openlineage.mapping import OpenLineageConfig

SECRET = "openlineage-benchmark-secret-0123456789abcdef"
SCOPE = Scope("bench", "main")
PRODUCER = "https://example.test/bench"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": PRODUCER, **fields}


def run_event(i: int, etype: str = "COMPLETE") -> dict[str, Any]:
    """A typical RunEvent: 2 inputs, 1 output with a schema facet."""
    t = i % 1000
    return {
        "eventType": etype,
        "eventTime": f"2026-03-01T12:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": str(uuid.UUID(int=i + 1))},
        "job": {"namespace": "bench", "name": f"job_{t}"},
        "inputs": [
            {"namespace": "pg", "name": f"raw.t{t}"},
            {"namespace": "pg", "name": f"raw.dim{t % 10}"},
        ],
        "outputs": [
            {
                "namespace": "pg",
                "name": f"mart.t{t}",
                "facets": {
                    "schema": _facet(fields=[{"name": f"c{j}", "type": "INT"} for j in range(5)])
                },
            }
        ],
    }


def floor_app_factory() -> Any:
    """The least any Python server does per event (uvicorn ``--factory``): read the
    body, parse the JSON, answer 201 with an id. No auth, validation or storage."""
    counter = iter(range(1 << 62))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await asgi_lifespan(receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        status, body = 200, b"{}"
        if scope["method"] == "POST":
            events = json.loads(b"".join(chunks))
            n = len(events) if isinstance(events, list) else 1
            body = json.dumps({"accepted": n, "event_ids": [next(counter)]}).encode()
            status = 201
        await send_json(send, status, body)

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _body(i: int, batch: int) -> bytes:
    """The request body of events ``i`` to ``i + batch - 1``: distinct runs."""
    body = run_event(i) if batch == 1 else [run_event(i + j) for j in range(batch)]
    return json.dumps(body).encode()


def _post_loop(
    port: int,
    token: str,
    batch: int,
    stop: float,
    start: int,
    client: str,
    bodies: list[bytes] | None = None,
) -> tuple[int, str | None]:
    """POST events until ``stop``; (events accepted, first error). ``bodies``: the
    first requests' bodies, encoded beforehand (later ones are made as they go)."""
    sent = 0
    bodies = bodies or []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if client == "raw":
        return _raw_loop(port, token, batch, stop, start, bodies)
    if client == "httpx":
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as c:
            while time.monotonic() < stop:
                i = start + sent
                body = run_event(i) if batch == 1 else [run_event(i + j) for j in range(batch)]
                r = c.post("/api/v1/lineage", json=body)
                if r.status_code != 201:
                    return sent, f"{r.status_code} {r.text[:200]}"
                sent += batch
        return sent, None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        while time.monotonic() < stop:
            n = sent // batch
            data = bodies[n] if n < len(bodies) else _body(start + sent, batch)
            conn.request("POST", "/api/v1/lineage", data, headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != 201:
                return sent, f"{response.status} {data[:200]!r}"
            sent += batch
    finally:
        conn.close()
    return sent, None


def _raw_request(port: int, token: str, body: bytes) -> bytes:
    """A whole HTTP/1.1 POST of ``body`` to the ingest route, as bytes on the wire."""
    head = (
        f"POST /api/v1/lineage HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _raw_loop(
    port: int, token: str, batch: int, stop: float, start: int, bodies: list[bytes]
) -> tuple[int, str | None]:
    """The ``raw`` client: requests written whole on one keep-alive socket, each
    answer read to its ``Content-Length`` and its status checked before the next.

    What ``wrk`` does, in Python: ``http.client`` parses every answer's headers
    with the ``email`` package, ~100 us of CPU per request that 8 clients take
    from the 2 cores the server runs on.
    """
    sent = 0
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        while time.monotonic() < stop:
            n = sent // batch
            body = bodies[n] if n < len(bodies) else _body(start + sent, batch)
            sock.sendall(_raw_request(port, token, body))
            while (end := buf.find(b"\r\n\r\n")) < 0:
                buf += sock.recv(65536)
            head = buf[:end].lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                return sent, f"an answer without Content-Length: {head[:200]!r}"
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
            total = end + 4 + length
            while len(buf) < total:
                buf += sock.recv(65536)
            status, answer, buf = head[9:12], buf[end + 4 : total], buf[total:]
            if status != b"201":
                return sent, f"{status.decode()} {answer[:200]!r}"
            sent += batch
    finally:
        sock.close()
    return sent, None


def _client_process(
    port: int,
    token: str,
    batch: int,
    seconds: float,
    start: int,
    client: str,
    go: Any,
    ready: Any,
    results: Any,
) -> None:
    """One client (its own process): wait for ``go``, POST for ``seconds``, report.

    The bodies of the first requests (enough for 1,500 events/s from this client
    alone) are encoded before ``go``: emitters run on machines of their own, so
    what a client spends building events should not take CPU from the server.
    """
    count = int(seconds * 1500) // batch + 1
    bodies = [_body(start + k * batch, batch) for k in range(count)]
    ready.put(True)
    go.wait()
    stop = time.monotonic() + seconds
    cpu = time.process_time()
    sent, error = _post_loop(port, token, batch, stop, start, client, bodies)
    results.put((sent, error, time.process_time() - cpu))


def bench_http(
    seconds: float,
    clients: int = 8,
    batch: int = 1,
    *,
    workers: int = 1,
    client: str = "raw",
    floor: bool = False,
) -> dict[str, Any]:
    """Events/s accepted over HTTP by ``workers`` uvicorn processes (``floor``: of
    :func:`floor_app_factory` instead of Arco, served and loaded the same way)."""
    tmp = Path(tempfile.mkdtemp(prefix="arco-ol-bench-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    env.update(
        ARCO_STORE=f"file://{tmp / 'store'}",
        ARCO_JWT_SECRET=SECRET,
        ARCO_RATE_INGEST="1000000",
        ARCO_BURST_INGEST="1000000",
    )
    app = "arco.api.app:create_app"
    if floor:
        app = "openlineage:floor_app_factory"
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", app, "--factory"),
            *("--port", str(port), "--log-level", "warning", "--no-access-log"),
            *("--workers", str(workers)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    token = mint_token(SECRET, tenant="bench", workspace="main", roles=["writer"])
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        # Warm-up: the first request builds FastAPI's route tables (and each worker's).
        for k in range(2 * workers):
            _post_loop(port, token, 1, time.monotonic() + 0.01, 90_000_000 + k, client)
        pids = [proc.pid, *_children(proc.pid)]
        cpu_start = {p: _cpu_seconds(p) for p in pids}
        load_before = os.getloadavg()[0]
        clients_ready = start_clients(
            _client_process,
            [(port, token, batch, seconds, k * 10_000_000, client) for k in range(clients)],
        )
        started = time.monotonic()
        outcomes = clients_ready.run(timeout=seconds + 60)
        elapsed = time.monotonic() - started
        per_process = [round(_cpu_seconds(p) - cpu_start[p], 2) for p in pids]
        cpu = sum(per_process)
        errors = [error for _, error, _ in outcomes if error]
        if errors:
            raise RuntimeError(errors[0])
        total = sum(sent for sent, _, _ in outcomes)
        client_cpu = sum(used for _, _, used in outcomes)
        return {
            "server": "floor" if floor else "arco",
            "clients": clients,
            "client": client,
            "workers": workers,
            "batch": batch,
            "events": total,
            "seconds": round(elapsed, 2),
            "events_per_s": round(total / elapsed),
            "server_cpu_us_per_event": round(cpu / max(total, 1) * 1e6),
            # The supervisor first, then each worker: how evenly the connections spread.
            "server_cpu_s_per_process": per_process,
            "client_cpu_us_per_request": round(client_cpu / max(total // batch, 1) * 1e6),
            "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
    finally:
        proc.terminate()
        proc.wait(10)


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` (uvicorn's workers), Linux only."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def bench_compaction(n: int) -> dict[str, Any]:
    """Time one compaction of ``n`` OpenLineage events already in the ledger."""
    tmp = Path(tempfile.mkdtemp(prefix="arco-ol-bench-"))
    store = open_store(f"file://{tmp / 'store'}")
    ledger = Ledger(store, SCOPE)
    mapper = OpenLineageConfig().mapper(SCOPE)
    started = time.perf_counter()
    for start in range(0, n, 1000):
        ingest(ledger, [run_event(i) for i in range(start, min(n, start + 1000))], mapper)
    write_s = time.perf_counter() - started
    compactor = Compactor(store, SCOPE, max_events=n + 1, max_objects=n)
    load_before = os.getloadavg()[0]
    cpu = time.process_time()
    started = time.perf_counter()
    report = compactor.compact("lineage")
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    assert report.events == n, report
    return {
        "events": n,
        "ingest_library_s": round(write_s, 2),
        "compact_s": round(elapsed, 2),
        "compact_cpu_s": round(cpu, 2),
        "commits": report.commits,
        "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def bench_traversal(tables: int = 500, columns: int = 100, walks: int = 200) -> dict[str, Any]:
    """p50/p95 of a 5-hop upstream column walk on ``tables * columns * 2`` column edges."""
    tmp = Path(tempfile.mkdtemp(prefix="arco-ol-bench-"))
    store = open_store(f"file://{tmp / 'store'}")
    ledger = Ledger(store, SCOPE)
    mapper = OpenLineageConfig().mapper(SCOPE)
    events = []
    for t in range(1, tables + 1):
        fields = {
            f"c{c}": {
                "inputFields": [
                    {"namespace": "pg", "name": f"s.t{t - 1}", "field": f"c{c}"},
                    {"namespace": "pg", "name": f"s.t{t - 1}", "field": f"c{(c + 1) % columns}"},
                ]
            }
            for c in range(columns)
        }
        event = run_event(t)
        event["inputs"] = [{"namespace": "pg", "name": f"s.t{t - 1}"}]
        event["outputs"] = [
            {
                "namespace": "pg",
                "name": f"s.t{t}",
                "facets": {"columnLineage": _facet(fields=fields)},
            }
        ]
        events.append(event)
    for start in range(0, len(events), 100):
        ingest(ledger, events[start : start + 100], mapper)
    Compactor(store, SCOPE, max_events=10**7, max_objects=10**6).compact("lineage")
    cols = ColumnLineage(LineageGraph(store, SCOPE, max_staleness=60.0))
    edges = len(cols.graph.snapshot().state.table("column_edges"))
    cols.traverse(f"s.t{tables}", "c0", depth=5)  # warm: index built once per version
    rng = random.Random(7)
    times = []
    reached = 0
    for _ in range(walks):
        t, c = rng.randrange(5, tables + 1), rng.randrange(columns)
        started = time.perf_counter()
        result = cols.traverse(f"s.t{t}", f"c{c}", depth=5)
        times.append((time.perf_counter() - started) * 1000)
        reached = max(reached, len(result.nodes))
    times.sort()
    return {
        "column_edges": edges,
        "walks": walks,
        "max_nodes_reached": reached,
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 3),
    }


def main() -> None:
    """Run every phase and print (or write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--client", choices=("raw", "stdlib", "httpx"), default="raw")
    parser.add_argument(
        "--only", choices=("http", "compaction", "traversal"), help="run one phase only"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure the floor: a bare ASGI app (parse, answer) in the same uvicorn",
    )
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 10.0
    http_kw = {"workers": args.workers, "client": args.client}
    phases: dict[str, Callable[[], dict[str, Any]]] = {
        "http_single": lambda: bench_http(seconds, batch=1, **http_kw),
        "http_batch100": lambda: bench_http(seconds, batch=100, **http_kw),
        **(
            {"http_single_floor": lambda: bench_http(seconds, batch=1, floor=True, **http_kw)}
            if args.floor
            else {}
        ),
        "compaction": lambda: bench_compaction(10_000 if args.quick else 100_000),
        "traversal": lambda: bench_traversal(tables=50 if args.quick else 500),
    }
    results: dict[str, Any] = {
        name: run()
        for name, run in phases.items()
        if args.only is None or name.startswith(args.only)
    }
    results["load_1m_at_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
