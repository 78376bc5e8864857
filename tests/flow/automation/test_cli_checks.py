"""``arco check ASSET`` (checks on their own), check results in ``arco assets show``
and the overdue marker of ``arco assets list``, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from arco.core.storage import ObjectStore
from arco.flow.definitions import load_definitions
from arco.flow.planner import plan
from arco.flow.runner import RunOptions, Scheduler

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


def test_checks_run_on_their_own_and_show_with_the_asset(
    store: ObjectStore, store_url: str, state_dir: Path
) -> None:
    sys.modules.pop("apiassets", None)
    sys.modules.pop("autoassets", None)
    defs = load_definitions("apiassets", path=HERE)
    (state_dir / "blocked_days").write_text("2024-02-02")
    Scheduler(
        store, SCOPE, defs, store_url=store_url, options=RunOptions(register_tables=False)
    ).run(plan(defs, "auto.daily", partitions=["2024-02-01", "2024-02-02"]))

    failing = _arco(
        store_url, state_dir, "--json", "check", "auto.daily", "--partition", "2024-02-02"
    )
    assert failing.returncode == 1, failing.stderr
    got = {r["check"]: r["passed"] for r in json.loads(failing.stdout)["results"]}
    assert got == {"not_blocked": False, "looks_fine": True}

    (state_dir / "blocked_days").write_text("")
    passing = _arco(store_url, state_dir, "check", "auto.daily", "--partition", "2024-02-02")
    assert passing.returncode == 0, passing.stderr
    assert "PASS auto.daily[2024-02-02] not_blocked" in passing.stdout

    shown = _arco(store_url, state_dir, "--json", "assets", "show", "auto.daily")
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    # The newest result of each (partition, check): the standalone pass replaced the
    # run's failure for 2024-02-02.
    latest = {(c["partition"], c["check"]): (c["passed"], c["run_id"]) for c in body["checks"]}
    assert latest[("2024-02-02", "not_blocked")] == (True, None)
    assert latest[("2024-02-01", "not_blocked")][0] is True
    assert latest[("2024-02-01", "not_blocked")][1] is not None  # from the run
    assert {c["name"] for c in body["declared_checks"]} == {"not_blocked", "looks_fine"}
    assert body["materialized_partitions"] == 2
    text = _arco(store_url, state_dir, "assets", "show", "auto.daily")
    assert "PASS not_blocked[2024-02-02]" in text.stdout

    listed = _arco(store_url, state_dir, "--json", "assets", "list")
    rows = {r["key"]: r for r in json.loads(listed.stdout)}
    assert rows["auto.source"]["freshness"] == "overdue"  # never materialized, 60 min policy
    assert rows["auto.daily"]["freshness"] is None
    table = _arco(store_url, state_dir, "assets", "list")
    assert "OVERDUE" in table.stdout

    none = _arco(store_url, state_dir, "check", "auto.source")
    assert none.returncode != 0
    assert "declares no checks" in none.stderr
    assert len(none.stderr.strip().splitlines()) == 1
    missing = _arco(store_url, state_dir, "assets", "show", "auto.nope")
    assert missing.returncode != 0
    assert "no asset named" in missing.stderr
