"""OpenLineage benchmark: HTTP ingest, compaction, column-lineage traversal.

Run standalone::

    .venv/bin/python benchmarks/openlineage.py            # full
    .venv/bin/python benchmarks/openlineage.py --quick    # smoke run (smaller numbers)

What is measured (goals from issue #14, on this 2-core machine)
----------------------------------------------------------------
1. Sustained ingest over HTTP: a real ``uvicorn`` server (file store), 8 client
   threads, each with its own keep-alive ``httpx.Client``, POSTing RunEvents
   (2 inputs, 1 output with a schema facet) to ``POST /api/v1/lineage`` for a
   fixed time: one event per request (what openlineage-python's HttpTransport
   sends), and batches of 100 events per request. Goal: >= 2,000 events/s.
   The ingest rate limit is raised for the run (``ARCO_RATE_INGEST``).
2. Compaction of 100,000 OpenLineage events (already in the ledger, batches of
   1,000) by one ``Compactor.compact("lineage")``. Goal: <= 10 s.
3. Column-lineage traversal, 5 hops upstream, on 100,000 column edges (500
   tables x 100 columns, each column fed by 2 columns of the previous table),
   p95 over 200 walks from random columns on a warm ``ColumnLineage``.
   Goal: <= 10 ms p95.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from arco.api.auth import mint_token
from arco.catalog.compactor import Compactor
from arco.catalog.ledger import Ledger
from arco.catalog.lineage import ColumnLineage, LineageGraph
from arco.core import Scope, open_store
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_http(seconds: float, clients: int = 8, batch: int = 1) -> dict[str, Any]:
    """Events/s accepted over HTTP by one uvicorn process."""
    tmp = Path(tempfile.mkdtemp(prefix="arco-ol-bench-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    env.update(
        ARCO_STORE=f"file://{tmp / 'store'}",
        ARCO_JWT_SECRET=SECRET,
        ARCO_RATE_INGEST="1000000",
        ARCO_BURST_INGEST="1000000",
    )
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "arco.api.app:create_app", "--factory"),
            *("--port", str(port), "--log-level", "warning", "--no-access-log"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    token = mint_token(SECRET, tenant="bench", workspace="main", roles=["writer"])
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        counts = [0] * clients
        errors: list[str] = []
        stop = time.monotonic() + seconds

        def worker(k: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                i = k * 10_000_000
                while time.monotonic() < stop:
                    body: Any = (
                        run_event(i) if batch == 1 else [run_event(i + j) for j in range(batch)]
                    )
                    r = client.post("/api/v1/lineage", json=body)
                    if r.status_code != 201:
                        errors.append(f"{r.status_code} {r.text[:200]}")
                        return
                    counts[k] += batch
                    i += batch

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        if errors:
            raise RuntimeError(errors[0])
        return {
            "clients": clients,
            "batch": batch,
            "events": sum(counts),
            "seconds": round(elapsed, 2),
            "events_per_s": round(sum(counts) / elapsed),
        }
    finally:
        proc.terminate()
        proc.wait(10)


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
    started = time.perf_counter()
    report = compactor.compact("lineage")
    elapsed = time.perf_counter() - started
    assert report.events == n, report
    return {
        "events": n,
        "ingest_library_s": round(write_s, 2),
        "compact_s": round(elapsed, 2),
        "commits": report.commits,
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
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 10.0
    results = {
        "http_single": bench_http(seconds, batch=1),
        "http_batch100": bench_http(seconds, batch=100),
        "compaction": bench_compaction(10_000 if args.quick else 100_000),
        "traversal": bench_traversal(tables=50 if args.quick else 500),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
