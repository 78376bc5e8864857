"""CLI surfaces of OpenLineage: ``arco runs list --all``, ``arco lineage show --column``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from arco.cli.main import app
from arco.core import Scope, open_store
from arco.discovery.lineage import ColumnLineage, LineageGraph
from arco.ledger.log import Ledger
from arco.openlineage.ingest import ingest
from arco.openlineage.mapping import OpenLineageConfig

runner = CliRunner()
SCOPE_ENV = ("ARCO_STORE", "ARCO_TENANT", "ARCO_WORKSPACE")
PRODUCER = "https://example.test/cli"


def cli(store: str, *args: str) -> Result:
    """``arco --store STORE ARGS`` in-process, with no ARCO_* variable leaking in."""
    return runner.invoke(app, ["--store", store, *args], env=dict.fromkeys(SCOPE_ENV))


def _event(etype: str, run_id: str, when: str, **extra: Any) -> dict[str, Any]:
    return {
        "eventType": etype,
        "eventTime": when,
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id},
        "job": {"namespace": "dbt", "name": "shop.orders"},
        **extra,
    }


def _col_facet(*pairs: tuple[str, str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for target_col, source, source_col in pairs:
        fields.setdefault(target_col, {"inputFields": []})["inputFields"].append(
            {"namespace": "pg", "name": source, "field": source_col}
        )
    return {"_producer": PRODUCER, "_schemaURL": PRODUCER, "fields": fields}


def test_runs_list_all_and_lineage_show_column(tmp_path: Path) -> None:
    store_url = f"file://{tmp_path / 'store'}"
    scope = Scope("default", "default")
    ledger = Ledger(open_store(store_url), scope)
    mapper = OpenLineageConfig().mapper(scope)
    run_id = str(uuid.uuid4())
    # raw.orders.amount -> stg.orders.amount -> mart.revenue.total: two hops of column edges.
    events = [
        _event("START", run_id, "2026-03-01T10:00:00Z"),
        _event(
            "COMPLETE",
            run_id,
            "2026-03-01T10:00:03Z",
            inputs=[{"namespace": "pg", "name": "raw.orders"}],
            outputs=[
                {
                    "namespace": "pg",
                    "name": "stg.orders",
                    "facets": {"columnLineage": _col_facet(("amount", "raw.orders", "amount"))},
                }
            ],
        ),
        _event(
            "FAIL",
            str(uuid.uuid4()),
            "2026-03-01T11:00:00Z",
            inputs=[{"namespace": "pg", "name": "stg.orders"}],
            outputs=[
                {
                    "namespace": "pg",
                    "name": "mart.revenue",
                    "facets": {
                        "columnLineage": _col_facet(
                            ("total", "stg.orders", "amount"), ("day", "stg.orders", "ordered_at")
                        )
                    },
                }
            ],
        ),
    ]
    ingest(ledger, events, mapper)
    assert cli(store_url, "compact").exit_code == 0

    result = cli(store_url, "--json", "runs", "list", "--all")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert {(r["run_id"], r["state"], r["source"]) for r in runs} >= {
        (run_id, "COMPLETE", "openlineage")
    }
    assert sorted(r["state"] for r in runs) == ["COMPLETE", "FAIL"]
    # Without --all only Arco's own runs (none here).
    assert json.loads(cli(store_url, "--json", "runs", "list").stdout) == []

    result = cli(store_url, "lineage", "show", "mart.revenue", "--column", "total")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "mart.revenue.total",
        "  <- stg.orders.amount  (depth 1)",
        "    <- raw.orders.amount  (depth 2)",
    ]
    down = json.loads(
        cli(
            store_url, "--json", "lineage", "show", "raw.orders", "-c", "amount", "--downstream"
        ).stdout
    )
    assert [(n["table"], n["column"], n["depth"]) for n in down["nodes"]] == [
        ("stg.orders", "amount", 1),
        ("mart.revenue", "total", 2),
    ]
    one_hop = cli(store_url, "lineage", "show", "mart.revenue", "-c", "total", "--depth", "1")
    assert "raw.orders" not in one_hop.stdout

    # A declared column edge joins the observed ones, and bad input is a one-line error.
    cols = ColumnLineage(LineageGraph(open_store(store_url), scope))
    cols.add("legacy.orders", "amt", "raw.orders", "amount", transformation="rename")
    up = json.loads(
        cli(store_url, "--json", "lineage", "show", "mart.revenue", "-c", "total").stdout
    )
    assert ("legacy.orders", "amt", 3) in {
        (n["table"], n["column"], n["depth"]) for n in up["nodes"]
    }
    bad = cli(store_url, "lineage", "show", "../etc", "--column", "x")
    assert bad.exit_code != 0
    assert "error" in bad.stderr.lower()
