"""Parquet bytes of a small delta, written without pyarrow's per-column writer set-up.

A Tier-1 commit writes its change as a level-0 delta of one or a few rows.
pyarrow's Parquet writer spends about 20 microseconds per leaf column setting up a
column writer, a page and their buffers, whatever the row count: 0.4-0.7 ms for
the catalog's 22-leaf ``tables`` delta, a third of a create_table (ADR 031). This
module writes the same file in a fraction of that.

It writes **exactly the bytes pyarrow writes** with the small-delta options of
:func:`arco.domain.tableset.encode` (no compression, statistics or dictionary,
version 1 data pages), so nothing that reads a delta -- the folds, ``verify``,
DuckDB in Python and in the browser, any Parquet engine -- can tell which writer
wrote it. Three things keep that true:

- the parts of the footer that depend only on the schema (the Parquet schema, the
  ``ARROW:schema`` metadata, ``created_by``, the column orders) are not written
  here but copied from the file pyarrow writes for the first table of the schema;
- that first table is encoded both ways, in each process, and the fast path is
  taken for the schema only if the bytes are equal: a pyarrow release that writes
  something else turns this module off for the schema rather than wrong;
- a property test holds the two equal byte for byte over random rows of every
  delta schema Arco has (``tests/catalog/test_smallparquet.py``).

Anything this module does not know -- a type outside :func:`_leaf_type`'s list,
a timestamp under a list or struct, a page pyarrow would split, a null in a
column declared not null -- makes :func:`encode_small` return ``None``, and the
caller writes the table with pyarrow.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, cast

import pyarrow as pa

log = logging.getLogger(__name__)

# Parquet physical types.
_BOOLEAN, _INT32, _INT64, _DOUBLE, _BYTE_ARRAY = 0, 1, 2, 5, 6
# Thrift compact protocol type codes.
_T_I64, _T_BINARY, _T_LIST, _T_STRUCT = 6, 8, 9, 12
#: Level entries per leaf beyond which pyarrow writes a page in more than one batch
#: (its ``write_batch_size``) and could split it; such tables go to pyarrow.
_MAX_LEVELS = 1024
#: Page bytes beyond which pyarrow could start a second page (its ``data_page_size``
#: is 1 MiB); kept well under it.
_MAX_PAGE_BYTES = 256 * 1024
#: Schemas whose plan (or refusal) is kept; delta schemas are a few dozen.
_MAX_PLANS = 256
_MAGIC = b"PAR1"
_LEAF, _STRUCT, _LIST, _MAP = 0, 1, 2, 3


class _UnsupportedError(Exception):
    """This table must be written by pyarrow."""


# ------------------------------------------------------------- thrift (compact)
def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zz(n: int) -> bytes:
    """A zigzag varint: thrift compact's i32 and i64."""
    return _varint((n << 1) ^ (n >> 63))


#: Zigzag varints of the small numbers a small delta's headers are made of.
_NZZ = 4096
_ZZ = [_zz(n) for n in range(_NZZ)]


def _list_header(size: int, elem_type: int) -> bytes:
    if size < 15:
        return bytes(((size << 4) | elem_type,))
    return bytes((0xF0 | elem_type,)) + _varint(size)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def _skip(buf: bytes, pos: int, ttype: int) -> int:
    """The position just after a value of compact type ``ttype`` that starts at ``pos``."""
    if ttype in (1, 2, 3):  # bool (inside a list) and byte
        return pos + 1
    if ttype in (4, 5, 6):  # i16, i32, i64: varints
        return _read_varint(buf, pos)[1]
    if ttype == 7:  # double
        return pos + 8
    if ttype == _T_BINARY:
        n, pos = _read_varint(buf, pos)
        return pos + n
    if ttype in (_T_LIST, 10):  # list, set
        head = buf[pos]
        pos += 1
        size, etype = head >> 4, head & 0x0F
        if size == 15:
            size, pos = _read_varint(buf, pos)
        for _ in range(size):
            pos = _skip(buf, pos, etype)
        return pos
    if ttype == _T_STRUCT:
        return _struct_spans(buf, pos)[1]
    raise _UnsupportedError(f"thrift type {ttype}")


def _struct_spans(buf: bytes, pos: int) -> tuple[list[tuple[int, int]], int]:
    """The fields of the struct at ``pos`` as ``(id, start of its header)``, and the
    position after the struct's stop byte."""
    spans: list[tuple[int, int]] = []
    last = 0
    while True:
        start = pos
        head = buf[pos]
        pos += 1
        if head == 0:
            return spans, pos
        delta, ftype = head >> 4, head & 0x0F
        if delta:
            fid = last + delta
        else:
            raw, pos = _read_varint(buf, pos)
            fid = (raw >> 1) ^ -(raw & 1)
        if ftype not in (1, 2):  # a bool field's value is its header
            pos = _skip(buf, pos, ftype)
        spans.append((fid, start))
        last = fid


# --------------------------------------------------------------------- levels
def _rle(levels: list[int], bit_width: int) -> bytes:
    """``levels`` in Parquet's RLE / bit-packed hybrid, run for run as Arrow's
    ``RleEncoder`` writes them (which runs it chooses decides the bytes)."""
    first = levels[0]
    if levels.count(first) == len(levels):
        # One repeated run, as Arrow writes any sequence of equal values.
        return _varint(len(levels) << 1) + first.to_bytes((bit_width + 7) // 8, "little")
    enc = _RleEncoder(bit_width)
    for v in levels:
        enc.put(v)
    return enc.flush()


class _RleEncoder:
    """Arrow's ``RleEncoder`` (``arrow/util/rle_encoding_internal.h``), state for state.

    Values are buffered in groups of eight; a group that completes a run of eight
    or more equal values becomes a repeated run, others are bit-packed into a
    literal run of at most 63 groups whose indicator byte is written when it ends.
    """

    def __init__(self, bit_width: int) -> None:
        self.bit_width = bit_width
        self.out = bytearray()
        self.buffered: list[int] = []
        self.current = 0
        self.repeat = 0
        self.literal = 0
        self.indicator = -1

    def put(self, value: int) -> None:
        if value == self.current:
            self.repeat += 1
            if self.repeat > 8:
                return  # a long run goes on: nothing to buffer
        else:
            if self.repeat >= 8:
                self._flush_repeated()
            self.repeat = 1
            self.current = value
        self.buffered.append(value)
        if len(self.buffered) == 8:
            self._flush_buffered(done=False)

    def _flush_buffered(self, done: bool) -> None:
        if self.repeat >= 8:
            # The buffered values belong to the repeated run now.
            self.buffered = []
            if self.literal:
                self._flush_literal(update_indicator=True)
            return
        self.literal += len(self.buffered)
        if self.literal // 8 + 1 >= 64:
            self._flush_literal(update_indicator=True)
        else:
            self._flush_literal(update_indicator=done)
        self.repeat = 0

    def _flush_literal(self, update_indicator: bool) -> None:
        if self.indicator < 0:
            self.indicator = len(self.out)
            self.out.append(0)
        if self.buffered:
            packed = 0
            for i, v in enumerate(self.buffered):
                packed |= v << (i * self.bit_width)
            self.out += packed.to_bytes(self.bit_width * len(self.buffered) // 8, "little")
            self.buffered = []
        if update_indicator:
            self.out[self.indicator] = ((self.literal // 8) << 1) | 1
            self.indicator = -1
            self.literal = 0

    def _flush_repeated(self) -> None:
        self.out += _varint(self.repeat << 1)
        self.out += self.current.to_bytes((self.bit_width + 7) // 8, "little")
        self.buffered = []
        self.repeat = 0

    def flush(self) -> bytes:
        """The encoded bytes of every value put."""
        if self.literal or self.repeat or self.buffered:
            all_repeat = self.literal == 0 and (
                self.repeat == len(self.buffered) or not self.buffered
            )
            if self.repeat and all_repeat:
                self._flush_repeated()
            else:
                if self.buffered:
                    self.buffered += [0] * (8 - len(self.buffered))
                self.literal += len(self.buffered)
                self._flush_literal(update_indicator=True)
                self.repeat = 0
        return bytes(self.out)


# ----------------------------------------------------------------------- plan
@dataclass
class _Leaf:
    """One Parquet leaf column: where its levels come from and its constant bytes."""

    ptype: int
    max_def: int
    max_rep: int
    strings: bool
    #: ColumnChunk up to and including ColumnMetaData's ``codec``.
    head: bytes
    #: Encoded levels by level pattern (:func:`_levels`).
    levels: dict[object, tuple[bytes, int, bytes]] = field(default_factory=dict)


#: One leaf's repetition levels, definition levels and non-null values of one table.
_Shredded = tuple[list[int], list[int], list[object]]


@dataclass
class _Node:
    """A node of the Arrow schema as Parquet shreds it."""

    kind: int
    optional: bool
    name: str
    children: list[_Node]
    #: Indexes of the leaves under this node (itself for a leaf).
    leaves: list[int]
    #: A list's or map's repetition level for its second and later items.
    rep: int = 0
    #: A struct of leaves only: ``(name, leaf index, optional)`` per child, which
    #: :func:`_shred` walks without recursing.
    flat: list[tuple[str, int, bool]] | None = None


@dataclass
class _Plan:
    """How one schema's tables are written: its nodes and leaves, and the footer
    parts copied from pyarrow's file."""

    roots: list[_Node]
    #: Per top-level column, the type to view it as before reading its values
    #: (integers for timestamps and dates), or None.
    views: list[pa.DataType | None]
    leaves: list[_Leaf]
    #: Leaves outside lists and maps (one level entry per row each).
    flat_leaves: int = 0
    #: ``(column index, leaves under it)`` of the top-level lists and maps.
    repeated: tuple[tuple[int, int], ...] = ()
    #: FileMetaData's fields before ``num_rows`` (version, schema), as pyarrow wrote them.
    prefix: bytes = b""
    #: FileMetaData's fields after ``row_groups`` and its stop byte, as pyarrow wrote them.
    suffix: bytes = b""


def _leaf_type(t: pa.DataType, top: bool) -> tuple[int, bool, pa.DataType | None]:
    """(physical type, values are str, view type) of a leaf, or :class:`_UnsupportedError`."""
    if pa.types.is_boolean(t):
        return _BOOLEAN, False, None
    if t in (pa.int8(), pa.int16(), pa.int32(), pa.uint8(), pa.uint16()):
        return _INT32, False, None
    if t == pa.int64():
        return _INT64, False, None
    if t == pa.float64():
        return _DOUBLE, False, None
    if t in (pa.string(), pa.large_string()):
        return _BYTE_ARRAY, True, None
    if t in (pa.binary(), pa.large_binary()):
        return _BYTE_ARRAY, False, None
    if top and pa.types.is_timestamp(t) and t.unit in ("ms", "us", "ns"):
        return _INT64, False, pa.int64()
    if top and t == pa.date32():
        return _INT32, False, pa.int32()
    raise _UnsupportedError(str(t))


def _plan_of(schema: pa.Schema) -> _Plan:
    leaves: list[_Leaf] = []
    views: list[pa.DataType | None] = []

    def node(f: pa.Field, path: list[str], d: int, r: int, top: bool) -> _Node:
        optional = f.nullable
        d += optional
        t = f.type
        if pa.types.is_struct(t):
            names = [t.field(i).name for i in range(t.num_fields)]
            if len(set(names)) != len(names) or not names:
                raise _UnsupportedError("struct field names")
            kids = [node(t.field(i), [*path, names[i]], d, r, False) for i in range(len(names))]
            flat = (
                [(k.name, k.leaves[0], k.optional) for k in kids]
                if all(k.kind == _LEAF for k in kids)
                else None
            )
            return _Node(
                _STRUCT, optional, f.name, kids, [i for k in kids for i in k.leaves], flat=flat
            )
        if pa.types.is_list(t):
            item = node(t.value_field, [*path, "list", "element"], d + 1, r + 1, False)
            return _Node(_LIST, optional, f.name, [item], item.leaves, rep=r + 1)
        if pa.types.is_map(t):
            key = node(t.key_field, [*path, "key_value", "key"], d + 1, r + 1, False)
            item = node(t.item_field, [*path, "key_value", "value"], d + 1, r + 1, False)
            return _Node(_MAP, optional, f.name, [key, item], key.leaves + item.leaves, rep=r + 1)
        ptype, strings, view = _leaf_type(t, top)
        if top:
            views[-1] = view
        leaves.append(_Leaf(ptype, d, r, strings, _chunk_head(ptype, path)))
        return _Node(_LEAF, optional, f.name, [], [len(leaves) - 1])

    roots = []
    for f in schema:
        views.append(None)
        roots.append(node(f, [f.name], 0, 0, True))
    repeated = tuple(
        (i, len(r.leaves)) for i, r in enumerate(roots) if r.kind == _LIST or r.kind == _MAP
    )
    flat = len(leaves) - sum(n for _, n in repeated)
    return _Plan(roots, views, leaves, flat_leaves=flat, repeated=repeated)


def _chunk_head(ptype: int, path: list[str]) -> bytes:
    """ColumnChunk ``{file_offset: 0, meta_data: {type, encodings: [RLE, PLAIN],
    path_in_schema, codec: UNCOMPRESSED, ...`` -- the part that never varies."""
    out = bytearray(b"\x26\x00\x1c")  # field 2 (i64) = 0; field 3: struct
    out += b"\x15" + _zz(ptype)  # 1: type (i32)
    out += b"\x19\x25\x06\x00"  # 2: encodings, list<i32> [3, 0]
    out += b"\x19" + _list_header(len(path), _T_BINARY)  # 3: path_in_schema
    for part in path:
        raw = part.encode()
        out += _varint(len(raw)) + raw
    out += b"\x15\x00"  # 4: codec
    return bytes(out)


# --------------------------------------------------------------------- shred
def _shred(node: _Node, value: object, r: int, d: int, out: list[_Shredded]) -> None:
    """Append ``value``'s repetition and definition levels and values to its leaves."""
    if value is None:
        if not node.optional:
            raise _UnsupportedError(f"null in the required column {node.name}")
        for i in node.leaves:
            reps, defs, _ = out[i]
            reps.append(r)
            defs.append(d)
        return
    if node.optional:
        d += 1
    kind = node.kind
    if kind == _LEAF:
        reps, defs, values = out[node.leaves[0]]
        reps.append(r)
        defs.append(d)
        values.append(value)
    elif kind == _STRUCT:
        if not isinstance(value, dict):
            raise _UnsupportedError("a struct value that is not a dict")
        for child in node.children:
            _shred(child, value[child.name], r, d, out)
    else:
        if not isinstance(value, list):
            raise _UnsupportedError("a list value that is not a list")
        if not value:
            for i in node.leaves:
                reps, defs, _ = out[i]
                reps.append(r)
                defs.append(d)
            return
        if kind == _LIST:
            (item,) = node.children
            flat = item.flat
            if flat is None:
                for x in value:
                    _shred(item, x, r, d + 1, out)
                    r = node.rep
                return
            # A list of structs of leaves (a table's columns): the same walk, unrolled.
            d_item = d + 1 + item.optional
            for x in value:
                if x is None or not isinstance(x, dict):
                    _shred(item, x, r, d + 1, out)
                else:
                    for name, i, opt in flat:
                        reps, defs, values = out[i]
                        reps.append(r)
                        v = x[name]
                        if v is None:
                            if not opt:
                                raise _UnsupportedError(f"null in the required column {name}")
                            defs.append(d_item)
                        else:
                            defs.append(d_item + opt)
                            values.append(v)
                r = node.rep
        else:
            key, item = node.children
            for k, x in value:
                _shred(key, k, r, d + 1, out)
                _shred(item, x, r, d + 1, out)
                r = node.rep


_PACK: dict[int, Callable[[list[object]], bytes]] = {
    _INT32: lambda vs: struct.pack(f"<{len(vs)}i", *vs),
    _INT64: lambda vs: struct.pack(f"<{len(vs)}q", *vs),
    _DOUBLE: lambda vs: struct.pack(f"<{len(vs)}d", *vs),
}


def _plain(leaf: _Leaf, values: list[object]) -> tuple[bytes, int]:
    """The PLAIN-encoded values of a leaf and, for byte arrays, their total length."""
    ptype = leaf.ptype
    if ptype == _BYTE_ARRAY:
        raw = [str(v).encode() for v in values] if leaf.strings else cast(list[bytes], values)
        parts = []
        total = 0
        for b in raw:
            n = len(b)
            total += n
            parts.append(n.to_bytes(4, "little"))
            parts.append(b)
        return b"".join(parts), total
    if ptype == _BOOLEAN:
        packed = 0
        for i, v in enumerate(values):
            if v:
                packed |= 1 << i
        return packed.to_bytes((len(values) + 7) // 8, "little"), 0
    return _PACK[ptype](values), 0


# --------------------------------------------------------------------- encode
def _encode(plan: _Plan, table: pa.Table) -> bytes:
    leaves = plan.leaves
    out: list[_Shredded] = [([], [], []) for _ in leaves]
    rows = table.num_rows
    for node, view, column in zip(plan.roots, plan.views, table.columns, strict=True):
        if view is not None:
            values = [v for chunk in column.chunks for v in chunk.view(view).to_pylist()]
        else:
            values = column.to_pylist()
        if node.kind == _LEAF:
            i = node.leaves[0]
            if node.optional:
                out[i] = (
                    [],
                    [0 if v is None else 1 for v in values],
                    [v for v in values if v is not None],
                )
            elif None in values:
                raise _UnsupportedError(f"null in the required column {node.name}")
            else:
                out[i] = ([], [], values)
        else:
            for v in values:
                _shred(node, v, 0, 0, out)

    pages: list[bytes] = [_MAGIC]
    chunks: list[bytes] = []
    offset = 4
    zz = _ZZ
    for leaf, (reps, defs, values) in zip(leaves, out, strict=True):
        if leaf.max_def and len(defs) > _MAX_PATTERN_LENGTH:
            levels, count, hists = _levels(leaf, reps, defs)
        elif leaf.max_def:
            key = (tuple(reps), tuple(defs)) if leaf.max_rep else tuple(defs)
            known = leaf.levels.get(key)
            if known is None:
                known = _levels(leaf, reps, defs)
                if len(leaf.levels) >= _MAX_LEVEL_PATTERNS:
                    leaf.levels.clear()
                leaf.levels[key] = known
            levels, count, hists = known
        else:
            levels, count, hists = b"", rows, _NO_HISTOGRAMS
        data, unencoded = _plain(leaf, values)
        size = len(levels) + len(data)
        if size > _MAX_PAGE_BYTES:
            raise _UnsupportedError("a page pyarrow could split")
        zsize = zz[size] if size < _NZZ else _zz(size)
        zcount = zz[count] if count < _NZZ else _zz(count)
        # PageHeader{DATA_PAGE, sizes, DataPageHeader{count, PLAIN, RLE, RLE, {}}}
        header = b"".join((b"\x15\x00\x15", zsize, b"\x15", zsize, b"\x2c\x15", zcount, _PAGE_TAIL))
        pages += (header, levels, data)
        total = len(header) + size
        zt = zz[total] if total < _NZZ else _zz(total)
        zoff = zz[offset] if offset < _NZZ else _zz(offset)
        # ColumnMetaData 5: num_values, 6 and 7: total sizes, 9: data_page_offset,
        # 13: encoding_stats, 16: size_statistics (ends with the struct's stop byte)
        if leaf.ptype == _BYTE_ARRAY:
            stats = b"".join((b"\x3c\x16", _zz(unencoded), b"\x19", hists, b"\x00\x00"))
        elif leaf.max_def:
            stats = b"".join((b"\x3c\x29", hists, b"\x00\x00"))
        else:
            stats = b"\x00"
        chunks.append(
            b"".join(
                (
                    leaf.head,
                    b"\x16",
                    zcount,
                    b"\x16",
                    zt,
                    b"\x16",
                    zt,
                    b"\x26",
                    zoff,
                    _STATS,
                    stats,
                    b"\x00",
                )
            )
        )
        offset += total
    body = offset - 4
    zbody = _zz(body)
    zrows = _zz(rows)
    footer = b"".join(
        (
            plan.prefix,
            b"\x16",
            zrows,  # 3: num_rows
            b"\x19\x1c\x19",  # 4: row_groups, one RowGroup; its 1: columns
            _list_header(len(chunks), _T_STRUCT),
            *chunks,
            b"\x16",
            zbody,  # 2: total_byte_size
            b"\x16",
            zrows,  # 3: num_rows
            b"\x26\x08\x16",  # 5: file_offset = 4; 6: total_compressed_size
            zbody,
            b"\x00",
            plan.suffix,
        )
    )
    pages += (footer, len(footer).to_bytes(4, "little"), _MAGIC)
    return b"".join(pages)


#: DataPageHeader's encodings (PLAIN values, RLE levels), empty statistics, and the
#: stop bytes of both headers.
_PAGE_TAIL = b"\x15\x00\x15\x06\x15\x06\x1c\x00\x00\x00"
#: ColumnMetaData 13: encoding_stats, one data page in PLAIN.
_STATS = b"\x49\x1c\x15\x00\x15\x00\x15\x02\x00"
#: Both histograms of a leaf whose levels are all 0: empty lists.
_NO_HISTOGRAMS = b"\x06\x19\x06"
#: Level patterns kept per leaf, and the longest kept: a commit's rows repeat a few
#: short ones, and the bound keeps the cache under ~1 MB per leaf.
_MAX_LEVEL_PATTERNS = 512
_MAX_PATTERN_LENGTH = 64


def _levels(leaf: _Leaf, reps: list[int], defs: list[int]) -> tuple[bytes, int, bytes]:
    """A leaf's page levels (each RLE run with its length), their count, and its
    ``size_statistics`` histograms (rep list, a list field header, def list)."""
    count = len(defs)
    if count > _MAX_LEVELS:
        raise _UnsupportedError("more levels than one write batch")
    levels = b""
    if leaf.max_rep:
        enc = _rle(reps, leaf.max_rep.bit_length())
        levels = len(enc).to_bytes(4, "little") + enc
    enc = _rle(defs, leaf.max_def.bit_length())
    levels += len(enc).to_bytes(4, "little") + enc
    hists = b"".join(
        (
            _hist(reps if leaf.max_rep else None, leaf.max_rep),
            b"\x19",
            _hist(defs, leaf.max_def),
        )
    )
    return levels, count, hists


def _hist(levels: list[int] | None, max_level: int) -> bytes:
    """A level histogram as a thrift list<i64>: empty for a level that is always 0."""
    if levels is None:
        return b"\x06"  # an empty list of i64
    counts = [levels.count(k) for k in range(max_level + 1)]
    return _list_header(len(counts), _T_I64) + b"".join(_zz(c) for c in counts)


def _cheaper_here(plan: _Plan, table: pa.Table) -> bool:
    """Whether this module writes ``table`` faster than pyarrow.

    pyarrow pays ~20 us per leaf and little per value; this module pays ~1.5 us
    per level entry (a value or a null) and little per leaf. The two meet at ~50
    entries per leaf (16 rows of the catalog's ``tables`` delta, whose every row
    holds ten nested columns); past half of that, pyarrow writes. Lists and maps
    are counted by their items, from Arrow's offsets, before any value is read.
    """
    rows: int = table.num_rows
    limit = _ENTRIES_PER_LEAF * len(plan.leaves)
    entries = rows * plan.flat_leaves
    if entries > limit:
        return False
    for i, leaves in plan.repeated:
        items = 0
        for chunk in table.column(i).chunks:
            offsets = chunk.offsets
            if len(offsets):
                items += int(offsets[-1].as_py()) - int(offsets[0].as_py())
        entries += max(items, rows) * leaves
    return entries <= limit


#: Level entries per leaf up to which this module writes a table (see
#: :func:`_cheaper_here`).
_ENTRIES_PER_LEAF = 24


# ------------------------------------------------------------------ the cache
_plans: list[tuple[pa.Schema, _Plan | None]] = []
#: What a value this module did not expect raises on its way through (a type the
#: schema does not promise, a number out of range): pyarrow then writes the table.
_FALLBACK = (
    _UnsupportedError,
    pa.ArrowException,
    KeyError,
    TypeError,
    ValueError,
    IndexError,
    OverflowError,
    struct.error,
)
_plans_lock = threading.Lock()


def _frame(footer: bytes) -> tuple[bytes, bytes]:
    """The prefix (fields 1-2) and suffix (fields 5 on, with the stop byte) of a
    FileMetaData that pyarrow wrote for one row group."""
    spans, end = _struct_spans(footer, 0)
    ids = [fid for fid, _ in spans]
    if ids[:5] != [1, 2, 3, 4, 5] or end != len(footer):
        raise _UnsupportedError(f"FileMetaData fields {ids}")
    return footer[: spans[2][1]], footer[spans[4][1] :]


def _learn(table: pa.Table, reference: bytes) -> _Plan | Literal[False] | None:
    """The plan for ``table``'s schema if it writes ``reference`` (pyarrow's bytes);
    None if it cannot serve the schema; False if it could not write this table (too
    many levels, say) and the next table of the schema should be tried again."""
    try:
        plan = _plan_of(table.schema)
        length = int.from_bytes(reference[-8:-4], "little")
        plan.prefix, plan.suffix = _frame(reference[-8 - length : -8])
    except _FALLBACK:
        return None
    try:
        ours = _encode(plan, table)
    except _FALLBACK:
        return False
    if ours != reference:
        log.warning(
            "smallparquet: pyarrow %s writes other bytes for this schema; small deltas "
            "of it are written by pyarrow",
            pa.__version__,
        )
        return None
    return plan


def encode_small(table: pa.Table, reference: Callable[[pa.Table], bytes]) -> bytes:
    """Parquet bytes of ``table`` equal to ``reference(table)`` (pyarrow's writer with
    the small-delta options), written here when this module knows the schema.

    ``reference`` is called for the first table of each schema (to learn the
    schema's footer and check the two agree) and for any table this module cannot
    write.
    """
    schema = table.schema
    found = next((p for p in _plans if p[0].equals(schema, check_metadata=True)), None)
    if found is None:
        data = reference(table)
        if len(_plans) < _MAX_PLANS:
            learned = _learn(table, data)
            if learned is not False:
                with _plans_lock:
                    _plans.append((schema, learned))
        return data
    plan = found[1]
    if plan is None or table.num_rows == 0:
        return reference(table)
    try:
        if _cheaper_here(plan, table):
            return _encode(plan, table)
    except _FALLBACK:
        pass
    return reference(table)
