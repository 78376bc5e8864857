"""Browser benchmark: the web UI's SQL console (DuckDB-WASM) in headless Chromium.

Run standalone (needs the built UI, ``make ui``, and Debian's ``/usr/bin/chromium``)::

    .venv/bin/python benchmarks/browser.py            # full: a 100,000-table catalog
    .venv/bin/python benchmarks/browser.py --quick    # smoke run: 10,000 tables
    .venv/bin/python benchmarks/browser.py --json out.json

What is measured
----------------
Two catalogs on ``file://``: a small one (4 namespaces, 50 tables) and a large one of
T tables in 20 namespaces (2-3 columns each, built with ``Catalog.transaction``,
5,000 tables per commit, like ``benchmarks/discovery.py``). One real uvicorn server
(dev mode, so the page signs in by itself) serves the API and the UI on loopback.

* First result: a fresh browser context (empty HTTP cache) opens
  ``/sql?q=SELECT count(*) FROM system.tables&run=1``; the figure is the page's own
  ``performance.now()`` when the result is ready, i.e. the time from navigation start
  through sign-in, loading the 40 MB of DuckDB-WASM, minting signed URLs, downloading
  and registering the Parquet files, creating the views, and the query. Repeated with
  a warm HTTP cache (reload in the same context: the hashed bundles are cached).
  The first query that names ``system.tables`` builds it once from the snapshot's
  files (base + deltas merged, as a DuckDB table); that part is reported too.
* Full scan: with the snapshot loaded, the in-browser time (``performance.now()``
  around ``conn.query``) of an aggregate over every row and column of
  ``system.tables``, and of ``SELECT * FROM system.tables`` (all rows into Arrow).
  The same aggregate through ``POST /api/v1/query`` (native DuckDB on the server) is
  measured in the same run as the baseline.

The machine has 2 cores shared with other jobs: compare figures within one run.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
from _util import Stats, environment, fmt_ms, fmt_s, load_average, print_table, write_json

from arco.api.auth import mint_token
from arco.catalog import Catalog
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.web import STATIC_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "arco-browser-benchmark-secret-0123456789abcdef"
TXN_TABLES = 5_000
WAIT_MS = 600_000
COUNT_SQL = "SELECT count(*) FROM system.tables"
SCAN_SQL = (
    "SELECT count(*) AS n, count(DISTINCT namespace) AS namespaces, "
    "sum(length(description))::BIGINT AS description_chars, "
    "sum(column_count)::BIGINT AS columns, max(updated_at) AS newest FROM system.tables"
)
ROWS_SQL = "SELECT * FROM system.tables"
WORDS = [
    "orders",
    "customers",
    "revenue",
    "events",
    "sessions",
    "clicks",
    "invoices",
    "payments",
    "stock",
    "users",
]
SERVE = (
    "import sys, uvicorn\n"
    "from arco.api.app import create_app\n"
    "from arco.api.settings import Settings\n"
    "uvicorn.run(create_app(Settings.from_env(dev_mode=True)), host='127.0.0.1',"
    " port=int(sys.argv[1]), log_level='warning', access_log=False)\n"
)


def log(msg: str) -> None:
    """Progress on stderr."""
    print(msg, file=sys.stderr, flush=True)


def build_catalog(store_url: str, n_tables: int, n_namespaces: int) -> float:
    """Create ``n_tables`` tables in ``n_namespaces`` namespaces; seconds taken."""
    rng = random.Random(7)
    cat = Catalog(open_store(store_url), Scope("default", "default"))
    started = time.perf_counter()
    namespaces = [f"{WORDS[i % len(WORDS)]}_{i:02d}" for i in range(n_namespaces)]
    with cat.transaction() as tx:
        for ns in namespaces:
            tx.create_namespace(ns, description=f"{ns} data")
    for start in range(0, n_tables, TXN_TABLES):
        with cat.transaction() as tx:
            for i in range(start, min(n_tables, start + TXN_TABLES)):
                cols = [f"{w}:string" for w in rng.sample(WORDS, rng.choice((2, 3)))]
                desc = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 10)))
                tx.create_table(
                    namespaces[i % n_namespaces],
                    f"{rng.choice(WORDS)}_{i:06d}",
                    cols,
                    description=desc.capitalize(),
                )
        if n_tables > TXN_TABLES:
            log(f"  {min(n_tables, start + TXN_TABLES):,} tables")
    return time.perf_counter() - started


class Server:
    """A uvicorn process serving the API and the UI over ``store_url``."""

    def __init__(self, store_url: str, workdir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
        # The query route's default 10 s budget is for interactive use; the baseline scan
        # of a large catalog may need longer on a loaded machine.
        env.update(ARCO_STORE=store_url, ARCO_JWT_SECRET=SECRET, ARCO_QUERY_SECONDS="120")
        self.log_path = workdir / f"server-{self.port}.log"
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        token = mint_token(SECRET, tenant="default", workspace="default", roles=["writer"])
        self.headers = {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        """SIGTERM, then kill."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def server_query_ms(server: Server, sql: str) -> tuple[float, float]:
    """(server-side elapsed_ms, wall ms) of ``POST /api/v1/query``."""
    t0 = time.perf_counter()
    response = httpx.post(
        server.base_url + "/api/v1/query",
        json={"sql": sql},
        headers=server.headers,
        timeout=300,
    )
    wall = (time.perf_counter() - t0) * 1000
    response.raise_for_status()
    return float(response.json()["elapsed_ms"]), wall


def first_result(page: Any, base_url: str, expect: int, *, reload: bool = False) -> float:
    """Open the auto-running console; ms from navigation start to the first result.

    With ``reload`` the page is opened again in the same context, so the hashed
    bundles come from the HTTP cache (a warm start).
    """
    url = f"{base_url}/sql?q={urllib.parse.quote(COUNT_SQL)}&run=1"
    # A warm run navigates to the same URL again rather than reloading: after a query
    # the console rewrites its URL without ``run=1``, so a reload would not auto-run.
    if reload:
        page.goto("about:blank", timeout=WAIT_MS)
    page.goto(url, wait_until="commit", timeout=WAIT_MS)
    page.wait_for_function(
        "window.arcoTimings?.firstResultMs > 0 || "
        "!!document.querySelector('[data-testid=sql-error]')",
        timeout=WAIT_MS,
    )
    error = page.locator("[data-testid=sql-error]")
    if error.count():
        raise RuntimeError(f"the console failed: {error.inner_text()}")
    got = page.locator("[data-testid=result-table] tbody td").first.inner_text(timeout=WAIT_MS)
    if got != str(expect):
        raise RuntimeError(f"count(*) in the browser is {got}, expected {expect}")
    return float(page.evaluate("window.arcoTimings.firstResultMs"))


def prepare_ms(page: Any) -> float:
    """In-browser ms the latest query spent building system tables from the snapshot."""
    return float(page.evaluate("window.arcoTimings.lastPrepareMs ?? 0"))


def browser_query_ms(page: Any, sql: str) -> tuple[float, int]:
    """Run ``sql`` in the console of a loaded page: (in-browser ms, rows)."""
    before = int(page.evaluate("window.arcoTimings?.queries ?? 0"))
    page.get_by_test_id("sql-input").fill(sql)
    page.get_by_test_id("run-sql").click(timeout=WAIT_MS)
    page.wait_for_function(
        f"(window.arcoTimings?.queries ?? 0) > {before} || "
        "!!document.querySelector('[data-testid=sql-error]')",
        timeout=WAIT_MS,
    )
    error = page.locator("[data-testid=sql-error]")
    if error.count():
        raise RuntimeError(f"the console failed: {error.inner_text()}")
    timings = page.evaluate("window.arcoTimings")
    return float(timings["lastQueryMs"]), int(timings["lastRows"])


def measure(
    browser: Any, server: Server, n_tables: int, repeat: int, *, scans: bool
) -> dict[str, Any]:
    """First-result (cold, warm) and, with ``scans``, full-scan figures for one catalog."""
    out: dict[str, Any] = {"tables": n_tables}
    cold: list[float] = []
    warm: list[float] = []
    build: list[float] = []
    for i in range(repeat):
        context = browser.new_context()
        page = context.new_page()
        cold.append(first_result(page, server.base_url, n_tables))
        build.append(prepare_ms(page))
        warm.append(first_result(page, server.base_url, n_tables, reload=True))
        build.append(prepare_ms(page))
        snapshot = page.get_by_test_id("snapshot").inner_text()
        if i == 0:
            out["snapshot"] = snapshot
            log(f"  {snapshot}")
        log(f"  first result: cold {fmt_ms(cold[-1])}, warm {fmt_ms(warm[-1])}")
        if scans and i == repeat - 1:
            agg = [browser_query_ms(page, SCAN_SQL)[0] for _ in range(repeat)]
            rows_ms: list[float] = []
            for _ in range(repeat):
                ms, rows = browser_query_ms(page, ROWS_SQL)
                if rows != n_tables:
                    raise RuntimeError(f"SELECT * gave {rows} rows, expected {n_tables}")
                rows_ms.append(ms)
            out["scan_aggregate"] = Stats.of(agg)
            out["scan_all_rows"] = Stats.of(rows_ms)
            log(f"  full scan (aggregate) in the browser: {out['scan_aggregate'].short()}")
            log(f"  SELECT * in the browser: {out['scan_all_rows'].short()}")
        context.close()
    out["first_cold"] = Stats.of(cold)
    out["first_warm"] = Stats.of(warm)
    out["build_system_tables"] = Stats.of(build)
    if scans:
        server_query_ms(server, SCAN_SQL)  # warm the server's caches like the browser's
        samples = [server_query_ms(server, SCAN_SQL) for _ in range(repeat)]
        out["server_scan_aggregate"] = Stats.of([s[0] for s in samples])
        out["server_scan_aggregate_wall"] = Stats.of([s[1] for s in samples])
        log(f"  same aggregate via POST /query (server): {out['server_scan_aggregate'].short()}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 10,000 tables")
    parser.add_argument("--tables", type=int, help="tables in the large catalog")
    parser.add_argument("--repeat", type=int, default=5, help="samples per figure")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="build the catalogs in DIR and reuse them on later runs (saves the build)",
    )
    args = parser.parse_args(argv)
    n_large = args.tables or (10_000 if args.quick else 100_000)
    if not (STATIC_DIR / "index.html").is_file():
        parser.error(f"the web UI is not built in {STATIC_DIR}: run `make ui`")
    if not Path(CHROMIUM).is_file():
        parser.error(f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    env = environment()
    log(f"arco browser benchmark: small catalog 50 tables, large {n_large:,} tables")
    log(f"{env['cpu_count']} cores, load average {env['load_average']} (shared machine)")
    results: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="arco-browser-") as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for label, n_tables, n_ns in (("small", 50, 4), ("large", n_large, 20)):
                workdir = Path(args.keep or tmp) / f"{label}-{n_tables}"
                done = workdir / "built"
                build_s = float(done.read_text()) if done.is_file() else None
                if build_s is None:
                    workdir.mkdir(parents=True, exist_ok=True)
                    log(f"[{label}] building a {n_tables:,}-table catalog ...")
                    build_s = build_catalog(f"file://{workdir / 'store'}", n_tables, n_ns)
                    done.write_text(str(build_s))
                    log(f"  built in {fmt_s(build_s)}")
                else:
                    log(f"[{label}] reusing the {n_tables:,}-table catalog in {workdir}")
                server = Server(f"file://{workdir / 'store'}", workdir)
                try:
                    results[label] = measure(
                        browser, server, n_tables, args.repeat, scans=label == "large"
                    )
                finally:
                    server.stop()
                results[label]["build_s"] = build_s
        finally:
            browser.close()
    small, large = results["small"], results["large"]
    rows = [
        ["first result, 50 tables, cold cache", small["first_cold"].short()],
        ["first result, 50 tables, warm cache", small["first_warm"].short()],
        [f"first result, {n_large:,} tables, cold cache", large["first_cold"].short()],
        [f"first result, {n_large:,} tables, warm cache", large["first_warm"].short()],
        [f"snapshot of {n_large:,} tables", large["snapshot"]],
        [
            f"first result includes building system.tables ({n_large:,} rows, once)",
            large["build_system_tables"].short(),
        ],
        [f"full scan aggregate, {n_large:,} tables (browser)", large["scan_aggregate"].short()],
        [f"SELECT * of {n_large:,} tables (browser)", large["scan_all_rows"].short()],
        ["same aggregate, POST /query (server DuckDB)", large["server_scan_aggregate"].short()],
    ]
    print_table(["metric", "value"], rows, title="Browser (DuckDB-WASM in headless Chromium)")
    print(
        f"total {fmt_s(time.perf_counter() - started)}; load average at end {load_average()}"
        f" on {os.cpu_count()} cores (other jobs share this machine)"
    )
    if args.json:
        write_json(args.json, {"benchmark": "browser", "environment": env, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
