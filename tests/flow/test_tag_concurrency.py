"""Per-tag concurrency limits: tasks whose assets carry a limited tag never overlap
beyond the limit, while the global limit still lets other tasks run side by side.

Overlap is judged from the start/end times each attempt recorded itself (in the
child process that ran it) and from the run's ``system.tasks`` timestamps.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from arco.core import Scope
from arco.core.storage import open_store
from arco.flow.definitions import load_definitions
from arco.flow.executors import ProcessExecutor
from arco.flow.planner import plan
from arco.flow.runner import RunOptions, Scheduler
from arco.sql.tables import SystemTables

HERE = Path(__file__).resolve().parent
SCOPE = Scope("default", "default")
DB = {"db_a", "db_b", "db_c", "db_d"}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "state"
    folder.mkdir()
    monkeypatch.setenv("ARCO_TEST_STATE", str(folder))
    monkeypatch.syspath_prepend(str(HERE))
    sys.modules.pop("tagassets", None)
    yield folder
    sys.modules.pop("tagassets", None)


def _intervals(folder: Path) -> dict[str, tuple[float, float]]:
    out = {}
    for line in (folder / "intervals").read_text().splitlines():
        name, start, end = line.split()
        out[name] = (float(start), float(end))
    return out


def _overlaps(spans: list[tuple[float, float]]) -> int:
    """How many pairs of spans overlap in time."""
    n = 0
    for i, (s1, e1) in enumerate(spans):
        for s2, e2 in spans[i + 1 :]:
            if s1 < e2 and s2 < e1:
                n += 1
    return n


def test_tag_limit_serialises_tagged_tasks_only(state: Path, tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    store = open_store(url)
    defs = load_definitions("tagassets", path=HERE)
    executor = ProcessExecutor()
    try:
        scheduler = Scheduler(
            store,
            SCOPE,
            defs,
            store_url=url,
            executor=executor,
            options=RunOptions(max_concurrency=4, tag_concurrency={"db": 1}),
        )
        result = scheduler.run(plan(defs, "*"))
    finally:
        executor.close()
    assert result.state == "SUCCEEDED"
    spans = _intervals(state)
    assert set(spans) == DB | {"free_a", "free_b", "free_c", "free_d"}
    # Never two "db" tasks at once, whatever the tag's value ...
    assert _overlaps([spans[n] for n in DB]) == 0
    # ... while the global limit of 4 let untagged ones run side by side.
    assert _overlaps([v for k, v in spans.items() if k not in DB]) > 0
    # The run's own record agrees: RUNNING..terminal windows of db tasks are disjoint.
    tasks = [
        r
        for r in SystemTables(store, SCOPE).table("system.tasks").to_pylist()
        if r["run_id"] == result.run_id and r["asset"].split(".")[-1] in DB
    ]
    assert len(tasks) == 4
    windows = sorted((t["started_at"], t["finished_at"]) for t in tasks)
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start >= end


def test_without_a_tag_limit_tagged_tasks_overlap(state: Path, tmp_path: Path) -> None:
    """The control: the same run with no tag limit does overlap "db" tasks."""
    url = f"file://{tmp_path}/store"
    defs = load_definitions("tagassets", path=HERE)
    executor = ProcessExecutor()
    try:
        result = Scheduler(
            open_store(url),
            SCOPE,
            defs,
            store_url=url,
            executor=executor,
            options=RunOptions(max_concurrency=4),
        ).run(plan(defs, "tag:db"))
    finally:
        executor.close()
    assert result.state == "SUCCEEDED"
    assert _overlaps(list(_intervals(state).values())) > 0


def _arco(tmp_path: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    env["ARCO_TEST_STATE"] = str(state)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "arco.cli.main", "--store", f"file://{tmp_path}/store", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_cli_tag_limit(state: Path, tmp_path: Path) -> None:
    done = _arco(
        tmp_path,
        state,
        "--json",
        "run",
        "tag:db",
        "--module",
        "tagassets",
        "--max-concurrency",
        "4",
        "--tag-limit",
        "db=1",
    )
    assert done.returncode == 0, done.stderr
    assert _overlaps(list(_intervals(state).values())) == 0
    bad = _arco(tmp_path, state, "run", "*", "--module", "tagassets", "--tag-limit", "db")
    assert bad.returncode == 2
    assert "TAG=N" in bad.stderr
