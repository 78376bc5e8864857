"""The ``arco`` command line: lifecycle of every command, JSON output, errors, scopes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from arco.cli.main import app

SCOPE_ENV = ("ARCO_STORE", "ARCO_TENANT", "ARCO_WORKSPACE")

runner = CliRunner()


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str | None]:
    env: dict[str, str | None] = dict.fromkeys(SCOPE_ENV)
    env.update(extra or {})
    return env


def cli(*args: str, env: Mapping[str, str] | None = None) -> Result:
    """Invoke the app in-process, with no ARCO_* variable leaking in from outside."""
    return runner.invoke(app, list(args), env=_clean_env(env))


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh file:// store URL."""
    return f"file://{tmp_path / 'store'}"


def ok(store: str, *args: str, env: Mapping[str, str] | None = None) -> Result:
    """Run ``arco --store STORE ARGS`` and require success."""
    result = cli("--store", store, *args, env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stderr == ""
    return result


def js(store: str, *args: str, env: Mapping[str, str] | None = None) -> Any:
    """Run ``arco --store STORE --json ARGS`` and parse its output."""
    return json.loads(ok(store, "--json", *args, env=env).stdout)


def assert_user_error(result: Result, code: int = 1, contains: str = "") -> str:
    """Exactly one ``error:`` line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert contains.lower() in lines[0].lower()
    return lines[0]


def make_orders(store: str) -> None:
    ok(store, "namespace", "create", "raw")
    ok(
        store,
        "table",
        "create",
        "raw.orders",
        "--column",
        "id:long:not-null",
        "-c",
        "amount:decimal(12,2)",
        "-c",
        "ordered_at:timestamp[us, UTC]",
        "-c",
        "tags:list<string>",
        "-c",
        "customer:struct<name: string, age: int32>",
    )


# --------------------------------------------------------------------- namespaces
def test_namespace_lifecycle(store: str) -> None:
    out = ok(store, "namespace", "create", "raw", "-d", "Landing zone", "-p", "owner=data").stdout
    assert "Created namespace raw" in out
    created = js(store, "namespace", "create", "raw.events", "--property", "a=b=c")
    assert created["name"] == "raw.events"
    assert created["properties"] == {"a": "b=c"}
    ok(store, "namespace", "create", "analytics")

    listing = ok(store, "namespace", "list").stdout
    for name in ("raw", "raw.events", "analytics", "Landing zone", "owner=data"):
        assert name in listing
    names = [ns["name"] for ns in js(store, "namespace", "list")]
    assert names == ["analytics", "raw", "raw.events"]
    assert [ns["name"] for ns in js(store, "namespace", "list", "--prefix", "raw")] == [
        "raw",
        "raw.events",
    ]

    shown = js(store, "namespace", "show", "raw")
    assert shown["description"] == "Landing zone"
    assert shown["properties"] == {"owner": "data"}
    assert {"id", "name", "created_at", "updated_at"} <= set(shown)
    human = ok(store, "namespace", "show", "raw").stdout
    assert "Landing zone" in human
    assert "owner" in human

    assert "Dropped namespace raw.events" in ok(store, "namespace", "drop", "raw.events").stdout
    dropped = js(store, "namespace", "drop", "analytics")
    assert dropped == {"dropped": "namespace", "name": "analytics", "cascade": False}
    assert [ns["name"] for ns in js(store, "namespace", "list")] == ["raw"]


def test_namespace_drop_cascade(store: str) -> None:
    make_orders(store)
    ok(store, "namespace", "create", "raw.nested")
    assert_user_error(cli("--store", store, "namespace", "drop", "raw"), contains="not empty")
    assert "cascade" in ok(store, "namespace", "drop", "raw", "--cascade").stdout
    assert js(store, "namespace", "list") == []
    assert js(store, "table", "list") == []


def test_empty_listings(store: str) -> None:
    assert js(store, "namespace", "list") == []
    assert js(store, "table", "list") == []
    assert "No namespaces" in ok(store, "namespace", "list").stdout
    assert "No tables" in ok(store, "table", "list").stdout


# ------------------------------------------------------------------------- tables
def test_table_create_and_show(store: str) -> None:
    ok(store, "namespace", "create", "raw")
    out = ok(
        store,
        "table",
        "create",
        "raw.orders",
        "-c",
        "id:long:not-null",
        "-c",
        "amount:decimal(12,2)",
        "-c",
        "ordered_at:timestamp[us, UTC]",
        "--format",
        "delta",
        "--location",
        "s3://lake/orders",
        "--description",
        "All orders",
        "--property",
        "owner=sales",
    ).stdout
    assert "Created table raw.orders (3 columns)" in out
    assert "decimal(12,2)" in out

    table = js(store, "table", "show", "raw.orders")
    assert table["namespace"] == "raw"
    assert table["name"] == "orders"
    assert table["format"] == "delta"
    assert table["location"] == "s3://lake/orders"
    assert table["description"] == "All orders"
    assert table["properties"] == {"owner": "sales"}
    assert [(c["name"], c["type"], c["nullable"]) for c in table["columns"]] == [
        ("id", "int64", False),
        ("amount", "decimal(12,2)", True),
        ("ordered_at", "timestamp[us, UTC]", True),
    ]

    human = ok(store, "table", "show", "raw.orders").stdout
    for text in ("raw.orders", "int64", "decimal(12,2)", "timestamp[us, UTC]", "owner", "sales"):
        assert text in human
    assert "Nullable" in human


def test_table_create_json_and_list(store: str) -> None:
    ok(store, "namespace", "create", "raw")
    ok(store, "namespace", "create", "analytics")
    created = js(store, "table", "create", "raw.events", "-c", "payload:struct<a: int32>")
    assert created["columns"][0]["type"] == "struct<a: int32>"
    js(store, "table", "create", "analytics.daily", "-c", "day:date", "-c", "n:bigint")
    assert [t["name"] for t in js(store, "table", "list")] == ["daily", "events"]
    assert [t["name"] for t in js(store, "table", "list", "raw")] == ["events"]
    listing = ok(store, "table", "list").stdout
    assert "analytics.daily" in listing
    assert "raw.events" in listing
    assert_user_error(cli("--store", store, "table", "list", "nope"), contains="nope")


def test_table_column_changes_and_set(store: str) -> None:
    make_orders(store)
    out = ok(store, "table", "add-column", "raw.orders", "note:string:not-null").stdout
    assert "note" in out
    table = js(store, "table", "show", "raw.orders")
    assert table["columns"][-1] == {**table["columns"][-1], "name": "note", "nullable": False}
    assert table["schema_version"] == 2

    table = js(store, "table", "drop-column", "raw.orders", "tags")
    assert "tags" not in [c["name"] for c in table["columns"]]
    table = js(store, "table", "rename-column", "raw.orders", "amount", "total")
    assert [c["name"] for c in table["columns"]] == [
        "id",
        "total",
        "ordered_at",
        "customer",
        "note",
    ]

    table = js(
        store, "table", "set", "raw.orders", "-d", "Orders", "-p", "a=1", "--property", "b=2"
    )
    assert table["description"] == "Orders"
    assert table["properties"] == {"a": "1", "b": "2"}
    table = js(store, "table", "set", "raw.orders", "--unset-property", "a")
    assert table["properties"] == {"b": "2"}
    assert table["description"] == "Orders"
    assert "Updated table raw.orders" in ok(store, "table", "set", "raw.orders", "-d", "").stdout
    assert js(store, "table", "show", "raw.orders")["description"] is None

    assert_user_error(
        cli("--store", store, "table", "drop-column", "raw.orders", "ghost"), contains="ghost"
    )
    assert_user_error(
        cli("--store", store, "table", "add-column", "raw.orders", "id:int"),
        contains="already exists",
    )
    assert_user_error(
        cli("--store", store, "table", "rename-column", "raw.orders", "id", "../x"),
        contains="..",
    )


def test_table_rename_and_move(store: str) -> None:
    make_orders(store)
    ok(store, "namespace", "create", "archive")
    out = ok(store, "table", "rename", "raw.orders", "purchases").stdout
    assert "raw.purchases" in out
    moved = js(store, "table", "rename", "raw.purchases", "archive.orders_2023")
    assert (moved["namespace"], moved["name"]) == ("archive", "orders_2023")
    assert js(store, "table", "list", "raw") == []
    assert len(moved["columns"]) == 5
    assert_user_error(
        cli("--store", store, "table", "rename", "archive.orders_2023", "missing.x"),
        contains="missing",
    )


def test_table_drop(store: str) -> None:
    make_orders(store)
    assert "Dropped table raw.orders" in ok(store, "table", "drop", "raw.orders").stdout
    assert js(store, "table", "list") == []
    assert_user_error(cli("--store", store, "table", "drop", "raw.orders"), contains="not exist")
    # A dropped namespace is now empty and can go without --cascade.
    ok(store, "namespace", "drop", "raw")


def test_rich_markup_in_user_text_is_printed_literally(store: str) -> None:
    ok(store, "namespace", "create", "raw", "-d", "[bold red]not markup[/]")
    assert "[bold red]not markup[/]" in ok(store, "namespace", "list").stdout


# ------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (["table", "create", "missing.t", "-c", "a:int"], "missing"),
        (["table", "create", "raw.t", "-c", "a:foo"], "foo"),
        (["table", "create", "raw.orders", "-c", "a:int"], "already exists"),
        (["table", "create", "raw.t", "-c", "nocolon"], "NAME:TYPE"),
        (["table", "create", "raw.t", "-c", "a:int", "-c", "A:int"], "duplicate"),
        (["table", "create", "raw.t", "--format", "excel"], "format"),
        (["table", "create", "orders", "-c", "a:int"], "qualified"),
        (["table", "create", "../x.t", "-c", "a:int"], ".."),
        (["table", "create", "raw.t", "-c", "../x:int"], ".."),
        (["table", "create", "raw/../x.t", "-c", "a:int"], ".."),
        (["table", "create", "raw.t%2e", "-c", "a:int"], "percent"),
        (["table", "show", "raw.nope"], "does not exist"),
        (["table", "show", "raw..orders"], "empty"),
        (["namespace", "create", "raw"], "already exists"),
        (["namespace", "create", "../x"], ".."),
        (["namespace", "create", "/etc"], "absolute"),
        (["namespace", "create", "a.b"], "parent"),
        (["namespace", "show", "ghost"], "does not exist"),
        (["namespace", "drop", "raw"], "not empty"),
        (["namespace", "create", "x", "-p", "=v"], "KEY=VALUE"),
        (["--tenant", "../evil", "namespace", "list"], "tenant"),
        (["--workspace", "UPPER", "namespace", "list"], "workspace"),
        (["log", "--domain", "assets"], "unknown domain"),
    ],
)
def test_user_errors_are_one_line(store: str, args: list[str], contains: str) -> None:
    make_orders(store)
    code = 2 if "KEY=VALUE" in contains else 1
    assert_user_error(cli("--store", store, *args), code=code, contains=contains)


def test_bad_store_url_is_a_user_error(tmp_path: Path) -> None:
    assert_user_error(cli("--store", "ftp://x", "namespace", "list"), contains="scheme")
    assert_user_error(cli("--store", "file://", "namespace", "list"), contains="path")
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    assert_user_error(
        cli("--store", f"file://{a_file}", "namespace", "list"), contains="cannot open store"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["table"],
        ["table", "create"],
        ["table", "show"],
        ["table", "rename", "raw.orders"],
        ["namespace", "create", "x", "--bogus"],
        ["log", "--limit", "0"],
        ["log", "--limit", "many"],
        ["gc", "--grace", "-1"],
        ["namespace", "list", "--tenant", "x"],  # global options other than --json go first
    ],
)
def test_usage_errors_exit_2(store: str, args: list[str]) -> None:
    result = cli("--store", store, *args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


def test_property_without_equals_is_a_usage_error(store: str) -> None:
    ok(store, "namespace", "create", "raw")
    line = assert_user_error(
        cli("--store", store, "namespace", "create", "x", "--property", "owner"), code=2
    )
    assert "owner" in line
    assert_user_error(cli("--store", store, "table", "set", "raw.t", "-p", "k"), code=2)
    assert js(store, "namespace", "list")[0]["name"] == "raw"


def test_table_set_needs_something_to_change(store: str) -> None:
    make_orders(store)
    assert_user_error(cli("--store", store, "table", "set", "raw.orders"), code=2)


def test_help() -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("namespace", "table", "verify", "gc", "log"):
        assert command in result.stdout
    result = cli("table", "--help")
    assert result.exit_code == 0
    for command in ("add-column", "drop-column", "rename-column", "set", "rename"):
        assert command in result.stdout


# ---------------------------------------------------------------- scope and env
def test_env_vars_choose_store_and_scope(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'envstore'}"
    a = {"ARCO_STORE": url, "ARCO_TENANT": "acme", "ARCO_WORKSPACE": "dev"}
    b = {"ARCO_STORE": url, "ARCO_TENANT": "globex", "ARCO_WORKSPACE": "dev"}

    result = cli("namespace", "create", "raw", env=a)
    assert result.exit_code == 0, result.stderr
    result = cli("table", "create", "raw.secret", "-c", "x:int", env=a)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "envstore" / "tenant=acme" / "workspace=dev").is_dir()

    seen_by_a = json.loads(cli("--json", "table", "list", env=a).stdout)
    assert [t["name"] for t in seen_by_a] == ["secret"]
    seen_by_b = cli("--json", "table", "list", env=b)
    assert seen_by_b.exit_code == 0
    assert json.loads(seen_by_b.stdout) == []
    assert_user_error(cli("table", "show", "raw.secret", env=b), contains="does not exist")
    # Another workspace of the same tenant is isolated too.
    other_ws = {**a, "ARCO_WORKSPACE": "prod"}
    assert json.loads(cli("--json", "namespace", "list", env=other_ws).stdout) == []
    # Options win over the environment.
    flagged = cli("--json", "--tenant", "acme", "--workspace", "dev", "table", "list", env=b)
    assert [t["name"] for t in json.loads(flagged.stdout)] == ["secret"]


def test_tenant_option_isolates(store: str) -> None:
    ok(store, "--tenant", "a", "namespace", "create", "raw")
    ok(store, "--tenant", "a", "table", "create", "raw.t", "-c", "x:int")
    assert js(store, "--tenant", "b", "table", "list") == []
    assert js(store, "--tenant", "b", "namespace", "list") == []
    ok(store, "--tenant", "b", "namespace", "create", "raw")
    assert js(store, "--tenant", "b", "table", "list", "raw") == []
    assert [t["name"] for t in js(store, "--tenant", "a", "table", "list", "raw")] == ["t"]


# ----------------------------------------------------------- verify, gc and log
def _store_dir(store: str) -> Path:
    return Path(store.removeprefix("file://"))


def test_verify_ok_and_corrupt(store: str) -> None:
    make_orders(store)
    out = ok(store, "verify").stdout
    assert out.startswith("OK")
    assert len(out.splitlines()) == 1
    report = js(store, "verify")
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["manifests_checked"] == 2
    assert report["files_checked"] >= 2

    victim = next((_store_dir(store) / "tenant=default").rglob("*.parquet"))
    victim.write_bytes(victim.read_bytes() + b"tampered")
    result = cli("--store", store, "verify")
    assert result.exit_code == 1
    assert "Traceback" not in result.stdout + result.stderr
    problems = result.stdout.splitlines()
    assert problems
    assert all(": " in line for line in problems)
    assert any(line.startswith("tenant=default/") and victim.name in line for line in problems)

    result = cli("--store", store, "--json", "verify")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert any(victim.name in p["key"] for p in report["problems"])


def test_gc(store: str) -> None:
    make_orders(store)
    orphan_dir = (
        _store_dir(store) / "tenant=default" / "workspace=default" / "snapshots" / "catalog"
    )
    orphan = orphan_dir / "00000000000000000099-ORPHAN-tables.L0.parquet"
    orphan.write_bytes(b"x" * 100)

    kept = js(store, "gc")  # default grace of an hour: the fresh orphan stays
    assert kept["deleted"] == []
    assert kept["kept"] > 0
    dry = js(store, "gc", "--dry-run", "--grace", "0")
    assert dry["dry_run"] is True
    assert [Path(k).name for k in dry["deleted"]] == [orphan.name]
    assert dry["bytes_freed"] == 100
    assert orphan.exists()

    out = ok(store, "gc", "--grace", "0").stdout
    assert "Deleted 1 unreferenced objects (100 bytes)" in out
    assert not orphan.exists()
    assert js(store, "verify")["ok"] is True
    assert js(store, "table", "show", "raw.orders")["name"] == "orders"


def test_log(store: str) -> None:
    make_orders(store)
    ok(store, "table", "rename", "raw.orders", "purchases")
    history = js(store, "log")
    assert [h["version"] for h in history] == [3, 2, 1]
    assert history[0]["operation"]["ops"][0] == {
        "op": "rename_table",
        "name": "raw.orders",
        "to": "raw.purchases",
    }
    assert {"version", "commit_id", "committed_at", "writer", "operation", "manifest"} <= set(
        history[0]
    )
    assert [h["version"] for h in js(store, "log", "--limit", "1")] == [3]
    assert [h["version"] for h in js(store, "log", "--domain", "catalog", "-n", "2")] == [3, 2]
    human = ok(store, "log").stdout
    assert "create_namespace" in human
    assert "rename_table" in human


def test_log_shows_who_made_each_commit(store: str) -> None:
    import getpass

    from arco.catalog import Catalog
    from arco.core import Scope, open_store
    from arco.core.actor import acting_as
    from arco.core.ids import sha256_hex
    from arco.core.keys import Keys

    ok(store, "namespace", "create", "raw")
    # A commit from a library caller acting for someone else (as the API does for a
    # token's subject) is shown with that name.
    with acting_as("alice"):
        Catalog(open_store(store)).create_namespace("staging")
    history = js(store, "log")
    assert [(h["version"], h["actor"]) for h in history] == [(2, "alice"), (1, getpass.getuser())]
    assert all(h["writer"] != h["actor"] for h in history)
    human = ok(store, "log").stdout
    for text in ("Actor", "alice", getpass.getuser()):
        assert text in human

    # A commit written before actors were recorded has none: JSON null, "-" in the table.
    keys = Keys(Scope("default", "default"))  # the CLI's default scope
    raw_store = open_store(store)
    pointer = json.loads(raw_store.get(keys.pointer("catalog"))[0])
    manifest = json.loads(raw_store.get(pointer["manifest"])[0])
    del manifest["actor"]
    old = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    old_key = pointer["manifest"].replace(".json", "-old.json")
    raw_store.put(old_key, old, "create")
    pointer.update(manifest=old_key, manifest_sha256=sha256_hex(old))
    raw_store.put(keys.pointer("catalog"), json.dumps(pointer).encode(), "overwrite")
    assert [h["actor"] for h in js(store, "log")] == [None, getpass.getuser()]
    rows = [line.split("│") for line in ok(store, "log").stdout.splitlines() if "│" in line]
    actor_of = {cells[1].strip(): cells[3].strip() for cells in rows if cells[1].strip()}
    assert actor_of == {"2": "-", "1": getpass.getuser()}
    assert js(store, "verify")["ok"] is True


def test_log_and_verify_on_empty_store(store: str) -> None:
    assert js(store, "log") == []
    assert "No commits" in ok(store, "log").stdout
    assert js(store, "verify")["ok"] is True


# ---------------------------------------------------------------- subprocesses
def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCOPE_ENV}
    env.update(extra)
    return env


def arco(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m arco.cli.main ARGS`` in a real process."""
    return subprocess.run(
        [sys.executable, "-m", "arco.cli.main", *args],
        cwd=cwd,
        env=env if env is not None else _env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_subprocess_lifecycle(tmp_path: Path) -> None:
    env = _env(ARCO_STORE=f"file://{tmp_path / 'store'}", ARCO_TENANT="acme")
    for args in (
        ["namespace", "create", "raw"],
        ["table", "create", "raw.orders", "-c", "id:int64:not-null", "-c", "amount:decimal(9,2)"],
        ["table", "add-column", "raw.orders", "note:string"],
    ):
        proc = arco(*args, cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
    proc = arco("--json", "table", "show", "raw.orders", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert [c["name"] for c in json.loads(proc.stdout)["columns"]] == ["id", "amount", "note"]
    assert (tmp_path / "store" / "tenant=acme").is_dir()

    proc = arco("table", "create", "raw.bad", "-c", "x:foo", cwd=tmp_path, env=env)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("error: ")

    proc = arco("namespace", "create", "../x", cwd=tmp_path, env=env)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr

    proc = arco("table", "nonsense", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr

    proc = arco("verify", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK")


def test_subprocess_default_store_is_dot_arco(tmp_path: Path) -> None:
    proc = arco("namespace", "create", "raw", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / ".arco" / "tenant=default" / "workspace=default").is_dir()
    proc = arco("--json", "namespace", "list", cwd=tmp_path)
    assert [ns["name"] for ns in json.loads(proc.stdout)] == ["raw"]


def test_importing_the_cli_is_light() -> None:
    code = (
        "import sys, arco.cli.main; print('pyarrow' in sys.modules, 'arco.catalog' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.split() == ["False", "False"]


def test_demo_runs_twice(tmp_path: Path) -> None:
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "arco.demo"],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert "arco table show analytics.daily_revenue" in proc.stdout
    assert (tmp_path / ".arco").is_dir()

    history = json.loads(arco("--json", "log", "-n", "100", cwd=tmp_path).stdout)
    namespaces = {
        op["name"]
        for h in history
        for op in h["operation"]["ops"]
        if op["op"] == "create_namespace"
    }
    assert namespaces == {"raw", "analytics", "analytics.marketing"}
    created = [op for h in history for op in h["operation"]["ops"] if op["op"] == "create_table"]
    assert 4 <= len(created) <= 6  # the second run committed nothing new
    tables = json.loads(arco("--json", "table", "list", cwd=tmp_path).stdout)
    assert len(tables) == len(created)
    revenue = json.loads(
        arco("--json", "table", "show", "analytics.daily_revenue", cwd=tmp_path).stdout
    )
    assert revenue["description"]
    assert revenue["properties"]
    types = {c["type"] for t in tables for c in t["columns"]}
    assert any(t.startswith("decimal(") for t in types)
    assert "timestamp[us, UTC]" in types
    assert "list<string>" in types
    assert any(t.startswith("struct<") for t in types)
    assert arco("verify", cwd=tmp_path).returncode == 0
