"""The SQL console over a catalog of hundreds of tables and thousands of columns.

DuckDB-WASM 1.28.0 trapped ("memory access out of bounds") building ``system.columns``
from the snapshot files once the catalog had 45 tables, and not at 44: the window
choosing each key's newest delta row carried the ``columns`` lists, and whether that
traps depends on the heap layout (ADR 008). Whether a given catalog hits a failing
layout is luck, so ``tests/api/test_browser_urls.py`` pins the trap itself by building
``system.columns`` at every SQL length through the failing ones; this test (and the
45-table fixture of ``test_ui.py``, which failed) runs the console end to end at a size
real catalogs have: its counts must equal Python's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arco.catalog import Catalog
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.sql.tables import SystemTables

from .conftest import TENANT, WAIT_MS, WORKSPACE, run_web_server
from .test_ui import expect_no_page_errors, first_cell, run_sql, wait_result

pytestmark = pytest.mark.timeout(300)
TABLES = 200
COLUMNS = 15  # per table: 3,000 columns in all


def build_catalog(store_url: str) -> Catalog:
    """200 tables in 20 commits of 10 (so the snapshot has base and delta files), a
    dotted namespace among them, one table altered and one dropped."""
    cat = Catalog(open_store(store_url), Scope(TENANT, WORKSPACE))
    namespaces = ["raw", "analytics", "analytics.marketing", "bulk"]
    with cat.transaction() as tx:
        for ns in namespaces:
            tx.create_namespace(ns, f"{ns} data")
    for batch in range(TABLES // 10):
        with cat.transaction() as tx:
            for i in range(batch * 10, batch * 10 + 10):
                columns = ["id:int64", "amount:decimal(18,2)", "day:date32", "note:string"]
                columns += [f"c{j:02d}:double" for j in range(COLUMNS - len(columns))]
                tx.create_table(
                    namespaces[i % len(namespaces)],
                    f"t{i:03d}",
                    columns,
                    description=f"table {i}",
                    properties={"owner": "data-team", "batch": str(batch)},
                )
    cat.update_table("raw", "t000", add_columns=["extra:string"])
    cat.drop_table("analytics", "t001")
    return cat


def test_console_builds_system_columns_of_a_large_catalog(
    page: Any, web_ui: Path, tmp_path: Path
) -> None:
    store_url = f"file://{tmp_path / 'store'}"
    cat = build_catalog(store_url)
    system = SystemTables(cat.store, Scope(TENANT, WORKSPACE))
    want_columns = system.table("columns").num_rows
    want_tables = system.table("tables").num_rows
    assert (want_tables, want_columns) == (TABLES - 1, (TABLES - 1) * COLUMNS + 1)
    with run_web_server(store_url, tmp_path / "srv", dev=True) as server:
        run_sql(page, server.base_url, "SELECT count(*) FROM system.columns")
        wait_result(page)
        assert first_cell(page) == str(want_columns)
        # The same tables through a join, and a grouping over the built table.
        done = int(page.evaluate("window.arcoTimings.queries"))
        page.get_by_test_id("sql-input").fill(
            "SELECT count(DISTINCT t.id) || '/' || count(*) FROM system.columns c "
            "JOIN system.tables t ON t.id = c.table_id "
            "WHERE t.namespace = 'analytics.marketing'"
        )
        page.get_by_test_id("run-sql").click()
        page.wait_for_function(
            f"window.arcoTimings.queries > {done}"
            " || !!document.querySelector('[data-testid=sql-error]')",
            timeout=WAIT_MS,
        )
        wait_result(page)
        tables = system.table("tables").to_pylist()
        marketing = [t for t in tables if t["namespace"] == "analytics.marketing"]
        assert first_cell(page) == f"{len(marketing)}/{len(marketing) * COLUMNS}"
        expect_no_page_errors(page)
