"""Browser read path, server side: ``POST /api/v1/browser/urls`` on a large catalog.

Builds a catalog of N tables (file://, a base plus a few deltas), then measures
the mint (pointer + manifest reads, signing, view SQL) through the in-process
app, the bytes the browser would download, and how long native DuckDB takes to
run the returned ``system.tables`` view over those files (``count(*)`` and a
full scan), and a cold open of the catalog in Python (the state every CLI command
and a starting server fold). The in-browser figures are ``benchmarks/browser.py``'s.

    .venv/bin/python benchmarks/browser_urls.py               # 100,000 tables
    .venv/bin/python benchmarks/browser_urls.py --tables 10000

Wall-clock medians of repeated calls; the machine may be shared, so small
differences are noise.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from api.conftest import Tokens, in_process_client, make_app

from arco.catalog import Catalog
from arco.core.scope import Scope
from arco.core.storage import open_store


def _median_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="arco-bench-urls-"))
    try:
        url = f"file://{work}/store"
        cat = Catalog(open_store(url), Scope("acme", "main"))
        cat.create_namespace("ns")
        started = time.perf_counter()
        for first in range(0, args.tables, 5000):
            with cat.transaction() as tx:
                for i in range(first, min(args.tables, first + 5000)):
                    tx.create_table("ns", f"t{i:06d}", ["id:int64", "name:string"])
        for i in range(20):  # a few deltas on top of the base
            cat.drop_table("ns", f"t{i:06d}")
        print(f"built {args.tables} tables in {time.perf_counter() - started:.1f} s")
        headers = Tokens().headers("acme", "main", ("reader",))
        body = {"domains": ["catalog", "lineage", "executions"]}
        with in_process_client(make_app(url)) as client:
            answer = client.post("/api/v1/browser/urls", json=body, headers=headers).json()
            mint = _median_ms(
                lambda: client.post("/api/v1/browser/urls", json=body, headers=headers),
                args.repeat,
            )
        files = answer["urls"]
        size = sum(u["size"] for u in files)
        print(f"mint: median {mint:.1f} ms; {len(files)} files, {size / 1e6:.2f} MB to download")
        sql = answer["views"]["tables"]
        for item in files:
            sql = sql.replace(f"'arco://{item['path']}'", f"'{work / 'store' / item['path']}'")
        con = duckdb.connect()
        count = con.sql(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
        counting = _median_ms(lambda: con.sql(f"SELECT count(*) FROM ({sql})").fetchall(), 5)
        scan = _median_ms(lambda: con.sql(sql).to_arrow_table(), 5)
        print(f"native DuckDB system.tables view: count(*) = {count} in {counting:.1f} ms")
        print(f"native DuckDB system.tables view: full scan in {scan:.1f} ms")
        # What every CLI command and a starting API server pay on this catalog: a new
        # Catalog folds the base and the deltas into its in-memory state.
        cold = _median_ms(lambda: Catalog(open_store(url), Scope("acme", "main")).snapshot(), 3)
        print(f"cold open (new Catalog, fold {args.tables} tables into memory): {cold:.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
