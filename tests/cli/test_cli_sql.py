"""``arco sql``: Rich and JSON output, --as-of, --max-rows, one-line errors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from arco.cli import main, namespace, table
from arco.cli import sql as sql_cli
from arco.cli.context import ArcoGroup


def _app() -> typer.Typer:
    """The real app if ``sql`` is wired into it, else an app with the same root callback."""
    if any(c.name == "sql" for c in main.app.registered_commands):
        return main.app
    app = typer.Typer(cls=ArcoGroup, no_args_is_help=True, pretty_exceptions_enable=False)
    app.callback()(main.root)
    app.add_typer(namespace.app, name="namespace")
    app.add_typer(table.app, name="table")
    sql_cli.register(app)
    return app


APP = _app()
runner = CliRunner()


def cli(store: str, *args: str) -> Result:
    env: dict[str, str | None] = {"ARCO_STORE": None, "ARCO_TENANT": None, "ARCO_WORKSPACE": None}
    return runner.invoke(APP, ["--store", store, *args], env=env)


def ok(store: str, *args: str) -> Result:
    result = cli(store, *args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stderr == ""
    return result


def js(store: str, *args: str) -> Any:
    return json.loads(ok(store, "--json", *args).stdout)


def user_error(result: Result, contains: str = "") -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert contains.lower() in lines[0].lower()
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"file://{tmp_path / 'store'}"
    ok(url, "namespace", "create", "raw")  # version 1
    ok(url, "table", "create", "raw.orders", "-c", "id:long:not-null", "-c", "amount:double")
    ok(url, "table", "create", "raw.users", "-c", "name:string", "-d", "[red]not markup")
    return url


def test_json_output(store: str) -> None:
    out = js(store, "sql", "SELECT name, column_count FROM system.tables ORDER BY name")
    assert out["columns"] == [
        {"name": "name", "type": "VARCHAR"},
        {"name": "column_count", "type": "INTEGER"},
    ]
    assert out["rows"] == [["orders", 2], ["users", 1]]
    assert out["row_count"] == 2
    assert isinstance(out["elapsed_ms"], float)
    assert out["truncated"] is False


def test_rich_output(store: str) -> None:
    text = ok(
        store, "sql", "SELECT name, description, properties FROM system.tables ORDER BY name"
    ).stdout
    assert "orders" in text
    assert "users" in text
    assert "[red]not markup" in text  # printed literally, never as markup
    assert "NULL" in text
    assert "2 rows in" in text
    assert "varchar" in text  # column types under the headers


def test_join_and_timestamps(store: str) -> None:
    out = js(
        store,
        "sql",
        "SELECT t.name, c.name AS col, t.created_at FROM system.tables t "
        "JOIN system.columns c ON c.table_id = t.id ORDER BY 1, c.ordinal",
    )
    assert [r[:2] for r in out["rows"]] == [
        ["orders", "id"],
        ["orders", "amount"],
        ["users", "name"],
    ]
    assert out["rows"][0][2].endswith("+00:00")


def test_as_of(store: str) -> None:
    assert js(store, "sql", "SELECT count(*) AS n FROM system.tables", "--as-of", "2")["rows"] == [
        [1]
    ]
    assert js(store, "sql", "SELECT count(*) AS n FROM system.tables", "--as-of", "1")["rows"] == [
        [0]
    ]
    user_error(cli(store, "sql", "SELECT * FROM system.tables", "--as-of", "99"), "version 99")


def test_max_rows(store: str) -> None:
    user_error(cli(store, "sql", "SELECT * FROM range(20)", "--max-rows", "5"), "more than 5 rows")
    out = js(store, "sql", "SELECT * FROM range(20)", "--max-rows", "5", "--truncate")
    assert out["row_count"] == 5
    assert out["truncated"] is True
    text = ok(store, "sql", "SELECT * FROM range(20)", "--max-rows", "5", "--truncate").stdout
    assert "truncated" in text


@pytest.mark.parametrize(
    ("sql", "contains"),
    [
        ("SELECT 1; SELECT 2", "single SELECT"),
        ("PRAGMA version", "single SELECT"),
        ("COPY (SELECT 1) TO '/tmp/arco-cli-sql.csv'", "single SELECT"),
        ("SELECT * FROM read_csv('/etc/passwd')", "sandbox"),
        ("SELEC 1", "Parser Error"),
        ("SELECT * FROM system.nope", "nope"),
    ],
)
def test_errors_are_one_line(store: str, sql: str, contains: str) -> None:
    user_error(cli(store, "sql", sql), contains)
    user_error(cli(store, "--json", "sql", sql), contains)


def test_timeout(store: str) -> None:
    slow = (
        "SELECT count(*) FROM range(1000000000) a, range(1000) b WHERE (a.range + b.range) % 7 = 3"
    )
    user_error(cli(store, "sql", slow, "--timeout", "0.3"), "ran longer")


@pytest.mark.parametrize(
    ("sql", "contains"),
    [
        # One value of 2-4 GB computed in one step: DuckDB's memory_limit does not see it.
        ("SELECT len(generate_series(1, 500000000))", "memory budget"),
        ("SELECT length(repeat('x', 2000000000))", "memory budget"),
        # One uninterruptible step of ~11 s on an idle machine: stopped at the deadline.
        ("SELECT length(regexp_replace(repeat('ab', 40000000), 'a', 'b', 'g'))", "time limit"),
    ],
)
def test_a_query_over_the_engine_limits_is_a_one_line_error(
    store: str, sql: str, contains: str
) -> None:
    started = time.monotonic()
    line = user_error(cli(store, "sql", sql, "--timeout", "2"), contains)
    # The time-limit query runs ~11 s on an idle machine (twice that on a slow one),
    # so 2 s of limit plus 5 s for starting the CLI and its query worker on a busy
    # host (5.9 s in all was seen once in CI) still proves the deadline.
    assert time.monotonic() - started < 2 + 5, line


def test_tenants_are_isolated(store: str) -> None:
    out = js(store, "--tenant", "other", "sql", "SELECT count(*) FROM system.tables")
    assert out["rows"] == [[0]]
