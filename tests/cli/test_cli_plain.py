"""The plain renderer of the detail views (``table show``, ``namespace show``, ADR 025).

It must look like the Rich tables it replaced wherever the content fits, fit any
terminal width without losing text, and never write a control character it was
given in user text.
"""

from __future__ import annotations

import io
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from arco.cli import plain

WORDS = st.text(alphabet=string.ascii_letters + string.digits + " .,:_-[]", max_size=12)


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)


def _capture(draw: Callable[[], None]) -> str:
    """What ``draw`` writes to stdout."""
    buf, old = io.StringIO(), sys.stdout
    sys.stdout = buf
    try:
        draw()
    finally:
        sys.stdout = old
    return buf.getvalue()


def _rich(renderable: object) -> str:
    buf = io.StringIO()
    Console(file=buf, width=80, highlight=False, color_system=None).print(renderable)
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


@settings(max_examples=150, deadline=None)
@given(
    headers=st.lists(
        st.text(alphabet=string.ascii_letters, min_size=3, max_size=10), min_size=2, max_size=4
    ),
    data=st.data(),
)
def test_a_table_that_fits_looks_as_rich_draws_it(headers: list[str], data: st.DataObject) -> None:
    rows = data.draw(
        st.lists(
            st.lists(WORDS, min_size=len(headers), max_size=len(headers)), min_size=1, max_size=5
        )
    )
    sides: list[plain.Justify] = ["left", "right"]
    justify = data.draw(
        st.lists(st.sampled_from(sides), min_size=len(headers), max_size=len(headers))
    )
    table = RichTable(title="Columns", title_justify="left")
    for h, j in zip(headers, justify, strict=True):
        table.add_column(Text(h), justify=j, overflow="fold")
    for row in rows:
        table.add_row(*(Text(c) for c in row))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "80")
        ours = _capture(lambda: plain.boxed("Columns", headers, rows, justify))
    assert ours == _rich(table)


def test_a_grid_looks_as_rich_draws_it(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        ("id", "01ABC"),
        ("description", "table number 7"),
        ("schema version", "1"),
        ("location", ""),
    ]
    grid = RichTable.grid(padding=(0, 2))
    grid.add_column(overflow="fold")
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(Text(label), Text(value))
    assert _capture(lambda: plain.grid(rows)) == _rich(grid)


@settings(max_examples=100, deadline=None)
@given(
    width=st.integers(min_value=20, max_value=120),
    text=st.text(alphabet=string.ascii_letters + " 界é", min_size=1, max_size=200),
)
def test_any_width_fits_and_keeps_every_character(width: int, text: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", str(width))
        out = _capture(
            lambda: plain.boxed(
                "T", ["#", "Name", "Description"], [["1", "c0", text]], ["right", "left", "left"]
            )
        )
    assert all(plain.cell_len(line) <= width for line in out.splitlines())
    lines = out.splitlines()
    body = [ln for ln in lines if ln.startswith("│")]
    described = "".join(ln[1:-1].split("│")[2].strip() for ln in body)
    assert described.replace(" ", "") == text.replace(" ", "")


def test_control_characters_in_user_text_are_never_written(monkeypatch: pytest.MonkeyPatch) -> None:
    evil = "ok\x1b[31mred\x07\x08 tab\there\r\nnext line"
    out = _capture(lambda: plain.boxed("T", ["Key", "Value"], [["k", evil]]))
    out += _capture(lambda: plain.grid([("description", evil)]))
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\x08" not in out
    assert "\t" not in out
    assert "ok?[31mred??" in out
    assert "next line" in out


def test_wide_characters_take_two_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _capture(lambda: plain.boxed("T", ["Name"], [["界界"], ["abcd"]]))
    widths = {plain.cell_len(line) for line in out.splitlines()[1:]}
    assert widths == {8}  # every line of the box as wide as the others
    assert plain.cell_len("e\u0301") == 1


def test_styles_only_on_a_terminal_that_allows_them(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stdout", tty)
    plain.write_title("Table a.b")
    assert tty.getvalue() == "\x1b[1mTable a.b\x1b[0m\n"
    monkeypatch.setenv("NO_COLOR", "1")
    tty.truncate(0)
    tty.seek(0)
    plain.write_title("Table a.b")
    assert tty.getvalue() == "Table a.b\n"


def test_table_show_in_a_new_process_does_not_load_rich(tmp_path: Path) -> None:
    store = f"file://{tmp_path}"
    arco = [sys.executable, "-m", "arco.cli.main", "--store", store]
    subprocess.run([*arco, "namespace", "create", "raw"], check=True, capture_output=True)
    subprocess.run(
        [*arco, "table", "create", "raw.t", "-c", "id:int64", "-d", "x\x1b[2Jy"],
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *arco[1:], "table", "show", "raw.t"],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "arco.catalog.catalog" in loaded  # the trace is the command's own
    assert not {m for m in loaded if m == "rich" or m.startswith("rich.")}
    assert "Table raw.t" in done.stdout
    assert "│ 1 │ id   │ int64 │" in done.stdout
    assert "\x1b" not in done.stdout
    assert "x?[2Jy" in done.stdout


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=60),
    cells=st.lists(st.text(max_size=40), min_size=2, max_size=2),
)
def test_any_text_at_any_width_draws_without_error(width: int, cells: list[str]) -> None:
    out = ""
    for draw in (
        lambda: plain.boxed("T", ["Key", "Value"], [cells]),
        lambda: plain.grid([("label", cells[0])]),
    ):
        with pytest.MonkeyPatch.context() as mp:  # _capture undoes its patches
            mp.setenv("COLUMNS", str(width))
            out += _capture(draw)
    assert all(ch.isprintable() or ch == "\n" for ch in out)
    assert all(plain.cell_len(line) <= max(20, width) for line in out.splitlines())
