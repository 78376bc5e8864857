"""Telemetry overhead (issue #16): get-table latency and per-asset run overhead with
tracing off and with it on (in-memory exporter), measured in the same run.

Run::

    .venv/bin/python benchmarks/telemetry.py [--requests 2000] [--assets 100]

Modes alternate in rounds so machine noise hits both alike. "off" is the shipped
default (no SDK configured: every span is one flag check); "on" records every
span into the SDK's in-memory exporter with JSON logging configured. The cost of
the instrumentation itself with the exporter off, against code with no span calls
at all, is estimated from the number of spans a request makes (counted in "on"
mode) times the measured cost of one no-op span.
"""

from __future__ import annotations

import argparse
import io
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


def get_table_samples(client: Any, headers: dict[str, str], n: int) -> list[float]:
    """Latencies of ``n`` GETs of one table."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        r = client.get("/api/v1/namespaces/sales/tables/orders", headers=headers)
        out.append(time.perf_counter() - start)
        assert r.status_code == 200
    return out


def run_assets(n: int, folder: Path) -> float:
    """Seconds per asset of a run of ``n`` independent trivial assets (inline executor)."""
    import flowassets

    from arco.core.scope import Scope
    from arco.core.storage import open_store
    from arco.flow.definitions import Definitions
    from arco.flow.planner import plan
    from arco.flow.runner import Scheduler

    url = f"file://{folder}/{uuid.uuid4().hex}"
    defs = Definitions([flowassets.orders] * 1)
    start = time.perf_counter()
    for _ in range(n):
        Scheduler(open_store(url), Scope("acme", "main"), defs, store_url=url).run(plan(defs, "*"))
    return (time.perf_counter() - start) / n


def main() -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--assets", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    exporter = InMemorySpanExporter()
    configure_logging("json", stream=io.StringIO())
    app = create_app(Settings(store_url=f"memory://{uuid.uuid4().hex}", jwt_secret=SECRET))
    headers = {
        "Authorization": "Bearer "
        + mint_token(SECRET, tenant="acme", workspace="main", roles=["writer"])
    }
    samples: dict[str, list[float]] = {"off": [], "on": []}
    per_asset: dict[str, list[float]] = {"off": [], "on": []}
    spans_per_request = 0.0
    with TestClient(app) as client, tempfile.TemporaryDirectory() as tmp:
        client.post("/api/v1/namespaces", json={"name": "sales"}, headers=headers)
        client.post(
            "/api/v1/namespaces/sales/tables",
            json={"name": "orders", "columns": [{"name": "id", "type": "int64"}]},
            headers=headers,
        )
        get_table_samples(client, headers, 200)  # warm caches
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                if mode == "on":
                    telemetry.configure_tracing("bench", exporter=exporter)
                else:
                    telemetry.disable_tracing()
                exporter.clear()
                n = args.requests // args.rounds
                samples[mode] += get_table_samples(client, headers, n)
                if mode == "on":
                    spans_per_request = len(exporter.get_finished_spans()) / n
                exporter.clear()
                per_asset[mode].append(run_assets(args.assets // args.rounds, Path(tmp)))
        telemetry.disable_tracing()
    # One no-op span, as every instrumented call pays it with tracing off.
    loops = 200_000
    start = time.perf_counter()
    for _ in range(loops):
        with telemetry.span("x", {"a": 1}):
            pass
    noop_span_s = (time.perf_counter() - start) / loops
    off, on = p95(samples["off"]), p95(samples["on"])
    asset_off = statistics.median(per_asset["off"]) * 1000
    asset_on = statistics.median(per_asset["on"]) * 1000
    instr_ms = spans_per_request * noop_span_s * 1000
    print(f"get-table p95, exporter off:       {off:.3f} ms")
    print(f"get-table p95, in-memory exporter: {on:.3f} ms  ({(on / off - 1) * 100:+.1f}%)")
    print(
        f"spans per get-table: {spans_per_request:.1f}; no-op span {noop_span_s * 1e9:.0f} ns "
        f"-> instrumentation with the exporter off ~{instr_ms * 1000:.1f} us/request "
        f"({instr_ms / off * 100:.2f}% of p95)"
    )
    print(f"run of 1 asset, exporter off:       {asset_off:.2f} ms")
    print(
        f"run of 1 asset, in-memory exporter: {asset_on:.2f} ms  "
        f"({(asset_on / asset_off - 1) * 100:+.1f}%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
