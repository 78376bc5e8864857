"""Two uvicorn servers on one SeaweedFS prefix: concurrent writes through both agree.

200 table creations are split across both servers by 8 threads; every table is
then visible through either server, and the catalog's commit chain verifies.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from arco.client import ArcoClient, RetryPolicy
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.domain.verify import verify

from .conftest import run_server

pytestmark = pytest.mark.s3

TABLES = 200
WORKERS = 8
TENANT, WORKSPACE = "acme", "shared"


def _table_create_statuses(metrics: str) -> dict[str, float]:
    """Status counts of ``POST /namespaces/{namespace}/tables`` in Prometheus text."""
    pattern = re.compile(
        r'arco_http_requests_total\{method="POST",'
        r'route="/api/v1/namespaces/\{namespace\}/tables",status="(\d+)"\} ([0-9.]+)'
    )
    return {m.group(1): float(m.group(2)) for m in pattern.finditer(metrics)}


def test_two_servers_share_one_bucket_prefix(seaweed: object, tmp_path: Path) -> None:
    url: str = seaweed.fresh_url()  # type: ignore[attr-defined]
    with (
        run_server(url, tmp_path / "one") as one,
        run_server(url, tmp_path / "two") as two,
    ):
        token = one.tokens(TENANT, WORKSPACE, ["writer"])
        retry = RetryPolicy(max_retries=8, backoff_base=0.05, backoff_cap=1.0)
        with ArcoClient(one.base_url, token, retry=retry, timeout=60) as setup:
            setup.create_namespace("sales")
        local = threading.local()

        def client_for(index: int) -> ArcoClient:
            # One client (connection pool) per thread and server.
            key = "one" if index % 2 == 0 else "two"
            found: ArcoClient | None = getattr(local, key, None)
            if found is None:
                base = one.base_url if key == "one" else two.base_url
                found = ArcoClient(base, token, retry=retry, timeout=60)
                setattr(local, key, found)
            return found

        def create(index: int) -> str:
            name = f"t{index:03d}"
            table = client_for(index).create_table(
                "sales",
                name,
                [("id", "int64"), ("value", "string")],
                properties={"server": "one" if index % 2 == 0 else "two"},
                # Makes a resend after a lost answer (or a 503) safe.
                idempotency_key=f"create-{name}",
            )
            return table["name"]

        started = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            created = list(pool.map(create, range(TABLES)))
        elapsed = time.monotonic() - started
        expected = [f"t{i:03d}" for i in range(TABLES)]
        assert sorted(created) == expected

        for server in (one, two):
            with ArcoClient(server.base_url, token, timeout=60) as reader:
                names = [t["name"] for t in reader.iter_tables("sales", page_size=37)]
                assert names == expected, server.base_url
                assert reader.get_table("sales", "t199")["properties"] == {"server": "two"}
                assert reader.get_table("sales", "t000")["properties"] == {"server": "one"}
                history = reader.catalog_history(limit=1000)
                creates = [h for h in history if h["operation"]["ops"][0]["op"] == "create_table"]
                assert len(creates) == TABLES  # exactly one commit per table, none repeated
                statuses = _table_create_statuses(reader.metrics())
                assert not any(code.startswith("5") and code != "503" for code in statuses)
                print(f"{server.base_url}: POST tables statuses {statuses}")
        report = verify(open_store(url), Scope(TENANT, WORKSPACE))
        assert report.ok, report
        assert elapsed < 120, f"{TABLES} creations took {elapsed:.1f}s"
