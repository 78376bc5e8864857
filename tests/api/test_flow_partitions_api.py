"""Bad partition keys and never-materialized upstreams through a real API server:
a problem+json 400 naming the key (or the upstream), and nothing queued."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import PROBLEM_JSON, LiveServer, run_server

ASSET = "analytics.daily_revenue"  # of `arco init`: daily 2024-01-01..2024-01-03, reads raw.orders


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("partitions")
    name = f"p{uuid.uuid4().hex[:8]}"
    subprocess.run([sys.executable, "-m", "arco.cli.main", "init", name], cwd=workdir, check=True)
    store_url = f"file://{workdir / 'store'}"
    with run_server(store_url, workdir, env={"ARCO_PROJECT_DIR": str(workdir / name)}) as live:
        yield live


def _post(server: LiveServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/v1{path}",
        json=body,
        headers=server.tokens.headers("acme", "main", ["writer"]),
        timeout=30,
    )


def _runs(server: LiveServer) -> list[Any]:
    r = httpx.get(
        f"{server.base_url}/api/v1/runs",
        headers=server.tokens.headers("acme", "main", ["reader"]),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    runs: list[Any] = r.json()["runs"]
    return runs


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"partition": "2024-13-01"}, "'2024-13-01' is not a daily key like 2024-05-01"),
        ({"partitions": ["bogus"]}, "'bogus' is not a daily key"),
        ({"partitions": ["2024-01-02", "2024-01-09"]}, "outside this asset's daily partitions"),
        ({"from": "2024-01-01", "to": "2024-01-99"}, "'2024-01-99'"),
        ({"from": "2024-01-03", "to": "2024-01-01"}, "reversed"),
        ({"partition": "region=eu|date=2024-01-02"}, "not a daily key"),
        # The checks of arco.flow.status.PlanRequest, which `arco plan`/`arco run` share.
        (
            {"partitions": ["2024-01-02"], "from": "2024-01-01", "to": "2024-01-03"},
            "give partitions, or a 'from'/'to' range, not both",
        ),
        ({"from": "2024-01-01"}, "'from' and 'to' go together"),
    ],
)
def test_a_wrong_partition_is_a_400_and_queues_nothing(
    server: LiveServer, body: dict[str, Any], says: str
) -> None:
    for path in ("/plans", "/runs"):
        if path == "/plans" and "partition" in body:
            continue  # plans take "partitions" only
        r = _post(server, path, {"selection": f"+{ASSET}", **body})
        assert r.status_code == 400, (path, r.text)
        assert r.headers["content-type"].startswith(PROBLEM_JSON)
        assert says in r.json()["detail"], r.json()
    assert _runs(server) == []


def test_a_never_materialized_upstream_is_a_400_and_queues_nothing(server: LiveServer) -> None:
    for path in ("/plans", "/runs"):
        r = _post(server, path, {"selection": ASSET, "partitions": ["2024-01-02"]})
        assert r.status_code == 400, (path, r.text)
        detail = r.json()["detail"]
        assert f"{ASSET}[2024-01-02] reads raw.orders" in detail
        assert f"'+{ASSET}'" in detail
    assert _runs(server) == []
    # With the upstream selected, the run is queued.
    ok = _post(server, "/runs", {"selection": f"+{ASSET}", "partition": "2024-01-02"})
    assert ok.status_code == 202, ok.text
    assert ok.json()["task_count"] == 2
    assert [r["run_id"] for r in _runs(server)] == [ok.json()["run_id"]]
