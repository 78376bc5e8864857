"""Sets of document numbers as a query combines them: small ones as their numbers,
large ones as a dense mask over the index view's numbers.

Owns how membership is answered without hashing the large side: Arrow's ``is_in``
costs ~12 ns per probed number even against a set of four, so cutting a common
token's 20,000 documents to a query's four candidates cost ~0.2 ms; with the
token's documents as a mask the four candidates are probed by one ``take`` (~8 µs).
A mask costs one bit per document of the view (44 KB at 350,000 documents), less
than the numbers of any set of more than 1/32 of the documents, so a kept set
holds one or the other, never both. See
docs/adr/024-search-lookups-kept-per-index-version.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

EMPTY_GIDS = pa.array([], pa.int32())
#: A set of at least this many documents is kept as a mask when it is kept (below
#: it, hashing the numbers to probe them costs less than the mask's memory is worth).
MASK_MIN_DOCS = 2_048
#: Probing at least this many numbers against a set held as numbers makes a mask of
#: the set first (~0.1 ms, then ~4 ns a probe against ~15 ns a probe for ``is_in``).
PROBES_FOR_MASK = 8_192
#: ``inverse_permutation`` with a ``max_index`` is bound in pyarrow 23 and later.
_HAS_INVERSE = hasattr(pc, "InversePermutationOptions")
#: A set of at most this many numbers held as numbers is probed for a few numbers in Python.
FEW_IN_PYTHON = 64
#: Up to this many numbers, a mask is made faster bit by bit in Python.
_FEW_FOR_BITS = 256


def mask_of(gids: pa.Array, size: int) -> pa.Array:
    """A boolean array true at each of ``gids`` (repeats allowed), as long as ``size``
    or, if a number is past it, as the largest number plus one."""
    if len(gids):
        size = max(size, int(pc.max(gids).as_py()) + 1)
    if not size:
        return pa.array([], pa.bool_())
    if _HAS_INVERSE and len(gids) > _FEW_FOR_BITS:
        return pc.is_valid(pc.inverse_permutation(gids, max_index=size - 1))
    bits = bytearray((size + 7) // 8)
    for g in gids.to_pylist():
        bits[g >> 3] |= 1 << (g & 7)
    return pa.Array.from_buffers(pa.bool_(), size, [None, pa.py_buffer(bytes(bits))])


@dataclass(frozen=True)
class DocSet:
    """Distinct document numbers, held as the numbers (``gids``) or as a mask."""

    count: int
    gids: pa.Array | None = None
    mask: pa.Array | None = None

    @classmethod
    def of(cls, gids: pa.Array) -> DocSet:
        """The set of these distinct numbers, held as they are."""
        return cls(len(gids), gids=gids)

    def compact(self, size: int) -> DocSet:
        """The set held as a mask over ``size`` numbers if it is large (what is kept)."""
        if self.mask is not None or self.count < MASK_MIN_DOCS:
            return self
        assert self.gids is not None
        return DocSet(self.count, mask=mask_of(self.gids, size))

    @property
    def nbytes(self) -> int:
        """Memory held (what the cache bound counts)."""
        held = self.mask if self.mask is not None else self.gids
        return int(held.nbytes) + 64 if held is not None else 64

    def __len__(self) -> int:
        return self.count

    def member(self, probes: pa.Array) -> pa.Array:
        """Whether each of ``probes`` is in the set (a boolean array, no nulls)."""
        if self.mask is None:
            assert self.gids is not None
            if len(probes) < PROBES_FOR_MASK or not self.count:
                return pc.is_in(probes, value_set=self.gids)
            # A mask long enough for every probe, used once.
            size = int(pc.max(probes).as_py()) + 1
            return DocSet(self.count, mask=mask_of(self.gids, size)).member(probes)
        try:
            return pc.take(self.mask, probes)
        except IndexError:
            # Numbers past the mask (documents added after it was made) are not in it.
            inside = pc.less(probes, len(self.mask))
            if not len(self.mask):
                return inside
            return pc.and_(pc.take(self.mask, pc.if_else(inside, probes, 0)), inside)

    def flags(self, probes: pa.Array, listed: list[int]) -> list[bool]:
        """:meth:`member` of ``probes`` (also given as ``listed``) as a list: a small
        set held as numbers is probed in Python, without an Arrow call."""
        if self.mask is None and self.count <= FEW_IN_PYTHON:
            assert self.gids is not None
            held = set(self.gids.to_pylist())
            return [g in held for g in listed]
        found: list[bool] = self.member(probes).to_pylist()
        return found

    def ids(self, every: pa.Array | None = None) -> pa.Array:
        """The numbers (ascending when held as a mask; ``every``, if given, is the
        numbers ``0 .. n-1`` for some ``n`` at least the mask's length)."""
        if self.mask is None:
            assert self.gids is not None
            return self.gids
        return _set_bits(self.mask, every)


def _set_bits(mask: pa.Array, every: pa.Array | None) -> pa.Array:
    """The positions where ``mask`` is true, ascending (int32)."""
    if every is None or len(every) < len(mask):
        return pc.indices_nonzero(mask).cast(pa.int32())
    # Filtering the numbers costs by what it keeps; indices_nonzero by the mask's length.
    return every.slice(0, len(mask)).filter(mask)


def within(gids: pa.Array, allowed: DocSet) -> pa.Array:
    """The ``gids`` also in ``allowed`` (in their order)."""
    if not len(gids) or not len(allowed):
        return EMPTY_GIDS
    return gids.filter(allowed.member(gids))


def without(gids: pa.Array, removed: DocSet) -> pa.Array:
    """The ``gids`` not in ``removed`` (in their order)."""
    if not len(gids) or not len(removed):
        return gids
    return gids.filter(pc.invert(removed.member(gids)))


def intersect(sets: Sequence[DocSet], every: pa.Array | None = None) -> pa.Array:
    """The numbers in every one of ``sets`` (distinct, in no promised order).

    The smallest set held as numbers is probed against the others; when all are
    masks of one length they are combined bit by bit first (``every``: see
    :meth:`DocSet.ids`)."""
    if not sets or any(not len(s) for s in sets):
        return EMPTY_GIDS
    listed = sorted((s for s in sets if s.mask is None), key=len)
    masks = [s for s in sets if s.mask is not None]
    if listed:
        out = listed[0].ids()
        rest = [*listed[1:], *masks]
    else:
        first = masks[0].mask
        assert first is not None
        rest = []
        for s in masks[1:]:
            if s.mask is not None and len(s.mask) == len(first):
                first = pc.and_(first, s.mask)
            else:
                rest.append(s)
        out = _set_bits(first, every)
    for s in rest:
        if not len(out):
            break
        out = within(out, s)
    return out
