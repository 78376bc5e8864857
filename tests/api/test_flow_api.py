"""Flow routes against a real uvicorn process and a real ``arco worker`` process.

The server serves the assets of ``tests/flow/workerassets.py`` (``ARCO_PROJECT_MODULE``);
runs triggered through the API are executed by the worker process. Covered:
assets, plans, trigger -> worker -> SUCCEEDED -> logs, list/pagination, cancel,
rerun from failure, Idempotency-Key, tenant isolation, roles and bad input, and
the sync and async clients.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from arco.client import ArcoClient, AsyncArcoClient, BadRequest, Conflict, NotFound

from .conftest import (
    PROBLEM_JSON,
    LiveServer,
    Tokens,
    in_process_client,
    make_app,
    run_server,
)

FLOW_TESTS = Path(__file__).resolve().parents[1] / "flow"
TENANT, WORKSPACE = "flowco", "main"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


@dataclass
class FlowServer:
    """The API server, the worker and the folder where assets record executions."""

    server: LiveServer
    state: Path
    worker: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return self.server.base_url

    def headers(self, tenant: str = TENANT, roles: tuple[str, ...] = ("writer",)) -> dict[str, str]:
        return self.server.tokens.headers(tenant, WORKSPACE, roles)

    def client(self, tenant: str = TENANT, roles: tuple[str, ...] = ("writer",)) -> ArcoClient:
        return ArcoClient(self.url, self.server.tokens(tenant, WORKSPACE, roles), timeout=30)

    def starts(self, asset: str) -> int:
        path = self.state / asset
        if not path.exists():
            return 0
        return sum(1 for line in path.read_text().splitlines() if line.startswith("start"))


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowServer]:
    workdir = tmp_path_factory.mktemp("flowapi")
    state = workdir / "state"
    state.mkdir()
    store_url = f"file://{workdir / 'store'}"
    project = {
        "ARCO_PROJECT_MODULE": "workerassets",
        "ARCO_PROJECT_DIR": str(FLOW_TESTS),
        "ARCO_TEST_STATE": str(state),
        "ARCO_TEST_SLOW": "1.0",
    }
    with run_server(store_url, workdir, env=project) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
        env.update(project)
        env["PYTHONPATH"] = os.pathsep.join([str(FLOW_TESTS), os.environ.get("PYTHONPATH", "")])
        cmd = [sys.executable, "-m", "arco.cli.main", "--store", store_url]
        cmd += ["--tenant", TENANT, "--workspace", WORKSPACE, "worker", "--module", "workerassets"]
        cmd += ["--executor", "process", "--poll-interval", "0.1", "--lease-ttl", "5"]
        with (workdir / "worker.log").open("wb") as log:
            worker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            yield FlowServer(server, state, worker)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()


def _until(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.1)


def _finished(client: ArcoClient, run_id: str) -> Any:
    return _until(lambda: (r := client.get_run(run_id))["state"] in TERMINAL and r)


def test_assets_and_plans(flow: FlowServer) -> None:
    with flow.client(roles=("reader",)) as arco:
        assets = {a["key"]: a for a in arco.list_assets()}
        assert {"w.first", "w.second", "w.third", "w.fourth", "w.fails"} <= set(assets)
        second = assets["w.second"]
        assert second["deps"] == ["w.first"]
        assert second["namespace"] == "w"
        assert second["name"] == "second"
        assert second["code_version"] == "1"
        assert second["partitioned"] is False
        plan = arco.plan("+w.fourth")
        again = arco.plan("+w.fourth")
    assert [t["task_id"] for t in plan["tasks"]] == ["w.first", "w.second", "w.third", "w.fourth"]
    assert plan["fingerprint"].startswith("sha256:")
    assert plan == again  # deterministic
    # The same plan as the CLI prints: the fingerprint of an in-process plan() agrees.
    sys.path.insert(0, str(FLOW_TESTS))
    try:
        from arco.flow.definitions import load_definitions
        from arco.flow.planner import plan as make_plan

        local = make_plan(load_definitions("workerassets", path=FLOW_TESTS), "+w.fourth")
    finally:
        sys.path.remove(str(FLOW_TESTS))
    assert local.fingerprint == plan["fingerprint"]
    bad = httpx.post(
        f"{flow.url}/api/v1/plans", json={"selection": "nope.nothing"}, headers=flow.headers()
    )
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith(PROBLEM_JSON)
    assert "matches no asset" in bad.json()["detail"]
    extra = httpx.post(f"{flow.url}/api/v1/plans", json={"selectio": "*"}, headers=flow.headers())
    assert extra.status_code == 422


def test_trigger_worker_executes_then_succeeded_and_logs(flow: FlowServer) -> None:
    with flow.client() as arco:
        accepted = arco.trigger_run("+w.fourth", max_concurrency=2)
        assert accepted["state"] == "QUEUED"
        assert accepted["task_count"] == 4
        run = _finished(arco, accepted["run_id"])
        assert run["state"] == "SUCCEEDED", run
        assert run["task_counts"] == {"SUCCEEDED": 4}
        tasks = {t["task_id"]: t for t in run["tasks"]}
        assert set(tasks) == {"w.first", "w.second", "w.third", "w.fourth"}
        for t in tasks.values():
            assert t["state"] == "SUCCEEDED"
            assert t["attempt"] == 1
            assert t["started_at"] is not None
            assert t["ended_at"] is not None
            assert t["started_at"] <= t["ended_at"]
        # w.second ran after w.first finished (the Gantt chart's ordering).
        assert tasks["w.first"]["ended_at"] <= tasks["w.second"]["started_at"]
        assert run["started_at"] is not None
        assert run["ended_at"] is not None
        logs = arco.run_logs(accepted["run_id"])
        assert {
            "task_id": "w.second",
            "level": "INFO",
            "message": "second sleeps 1.0s",
        }.items() <= next(line for line in logs if line["task_id"] == "w.second").items()
        assert all(line["ts"].endswith("+00:00") for line in logs)
        assert arco.run_logs(accepted["run_id"], task_id="w.first") == []
        # Listed newest first, and the assets now know their last materialization.
        page = arco.list_runs(page_size=1)
        assert page["runs"][0]["run_id"] == accepted["run_id"]
        assets = {a["key"]: a for a in arco.list_assets()}
        last = assets["w.fourth"]["last_materialization"]
        assert last is not None
        assert last["run_id"] == accepted["run_id"]
        assert assets["w.fourth"]["stale"] is False
    for name in ("first", "second", "third", "fourth"):
        assert flow.starts(name) >= 1


def test_cancel_running_run_via_api(flow: FlowServer) -> None:
    with flow.client() as arco:
        run_id = arco.trigger_run("+w.fourth")["run_id"]
        _until(
            lambda: any(
                t["task_id"] == "w.second" and t["state"] == "RUNNING"
                for t in arco.get_run(run_id)["tasks"]
            )
        )
        answer = arco.cancel_run(run_id)
        assert answer["run_id"] == run_id
        run = _finished(arco, run_id)
        assert run["state"] == "CANCELLED"
        states = {t["task_id"]: t["state"] for t in run["tasks"]}
        assert states["w.first"] == "SUCCEEDED"
        assert states["w.second"] == "CANCELLED"
        assert states["w.third"] == states["w.fourth"] == "CANCELLED"
        with pytest.raises(Conflict):
            arco.cancel_run(run_id)  # it already ended


def test_rerun_from_failure_via_api(flow: FlowServer) -> None:
    with flow.client() as arco:
        first_runs = flow.starts("first")
        failed = _finished(arco, arco.trigger_run("+w.after_fails")["run_id"])
        assert failed["state"] == "FAILED"
        states = {t["task_id"]: t["state"] for t in failed["tasks"]}
        assert states == {"w.first": "SUCCEEDED", "w.fails": "FAILED", "w.after_fails": "SKIPPED"}
        error = next(t["error"] for t in failed["tasks"] if t["task_id"] == "w.fails")
        assert error.startswith("RuntimeError: fails until")
        (flow.state / "fixed").write_text("yes")
        again = arco.rerun(failed["run_id"], from_failure=True, idempotency_key="rerun-1")
        same = arco.rerun(failed["run_id"], from_failure=True, idempotency_key="rerun-1")
        assert same["run_id"] == again["run_id"]  # a retried request queues nothing new
        assert again["parent_run_id"] == failed["run_id"]
        assert again["task_count"] == 2
        done = _finished(arco, again["run_id"])
        assert done["state"] == "SUCCEEDED"
        assert done["parent_run_id"] == failed["run_id"]
        assert {t["task_id"] for t in done["tasks"]} == {"w.fails", "w.after_fails"}
        # w.first's output was reused, not recomputed.
        assert flow.starts("first") == first_runs + 1
        with pytest.raises(Conflict):
            arco.rerun(done["run_id"], from_failure=True)  # nothing failed


def test_idempotent_trigger_and_pagination(flow: FlowServer) -> None:
    with flow.client() as arco:
        one = arco.trigger_run("w.first", idempotency_key="same-request")
        two = arco.trigger_run("w.first", idempotency_key="same-request")
        assert one["run_id"] == two["run_id"]
        _finished(arco, one["run_id"])
        everything = [r["run_id"] for r in arco.iter_runs(page_size=2)]
        assert everything == sorted(everything, reverse=True)
        assert len(everything) == len(set(everything))
        assert one["run_id"] in everything
        assert everything.count(one["run_id"]) == 1
        ok = [r["run_id"] for r in arco.iter_runs(state="succeeded")]
        assert one["run_id"] in ok


def test_tenant_isolation(flow: FlowServer) -> None:
    with flow.client() as a:
        run_id = a.trigger_run("w.first")["run_id"]
        _finished(a, run_id)
        assert any(r["run_id"] == run_id for r in a.list_runs()["runs"])
    with flow.client(tenant="othertenant") as b:
        assert b.list_runs()["runs"] == []
        for call in (b.get_run, b.cancel_run, b.rerun, b.run_logs):
            with pytest.raises(NotFound):
                call(run_id)
        # B's assets are the same definitions, but know nothing of A's materializations.
        assert all(x["last_materialization"] is None for x in b.list_assets())


def test_roles_and_bad_input(flow: FlowServer) -> None:
    reader = flow.headers(roles=("reader",))
    api = f"{flow.url}/api/v1"
    assert httpx.post(f"{api}/runs", json={"selection": "*"}, headers=reader).status_code == 403
    assert httpx.get(f"{api}/runs").status_code == 401
    with flow.client() as arco:
        with pytest.raises(BadRequest):
            arco.get_run("not-a-ulid")
        with pytest.raises(NotFound):
            arco.get_run("01ARZ3NDEKTSV4RRFFQ69G5FAV")
        with pytest.raises(BadRequest):
            arco.trigger_run("w.nothing")
    bad = httpx.post(
        f"{api}/runs", json={"selection": "*", "max_concurrency": 0}, headers=flow.headers()
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith(PROBLEM_JSON)


def test_async_client(flow: FlowServer) -> None:
    async def go() -> tuple[str, str, int]:
        token = flow.server.tokens(TENANT, WORKSPACE, ("writer",))
        async with AsyncArcoClient(flow.url, token, timeout=30) as arco:
            accepted = await arco.trigger_run("w.first")
            deadline = time.monotonic() + 60
            while (run := await arco.get_run(accepted["run_id"]))["state"] not in TERMINAL:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            runs = [r async for r in arco.iter_runs(page_size=50)]
            return accepted["run_id"], run["state"], len(runs)

    _, state, count = asyncio.run(go())
    assert state == "SUCCEEDED"
    assert count >= 1


def test_no_project_is_a_404_problem(tmp_path: Path, tokens: Tokens) -> None:
    app = make_app(project_dir=str(tmp_path))
    with in_process_client(app) as client:
        headers = tokens.headers("acme", "main", ("writer",))
        for method, path in (("GET", "/assets"), ("POST", "/plans"), ("POST", "/runs")):
            body = {"selection": "*"} if method == "POST" else None
            answer = client.request(method, f"/api/v1{path}", json=body, headers=headers)
            assert answer.status_code == 404, answer.text
            assert answer.json()["type"] == "urn:arco:problem:no-project"
        # Runs need no project to be listed.
        assert client.get("/api/v1/runs", headers=headers).json() == {
            "runs": [],
            "next_page_token": None,
        }
