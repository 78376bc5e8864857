"""``arco dev`` runs the automation daemon: a sensor of the project launches a run,
the dev worker executes it, and the API shows the evaluation with the run's state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

PROJECT = """
from arco import asset
from arco.flow.automation import RunRequest, sensor


@asset(namespace="dd")
def ping() -> int:
    return 1


@sensor(interval_seconds=1, selection="dd.ping")
def once(context):
    return RunRequest(run_key="once")
"""


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            got = None
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_arco_dev_ticks_sensors_and_its_worker_runs_what_they_launch(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "arco.toml").write_text('[project]\nmodule = "ddassets"\n')
    (folder / "ddassets.py").write_text(PROJECT)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    env["ARCO_STORE"] = f"file://{tmp_path / 'store'}"
    out = tmp_path / "dev.log"
    cmd = [sys.executable, "-m", "arco.cli.main", "dev", "--port", str(port), "--no-run"]
    cmd += ["--executor", "inline", "--tick-interval", "1", "--exit-after", "90"]
    with out.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait(lambda: "dev token" in out.read_text(), 60, "arco dev to start")
        text = out.read_text()
        token = next(line.split()[-1] for line in text.splitlines() if "dev token" in line)
        api = f"http://127.0.0.1:{port}/api/v1"
        headers = {"Authorization": f"Bearer {token}"}

        def sensor_run_state() -> str | None:
            got = httpx.get(f"{api}/sensors/once", headers=headers, timeout=10).json()
            runs = [r for h in got["history"] for r in h["runs"]]
            return runs[0]["state"] if runs and runs[0]["state"] == "SUCCEEDED" else None

        _wait(sensor_run_state, 60, "the sensor's run to succeed")
        runs = httpx.get(f"{api}/runs", headers=headers, timeout=10).json()["runs"]
        assert len(runs) == 1  # the run key dedupes later evaluations
        log_text = out.read_text()
        assert "automation: 0 schedule(s), 1 sensor(s)" in log_text
        assert "sensor:once:once" in log_text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
