"""The executors package: one module per backend behind one import surface."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import arco.flow.executors as executors
from arco.core.errors import InvalidArgumentError

SRC = Path(__file__).resolve().parents[2] / "src"


def test_importing_the_executors_does_not_import_dask() -> None:
    """dask is the optional arco[dask] extra: only making a DaskExecutor loads it."""
    code = (
        "import sys, arco.flow.executors\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "print(','.join(loaded))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_the_package_names_every_backend() -> None:
    """``from arco.flow.executors import X`` finds each name importers use."""
    for name in executors.__all__:
        assert getattr(executors, name) is not None
    assert isinstance(executors.make_executor("inline"), executors.InlineExecutor)
    assert isinstance(executors.make_executor("process"), executors.ProcessExecutor)
    with pytest.raises(InvalidArgumentError):
        executors.make_executor("threads")


def _job(fn: Any, store_url: str, task_id: str = "t1") -> Any:
    """An attempt's job for the asset function ``fn`` (no inputs, attempt 1)."""
    from arco.flow.executors.base import Job

    return Job(
        run_id="01J00000000000000000000000",
        task_id=task_id,
        asset_key="test.asset",
        partition=None,
        attempt=1,
        module=fn.__module__,
        qualname=fn.__qualname__,
        inputs=(),
        io="auto",
        store_url=store_url,
        tenant="default",
        workspace="default",
        timeout=None,
    )


def test_running_the_same_job_twice_succeeds_both_times(tmp_path: Path) -> None:
    """dask re-runs a finished task whose result died with its worker before the
    scheduler collected it: the same job executes twice. Both executions succeed,
    each value in an object of its own (the first one's is an orphan for gc)."""
    from arco.core.keys import Keys
    from arco.core.scope import Scope
    from arco.core.storage import open_store
    from arco.flow.executors.attempt import execute
    from arco.flow.io import load_value

    orders = importlib.import_module("flowassets").orders  # tests/flow is on sys.path
    url = f"file://{tmp_path}/store"
    job = _job(orders.fn, url)
    first, second = execute(job), execute(job)
    assert first.ok, first.error
    assert second.ok, second.error
    assert first.location != second.location
    keys = Keys(Scope("default", "default"))
    store = open_store(url)
    for outcome in (first, second):
        assert outcome.location is not None
        assert load_value(store, outcome.location, keys).num_rows == outcome.row_count


def test_a_job_dask_runs_again_returns_its_first_outcome_without_running_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dask's re-run of a finished task (its result died with its worker) must not run
    the asset a second time for the same attempt: the recorded outcome is returned."""
    import dataclasses
    import textwrap

    from arco.flow.executors.dask import execute_once

    (tmp_path / "once_assets.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from arco import asset

            CALLS = Path(__file__).with_name("calls.txt")

            @asset(namespace="once")
            def counted() -> dict:
                n = int(CALLS.read_text()) + 1 if CALLS.exists() else 1
                CALLS.write_text(str(n))
                return {"call": n}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    counted = importlib.import_module("once_assets").counted
    job = _job(counted.fn, f"file://{tmp_path}/store", "once.counted[2024-01-01]")
    calls = tmp_path / "calls.txt"
    first = execute_once(job)
    assert first.ok, first.error
    assert execute_once(job) == first
    assert calls.read_text() == "1"
    # The next attempt of the same task is a new execution.
    again = execute_once(dataclasses.replace(job, attempt=2))
    assert again.ok
    assert again.location != first.location
    assert calls.read_text() == "2"
