"""The full build: documents, and postings made a slice of documents at a time and
sorted as they are written, so that no more than a compact form of them is held.

Owns how a full rebuild keeps its rows between their making and their write: each
slice's word postings as a dictionary of its distinct tokens, one int32 index and
one uint16 document offset per posting; then one int64 key per posting (the
token's rank among all distinct tokens, then the number), sorted and written a
range of keys at a time by :func:`arco.domain.tableset.encode_sorted_base`. The
``^`` postings, which alone carry ``name_len`` and ``min_len``, sort before every
other token (``^`` is below the letters of the other markers) and are written
first. The ``docs`` and ``ids`` bases are made batch by batch at their write and
let go of the documents once written
(docs/adr/026-search-build-in-bounded-memory.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from arco.domain.store import Change
from arco.domain.tableset import SortedBatches

from .build import (
    _caret_postings,
    _doc_rows,
    _documents,
    _sort_postings,
    _table_q_lists,
    _word_postings,
)
from .state import DOC_SCHEMA, DOCS, ID_SCHEMA, IDS, POSTING_SCHEMA, POSTINGS, SearchState

#: Documents whose postings are made together (a slice's token strings are the
#: build's largest transient: ~12 postings a document). At most 65,536: a
#: posting's document is kept as a uint16 offset into its slice.
BUILD_CHUNK_DOCS = 32_768
#: Postings sorted together at the write: each range of keys is sorted and
#: written before the next one is gathered.
SORT_RANGE_POSTINGS = 500_000
#: Rows per record batch handed to the writer.
_BATCH = 65_536
#: A key is ``rank << _DOC_BITS | doc`` (document numbers are int32, >= 0).
_DOC_BITS = 31
_DOC_MASK = (1 << _DOC_BITS) - 1
#: One key in this many is sampled to place the boundaries of the sorted ranges.
_SAMPLE_EVERY = 256

#: A slice's word postings: its distinct tokens, each posting's index into them
#: (uint16 when they are few enough), each posting's document less the slice's
#: first (uint16), and that first document.
_Part = tuple[pa.Array, pa.Array, pa.Array, int]


def release_unused() -> None:
    """Give the memory Arrow's pool holds free back to the system. The default pools
    (mimalloc, jemalloc) keep what a step freed for later allocations, so without it
    a build's resident peak is the sum of its steps' transients, not their maximum."""
    pa.default_memory_pool().release_unused()


def full_change(
    catalog: Callable[[], tuple[pa.Table, pa.Table]],
    *,
    chunk_docs: int = BUILD_CHUNK_DOCS,
    sort_range: int = SORT_RANGE_POSTINGS,
) -> Change:
    """A rebuild of the whole index in Arrow: documents numbered in rank order
    (kind, qualified name, id), their postings sorted by ``(token, doc)``.

    ``catalog`` gives the live ``namespaces`` and ``tables`` (the columns of
    ``build._NS_COLUMNS`` and ``build._TABLE_COLUMNS``); the build holds the only
    references to them, and lets go of the tables once the documents are made.
    Postings are made ``chunk_docs`` documents at a time and sorted ``sort_range``
    at a time; the result does not depend on either.
    """
    namespaces, tables = catalog()
    docs = _documents(namespaces, tables)
    # Past this point only the tables' qualified names and properties are needed.
    names = tables.select(["namespace", "name"])
    props = tables.select(["properties"])
    del tables
    release_unused()
    order = pc.sort_indices(
        docs,
        sort_keys=[
            ("kind_order", "ascending"),
            ("qualified_name", "ascending"),
            ("doc_id", "ascending"),
        ],
    )
    columns = dict(zip(docs.column_names, docs.columns, strict=True))
    del docs
    docs = _take_columns(columns, order)
    del order
    release_unused()
    q_lists = _table_q_lists(names)
    del names
    n = docs.num_rows
    docs = docs.append_column("doc", pa.array(range(n), pa.int32()))
    postings = sorted_postings(
        docs, namespaces, props, q_lists, chunk_docs=chunk_docs, sort_range=sort_range
    )
    del q_lists
    kinds = docs.column("kind_order")
    n_ns = pc.sum(pc.equal(kinds, 0)).as_py() or 0
    n_tables = pc.sum(pc.equal(kinds, 1)).as_py() or 0
    bases: dict[str, pa.Table | SortedBatches] = {
        POSTINGS: postings,
        DOCS: _docs_base(docs),
        IDS: _ids_base(docs),
    }
    change = Change(replace=set(SearchState.TABLES), bases=bases)
    change.meta = {
        "base_docs": n,
        "next_doc": n,
        "kind_starts": [n_ns, n_ns + n_tables],
    }
    return change


def _take_columns(columns: dict[str, pa.ChunkedArray], order: pa.Array) -> pa.Table:
    """The table of ``columns`` taken in ``order``, a column at a time: each column is
    popped from ``columns`` (the caller's only reference) and let go once taken.
    Kind and namespace (a few distinct values each) are kept dictionary-encoded
    until the ``docs`` base is written."""
    taken: dict[str, pa.ChunkedArray] = {}
    for name in list(columns):
        column = columns.pop(name).take(order)
        taken[name] = column.dictionary_encode() if name in ("kind", "namespace") else column
    return pa.table(taken)


def _once(
    schema: pa.Schema, held: list[Any], batches_of: Callable[[Any], Iterator[pa.RecordBatch]]
) -> SortedBatches:
    """Sorted batches made at the write from ``held[0]``, which is let go once
    written (a second write is an error, not an empty base)."""

    def batches() -> Iterator[pa.RecordBatch]:
        if not held:
            raise RuntimeError("these rows were already written")
        yield from batches_of(held.pop())

    return SortedBatches(schema, batches)


def _docs_base(docs: pa.Table) -> SortedBatches:
    """The ``docs`` base (in number order), made at the write."""

    def batches_of(whole: pa.Table) -> Iterator[pa.RecordBatch]:
        for off in range(0, whole.num_rows, _BATCH):
            yield from _doc_rows(whole.slice(off, _BATCH)).to_batches()

    return _once(DOC_SCHEMA, [docs], batches_of)


def _ids_base(docs: pa.Table) -> SortedBatches:
    """The ``ids`` base (``doc_id`` -> number, sorted by ``doc_id``), made at the write."""
    ids = pa.table({"doc_id": docs.column("doc_id"), "doc": docs.column("doc")})
    order = pc.sort_indices(ids, sort_keys=[("doc_id", "ascending")])

    def batches_of(held: tuple[pa.Table, pa.Array]) -> Iterator[pa.RecordBatch]:
        table, positions = held
        for off in range(0, len(positions), _BATCH):
            yield from table.take(positions.slice(off, _BATCH)).cast(ID_SCHEMA).to_batches()

    return _once(ID_SCHEMA, [(ids, order)], batches_of)


def sorted_postings(
    docs: pa.Table,
    namespaces: pa.Table,
    tables: pa.Table,
    q_lists: pa.ListArray,
    *,
    chunk_docs: int = BUILD_CHUNK_DOCS,
    sort_range: int = SORT_RANGE_POSTINGS,
) -> SortedBatches:
    """The postings of numbered documents in ``(token, doc)`` order without repeats,
    as batches made while they are written: the rows
    :func:`~arco.discovery.search.build._postings` gives, in bounded memory.
    ``tables`` needs only ``properties``; ``q_lists`` is ``build._table_q_lists``."""
    chunk_docs = min(max(1, chunk_docs), 1 << 16)
    carets: list[pa.Table] = []
    parts: list[_Part] = []
    for start in range(0, docs.num_rows, chunk_docs):
        piece = docs.slice(start, chunk_docs)
        carets.append(_caret_postings(piece))
        tokens, nums = _word_postings(piece, namespaces, tables, q_lists)
        encoded = tokens.dictionary_encode()
        indices = encoded.indices
        if len(encoded.dictionary) <= 1 << 16:
            indices = indices.cast(pa.uint16())
        offsets = pc.subtract(nums, pa.scalar(start, pa.int32())).cast(pa.uint16())
        parts.append((encoded.dictionary, indices, offsets, start))
        del piece, tokens, nums, encoded, offsets
        release_unused()
    keys, distinct = _keys(parts)
    release_unused()
    caret = pa.concat_tables(carets) if carets else POSTING_SCHEMA.empty_table()
    del carets

    def batches() -> Iterator[pa.RecordBatch]:
        yield from _sort_postings(caret).to_batches(max_chunksize=_BATCH)
        for sorted_keys in _sorted_ranges(keys, sort_range):
            for off in range(0, len(sorted_keys), _BATCH):
                yield _rows(sorted_keys.slice(off, _BATCH), distinct)
            del sorted_keys
            release_unused()

    return SortedBatches(POSTING_SCHEMA, batches)


def _keys(parts: list[_Part]) -> tuple[list[pa.Array], pa.Array]:
    """Each slice's int64 keys (unsorted), and the distinct tokens in order (a key's
    rank indexes them). ``parts`` is emptied as its slices are turned into keys."""
    dictionaries = pa.concat_arrays([pa.array([], pa.string())] + [p[0] for p in parts])
    if len(dictionaries) == 0:
        parts.clear()
        return [], dictionaries
    # Ranks by a sort, not a hash: ``pc.unique`` and ``pc.index_in`` over ~400,000
    # tokens each build a hash table several times the tokens' size.
    order = pc.sort_indices(dictionaries)
    ordered = dictionaries.take(order)
    del dictionaries
    n = len(ordered)
    new = pa.concat_arrays(
        [pa.array([True]), pc.not_equal(ordered.slice(1), ordered.slice(0, n - 1))]
    )
    distinct = ordered.filter(new)
    del ordered
    # The rank of the i-th token in sorted order is the count of new tokens up to
    # it, less one; a second sort puts the ranks back in the dictionaries' order.
    rank_sorted = pc.subtract(pc.cumulative_sum(new.cast(pa.int64())), 1)
    ranks = rank_sorted.take(pc.sort_indices(order))
    del order, rank_sorted, new
    release_unused()
    keys: list[pa.Array] = []
    offset = 0
    while parts:
        dictionary, indices, docs, start = parts.pop(0)
        rank = ranks.slice(offset, len(dictionary)).take(indices)
        offset += len(dictionary)
        nums = pc.add(docs.cast(pa.int64()), pa.scalar(start, pa.int64()))
        keys.append(pc.bit_wise_or(pc.shift_left(rank, _DOC_BITS), nums))
    return keys, distinct


def _sorted_ranges(keys: list[pa.Array], size: int) -> Iterator[pa.Array]:
    """The keys sorted, repeats dropped, a range of about ``size`` keys at a time
    (ranges bounded by sampled keys; each one is sorted when it is reached)."""
    total = sum(len(k) for k in keys)
    if total == 0:
        return
    ranges = max(1, -(-total // max(1, size)))
    bounds: list[int] = []
    if ranges > 1:
        sample = pa.concat_arrays(
            [k.take(pa.array(range(0, len(k), _SAMPLE_EVERY), pa.int64())) for k in keys]
        )
        ordered = sample.take(pc.sort_indices(sample)).to_pylist()
        bounds = sorted({ordered[len(ordered) * i // ranges] for i in range(1, ranges)})
    edges: list[int | None] = [None, *bounds, None]
    for lo, hi in itertools.pairwise(edges):
        parts = []
        for k in keys:
            mask = None
            if lo is not None:
                mask = pc.greater_equal(k, lo)
            if hi is not None:
                below = pc.less(k, hi)
                mask = below if mask is None else pc.and_(mask, below)
            parts.append(k if mask is None else k.filter(mask))
        part = pa.concat_arrays(parts)
        del parts
        if len(part) == 0:
            continue
        part = part.take(pc.sort_indices(part))
        n = len(part)
        keep = pa.concat_arrays(
            [pa.array([True]), pc.not_equal(part.slice(1), part.slice(0, n - 1))]
        )
        yield part.filter(keep)


def _rows(keys: pa.Array, distinct: pa.Array) -> pa.RecordBatch:
    """Postings rows of sorted keys: the token of each key's rank, its number."""
    n = len(keys)
    return pa.record_batch(
        [
            distinct.take(pc.shift_right(keys, _DOC_BITS)),
            pc.bit_wise_and(keys, _DOC_MASK).cast(pa.int32()),
            pa.nulls(n, pa.int16()),
            pa.nulls(n, pa.int16()),
        ],
        schema=POSTING_SCHEMA,
    )
