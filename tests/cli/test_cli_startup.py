"""A CLI command loads only what it needs (issue #12: cold reads in a new process)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from arco.catalog.catalog import Catalog
from arco.cli import main, output


def test_the_subcommand_table_names_every_command_the_modules_define() -> None:
    full = typer.main.get_command(main.build_app())
    listed = [name for names, _ in main.SUBCOMMANDS for name in names]
    assert sorted(listed) == sorted(full.commands)  # type: ignore[attr-defined]
    for name in listed:
        one = typer.main.get_command(main.build_app(only=name))
        assert list(one.commands) == [name] or name in one.commands  # type: ignore[attr-defined]


def _group_commands() -> list[tuple[str, str]]:
    full: Any = typer.main.get_command(main.build_app())
    return [
        (group, name)
        for group, cmd in full.commands.items()
        if hasattr(cmd, "commands")
        for name in cmd.commands
    ]


def test_a_group_command_builds_only_itself_and_answers_as_the_full_app() -> None:
    runner = CliRunner()
    pairs = _group_commands()
    assert ("table", "show") in pairs
    # The groups of a module of their own (not those a module's register() adds).
    lean_groups = {
        names[0]
        for names, register in main.SUBCOMMANDS
        if register.__qualname__.startswith("_group.")
    }
    assert {"table", "namespace", "runs"} <= lean_groups
    for group, name in pairs:
        one: Any = typer.main.get_command(main.build_app(group, name))
        if group in lean_groups:
            assert list(one.commands[group].commands) == [name], (group, name)
        for args in ([group, name, "--help"], [group, name, "--bogus"]):
            lean = runner.invoke(main.build_app(group, name), args)
            full = runner.invoke(main.build_app(), args)
            assert (lean.exit_code, lean.output) == (full.exit_code, full.output), args
    # A word that names no command of the group gets the whole group.
    typo: Any = typer.main.get_command(main.build_app("table", "shwo"))
    assert "show" in typo.commands["table"].commands
    assert main.command_words(["--json", "table", "show", "a.b"]) == ("table", "show")
    assert main.command_words(["table", "--help"]) == ("table", None)
    assert main.command_words(["--bogus"]) == (None, None)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["table", "show", "a.b"], "table"),
        (["--store", "file:///x", "--json", "table", "list"], "table"),
        (["--store=file:///x", "--tenant", "t", "--workspace", "w", "verify"], "verify"),
        (["runs", "list"], "runs"),
        (["--help"], None),
        ([], None),
        (["--store"], None),
        (["--bogus", "table", "show"], None),
        (["tables", "show"], None),
    ],
)
def test_subcommand_finds_the_command_after_the_global_options(
    argv: list[str], expected: str | None
) -> None:
    assert main.subcommand(argv) == expected


def _modules_after(tmp_path: Path, *args: str) -> tuple[set[str], str]:
    code = (
        "import sys, json\n"
        "import arco.cli.main as m\n"
        f"sys.argv = ['arco', *{list(args)!r}]\n"
        "try:\n"
        "    m.build_app(*m.command_words(sys.argv[1:]))(prog_name='arco')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    text, _, mods = out.rpartition("\nMODULES ")
    return set(json.loads(mods)), text


def test_table_show_reads_without_loading_other_commands_or_pyarrow_extras(
    tmp_path: Path,
) -> None:
    url = f"file://{tmp_path / 'store'}"
    cat = Catalog(url)
    cat.create_namespace("raw")
    cat.create_table("raw", "orders", ["id:int64", "at:timestamp[us, UTC]"])
    modules, text = _modules_after(
        tmp_path, "--store", url, "--json", "table", "show", "raw.orders"
    )
    assert json.loads(text)["name"] == "orders"
    # Other commands' modules, and what only writers or SQL need, stay unloaded:
    # pyarrow.parquet brings pyarrow.fs (S3/GCS/Azure bindings, 15 MB), and
    # pyarrow.compute came with Array.cast (80 ms).
    for heavy in (
        "arco.cli.flow",
        "arco.cli.compact",
        "arco.cli.maintenance",
        "arco.cli.sql",
        "pyarrow.parquet",
        "pyarrow.fs",
        "pyarrow.compute",
        "pyarrow.dataset",
        "duckdb",
        "fastapi",
        "click",  # Typer vendors its own since 0.26
        "ulid",  # reads its version through importlib.metadata; reads make no ids
    ):
        assert heavy not in modules, heavy
    assert "arco.cli.table" in modules
    if tuple(int(p) for p in typer.__version__.split(".")[:2]) < (0, 29):
        # Typer 0.29 coerces every parameter through pydantic (ADR 023 pins it below).
        assert "pydantic" not in modules


def _batches(count: int, taken: list[int]) -> Iterator[list[dict[str, Any]]]:
    for b in range(count):
        taken.append(b)
        yield [
            {
                "namespace": "ns",
                "name": f"t{b}_{i}",
                "format": "parquet",
                "columns": [{"name": "x"}],
                "description": "d\u00e9j\u00e0 [red]vu",
            }
            for i in range(3)
        ]


@pytest.mark.parametrize("as_json", [True, False])
def test_listings_are_written_batch_by_batch(
    as_json: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first rows are out before the last batch is read (text used to read all first)."""
    taken: list[int] = []
    seen: list[tuple[int, int]] = []
    real_write = sys.stdout.write

    def write(text: str) -> int:
        seen.append((len(taken), len(text)))
        return real_write(text)

    monkeypatch.setattr(sys.stdout, "write", write)
    if as_json:
        output.emit_json_texts([json.dumps(t) for t in b] for b in _batches(5, taken))
    else:
        output.tables_stream(_batches(5, taken))
    monkeypatch.undo()
    out = capsys.readouterr().out
    assert taken == [0, 1, 2, 3, 4]
    assert seen[0][0] <= 2, seen  # written after at most two batches were read
    if as_json:
        items = json.loads(out)
        assert [i["name"] for i in items] == [f"t{b}_{i}" for b in range(5) for i in range(3)]
        assert items[0]["description"] == "d\u00e9j\u00e0 [red]vu"
        assert len(out.splitlines()) == 15 + 2  # one item per line, in brackets
    else:
        assert out.splitlines()[1].split() == [
            "ns.t0_0",
            "parquet",
            "1",
            "d\u00e9j\u00e0",
            "[red]vu",
        ]


def test_an_empty_json_listing_is_an_empty_array(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit_json_texts(iter([[], []]))
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("cold", [True, False])
def test_listing_json_is_exactly_json_dumps_of_each_table(cold: bool) -> None:
    """The column-by-column JSON of ``arco table list`` equals ``json.dumps(Table.to_dict())``."""
    cat = Catalog("memory://")
    cat.create_namespace("ns")
    with cat.transaction() as tx:
        for i in range(40):
            tx.create_table(
                "ns",
                f"t{i:02d}",
                [f"c{j}:int64" for j in range(i % 4)],
                description=None if i % 3 else f'say "hi"\\ \u00e9\u6f22 {i}\n\t',
                location=None if i % 2 else f"s3://b/{i}",
                properties={"k": "v", "\u00fc": '"'} if i % 5 == 0 else None,
            )
    cat.update_table("ns", "t07", add_columns=["z:string"], drop_columns=["c0"])
    cat.rename_table("ns", "t08", "a08")
    cat.drop_table("ns", "t09")
    reader = Catalog(cat.store) if cold else cat
    texts = [t for b in reader.iter_table_batches("ns") for t in output.tables_json_texts(b)]
    expected = [t.to_dict() for t in cat.list_tables("ns").items]
    assert texts == [json.dumps(d, ensure_ascii=False) for d in expected]
    assert not cold or not reader.domain.folded
