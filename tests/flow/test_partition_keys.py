"""A wrong partition key, or an upstream that was never materialized, is refused
before anything runs (issue #10 item 7): in the planner, the scheduler and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from arco import AssetContext, DailyPartitions, HourlyPartitions, StaticPartitions, asset
from arco.core import InvalidArgumentError, Scope
from arco.core.storage import open_store
from arco.flow.definitions import Definitions
from arco.flow.executors import make_executor
from arco.flow.partitions import MultiPartitions
from arco.flow.planner import Materialization, plan, rerun_plan
from arco.flow.runner import Scheduler
from arco.ledger.compactor import tier2_store

DAYS = DailyPartitions(start="2024-01-01", end="2024-01-08")
HOURS = HourlyPartitions(start="2024-01-01", end="2024-01-08")
REGIONS = StaticPartitions(["eu", "us"])
GRID = MultiPartitions({"region": REGIONS, "date": DAYS})


@asset(namespace="p")
def source() -> int:
    return 1


@asset(namespace="p", partitions=DAYS)
def daily(context: AssetContext, source: int) -> int:
    return source


@asset(namespace="p", partitions=HOURS)
def hourly() -> int:
    return 1


@asset(namespace="p", partitions=DAYS)
def rollup(hourly: dict[str, int]) -> int:
    return len(hourly)


@asset(namespace="p", partitions=REGIONS)
def regional() -> int:
    return 1


@asset(namespace="p", partitions=GRID)
def grid() -> int:
    return 1


DEFS = Definitions([source, daily, hourly, rollup, regional, grid])


@pytest.mark.parametrize(
    ("selection", "kwargs", "says"),
    [
        ("p.daily", {"partitions": ["2024-13-01"]}, "'2024-13-01' is not a daily key like"),
        ("p.daily", {"partitions": ["bogus"]}, "'bogus' is not a daily key like 2024-05-01"),
        ("p.daily", {"partitions": ["2024-01-02", "2024-02-30"]}, "'2024-02-30'"),
        ("p.daily", {"partition_range": ("2024-01-01", "2024-01-99")}, "'2024-01-99'"),
        ("p.daily", {"partition_range": ("2024-01-05", "2024-01-02")}, "reversed"),
        ("p.daily", {"partitions": ["2024-01-08"]}, "outside this asset's daily partitions"),
        ("p.daily", {"partitions": ["2023-12-31"]}, "2024-01-01..2024-01-07"),
        ("p.hourly", {"partitions": ["2024-01-02T10:30"]}, "must be on the hour"),
        ("p.regional", {"partitions": ["asia"]}, "'asia' is not one of ['eu', 'us']"),
        ("p.grid", {"partitions": ["date=2024-01-02"]}, "like 'date=2024-01-01|region=eu'"),
        ("p.grid", {"partitions": ["date=2024-01-02|region=eu|region=us"]}, "once"),
        ("p.grid", {"partitions": ["date=2024-01-02|date=2024-01-03"]}, "once"),
        ("p.grid", {"partitions": ["2024-01-02|eu"]}, "must name each of the dimensions"),
        ("p.grid", {"partitions": ["date=2024-01-32|region=eu"]}, "dimension 'date'"),
        ("p.grid", {"partitions": ["date=2024-01-02|region=mars"]}, "dimension 'region'"),
        # A key that fits one selected asset does not make a backfill of another.
        ("p.daily p.regional", {"partitions": ["2024-01-02"]}, "asset p.regional"),
        # A key for a selection without partitions would be silently ignored.
        ("p.source", {"partitions": ["2024-01-02"]}, "no selected asset is partitioned"),
        ("p.daily", {"partitions": ["2024-01-02"], "partition_range": ("a", "b")}, "not both"),
    ],
)
def test_a_wrong_partition_key_is_refused(
    selection: str, kwargs: dict[str, object], says: str
) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        plan(DEFS, selection, **kwargs)  # type: ignore[arg-type]
    assert says in str(err.value)


def test_keys_that_fit_plan_exactly_those_partitions() -> None:
    one = plan(DEFS, "p.daily", partitions=["2024-01-02"])
    assert [t.task_id for t in one.tasks] == ["p.daily[2024-01-02]"]
    span = plan(DEFS, "p.daily", partition_range=("2024-01-02", "2024-01-04"))
    assert [t.partition for t in span.tasks] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    # Non-canonical spellings of the same keys (zero padding, dimension order).
    assert [t.partition for t in plan(DEFS, "p.daily", partitions=["2024-1-2"]).tasks] == [
        "2024-01-02"
    ]
    multi = plan(
        DEFS, "p.grid", partition_range=("region=eu|date=2024-01-02", "date=2024-01-02|region=us")
    )
    assert [t.partition for t in multi.tasks] == [
        "date=2024-01-02|region=eu",
        "date=2024-01-02|region=us",
    ]
    # A key of the consumer's scheme: its hourly upstream takes the 24 hours it needs.
    both = plan(DEFS, "p.hourly p.rollup", partitions=["2024-01-02"])
    assert len([t for t in both.tasks if t.asset == "p.hourly"]) == 24
    assert [t.task_id for t in both.tasks if t.asset == "p.rollup"] == ["p.rollup[2024-01-02]"]


def test_rerun_of_items_of_several_partition_schemes() -> None:
    items = [("p.daily", "2024-01-02"), ("p.regional", "eu")]
    again = rerun_plan(DEFS, items, "p.daily p.regional")
    assert sorted(t.task_id for t in again.tasks) == ["p.daily[2024-01-02]", "p.regional[eu]"]


# ------------------------------------------------------------ missing upstream
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def test_a_plan_refuses_an_upstream_that_was_never_materialized() -> None:
    with pytest.raises(InvalidArgumentError) as err:
        plan(DEFS, "p.daily", partitions=["2024-01-02"], materializations={})
    message = str(err.value)
    assert "p.daily[2024-01-02] reads p.source" in message
    assert "never been materialized" in message
    assert "'+p.daily'" in message  # the selection that includes it
    # Selecting the upstream too, or having it materialized, is fine.
    assert len(plan(DEFS, "+p.daily", partitions=["2024-01-02"], materializations={}).tasks) == 2
    done = {("p.source", None): Materialization("p.source", None, None, T0)}
    assert len(plan(DEFS, "p.daily", partitions=["2024-01-02"], materializations=done).tasks) == 1
    # Partitioned upstreams: every partition the consumer reads must exist.
    some_hours = {
        ("p.hourly", f"2024-01-02T{h:02d}:00"): Materialization(
            "p.hourly", f"2024-01-02T{h:02d}:00", None, T0
        )
        for h in range(23)
    }
    with pytest.raises(InvalidArgumentError, match=r"reads p\.hourly\[2024-01-02T23:00\]"):
        plan(DEFS, "p.rollup", partitions=["2024-01-02"], materializations=some_hours)


def test_the_scheduler_refuses_before_the_run_exists(tmp_path: Path) -> None:
    """A plan made without materializations (the library path) is checked again by
    the scheduler, before any event: the function is never handed None."""
    store = open_store(f"file://{tmp_path / 'store'}")
    scope = Scope("default", "default")
    scheduler = Scheduler(
        store,
        scope,
        DEFS,
        store_url=f"file://{tmp_path / 'store'}",
        executor=make_executor("inline"),
    )
    with pytest.raises(InvalidArgumentError, match=r"p\.daily\[2024-01-02\] reads p\.source"):
        scheduler.run(plan(DEFS, "p.daily", partitions=["2024-01-02"]))
    assert tier2_store(store, scope, "executions").read().manifest is None
    assert not list(store.list(f"tenant={scope.tenant}/"))  # not one event, nothing queued


# -------------------------------------------------------------------- the CLI
def _arco(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    return subprocess.run(
        [sys.executable, "-m", "arco.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )


def test_cli_refuses_bad_keys_and_missing_upstreams_in_a_fresh_project(tmp_path: Path) -> None:
    name = f"p{uuid.uuid4().hex[:8]}"  # its own module name: no clash in sys.modules
    assert _arco(tmp_path, "init", name).returncode == 0
    proj = tmp_path / name
    asset_key = "analytics.daily_revenue"  # daily, 2024-01-01..2024-01-03, reads raw.orders
    for args in (
        ["--partition", "2024-13-01"],
        ["--partition", "bogus"],
        ["--from", "2024-01-01", "--to", "2024-01-99"],
        ["--partition", "2024-01-02", "--partition", "2024-01-32"],
    ):
        for command in ("plan", "run"):
            extra = ["--executor", "inline"] if command == "run" else []
            out = _arco(proj, command, asset_key, *args, *extra)
            assert out.returncode == 1, (command, args, out.stdout, out.stderr)
            assert out.stdout == ""
            lines = out.stderr.strip().splitlines()
            assert len(lines) == 1, out.stderr
            assert lines[0].startswith("error: partition "), out.stderr
            assert "like 2024-05-01" in lines[0]
            assert "Traceback" not in out.stderr

    # The tester's run: the upstream raw.orders was never materialized.
    out = _arco(proj, "run", asset_key, "--partition", "2024-01-02", "--executor", "inline")
    assert out.returncode == 1
    assert out.stderr.startswith(f"error: {asset_key}[2024-01-02] reads raw.orders"), out.stderr
    assert f"'+{asset_key}'" in out.stderr
    assert "NoneType" not in out.stderr + out.stdout
    runs = _arco(proj, "--json", "runs", "list")
    assert json.loads(runs.stdout) == []  # nothing ran, nothing was recorded

    # What the message suggests works, and then the asset alone runs too.
    out = _arco(
        proj, "--json", "run", f"+{asset_key}", "--partition", "2024-01-02", "--executor", "inline"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tasks"] == {
        "raw.orders": "SUCCEEDED",
        f"{asset_key}[2024-01-02]": "SUCCEEDED",
    }
    out = _arco(
        proj, "--json", "run", asset_key, "--partition", "2024-01-03", "--executor", "inline"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tasks"] == {f"{asset_key}[2024-01-03]": "SUCCEEDED"}
