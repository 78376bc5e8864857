"""Asset status in one place (``arco.flow.status``): the runner, the runs view, the
CLI and the API read the same latest materializations, call the same assets stale
and check plan requests alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from arco.core import Scope
from arco.core.errors import InvalidArgumentError
from arco.core.storage import ObjectStore, open_store
from arco.flow.definitions import Definitions, load_definitions
from arco.flow.executors import make_executor
from arco.flow.planner import plan
from arco.flow.runner import RunOptions, Scheduler, latest_materializations
from arco.flow.runview import RunsReader
from arco.flow.status import PlanRequest, asset_statuses, latest_rows, plan_request
from arco.ledger.compactor import Compactor, tier2_store

HERE = Path(__file__).resolve().parent
SCOPE = Scope("default", "default")  # the CLI's scope without --tenant/--workspace
MODULE = "statusassets"
runner = CliRunner()


def _defs() -> Definitions:
    return load_definitions(MODULE, path=HERE)


def _run_uncompacted(url: str, selection: str) -> ObjectStore:
    """Run ``selection`` inline and leave its events in the ledger (no compaction)."""
    store = open_store(url)
    defs = _defs()
    scheduler = Scheduler(
        store,
        SCOPE,
        defs,
        store_url=url,
        executor=make_executor("inline"),
        options=RunOptions(compact_after=False, register_tables=False),
    )
    assert scheduler.run(plan(defs, selection)).state == "SUCCEEDED"
    return store


def cli(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> Result:
    """``arco --store URL ARGS --module statusassets`` in-process, from tests/flow."""
    from arco.cli.main import app

    monkeypatch.chdir(HERE)
    env = dict.fromkeys(("ARCO_STORE", "ARCO_TENANT", "ARCO_WORKSPACE"))
    return runner.invoke(app, ["--store", url, *args, "--module", MODULE], env=env)


def _json(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


# ------------------------------------------------------------------ latest


def test_latest_rows_of_the_runner_and_the_runs_view_are_one(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = _run_uncompacted(url, "s.up s.down")
    reader = RunsReader(store, SCOPE)
    pending = reader.latest(reader.view())
    assert set(pending) == {("s.up", None), ("s.down", None)}
    # The runner reads the compacted state only: nothing is compacted yet.
    assert latest_materializations(store, SCOPE) == {}
    Compactor(store, SCOPE).compact("executions")
    compacted = latest_materializations(store, SCOPE)
    again = reader.latest(reader.view())
    assert again == latest_rows(tier2_store(store, SCOPE, "executions"))
    for key, row in again.items():
        mat, location = compacted[key]
        assert (mat.run_id, mat.recorded_at, location) == (
            row["run_id"],
            row["recorded_at"],
            row["location"],
        )
        assert pending[key]["materialization_id"] == row["materialization_id"]


def test_the_newest_of_equal_times_is_the_higher_materialization_id(tmp_path: Path) -> None:
    store = open_store(f"memory://{tmp_path.name}-ties")
    at = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {"materialization_id": mid, "asset": "s.up", "partition": None, "run_id": mid}
        | {"location": None, "row_count": 1, "code_version": "1", "recorded_at": at}
        for mid in ("01B", "01C", "01A")
    ]
    latest = latest_rows(tier2_store(store, SCOPE, "executions"), rows)
    assert latest[("s.up", None)]["materialization_id"] == "01C"


# ------------------------------------------------------------------ staleness


def test_staleness_is_that_of_a_stale_plan_of_the_whole_project(tmp_path: Path) -> None:
    store = _run_uncompacted(f"file://{tmp_path / 'store'}", "s.up")
    reader = RunsReader(store, SCOPE)
    statuses = asset_statuses(_defs(), reader.latest(reader.view()))
    assert statuses["s.up"].stale_reasons == []
    assert statuses["s.up"].materialized_partitions == 1
    # s.down never ran: stale, and s.up (up to date) does not make it "upstream in plan".
    assert statuses["s.down"].stale_reasons == ["never materialized"]
    assert statuses["s.daily"].materialized_partitions == 0
    assert statuses["s.daily"].last is None
    stale = plan_request(_defs(), PlanRequest("*", stale_only=True), reader)
    assert {t.asset for t in stale.tasks} == {k for k, s in statuses.items() if s.stale}


def test_cli_assets_show_agrees_with_assets_list_before_anything_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``assets show`` of a consumer whose upstream never ran used to plan the asset
    alone and fail with the planner's missing-upstream error; it now says what
    ``assets list`` says."""
    url = f"file://{tmp_path / 'store'}"
    listed = {a["key"]: a for a in _json(cli(monkeypatch, url, "--json", "assets", "list"))}
    shown = _json(cli(monkeypatch, url, "--json", "assets", "show", "s.down"))
    assert shown["stale"] is listed["s.down"]["stale"] is True
    assert shown["why"] == listed["s.down"]["why"] == ["never materialized"]
    assert shown["last_materialized"] is None


def test_cli_assets_see_materializations_not_compacted_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like ``GET /assets`` (and ``arco plan``, which compacts first), ``arco assets``
    counts what the ledger recorded before the compactor folded it."""
    url = f"file://{tmp_path / 'store'}"
    store = _run_uncompacted(url, "s.up")
    listed = {a["key"]: a for a in _json(cli(monkeypatch, url, "--json", "assets", "list"))}
    assert listed["s.up"]["stale"] is False
    assert listed["s.up"]["last_materialized"] is not None
    shown = _json(cli(monkeypatch, url, "--json", "assets", "show", "s.up"))
    reader = RunsReader(store, SCOPE)
    row = reader.latest(reader.view())[("s.up", None)]
    assert shown["last_run_id"] == row["run_id"]
    assert shown["materialized_partitions"] == 1
    assert shown["last_materialized"] == listed["s.up"]["last_materialized"]
    stale_plan = _json(cli(monkeypatch, url, "--json", "plan", "*", "--stale-only"))
    assert {t["asset"] for t in stale_plan["tasks"]} == {"s.down", "s.daily"}


# ------------------------------------------------------------------ plan requests


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (PlanRequest("s.daily", ("2024-01-02",), "2024-01-01", "2024-01-03"), "not both"),
        (PlanRequest("s.daily", start="2024-01-01"), "go together"),
        (PlanRequest("s.daily", end="2024-01-03"), "go together"),
    ],
)
def test_a_plan_request_is_checked_before_anything_is_read(
    request_: PlanRequest, says: str
) -> None:
    class Unread:
        def latest(self, view: Any) -> Any:
            raise AssertionError("read before the request was checked")

        def view(self) -> Any:
            raise AssertionError("read before the request was checked")

    with pytest.raises(InvalidArgumentError, match=says):
        plan_request(_defs(), request_, Unread())  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["plan", "run"])
def test_cli_refuses_partitions_with_a_range_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """``--partition`` with ``--from``/``--to`` is a usage error (exit 2) like the API's
    400, checked before the project is loaded or anything is compacted."""
    url = f"file://{tmp_path / 'store'}"
    args = ["--partition", "2024-01-02", "--from", "2024-01-01", "--to", "2024-01-03"]
    result = cli(monkeypatch, url, command, "s.daily", *args)
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: give partitions, or a 'from'/'to' range, not both"
    ]
    assert not (tmp_path / "store").exists()  # nothing compacted, nothing run
    alone = cli(monkeypatch, url, command, "s.daily", "--from", "2024-01-01")
    assert alone.exit_code == 2
    assert alone.stderr.splitlines() == ["error: 'from' and 'to' go together"]
