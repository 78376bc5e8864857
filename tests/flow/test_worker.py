"""The run worker: queued runs, one lease per run, fencing, restart-by-fold.

The last test runs two real ``arco worker`` processes on one file store and
SIGKILLs the one that holds the run's lease mid-task: the other resumes the run
from its ledger events, reuses what already succeeded, retries the lost attempt,
and every task succeeds exactly once (checked in ``system.tasks`` and
``system.materializations``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from arco.core import Scope
from arco.core.errors import FencedError, InvalidArgumentError
from arco.core.keys import Keys
from arco.core.storage import ObjectStore, open_store
from arco.flow.definitions import Definitions, load_definitions
from arco.flow.executors import Executor, Handle, InlineExecutor, Job
from arco.flow.planner import plan
from arco.flow.queue import (
    SEQ_SPAN,
    RunLease,
    enqueue,
    load_request,
    queued_runs,
    request_cancel,
)
from arco.flow.runview import RunsReader
from arco.flow.worker import RunWorker, WorkerOptions
from arco.ledger.compactor import Compactor
from arco.sql.tables import SystemTables

HERE = Path(__file__).resolve().parent
SCOPE = Scope("acme", "main")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("ARCO_TEST_STATE", str(state))
    monkeypatch.setenv("ARCO_TEST_SLOW", "1.5")
    monkeypatch.syspath_prepend(str(HERE))
    sys.modules.pop("workerassets", None)
    yield {"ARCO_TEST_STATE": str(state), "ARCO_TEST_SLOW": "1.5", "url": f"file://{tmp_path}/s"}
    sys.modules.pop("workerassets", None)


def _defs() -> Definitions:
    return load_definitions("workerassets", path=HERE)


def _runs(store: ObjectStore, run_id: str) -> tuple[str, dict[str, dict[str, object]]]:
    view = RunsReader(store, SCOPE).view()
    run = view.run(run_id)
    state = str(run["state"]) if run else "NONE"
    return state, {t["task_id"]: t for t in view.tasks_of(run_id)}


def _starts(state_dir: str, name: str) -> list[str]:
    path = Path(state_dir) / name
    lines = path.read_text().splitlines() if path.exists() else []
    return [line for line in lines if line.startswith("start")]


def test_queued_run_is_executed_once_by_a_worker(env: dict[str, str]) -> None:
    os.environ["ARCO_TEST_SLOW"] = "0.05"
    store = open_store(env["url"])
    defs = _defs()
    request = enqueue(store, SCOPE, plan(defs, "+w.fourth"), max_concurrency=2)
    state, tasks = _runs(store, request.run_id)
    assert state == "QUEUED"
    assert tasks == {}
    assert queued_runs(store, SCOPE) == [request.run_id]
    assert load_request(store, SCOPE, request.run_id).plan.fingerprint == request.plan.fingerprint

    worker = RunWorker(store, SCOPE, defs, store_url=env["url"])
    assert worker.poll_once() == [request.run_id]
    assert [r.state for r in worker.results] == ["SUCCEEDED"]
    assert queued_runs(store, SCOPE) == []
    assert worker.poll_once() == []  # nothing left: a second poll does no work

    state, tasks = _runs(store, request.run_id)
    assert state == "SUCCEEDED"
    assert {t: r["state"] for t, r in tasks.items()} == {
        k: "SUCCEEDED" for k in ("w.first", "w.second", "w.third", "w.fourth")
    }
    for name in ("first", "second", "third", "fourth"):
        assert len(_starts(env["ARCO_TEST_STATE"], name)) == 1
    # The worker's events are in the band of its lease token (the first claim: 1).
    seqs = [int(r["seq"]) for r in tasks.values()]
    assert all(SEQ_SPAN <= s < 2 * SEQ_SPAN for s in seqs)
    # The lease is released: the next claim succeeds at once with the next token.
    lease = RunLease.try_claim(store, SCOPE, request.run_id, ttl=5)
    assert lease is not None
    assert lease.token == 2
    lease.release()


def test_a_worker_runs_up_to_max_runs_at_once(env: dict[str, str]) -> None:
    """Each run waits for the other to start: they finish only if run side by side."""
    store = open_store(env["url"])
    defs = _defs()
    requests = [enqueue(store, SCOPE, plan(defs, "w.rendezvous")) for _ in range(2)]
    worker = RunWorker(store, SCOPE, defs, store_url=env["url"], options=WorkerOptions(max_runs=2))
    assert sorted(worker.poll_once()) == sorted(r.run_id for r in requests)
    assert [r.state for r in worker.results] == ["SUCCEEDED", "SUCCEEDED"]
    assert queued_runs(store, SCOPE) == []
    assert len(_starts(env["ARCO_TEST_STATE"], "rendezvous")) == 2
    with pytest.raises(InvalidArgumentError, match="max_runs"):
        WorkerOptions(max_runs=0)


def test_serving_worker_fills_a_freed_slot_without_waiting(env: dict[str, str]) -> None:
    """With two slots, a long run keeps one while later runs pass through the other."""
    os.environ["ARCO_TEST_SLOW"] = "0.05"
    store = open_store(env["url"])
    defs = _defs()
    # Queued first (the queue is in ULID order): a run that waits for a partner.
    long = enqueue(store, SCOPE, plan(defs, "w.rendezvous"))
    quick = [enqueue(store, SCOPE, plan(defs, "w.first")) for _ in range(3)]
    partner = enqueue(store, SCOPE, plan(defs, "w.rendezvous"))
    worker = RunWorker(
        store,
        SCOPE,
        defs,
        store_url=env["url"],
        options=WorkerOptions(max_runs=2, poll_interval=0.05),
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.serve, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while queued_runs(store, SCOPE) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    states = {r.run_id: r.state for r in worker.results}
    every = [long, *quick, partner]
    assert states == {r.run_id: "SUCCEEDED" for r in every}
    # The long run was still waiting while the quick ones went through the other slot.
    finished = [r.run_id for r in worker.results]
    assert finished.index(long.run_id) > max(finished.index(q.run_id) for q in quick)


def test_cancel_of_a_queued_run_needs_no_worker(env: dict[str, str]) -> None:
    store = open_store(env["url"])
    request = enqueue(store, SCOPE, plan(_defs(), "w.first"))
    assert request_cancel(store, SCOPE, request.run_id) == "CANCELLED"
    state, tasks = _runs(store, request.run_id)
    assert state == "CANCELLED"
    assert tasks == {}
    assert queued_runs(store, SCOPE) == []
    assert not Path(env["ARCO_TEST_STATE"], "first").exists()


def test_cancel_marker_stops_a_claimed_queued_run(env: dict[str, str]) -> None:
    """A cancel that finds the lease held leaves a marker; the worker honours it."""
    store = open_store(env["url"])
    defs = _defs()
    request = enqueue(store, SCOPE, plan(defs, "w.first"))
    held = RunLease.try_claim(store, SCOPE, request.run_id, ttl=30)
    assert held is not None
    assert request_cancel(store, SCOPE, request.run_id) == "RUNNING"  # someone holds it
    held.release()
    worker = RunWorker(store, SCOPE, defs, store_url=env["url"])
    assert worker.poll_once() == [request.run_id]
    assert _runs(store, request.run_id)[0] == "CANCELLED"
    assert not Path(env["ARCO_TEST_STATE"], "first").exists()


def test_a_second_claim_waits_for_expiry_and_fences_the_first(env: dict[str, str]) -> None:
    store = open_store(env["url"])
    request = enqueue(store, SCOPE, plan(_defs(), "w.first"))
    first = RunLease.try_claim(store, SCOPE, request.run_id, ttl=1.0)
    assert first is not None
    assert first.valid()
    assert RunLease.try_claim(store, SCOPE, request.run_id, ttl=1.0) is None
    first.renew()  # renewing keeps it ours
    assert RunLease.try_claim(store, SCOPE, request.run_id, ttl=1.0) is None
    time.sleep(1.1)  # no renewal: the lease expires
    second = RunLease.try_claim(store, SCOPE, request.run_id, ttl=5.0)
    assert second is not None
    assert second.token == first.token + 1
    assert not first.valid()
    with pytest.raises(FencedError):
        first.check()
    with pytest.raises(FencedError):
        first.renew()
    second.check()
    second.release()


def test_worker_that_lost_its_lease_writes_nothing_more(env: dict[str, str]) -> None:
    store = open_store(env["url"])
    defs = _defs()
    request = enqueue(store, SCOPE, plan(defs, "+w.fourth"))
    lost = RunLease.try_claim(store, SCOPE, request.run_id, ttl=30)
    assert lost is not None
    lost.lost.set()  # as if a renewal had found the lease taken over
    worker = RunWorker(store, SCOPE, defs, store_url=env["url"])
    result = worker._execute(
        load_request(store, SCOPE, request.run_id), lost, _prior(request.run_id, store)
    )
    assert result is None
    assert _runs(store, request.run_id) == ("QUEUED", {})
    assert queued_runs(store, SCOPE) == [request.run_id]
    lost.lost.clear()
    lost.release()


def _prior(run_id: str, store: ObjectStore) -> object:
    from arco.flow.worker import fold_prior

    return fold_prior(RunsReader(store, SCOPE), run_id)


def _worker(env: dict[str, str], log: Path, executor: str) -> subprocess.Popen[bytes]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    child_env.update(
        {
            "ARCO_TEST_STATE": env["ARCO_TEST_STATE"],
            "ARCO_TEST_SLOW": env["ARCO_TEST_SLOW"],
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "arco.cli.main",
        "--store",
        env["url"],
        "--tenant",
        SCOPE.tenant,
        "--workspace",
        SCOPE.workspace,
        "worker",
        "--module",
        "workerassets",
        "--executor",
        executor,
        "--lease-ttl",
        "2",
        "--poll-interval",
        "0.1",
    ]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env, cwd=HERE)


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_killed_worker_run_is_resumed_by_another_exactly_once(
    env: dict[str, str], tmp_path: Path, executor: str
) -> None:
    """With ``process``, the killed worker's attempt runs on in its orphaned child: its
    result reaches no ledger, so it still counts once (the retry's)."""
    store = open_store(env["url"])
    request = enqueue(store, SCOPE, plan(_defs(), "+w.fourth"))
    run_id = request.run_id
    workers = [_worker(env, tmp_path / f"worker{i}.log", executor) for i in range(2)]
    try:
        # Wait until w.first succeeded and w.second is running (asleep for 1.5 s): its
        # RUNNING event is written ahead, so wait for the asset's own start line too.
        _wait(
            lambda: (
                _runs(store, run_id)[1].get("w.second", {}).get("state") == "RUNNING"
                and len(_starts(env["ARCO_TEST_STATE"], "second")) == 1
            ),
            30,
            "w.second to start",
        )
        data, _ = store.get(Keys(SCOPE).run_lease(run_id))
        pid = int(json.loads(data)["holder"].split(":")[1])
        victim = next(p for p in workers if p.pid == pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        _wait(lambda: _runs(store, run_id)[0] == "SUCCEEDED", 60, "the run to succeed")
        # The survivor dequeues the run once it has compacted and registered tables.
        _wait(lambda: queued_runs(store, SCOPE) == [], 30, "the run to leave the queue")
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    logs = "".join((tmp_path / f"worker{i}.log").read_text() for i in range(2))
    # What ran where: first once (its output was reused), second twice (killed, retried).
    assert len(_starts(env["ARCO_TEST_STATE"], "first")) == 1, logs
    second = _starts(env["ARCO_TEST_STATE"], "second")
    assert len(second) == 2, logs
    if executor == "inline":  # the attempts ran inside the two workers themselves
        assert second[0].split()[2] == str(pid)
        assert second[1].split()[2] != str(pid)
    assert len(_starts(env["ARCO_TEST_STATE"], "third")) == 1
    assert len(_starts(env["ARCO_TEST_STATE"], "fourth")) == 1

    Compactor(store, SCOPE).compact("executions")
    tables = SystemTables(store, SCOPE)
    runs = {r["run_id"]: r for r in tables.table("system.runs").to_pylist()}
    assert runs[run_id]["state"] == "SUCCEEDED"
    tasks = {
        r["task_id"]: r for r in tables.table("system.tasks").to_pylist() if r["run_id"] == run_id
    }
    assert {t: r["state"] for t, r in tasks.items()} == {
        k: "SUCCEEDED" for k in ("w.first", "w.second", "w.third", "w.fourth")
    }
    assert {t: r["attempt"] for t, r in tasks.items()} == {
        "w.first": 1,
        "w.second": 2,
        "w.third": 1,
        "w.fourth": 1,
    }
    mats = [r for r in tables.table("system.materializations").to_pylist() if r["run_id"] == run_id]
    assert sorted(m["task_id"] for m in mats) == ["w.first", "w.fourth", "w.second", "w.third"]
    # The resumed run logged the takeover.
    reader = RunsReader(store, SCOPE)
    lines = [r["line"] for r in reader.logs(reader.view(), run_id)]
    assert any("run resumed by worker" in line for line in lines), lines


def test_arco_dev_runs_queued_runs_in_its_worker_thread(tmp_path: Path) -> None:
    """``arco dev`` in an empty folder: scaffolds the demo, queues its stale run, and
    the worker thread executes that run and one triggered through the API."""
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path / "empty"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    out = tmp_path / "dev.log"
    cmd = [sys.executable, "-m", "arco.cli.main", "dev", "--port", str(port)]
    cmd += ["--executor", "inline", "--exit-after", "90"]
    with out.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait(lambda: "queued run" in out.read_text(), 60, "arco dev to queue the demo run")
        text = out.read_text()
        assert "arco dev ready in" in text
        token = next(line.split()[-1] for line in text.splitlines() if "dev token" in line)
        api = f"http://127.0.0.1:{port}/api/v1"
        headers = {"Authorization": f"Bearer {token}"}

        def runs() -> list[dict[str, object]]:
            return list(httpx.get(f"{api}/runs", headers=headers).json()["runs"])

        _wait(lambda: [r["state"] for r in runs()] == ["SUCCEEDED"], 60, "the demo run")
        assert runs()[0]["task_counts"] == {"SUCCEEDED": 6}
        answer = httpx.post(
            f"{api}/runs", json={"selection": "customer_lifetime_value"}, headers=headers
        )
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        _wait(
            lambda: (
                httpx.get(f"{api}/runs/{run_id}", headers=headers).json()["state"] == "SUCCEEDED"
            ),
            60,
            "the triggered run",
        )
        assets = httpx.get(f"{api}/assets", headers=headers).json()["assets"]
        revenue = next(a for a in assets if a["name"] == "customer_lifetime_value")
        assert revenue["last_materialization"]["run_id"] == run_id
        # The worker reports the run once it has also compacted and registered tables.
        _wait(lambda: f"run {run_id} SUCCEEDED" in out.read_text(), 30, "the worker's report")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


class _Died(BaseException):
    """Stands for the worker process dying while an attempt runs."""


class _DiesOn(InlineExecutor):
    """Runs attempts inline, but "dies" when asked to start ``task_id``."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id

    def start(self, job: Job) -> Handle:
        if job.task_id == self.task_id:
            raise _Died(job.task_id)
        return super().start(job)


def test_lost_attempts_retry_with_one_of_grace_then_fail(env: dict[str, str]) -> None:
    """Restart by fold, in process: w.second (no retries) loses its attempt twice with
    its worker; the first loss is retried (one attempt of grace), the second fails it
    and its downstream is SKIPPED. w.first, which succeeded, never runs again."""
    os.environ["ARCO_TEST_SLOW"] = "0"
    store = open_store(env["url"])
    defs = _defs()
    run_id = enqueue(store, SCOPE, plan(defs, "+w.fourth")).run_id

    def worker(executor: Callable[[], Executor]) -> RunWorker:
        return RunWorker(store, SCOPE, defs, store_url=env["url"], executor=executor)

    for attempt in (1, 2):
        with pytest.raises(_Died):
            worker(lambda: _DiesOn("w.second")).poll_once()
        state, tasks = _runs(store, run_id)
        assert state == "RUNNING"
        assert tasks["w.first"]["state"] == "SUCCEEDED"
        assert (tasks["w.second"]["state"], tasks["w.second"]["attempt"]) == ("RUNNING", attempt)
        # Each owner wrote in the seq band of its own lease token.
        assert tasks["w.second"]["seq"] // SEQ_SPAN == attempt
    # Nothing was compacted yet: the fresh view (snapshot + a read-only fold of the
    # pending ledger objects) must equal what the compactor's own fold then publishes.
    fresh = RunsReader(store, SCOPE).view()
    assert RunsReader(store, SCOPE).view(fresh=False).runs.get(run_id) is None
    Compactor(store, SCOPE).compact("executions")
    compacted = RunsReader(store, SCOPE).view(fresh=False)
    assert compacted.runs[run_id] == fresh.runs[run_id]
    assert compacted.tasks[run_id] == fresh.tasks[run_id]
    survivor = worker(InlineExecutor)
    assert survivor.poll_once() == [run_id]
    assert [r.state for r in survivor.results] == ["FAILED"]
    reader = RunsReader(store, SCOPE)
    state, tasks = _runs(store, run_id)
    assert state == "FAILED"
    assert {t: (r["state"], r["attempt"]) for t, r in tasks.items()} == {
        "w.first": ("SUCCEEDED", 1),
        "w.second": ("FAILED", 2),
        "w.third": ("SKIPPED", 0),
        "w.fourth": ("SKIPPED", 0),
    }
    assert str(tasks["w.second"]["error"]).startswith("WorkerLost:")
    assert len(_starts(env["ARCO_TEST_STATE"], "first")) == 1
    assert not Path(env["ARCO_TEST_STATE"], "second").exists()  # it never got to run
    lines = [r["line"] for r in reader.logs(reader.view(), run_id)]
    assert sum("run resumed by worker" in line for line in lines) == 2
