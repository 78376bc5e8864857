"""Telemetry overhead (issue #16): get-table latency and per-asset run overhead with
tracing off and with it on (in-memory exporter), measured in the same run.

Run::

    .venv/bin/python benchmarks/telemetry.py [--requests 2000] [--assets 100]

Three modes alternate in rounds so machine noise hits all alike:

* "text": the shipped default - text logs, no SDK configured (every span and
  storage call is one flag check);
* "off": JSON logs, tracing still off;
* "on": JSON logs and every span recorded by the SDK's in-memory exporter.

Each request also writes the access-log line uvicorn writes for it in a server
(``uvicorn.access`` at INFO, through the handler ``configure_logging`` installs,
into memory), so the logging cost is the one a request pays in production; the
run path logs nothing at INFO. Overheads are against "text". Runs are timed in
wall-clock and in process CPU time (all threads): tracing's cost is CPU, and CPU
time is far less disturbed by other load on the machine than wall-clock. Each
round runs each mode on a fresh store, the modes in a rotating order; the
medians over rounds are reported. The cost of the instrumentation itself with
the exporter off, against code with no span calls at all, is estimated from the
number of spans a request makes (counted in "on" mode) times the measured cost
of one no-op span.
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "flow"))

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from arco.api.app import create_app
from arco.api.auth import mint_token
from arco.api.settings import Settings
from arco.core import telemetry
from arco.core.logs import configure_logging

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET = "telemetry-benchmark-secret-0123456789-abcdef"


def p95(samples: list[float]) -> float:
    """95th percentile in ms."""
    return statistics.quantiles(samples, n=100)[94] * 1000


ACCESS = logging.getLogger("uvicorn.access")
PATH = "/api/v1/namespaces/sales/tables/orders"


def get_table_samples(client: Any, headers: dict[str, str], n: int) -> list[float]:
    """Latencies of ``n`` GETs of one table, each with its access-log line."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        r = client.get(PATH, headers=headers)
        # uvicorn's access line (format and arguments as uvicorn.protocols.http passes them)
        ACCESS.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", PATH, "1.1", r.status_code)
        out.append(time.perf_counter() - start)
        assert r.status_code == 200
    return out


def run_assets(n: int, folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds per run of one trivial asset, ``n`` runs on a fresh store."""
    import flowassets

    from arco.core.scope import Scope
    from arco.core.storage import open_store
    from arco.flow.definitions import Definitions
    from arco.flow.planner import plan
    from arco.flow.runner import Scheduler

    url = f"file://{folder}/{uuid.uuid4().hex}"
    defs = Definitions([flowassets.orders] * 1)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        Scheduler(open_store(url), Scope("acme", "main"), defs, store_url=url).run(plan(defs, "*"))
    return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n


MODES = ("text", "off", "on")


def main() -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=120, help="runs of one asset per mode")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    exporter = InMemorySpanExporter()
    app = create_app(Settings(store_url=f"memory://{uuid.uuid4().hex}", jwt_secret=SECRET))
    headers = {
        "Authorization": "Bearer "
        + mint_token(SECRET, tenant="acme", workspace="main", roles=["writer"])
    }
    samples: dict[str, list[float]] = {m: [] for m in MODES}
    request_cpu: dict[str, list[float]] = {m: [] for m in MODES}
    wall: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    spans_per_request = spans_per_run = 0.0
    with TestClient(app) as client, tempfile.TemporaryDirectory() as tmp:
        client.post("/api/v1/namespaces", json={"name": "sales"}, headers=headers)
        client.post(
            "/api/v1/namespaces/sales/tables",
            json={"name": "orders", "columns": [{"name": "id", "type": "int64"}]},
            headers=headers,
        )
        configure_logging("text", stream=io.StringIO())
        get_table_samples(client, headers, 200)  # warm caches
        run_assets(3, Path(tmp))
        n = args.requests // args.rounds
        runs = max(1, args.runs // args.rounds)
        for r in range(args.rounds):
            # Each mode takes each place in the order in turn: no mode always goes first.
            for mode in MODES[r % 3 :] + MODES[: r % 3]:
                configure_logging("text" if mode == "text" else "json", stream=io.StringIO())
                if mode == "on":
                    telemetry.configure_tracing("bench", exporter=exporter)
                else:
                    telemetry.disable_tracing()
                exporter.clear()
                cpu0 = time.process_time()
                samples[mode] += get_table_samples(client, headers, n)
                request_cpu[mode].append((time.process_time() - cpu0) / n)
                if mode == "on":
                    spans_per_request = len(exporter.get_finished_spans()) / n
                exporter.clear()
                w, c = run_assets(runs, Path(tmp))
                wall[mode].append(w)
                cpu[mode].append(c)
                if mode == "on":
                    spans_per_run = len(exporter.get_finished_spans()) / runs
                exporter.clear()
        telemetry.disable_tracing()
        configure_logging("text")
    # One no-op span, as every instrumented call pays it with tracing off.
    loops = 200_000
    start = time.perf_counter()
    for _ in range(loops):
        with telemetry.span("x", {"a": 1}):
            pass
    noop_span_s = (time.perf_counter() - start) / loops
    base = p95(samples["text"])
    instr_ms = spans_per_request * noop_span_s * 1000

    def vs(value: float, ref: float) -> str:
        return f"({(value / ref - 1) * 100:+.1f}%)"

    print(f"get-table p95, text logs, tracing off: {base:.3f} ms")
    for mode, label in (("off", "JSON logs, tracing off"), ("on", "JSON logs, in-memory exp.")):
        got = p95(samples[mode])
        print(f"get-table p95, {label}: {got:.3f} ms  {vs(got, base)}")
    print(
        f"spans per get-table: {spans_per_request:.1f}; no-op span {noop_span_s * 1e9:.0f} ns "
        f"-> instrumentation with the exporter off ~{instr_ms * 1000:.1f} us/request "
        f"({instr_ms / base * 100:.2f}% of p95)"
    )
    ref = statistics.median(request_cpu["text"]) * 1000
    print(f"get-table CPU/request, text logs, tracing off: {ref:.3f} ms")
    for mode, label in (("off", "JSON logs, tracing off"), ("on", "JSON logs, in-memory exp.")):
        got = statistics.median(request_cpu[mode]) * 1000
        print(f"get-table CPU/request, {label}: {got:.3f} ms  {vs(got, ref)}")
    print(f"spans per run of 1 asset: {spans_per_run:.1f}")
    for name, table in (("wall", wall), ("CPU", cpu)):
        ref = statistics.median(table["text"]) * 1000
        print(f"run of 1 asset ({name}), text logs, tracing off: {ref:.2f} ms")
        for mode, label in (("off", "JSON logs, tracing off"), ("on", "JSON logs, in-memory exp.")):
            got = statistics.median(table[mode]) * 1000
            print(f"run of 1 asset ({name}), {label}: {got:.2f} ms  {vs(got, ref)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
