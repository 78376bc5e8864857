"""Compact manifest encodings: a base index's row tables as columns, a large operation
record compressed (ADR 030).

A manifest is read whole by every cold reader, so its decoding time is paid by
every CLI command and every new server. Two of its parts grow with the catalog:

* a sorted base's index lists, per row group, its key range, byte range, SHA-256
  and row count (``groups``), and per group its own footer (``group_footers``).
  As JSON rows that is ~200 bytes and a dozen Python objects per group; at
  100,000 tables, 37 KB and 0.36 ms of ``json.loads``, most of it turning 1,000
  integers into Python ``int``. :class:`PackedRows` writes the same rows as
  columns: the keys stay JSON lists, each integer column is one base64 string
  of little-endian int64s, each hash column one string of the hashes' hex
  digits end to end (JSON scans a long plain string at memory speed, and a row's
  hash is then a slice of it). An entry becomes a Python list only when a reader
  asks for it.
* a bulk transaction's operation record lists every change it made (5,000
  creates: 245 KB). Above :data:`PACK_OPERATION_BYTES` it is stored zlib-compressed
  (:func:`pack_operation`), so the manifest a reader fetches and hashes stays small.

Both decode to exactly what they encode: the in-memory index and operation are
the same sequences and dicts a reader always saw (a test holds every readers'
view equal across the two encodings), and manifests in the older row layout
are read as before.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

#: Column kinds of a packed row table: a JSON value, an int64, a SHA-256 (hex in rows).
JSON, INT, SHA = "j", "i", "h"

#: The layout of each packed member of a base index.
INDEX_LAYOUTS = {"groups": "jjiihi", "group_footers": "iihi"}

#: The marker of a packed member: ``{"packed": layout, "rows": n, "columns": [...]}``.
PACKED = "packed"

_HEX = 64


class PackedRows(Sequence[list[Any]]):
    """Rows of fixed layout kept as columns; ``rows[i]`` is the list the row layout had.

    ``layout`` names each position's kind: :data:`JSON` (any JSON value, kept as
    decoded), :data:`INT` (an int64) or :data:`SHA` (a SHA-256 in lowercase hex).
    """

    __slots__ = ("_columns", "_n", "layout")

    def __init__(self, layout: str, n: int, columns: list[Any]) -> None:
        self.layout = layout
        self._n = n
        self._columns = columns

    @classmethod
    def of_rows(cls, layout: str, rows: Iterable[Sequence[Any]]) -> PackedRows:
        """Pack ``rows`` (each ``len(layout)`` long); raises ValueError on a row that
        does not fit the layout (a wrong length, a non-integer, a malformed hash)."""
        rows = list(rows)
        for row in rows:
            if not isinstance(row, list | tuple) or len(row) != len(layout):
                raise ValueError(f"row {row!r} does not have {len(layout)} members")
        columns: list[Any] = []
        for c, kind in enumerate(layout):
            values = [row[c] for row in rows]
            if kind == JSON:
                columns.append(values)
            elif kind == INT:
                if not all(type(v) is int for v in values):
                    raise ValueError(f"column {c} holds a value that is not an integer")
                columns.append(array("q", values))
            else:
                columns.append("".join(_digest(v) for v in values))
        return cls(layout, len(rows), columns)

    @classmethod
    def from_json(cls, raw: Any, layout: str) -> PackedRows:
        """Decode a packed member written by :meth:`to_json`; ValueError if malformed."""
        if not isinstance(raw, dict) or raw.get(PACKED) != layout:
            raise ValueError(f"not a packed table of layout {layout!r}")
        n, encoded = raw.get("rows"), raw.get("columns")
        if type(n) is not int or n < 0 or not isinstance(encoded, list):
            raise ValueError("packed table without a row count and its columns")
        if len(encoded) != len(layout):
            raise ValueError(f"packed table has {len(encoded)} columns, its layout {len(layout)}")
        columns: list[Any] = []
        for kind, value in zip(layout, encoded, strict=True):
            if kind == JSON:
                if not isinstance(value, list) or len(value) != n:
                    raise ValueError("packed JSON column does not hold one value per row")
                columns.append(value)
                continue
            if not isinstance(value, str):
                raise ValueError("packed column is not a string")
            if kind == SHA:
                # Not checked for hex digits here: each hash is compared with the
                # bytes it names before they are used, and anything else never matches.
                if len(value) != _HEX * n or not value.isascii():
                    raise ValueError("packed hash column does not hold one SHA-256 per row")
                columns.append(value)
                continue
            try:
                data = base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"packed column is not base64 ({exc})") from exc
            if len(data) != 8 * n:
                raise ValueError("packed column does not hold one value per row")
            ints = array("q")
            ints.frombytes(data)
            if sys.byteorder != "little":
                ints.byteswap()
            columns.append(ints)
        return cls(layout, n, columns)

    def to_json(self) -> dict[str, Any]:
        """The manifest's record: JSON columns as lists, hashes as one hex string,
        integers as base64."""
        encoded: list[Any] = []
        for kind, column in zip(self.layout, self._columns, strict=True):
            if kind != INT:
                encoded.append(column)
                continue
            if sys.byteorder != "little":
                column = array("q", column)
                column.byteswap()
            encoded.append(base64.b64encode(column.tobytes()).decode("ascii"))
        return {PACKED: self.layout, "rows": self._n, "columns": encoded}

    def column(self, c: int) -> Sequence[Any]:
        """Column ``c`` whole (a JSON or INT column; ``SHA`` columns give hex strings)."""
        if self.layout[c] == SHA:
            text = self._columns[c]
            return [text[i : i + _HEX] for i in range(0, len(text), _HEX)]
        column: Sequence[Any] = self._columns[c]
        return column

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> list[Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[list[Any]]: ...

    def __getitem__(self, i: int | slice) -> list[Any] | list[list[Any]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("packed row index out of range")
        row: list[Any] = []
        for kind, column in zip(self.layout, self._columns, strict=True):
            if kind == SHA:
                row.append(column[i * _HEX : (i + 1) * _HEX])
            else:
                row.append(column[i])
        return row

    def __iter__(self) -> Iterator[list[Any]]:
        return (self[i] for i in range(self._n))

    def __eq__(self, other: object) -> bool:
        # Equal to the row lists it packs, as the index read from an older manifest is.
        if isinstance(other, PackedRows | list | tuple):
            return len(self) == len(other) and all(
                a == list(b) for a, b in zip(self, other, strict=True)
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PackedRows({self.layout!r}, {list(self)!r})"


def _digest(value: Any) -> str:
    if not isinstance(value, str) or len(value) != _HEX:
        raise ValueError(f"{value!r} is not a SHA-256 in hex")
    if bytes.fromhex(value).hex() != value:  # fromhex also takes spaces and capitals
        raise ValueError(f"{value!r} is not a SHA-256 in lowercase hex")
    return value


def pack_index(index: dict[str, Any]) -> dict[str, Any]:
    """``index`` as a manifest writes it: each member of :data:`INDEX_LAYOUTS` packed.

    A member that does not fit its layout (only an index this code did not write)
    is written as it is, in rows, which readers accept too.
    """
    out = dict(index)
    for name, layout in INDEX_LAYOUTS.items():
        rows = out.get(name)
        if isinstance(rows, PackedRows):
            out[name] = rows.to_json()
        elif isinstance(rows, list) and rows:
            with contextlib.suppress(ValueError):
                out[name] = PackedRows.of_rows(layout, rows).to_json()
    return out


def unpack_index(index: dict[str, Any]) -> dict[str, Any]:
    """An index read from a manifest, its packed members as :class:`PackedRows`.

    Raises ValueError on a malformed packed member (the manifest is then refused).
    """
    packed = [
        name
        for name in INDEX_LAYOUTS
        if isinstance(member := index.get(name), dict) and PACKED in member
    ]
    if not packed:
        return index
    out = dict(index)
    for name in packed:
        out[name] = PackedRows.from_json(out[name], INDEX_LAYOUTS[name])
    return out


def column_of(rows: Sequence[Sequence[Any]], c: int) -> Sequence[Any]:
    """Member ``c`` of every row of an index member, packed or in rows, without
    building the rows of a :class:`PackedRows`."""
    if isinstance(rows, PackedRows):
        return rows.column(c)
    return [r[c] for r in rows]


def key_bounds(groups: Sequence[Sequence[Any]]) -> tuple[Sequence[Any], Sequence[Any]]:
    """The first and last sort key of each group of a base index's ``groups``."""
    return column_of(groups, 0), column_of(groups, 1)


#: An operation record whose JSON is longer than this is stored compressed.
PACK_OPERATION_BYTES = 8192

#: The one member of a compressed operation record.
PACKED_OPERATION = "zlib_json"


def pack_operation(text: str) -> str:
    """The manifest's JSON text for an operation record whose JSON is ``text``.

    Short records stay as they are, readable in the manifest; a longer one becomes
    ``{"zlib_json": base64(zlib(text))}`` (245 KB of 5,000 creates: 19 KB).
    """
    # A record that happens to look like a compressed one is compressed too, so
    # that reading it back cannot mistake it for one.
    if len(text) <= PACK_OPERATION_BYTES and not text.startswith(f'{{"{PACKED_OPERATION}":'):
        return text
    packed = base64.b64encode(zlib.compress(text.encode(), 6)).decode("ascii")
    return json.dumps({PACKED_OPERATION: packed}, separators=(",", ":"))


def unpack_operation(value: Any) -> Any:
    """The operation record a manifest's decoded ``operation`` member stands for.

    Raises ValueError on a compressed record that does not decompress to JSON.
    """
    if isinstance(value, dict) and len(value) == 1 and PACKED_OPERATION in value:
        packed = value[PACKED_OPERATION]
        if not isinstance(packed, str):
            raise ValueError("compressed operation record is not a string")
        try:
            text = zlib.decompress(base64.b64decode(packed, validate=True))
        except (binascii.Error, zlib.error) as exc:
            raise ValueError(f"compressed operation record is damaged ({exc})") from exc
        return json.loads(text)
    return value
