"""Asset checks: results as events in system.asset_checks; a failed blocking check
skips exactly the downstream of its own partition."""

from __future__ import annotations

import json
from pathlib import Path

from arco.core.storage import ObjectStore
from arco.flow.definitions import Definitions
from arco.flow.planner import plan
from arco.flow.runner import RunOptions, Scheduler
from arco.ledger.compactor import Compactor
from arco.sql.tables import SystemTables

from .conftest import SCOPE


def _run(store: ObjectStore, store_url: str, defs: Definitions, days: list[str]):  # type: ignore[no-untyped-def]
    sched = Scheduler(
        store, SCOPE, defs, store_url=store_url, options=RunOptions(register_tables=False)
    )
    return sched.run(plan(defs, "auto.daily+", partitions=days))


def test_a_blocking_check_skips_the_downstream_of_its_partition_only(
    store: ObjectStore, store_url: str, defs: Definitions, state_dir: Path
) -> None:
    (state_dir / "blocked_days").write_text("2024-02-02")
    result = _run(store, store_url, defs, ["2024-02-01", "2024-02-02"])
    states = {tid: tr.state for tid, tr in result.tasks.items()}
    assert states == {
        "auto.daily[2024-02-01]": "SUCCEEDED",
        "auto.daily_total[2024-02-01]": "SUCCEEDED",
        "auto.daily_report[2024-02-01]": "SUCCEEDED",
        # Materialized, but its blocking check failed: nothing downstream consumes it.
        "auto.daily[2024-02-02]": "SUCCEEDED",
        "auto.daily_total[2024-02-02]": "SKIPPED",
        "auto.daily_report[2024-02-02]": "SKIPPED",
    }
    assert "blocking check not_blocked" in str(result.tasks["auto.daily_total[2024-02-02]"].error)
    assert result.state == "FAILED"
    Compactor(store, SCOPE).compact("executions")
    rows = SystemTables(store, SCOPE).table("asset_checks").to_pylist()
    got = sorted((r["asset"], r["partition"], r["check"], r["passed"]) for r in rows)
    assert got == [
        ("auto.daily", "2024-02-01", "looks_fine", True),
        ("auto.daily", "2024-02-01", "not_blocked", True),
        ("auto.daily", "2024-02-02", "looks_fine", True),
        ("auto.daily", "2024-02-02", "not_blocked", False),
        ("auto.daily_total", "2024-02-01", "has_day", True),  # inline, from Output(...)
    ]
    failed = next(r for r in rows if not r["passed"])
    assert failed["blocking"] is True
    assert failed["severity"] == "error"
    assert json.loads(failed["metadata_json"]) == {"day": "2024-02-02"}
    assert failed["run_id"] == result.run_id


def test_a_check_that_raises_is_a_failed_result_not_a_failed_asset(
    store: ObjectStore, store_url: str, defs: Definitions, state_dir: Path
) -> None:
    (state_dir / "blocked_days").mkdir()  # reading it raises IsADirectoryError
    result = _run(store, store_url, defs, ["2024-02-03"])
    assert result.tasks["auto.daily[2024-02-03]"].state == "SUCCEEDED"
    assert result.tasks["auto.daily_total[2024-02-03]"].state == "SKIPPED"
    Compactor(store, SCOPE).compact("executions")
    rows = SystemTables(store, SCOPE).table("asset_checks").to_pylist()
    failed = [r for r in rows if not r["passed"]]
    assert [r["check"] for r in failed] == ["not_blocked"]
    assert "IsADirectoryError" in failed[0]["error"]
