"""``--json`` works after the subcommand as well as before it, for every command.

``arco table list NS --json`` used to fail with "No such option: --json"; every
command that prints JSON now takes it in both places, and the commands that print
none (servers) refuse it rather than ignore it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from arco.cli.context import NO_JSON_COMMANDS
from arco.cli.main import app

runner = CliRunner()
ENV = dict.fromkeys(("ARCO_STORE", "ARCO_TENANT", "ARCO_WORKSPACE", "ARCO_JWT_SECRET"))


def cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return runner.invoke(app, list(args), env={**ENV, **(env or {})})


def _leaves(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            out.extend(_leaves(command, (*prefix, name)))
        else:
            out.append(((*prefix, name), command))
    return out


def test_every_command_takes_json_after_its_name_except_servers() -> None:
    root = typer.main.get_command(app)
    leaves = _leaves(root)
    assert len(leaves) > 30
    for path, command in leaves:
        has = [p for p in command.params if "--json" in getattr(p, "opts", ())]
        if path[-1] in NO_JSON_COMMANDS and len(path) == 1:
            assert not has, path
        else:
            assert len(has) == 1, path  # exactly one, never a second local flag
            help_text = cli(*path, "--help").stdout
            assert "--json" in help_text, path


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"file://{tmp_path / 'store'}"
    for args in (
        ("namespace", "create", "raw"),
        ("table", "create", "raw.orders", "-c", "id:long"),
        ("lineage", "add", "raw.orders", "raw.clean"),
    ):
        result = cli("--store", url, *args)
        assert result.exit_code == 0, result.output
    return url


@pytest.mark.parametrize(
    "args",
    [
        ("table", "list", "raw"),
        ("table", "list"),
        ("table", "show", "raw.orders"),
        ("namespace", "list"),
        ("namespace", "show", "raw"),
        ("lineage", "list"),
        ("lineage", "show", "raw.orders"),
        ("events", "types"),
        ("events", "tail", "executions"),
        ("search", "orders"),
        ("log",),
        ("verify",),
        ("sql", "SELECT name FROM system.tables"),
    ],
)
def test_json_after_the_command_prints_what_json_before_it_does(
    store: str, args: tuple[str, ...]
) -> None:
    before = cli("--store", store, "--json", *args)
    after = cli("--store", store, *args, "--json")
    assert before.exit_code == after.exit_code == 0, (before.output, after.output)
    data, expected = json.loads(after.stdout), json.loads(before.stdout)
    if isinstance(data, dict):  # timings differ from one call to the next
        for volatile in ("elapsed_ms", "elapsed_seconds"):
            data.pop(volatile, None)
            expected.pop(volatile, None)
    assert data == expected
    assert after.stdout != cli("--store", store, *args).stdout  # really JSON, not the text form


def test_json_after_a_write_command(store: str) -> None:
    created = cli("--store", store, "table", "create", "raw.t2", "-c", "x:int", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["name"] == "t2"
    dropped = cli("--store", store, "table", "drop", "raw.t2", "--json")
    assert json.loads(dropped.stdout)


def test_commands_that_used_to_print_text_under_json_print_json(tmp_path: Path) -> None:
    token = cli("token", "--json", "--sub", "alice", env={"ARCO_JWT_SECRET": "s" * 40})
    assert token.exit_code == 0, token.output
    assert json.loads(token.stdout)["token"].count(".") == 2
    import os

    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        init = cli("init", "proj", "--json")
    finally:
        os.chdir(here)
    assert init.exit_code == 0, init.output
    made = json.loads(init.stdout)
    assert made["project"] == "proj"
    assert any(f.endswith("arco.toml") for f in made["files"])


@pytest.mark.parametrize("command", sorted(NO_JSON_COMMANDS))
def test_servers_refuse_json_instead_of_ignoring_it(command: str) -> None:
    result = cli("--json", command)
    assert result.exit_code == 2, result.output
    assert "prints no JSON" in result.stderr
    assert cli(command, "--json").exit_code == 2
