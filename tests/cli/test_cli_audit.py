"""Writes made by the CLI straight to the store are in the audit trail, like the API's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_cli import cli, js, ok

from arco.core.actor import os_user


def _audit(store: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = js(store, "audit")
    return rows


def test_cli_writes_are_audited_with_actor_target_and_outcome(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    ok(store, "namespace", "create", "sales")
    ok(store, "table", "create", "sales.orders", "-c", "id:bigint")
    refused = cli("--store", store, "table", "create", "nowhere.orders", "-c", "id:bigint")
    assert refused.exit_code == 1

    rows = _audit(store)
    got = [
        (r["action"], r["target"], r["outcome"], json.loads(r["detail_json"])["exit_code"])
        for r in rows
    ]
    assert got == [
        ("cli namespace create", "sales", "ok", "0"),
        ("cli table create", "sales.orders", "ok", "0"),
        ("cli table create", "nowhere.orders", "rejected", "1"),
    ]
    assert {r["actor"] for r in rows} == {os_user()}
    assert all(r["request_id"] and r["tenant"] == "default" for r in rows)


def test_reads_and_dry_runs_are_not_audited(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    ok(store, "namespace", "create", "sales")
    ok(store, "namespace", "list")
    ok(store, "namespace", "show", "sales")
    ok(store, "verify")
    ok(store, "gc", "--dry-run")
    assert [r["action"] for r in _audit(store)] == ["cli namespace create"]


def test_records_land_in_the_scope_written(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    ok(store, "--tenant", "acme", "--workspace", "prod", "namespace", "create", "sales")
    assert _audit(store) == []
    rows = js(store, "--tenant", "acme", "--workspace", "prod", "audit")
    assert [(r["tenant"], r["workspace"], r["action"]) for r in rows] == [
        ("acme", "prod", "cli namespace create")
    ]


def test_a_usage_error_records_nothing_and_creates_no_store(tmp_path: Path) -> None:
    # Raised while the subcommand parses its arguments, inside the root group's
    # invoke (after the global options set ctx.obj): Typer's vendored Click error.
    store_dir = tmp_path / "store"
    missing = cli("--store", f"file://{store_dir}", "table", "create")
    assert missing.exit_code == 2
    bad_option = cli("--store", f"file://{store_dir}", "namespace", "create", "a", "--bogus")
    assert bad_option.exit_code == 2
    assert not store_dir.exists()
