"""Integrity as a job: ``arco tick --verify`` and the daemon's ``--verify-every``
run ``arco verify`` on a schedule; the result is an exit status and a metric."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from arco.catalog import Catalog
from arco.cli.automation import run_daemon
from arco.core.keys import Keys
from arco.core.storage import ObjectStore
from arco.governance.audit import read_audit

from .conftest import HERE, SCOPE


def _arco(store_url: str, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    env["ARCO_TEST_STATE"] = str(state)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "arco.cli.main", "--store", store_url]
    cmd += ["--tenant", SCOPE.tenant, "--workspace", SCOPE.workspace, *args]
    cmd += ["--module", "apiassets"]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=state, timeout=120, check=False
    )


def test_tick_verify_reports_a_damaged_file_and_exits_1(
    store: ObjectStore, store_url: str, state_dir: Path
) -> None:
    Catalog(store, SCOPE).create_namespace("raw")
    healthy = _arco(store_url, state_dir, "--json", "tick", "--verify")
    assert healthy.returncode == 0, healthy.stderr
    assert json.loads(healthy.stdout)["verify"] == {"ok": True, "problems": []}

    prefix = Keys(SCOPE).root + "snapshots/catalog/"
    damaged = next(m.key for m in store.list(prefix))
    store.put(damaged, b"not parquet", "overwrite")
    broken = _arco(store_url, state_dir, "tick", "--verify")
    assert broken.returncode == 1
    assert damaged in broken.stdout
    # Without --verify a tick does not look at the chains.
    assert _arco(store_url, state_dir, "tick").returncode == 0
    # Each scheduled verify is in the audit trail with its verdict.
    rows = [r for r in read_audit(store, SCOPE) if r["action"] == "automation verify"]
    assert [(r["outcome"], json.loads(r["detail_json"])) for r in rows] == [
        ("ok", {"problems": "0"}),
        ("error", {"problems": "1"}),
    ]


def test_the_daemon_verifies_every_interval_not_every_tick() -> None:
    calls: list[float] = []
    stop = threading.Event()

    class Idle:
        holder = "test"

        def tick(self) -> object:
            if len(ticks) == 5:
                stop.set()
            ticks.append(1)
            return type("Report", (), {"launched": [], "errors": []})()

    ticks: list[int] = []

    def verify() -> list[str]:
        calls.append(1)
        return []

    run_daemon(Idle(), 0.01, stop, verify=verify, verify_every=3600)  # type: ignore[arg-type]
    assert len(ticks) == 6
    assert calls == [1]  # once at start, not again within the hour
