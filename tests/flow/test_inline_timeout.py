"""The inline executor enforces an asset's ``timeout`` (issue #10 item 13)."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arco import AssetContext, asset
from arco.cli.main import app
from arco.core import Keys, Scope
from arco.core.storage import open_store
from arco.flow.definitions import Definitions
from arco.flow.executors import make_executor
from arco.flow.io import load_value
from arco.flow.planner import plan
from arco.flow.runner import RunOptions, Scheduler, latest_materializations

RELEASE = threading.Event()  # lets an abandoned attempt end when the test is over
SEEN = contextvars.ContextVar("SEEN", default="unset")
calls: list[str] = []


@asset(namespace="t", timeout=0.5)
def stuck(context: AssetContext) -> int:
    calls.append(f"stuck {context.attempt}")
    RELEASE.wait(30)
    return 1


@asset(namespace="t", timeout=30)
def quick(context: AssetContext) -> str:
    context.log.info("ran on %s", threading.current_thread().name)
    return SEEN.get()


@asset(namespace="t")
def reads_quick(quick: str) -> str:
    return quick + "!"


@pytest.fixture(autouse=True)
def _release() -> Iterator[None]:
    RELEASE.clear()
    calls.clear()
    yield
    RELEASE.set()


def _scheduler(tmp_path: Path) -> Scheduler:
    url = f"file://{tmp_path / 'store'}"
    return Scheduler(
        open_store(url),
        Scope("default", "default"),
        Definitions([stuck, quick, reads_quick]),
        store_url=url,
        executor=make_executor("inline"),
        options=RunOptions(register_tables=False),
    )


def test_an_attempt_past_its_timeout_fails(tmp_path: Path) -> None:
    scheduler = _scheduler(tmp_path)
    began = time.monotonic()
    result = scheduler.run(plan(scheduler.defs, "t.stuck"))
    elapsed = time.monotonic() - began
    assert result.state == "FAILED"
    task = result.tasks["t.stuck"]
    assert task.state == "FAILED"
    assert task.error is not None
    assert task.error.startswith("TimeoutError: exceeded 0.5s")
    assert "abandoned" in task.error
    assert elapsed < 10  # not the 30 s the asset would have taken
    assert calls == ["stuck 1"]


def test_an_attempt_within_its_timeout_succeeds_with_its_value(tmp_path: Path) -> None:
    scheduler = _scheduler(tmp_path)
    token = SEEN.set("caller's context")
    try:
        result = scheduler.run(plan(scheduler.defs, "t.quick+"))
    finally:
        SEEN.reset(token)
    assert result.state == "SUCCEEDED", {t: r.error for t, r in result.tasks.items()}
    # The attempt ran on a thread of its own, with the caller's context variables,
    # and its value was stored and handed downstream.
    outcome = result.tasks["t.quick"].outcome
    assert outcome is not None
    assert any("arco-inline t.quick" in line for line in outcome.logs)
    known = latest_materializations(scheduler.store, scheduler.scope)
    value = load_value(scheduler.store, known[("t.reads_quick", None)][1], Keys(scheduler.scope))
    assert value == "caller's context!"


@pytest.mark.parametrize(
    "args",
    [
        ["run", "x", "--executor", "inlined"],
        ["run", "x", "--executor", "process", "--dask-address", "tcp://127.0.0.1:1"],
        ["worker", "--once", "--executor", "nope"],
        ["worker", "--once", "--executor", "inline", "--dask-address", "tcp://127.0.0.1:1"],
        ["runs", "rerun", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--executor", "thread"],
        ["dev", "--executor", "threads"],
    ],
)
def test_an_executor_option_that_would_be_ignored_is_a_usage_error(
    tmp_path: Path, args: list[str]
) -> None:
    """Siblings: a dask address for another executor was silently ignored, and an
    unknown executor name made a worker fail every run it took."""
    result = CliRunner().invoke(app, ["--store", f"file://{tmp_path / 'store'}", *args])
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: --"), lines[0]
    assert not (tmp_path / "store").exists()  # refused before touching anything
