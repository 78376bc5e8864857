"""The SQL console against contract 1 alone (CONTRACTS.md), with Arco's real state files.

``POST /api/v1/browser/urls`` is answered by the test (Playwright routing) the way the
contract says: signed URLs on another origin, ``views`` whose SQL reads
``'arco://<path>'`` files. The files are the real Parquet state files of a catalog
built here, served cross-origin with CORS. This pins the browser half of the contract
independently of the server half (``test_ui.py`` runs both halves together): GET (never
HEAD) on every URL, ``registerFileBuffer('arco://' + path)``, the view SQL run
unchanged, ``system.<name>`` rewritten, errors that name the failing file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from arco.catalog import Catalog
from arco.core.scope import Scope
from arco.core.storage import open_store

from .conftest import TENANT, WAIT_MS, WORKSPACE, WebServer
from .test_ui import first_cell, run_sql, wait_result

pytestmark = pytest.mark.timeout(240)
STORE_ORIGIN = "http://objects.example"

#: The latest version of every key wins; ``_op = 1`` deletes (the contract's merge rule).
VIEW = (
    "SELECT * EXCLUDE (_rn, _op, _version, columns, last_column_id) FROM ("
    "SELECT *, row_number() OVER (PARTITION BY id ORDER BY _version DESC) AS _rn "
    "FROM read_parquet([{files}], union_by_name=true)) WHERE _rn = 1 AND _op = 0"
)


def state_files(store_dir: Path) -> list[Path]:
    scope_dir = store_dir / f"tenant={TENANT}" / f"workspace={WORKSPACE}"
    return sorted(scope_dir.glob("snapshots/catalog/*-tables.*.parquet"))


def answer(page: Any, store_dir: Path, *, broken: str | None = None) -> list[str]:
    """Route the contract's URLs for the current state files; return the requests seen."""
    files = state_files(store_dir)
    keys = [str(f.relative_to(store_dir)) for f in files]
    body = {
        "expires_at": "2099-01-01T00:00:00Z",
        "versions": {"catalog": len(files)},
        "urls": [
            {
                "path": key,
                "url": f"{STORE_ORIGIN}/{key}?X-Signature=abc",
                "expires_at": "2099-01-01T00:00:00Z",
                "domain": "catalog",
                "table": "tables",
            }
            for key in keys
        ],
        "views": {"tables": VIEW.format(files=", ".join(f"'arco://{k}'" for k in keys))},
    }
    seen: list[str] = []

    def serve_object(route: Any) -> None:
        request = route.request
        seen.append(f"{request.method} {request.url}")
        key = request.url.removeprefix(STORE_ORIGIN + "/").split("?")[0]
        if key == broken:
            route.fulfill(status=403, body="SignatureDoesNotMatch")
            return
        route.fulfill(
            status=200,
            body=(store_dir / key).read_bytes(),
            headers={"Access-Control-Allow-Origin": "*", "Content-Type": "binary/octet-stream"},
        )

    page.route(
        "**/api/v1/browser/urls",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(body)
        ),
    )
    page.route(f"{STORE_ORIGIN}/**", serve_object)
    return seen


@pytest.fixture
def catalog_dir(tmp_path: Path) -> tuple[Catalog, Path]:
    store_dir = tmp_path / "store"
    cat = Catalog(open_store(f"file://{store_dir}"), Scope(TENANT, WORKSPACE))
    with cat.transaction() as tx:
        tx.create_namespace("sales")
        for i in range(30):
            tx.create_table("sales", f"t{i:02d}", ["id:int64"], description=f"table {i}")
    return cat, store_dir


def test_console_reads_signed_urls_per_the_contract(
    page: Any, dev_server: WebServer, catalog_dir: tuple[Catalog, Path]
) -> None:
    cat, store_dir = catalog_dir
    cat.drop_table("sales", "t00")  # a delta file with _op = 1
    cat.create_table("sales", "late", ["id:int64"])  # and one more version
    seen = answer(page, store_dir)
    run_sql(
        page,
        dev_server.base_url,
        "SELECT count(*) FROM system.tables -- system.nothing in a comment stays",
    )
    wait_result(page)
    assert first_cell(page) == "30"  # 30 created, one dropped, one added
    files = state_files(store_dir)
    assert len(files) >= 2
    assert sorted(seen) == sorted(
        f"GET {STORE_ORIGIN}/{f.relative_to(store_dir)}?X-Signature=abc" for f in files
    )
    page.get_by_test_id("sql-input").fill(
        "SELECT name FROM system.tables WHERE name IN ('t00', 'late', 't01') "
        "AND 'system.tables' <> '' ORDER BY name"
    )
    page.get_by_test_id("run-sql").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=row-count]')?.dataset.rows === '2'",
        timeout=WAIT_MS,
    )
    cells = page.locator("[data-testid=result-table] tbody td").all_inner_texts()
    assert cells == ["late", "t01"]
    assert page.page_errors == []


def test_a_refused_download_names_the_file(
    page: Any, dev_server: WebServer, catalog_dir: tuple[Catalog, Path]
) -> None:
    _, store_dir = catalog_dir
    bad = str(state_files(store_dir)[0].relative_to(store_dir))
    answer(page, store_dir, broken=bad)
    run_sql(page, dev_server.base_url, "SELECT count(*) FROM system.tables")
    error = page.get_by_test_id("sql-error")
    error.wait_for(state="visible", timeout=WAIT_MS)
    text = error.inner_text()
    assert bad in text
    assert "HTTP 403" in text
    assert "expired, tampered or out of scope" in text
