"""Plain-text grids and boxed tables for the detail views a script runs cold.

``arco table show`` and ``arco namespace show`` are the CLI's point reads, and a
cold point read is promised to be cheap (issue #12). Rich cost a fifth of such a
command: ~35 ms to import and ~20 ms to lay out three small tables. These views need
only a label/value grid and a boxed table, so they are drawn here in Rich's default
look (``box.HEAVY_HEAD``, one space of padding, title above on the left), fitted to
the terminal's width (``COLUMNS``, else the terminal, else 80) with long cells folded.
Bold, dim and italic are used only on a terminal that allows colour (``NO_COLOR``,
``TERM=dumb``). Control characters in user text (an ANSI escape in a description)
are never written: each becomes ``?``. The listing and history views keep Rich.
"""

from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from collections.abc import Sequence
from typing import Literal

Justify = Literal["left", "right"]

_BOLD, _DIM, _ITALIC, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[3m", "\x1b[0m"


def width() -> int:
    """The width to fit: ``COLUMNS``, else the terminal's, else 80 (a pipe or a file)."""
    return max(20, shutil.get_terminal_size((80, 24)).columns)


def styled() -> bool:
    """Whether stdout takes styles: a terminal, without ``NO_COLOR`` or ``TERM=dumb``."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def clean(text: str) -> list[str]:
    """``text`` as display lines: tabs become spaces, other control characters ``?``."""
    if text.isprintable():
        return [text]
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.replace("\t", "    ")
        lines.append("".join(ch if ch.isprintable() or ch == " " else "?" for ch in line))
    return lines


def cell_len(text: str) -> int:
    """Terminal cells ``text`` takes: wide East Asian characters take two, marks none."""
    if text.isascii():
        return len(text)
    total = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def fold(line: str, limit: int) -> list[str]:
    """``line`` cut into pieces of at most ``limit`` cells, at spaces where it can."""
    if cell_len(line) <= limit:
        return [line]
    out: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if cell_len(candidate) <= limit:
            current = candidate
            continue
        if current:
            out.append(current)
        current = ""
        while cell_len(word) > limit:  # a word longer than the cell is folded
            head, size = "", 0
            for ch in word:
                w = cell_len(ch)
                if size + w > limit and head:
                    break
                head, size = head + ch, size + w
            out.append(head)
            word = word[len(head) :]
        current = word
    out.append(current)
    return out


def _pad(text: str, size: int, justify: Justify) -> str:
    if justify == "right":  # as Rich: trailing blanks do not push the text left
        text = text.rstrip(" ")
    gap = " " * max(0, size - cell_len(text))
    return gap + text if justify == "right" else text + gap


def _fit(natural: list[int], floor: list[int], room: int) -> list[int]:
    """Column widths within ``room``: the widest column gives a cell at a time."""
    widths = list(natural)
    while sum(widths) > room:
        i = max(range(len(widths)), key=lambda k: (widths[k] - floor[k] > 0, widths[k], k))
        if widths[i] <= floor[i]:
            break
        widths[i] -= 1
    return widths


def _lines(cell: str, size: int) -> list[str]:
    return [piece for line in clean(cell) for piece in fold(line, size)]


def write_title(title: str, *, style: str = _BOLD) -> None:
    """Print a view's title line."""
    text = " ".join(clean(title))
    sys.stdout.write(f"{style}{text}{_RESET}\n" if styled() else f"{text}\n")


def write_note(text: str) -> None:
    """Print a dim remark (``No columns.``)."""
    write_title(text, style=_DIM)


def grid(rows: Sequence[tuple[str, str]]) -> None:
    """Print label/value rows, the labels dim, two spaces between, values folded."""
    if not rows:
        return
    labels = [" ".join(clean(label)) for label, _ in rows]
    label_w = max(cell_len(label) for label in labels)
    value_w = max(8, width() - label_w - 2)
    dim = styled()
    out = []
    for label, (_, value) in zip(labels, rows, strict=True):
        pieces = _lines(value, value_w) or [""]
        for k, piece in enumerate(pieces):
            head = _pad(label if k == 0 else "", label_w, "left")
            if dim:
                head = f"{_DIM}{head}{_RESET}"
            out.append(f"{head}  {piece}".rstrip() + "\n")
    sys.stdout.write("".join(out))


def boxed(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    justify: Sequence[Justify] | None = None,
) -> None:
    """Print a table in Rich's default box (heavy head), its title above on the left."""
    ncols = len(headers)
    just: Sequence[Justify] = justify or ["left"] * ncols
    # Every cell as its display lines, cleaned once for measuring and drawing.
    head = [clean(h) for h in headers]
    cells = [[clean(c) for c in row] for row in rows]
    natural = [
        max(cell_len(line) for row in (head, *cells) for line in row[i]) for i in range(ncols)
    ]
    # Headers fold too, as in Rich: a narrow terminal squeezes the widest first.
    floor = [min(n, 3) for n in natural]
    widths = _fit(natural, floor, width() - 3 * ncols - 1)

    def rule(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right + "\n"

    def body(values: Sequence[list[str]], edge: str, *, bold: bool = False) -> str:
        folded = [
            [p for line in lines for p in fold(line, w)] or [""]
            for lines, w in zip(values, widths, strict=True)
        ]
        height = max(len(f) for f in folded)
        text = ""
        for k in range(height):
            parts = [
                " " + _pad(f[k] if k < len(f) else "", w, j) + " "
                for f, w, j in zip(folded, widths, just, strict=True)
            ]
            if bold and styled():
                parts = [f"{_BOLD}{p}{_RESET}" for p in parts]
            text += edge + edge.join(parts) + edge + "\n"
        return text

    out = [
        rule("┏", "━", "┳", "┓"),
        body(head, "┃", bold=True),
        rule("┡", "━", "╇", "┩"),
        *(body(row, "│") for row in cells),
        rule("└", "─", "┴", "┘"),
    ]
    write_title(title, style=_ITALIC)
    sys.stdout.write("".join(out))
