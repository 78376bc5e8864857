"""Fixtures of the browser tests: real uvicorn servers over populated stores, Chromium.

* ``web_ui``: the built UI (``make ui``); skipped, or failed under ``ARCO_REQUIRE_ALL=1``,
  when missing.
* ``browser``: Debian's Chromium driven by pip Playwright (never ``playwright install``).
* ``dev_server``: a dev-mode server (auto sign-in) over a populated ``file://`` store.
* ``start_server``: start more (the SeaweedFS S3 one).
* ``shot``: saves a screenshot under ``test-output/web/``.
* ``new_page(width, height)``, ``phone``: pages at other viewports (390 px: a phone).
* ``axe_serious(page)``: axe-core's serious and critical WCAG 2.1 AA violations.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from arco.api.auth import mint_token
from arco.web import STATIC_DIR
from conftest import (  # tests/conftest.py (pytest puts tests/ on sys.path)
    free_port,
    require_or_skip,
    start_logged,
    stop_process,
    wait_for_http,
)

SECRET = "arco-web-tests-secret-0123456789-abcdefghijk"
TENANT, WORKSPACE = "acme", "main"
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
#: Every Playwright wait uses at most this (ms): a wrong MIME type hangs instead of failing.
WAIT_MS = 30_000
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "web"
_SERVE = Path(__file__).with_name("_serve.py")
_START_TIMEOUT_S = 30.0

# The catalog every server is filled with: (namespace, table, columns, description).
TABLES: list[tuple[str, str, list[tuple[str, str]], str]] = (
    [
        (
            "raw",
            "orders",
            [("order_id", "string"), ("customer_id", "string"), ("total", "decimal(12,2)")],
            "Orders exported hourly from the shop database",
        ),
        ("raw", "customers", [("customer_id", "string"), ("email", "string")], "Shop customers"),
        (
            "analytics",
            "daily_revenue",
            [("day", "date32"), ("revenue", "decimal(14,2)")],
            "Revenue per day in EUR",
        ),
        (
            "analytics",
            "customer_ltv",
            [("customer_id", "string"), ("ltv", "double")],
            "Lifetime value of every customer",
        ),
    ]
    + [
        (
            "analytics.marketing",
            "campaign_attribution",
            [("campaign_id", "string"), ("attributed_revenue", "decimal(18,2)")],
            "Last-touch revenue attribution per campaign",
        ),
    ]
    + [
        ("bulk", f"filler_{i:03d}", [("id", "int64"), ("value", "string")], f"Filler table {i}")
        for i in range(40)
    ]
)
EDGES = [
    ("raw.orders", "analytics.daily_revenue"),
    ("raw.orders", "analytics.customer_ltv"),
    ("raw.customers", "analytics.customer_ltv"),
    # A lineage node that is no catalog table (a dashboard fed by the table).
    ("analytics.marketing.campaign_attribution", "reports.campaign_dashboard"),
]
#: Viewports the layout is checked at: a desktop and a phone (iPhone 12-15 width).
DESKTOP = (1400, 900)
PHONE = (390, 844)
AXE_JS = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"


@dataclass
class WebServer:
    """A running Arco server and a writer token for its test scope."""

    base_url: str
    store_url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    token: str = field(
        default_factory=lambda: mint_token(
            SECRET, tenant=TENANT, workspace=WORKSPACE, roles=["writer"], ttl_seconds=3600
        )
    )

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header of :attr:`token`."""
        return {"Authorization": f"Bearer {self.token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the API with the test token; fail the test on an error answer."""
        response = httpx.request(
            method, self.base_url + path, headers=self.headers(), timeout=30.0, **kwargs
        )
        assert response.status_code < 400, f"{method} {path}: {response.text}"
        return response

    def log(self) -> str:
        """The tail of the server's output."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def populate(server: WebServer) -> None:
    """Fill the server's scope with :data:`TABLES` and :data:`EDGES`, then compact."""
    for ns in sorted({t[0] for t in TABLES}):
        server.api("POST", "/api/v1/namespaces", json={"name": ns, "description": f"{ns} data"})
    for ns, name, cols, description in TABLES:
        server.api(
            "POST",
            f"/api/v1/namespaces/{ns}/tables",
            json={
                "name": name,
                "description": description,
                "columns": [{"name": c, "type": t} for c, t in cols],
                "properties": {"owner": "data-team"},
            },
        )
    server.api(
        "POST",
        "/api/v1/lineage/edges",
        json={"edges": [{"source": s, "target": t} for s, t in EDGES]},
    )
    server.api("POST", "/api/v1/compaction", json={})


@contextlib.contextmanager
def run_web_server(
    store_url: str, workdir: Path, *, dev: bool, env: dict[str, str] | None = None
) -> Iterator[WebServer]:
    """Run ``_serve.py`` (uvicorn, 127.0.0.1, a free port) until the block ends."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    child_env.update(
        {
            "ARCO_STORE": store_url,
            "ARCO_JWT_SECRET": SECRET,
            "ARCO_TENANT": TENANT,
            "ARCO_WORKSPACE": WORKSPACE,
            **(env or {}),
        }
    )
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    cmd = [sys.executable, str(_SERVE), str(port), *(["--dev"] if dev else [])]
    proc = start_logged(cmd, log_path, cwd=workdir, env=child_env)
    server = WebServer(f"http://127.0.0.1:{port}", store_url, proc, log_path)
    try:
        if not wait_for_http(server.base_url + "/healthz", proc, _START_TIMEOUT_S):
            pytest.fail(f"the Arco server did not start:\n{server.log()}")
        yield server
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def web_ui() -> Path:
    """The built UI; skip (fail under ARCO_REQUIRE_ALL=1) when ``make ui`` has not run."""
    if not (STATIC_DIR / "index.html").is_file():
        require_or_skip(f"web UI not built in {STATIC_DIR}: run `make ui` (needs Node.js)")
    return STATIC_DIR


@pytest.fixture(scope="package")
def browser(web_ui: Path) -> Iterator[Any]:
    """Headless Debian Chromium under pip Playwright, for the web tests.

    Package scope, not session: Playwright's sync API keeps an event loop running
    in the main thread while it is open, and every later test calling
    ``asyncio.run`` (any test run after the web tests) would fail.
    """
    if not Path(CHROMIUM).is_file():
        require_or_skip(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip("pip playwright is not installed")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=WAIT_MS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[int, int], Any]]:
    """``new_page(width, height)``: a fresh context and page (own sessionStorage), every
    wait bounded, JavaScript errors collected in ``page.page_errors``."""
    contexts: list[Any] = []

    def make(width: int, height: int) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        context.set_default_timeout(WAIT_MS)
        context.set_default_navigation_timeout(WAIT_MS)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.page_errors = errors
        return pg

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def page(new_page: Callable[[int, int], Any]) -> Any:
    """A desktop-sized page (1400 x 900)."""
    return new_page(*DESKTOP)


@pytest.fixture
def phone(new_page: Callable[[int, int], Any]) -> Any:
    """A phone-sized page (390 x 844)."""
    return new_page(*PHONE)


def axe_serious(pg: Any) -> list[str]:
    """Run axe-core (WCAG 2.0/2.1 A and AA rules) on the page; its serious and critical
    violations, one line each (rule, impact, the first offending elements)."""
    if not AXE_JS.is_file():
        require_or_skip(f"{AXE_JS} missing: npm ci --prefix web (axe-core is a devDependency)")
    if not pg.evaluate("!!window.axe"):
        pg.add_script_tag(path=str(AXE_JS))
    found = pg.evaluate(
        """async () => {
          const r = await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
            resultTypes: ['violations'],
          });
          return r.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.id} (${v.impact}): ${v.help} at `
              + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
        }"""
    )
    return list(found)


def fits_width(pg: Any) -> list[str]:
    """Elements wider than the viewport make the page scroll sideways: none may."""
    return list(
        pg.evaluate(
            """() => {
              const w = document.documentElement.clientWidth;
              if (document.documentElement.scrollWidth <= w + 1) return [];
              return [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > w + 1)
                .slice(0, 5)
                .map(e => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`);
            }"""
        )
    )


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """A dev-mode server over a populated ``file://`` store (session scope)."""
    workdir = tmp_path_factory.mktemp("web-dev")
    with run_web_server(f"file://{workdir / 'store'}", workdir, dev=True) as server:
        populate(server)
        yield server


@pytest.fixture
def start_server(
    tmp_path: Path,
) -> Iterator[Callable[[str, bool], WebServer]]:
    """Start (and later stop) a populated server on a given store URL."""
    stack = contextlib.ExitStack()

    def start(store_url: str, dev: bool = False) -> WebServer:
        server = stack.enter_context(run_web_server(store_url, tmp_path / "srv", dev=dev))
        populate(server)
        return server

    with stack:
        yield start


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """``shot(page, "name")`` saves a full-page screenshot under test-output/web/."""
    OUTPUT.mkdir(parents=True, exist_ok=True)

    def save(pg: Any, name: str) -> Path:
        path = OUTPUT / f"{request.node.name}-{name}.png"
        pg.screenshot(path=str(path), full_page=True, timeout=WAIT_MS)
        return path

    return save
