"""Building the index: documents and their postings from catalog rows.

Owns how namespaces, tables and columns become numbered documents (``docs``
rows) and field-marked postings sorted by ``(token, doc)``, and the incremental
change that gives changed documents new numbers in delta files. The full rebuild
in rank order (:mod:`.runs`) makes its documents and postings with these same
functions, a slice of documents at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from arco.catalog.state import CatalogState
from arco.domain.store import Change, Snapshot

from .state import (
    DEAD,
    DOC_SCHEMA,
    DOCS,
    IDS,
    POSTING_SCHEMA,
    POSTINGS,
    SearchState,
)
from .tokens import MIN_PREFIX, tokenize, word_tokens

#: Delta postings past which a refresh rebuilds the index instead (a query reads
#: every delta posting of its tokens' ranges from memory; a rebuild is seconds).
REBUILD_DELTA_POSTINGS = 50_000
#: The catalog columns a document is made of.
_NS_COLUMNS = ("name", "description", "properties")
_TABLE_COLUMNS = ("id", "namespace", "name", "description", "properties", "columns")
#: Characters of a description a hit carries (the snippet).
_SNIPPET = 300
_INT16_MAX = (1 << 15) - 1


#: What separates words in an ASCII value (as ``tokens._SPLIT_RE`` does there).
_ASCII_SPLIT = "[^A-Za-z0-9]+"


def _token_pairs(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Every token of every value, and the position of the value it came from.

    The tokens of a value are those of :func:`tokenize`; a value's repeats are kept,
    since the postings' sort drops them. Arrow splits ASCII values into words, and
    each distinct word is camel-split once in Python. Values with other characters
    (where Python's and RE2's notions of a word character differ) go through
    :func:`tokenize` whole. A full build splits hundreds of thousands of names and
    descriptions, and calling ``tokenize`` once per value was half its time.
    """
    values = values.cast(pa.string())
    if len(values) == 0:
        return pa.array([], pa.string()), pa.array([], pa.int64())
    plain = pc.fill_null(pc.string_is_ascii(values), True)
    words = pc.split_pattern_regex(pc.fill_null(values, ""), _ASCII_SPLIT)
    flat = pc.list_flatten(words)
    parents = pc.list_parent_indices(words)
    keep = pc.and_(pc.not_equal(flat, ""), plain.take(parents))
    flat, parents = flat.filter(keep), parents.filter(keep)
    # A word of only lowercase letters, or only digits, is its own token; the rest
    # (camel humps, letters and digits together) are split once per distinct word.
    simple = pc.match_substring_regex(flat, "^(?:[a-z]+|[0-9]+)$")
    tokens = [flat.filter(simple)]
    owners = [parents.filter(simple)]
    humped = pc.invert(simple)
    encoded = flat.filter(humped).dictionary_encode()
    offsets = [0]
    pieces: list[str] = []
    for word in encoded.dictionary.to_pylist():
        pieces.extend(word_tokens(word))
        offsets.append(len(pieces))
    per_word = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), pa.array(pieces, pa.string())
    ).take(encoded.indices)
    tokens.append(pc.list_flatten(per_word))
    owners.append(parents.filter(humped).take(pc.list_parent_indices(per_word)))
    others = pc.indices_nonzero(pc.invert(plain))
    if len(others):
        extra: list[str] = []
        extra_owners: list[int] = []
        for i, value in zip(others.to_pylist(), values.take(others).to_pylist(), strict=True):
            mine = tokenize(value)
            extra.extend(mine)
            extra_owners.extend([i] * len(mine))
        tokens.append(pa.array(extra, pa.string()))
        owners.append(pa.array(extra_owners, pa.int64()))
    return (
        pa.concat_arrays([t.cast(pa.string()) for t in tokens]),
        pa.concat_arrays([o.cast(pa.int64()) for o in owners]),
    )


def _marked(marker: str, tokens: pa.Array) -> pa.Array:
    """``marker`` before every token (``d:`` + ``word``)."""
    return pc.binary_join_element_wise(pa.scalar(marker), tokens, "")


def _python_lower(values: pa.Array) -> pa.Array:
    """``str.lower()`` of every value, once per distinct value (Arrow's lowercasing
    differs from Python's for some non-ASCII letters, and queries use Python's)."""
    encoded = values.cast(pa.string()).dictionary_encode()
    lowered = [v.lower() for v in encoded.dictionary.to_pylist()]
    return pa.array(lowered, pa.string()).take(encoded.indices)


def _explode_words(values: pa.Array, nums: pa.Array, marker: str) -> tuple[pa.Array, pa.Array]:
    """``marker:word`` postings of every value's words, with the value's document number."""
    tokens, owners = _token_pairs(values)
    return _marked(f"{marker}:", tokens), nums.take(owners)


def _explode_names(names: pa.Array, nums: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Name postings: ``n:word`` for each word of a name, and ``n=name`` (lowercased)
    when the whole name is not itself one of its words."""
    tokens, owners = _token_pairs(names)
    whole = _python_lower(pc.fill_null(names.cast(pa.string()), ""))
    # A word equal to the whole name spans all of it: the name is that one word.
    itself = pc.unique(owners.filter(pc.equal(tokens, whole.take(owners))))
    without = pc.invert(pc.is_in(pa.array(range(len(names)), pa.int64()), value_set=itself))
    return (
        pa.concat_arrays([_marked("n:", tokens), _marked("n=", whole.filter(without))]),
        pa.concat_arrays([nums.take(owners), nums.filter(without)]),
    )


def _pair_lists(tokens: pa.Array, owners: pa.Array, n: int) -> pa.ListArray:
    """The tokens of each of ``n`` values as one list per value, from
    :func:`_token_pairs`' tokens and owners."""
    order = pc.sort_indices(owners)
    owners = owners.take(order)
    counts = [0] * n
    found = pc.value_counts(owners)
    for owner, count in zip(
        found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True
    ):
        counts[owner] = count
    offsets = pa.array(list(itertools.accumulate(counts, initial=0)), pa.int32())
    return pa.ListArray.from_arrays(offsets, tokens.take(order))


def _documents(namespaces: pa.Table, tables: pa.Table) -> pa.Table:
    """One row per document (namespaces, then tables, then columns), unnumbered:
    ``doc_id, kind, name, qualified_name, namespace, description`` (whole), plus
    ``kind_order`` and ``row`` (the document's namespace or table row)."""
    ns_names = namespaces.column("name").to_pylist()
    ns_docs = pa.table(
        {
            "doc_id": pa.array([f"ns:{n}" for n in ns_names], pa.string()),
            "kind": pa.array(["namespace"] * len(ns_names), pa.string()),
            "name": pa.array([n.rsplit(".", 1)[-1] for n in ns_names], pa.string()),
            "qualified_name": pa.array(ns_names, pa.string()),
            "namespace": pa.array(
                [n.rsplit(".", 1)[0] if "." in n else "" for n in ns_names], pa.string()
            ),
            "description": namespaces.column("description").combine_chunks().cast(pa.string()),
            "kind_order": pa.array([0] * len(ns_names), pa.int8()),
            "row": pa.array(range(len(ns_names)), pa.int32()),
        }
    )
    n = tables.num_rows
    t_ns = tables.column("namespace").combine_chunks()
    t_name = tables.column("name").combine_chunks()
    t_qualified = pc.binary_join_element_wise(t_ns, t_name, ".")
    t_ids = tables.column("id").combine_chunks().cast(pa.string())
    table_docs = pa.table(
        {
            "doc_id": pc.binary_join_element_wise("tbl:", t_ids, ""),
            "kind": pa.array(["table"] * n, pa.string()),
            "name": t_name,
            "qualified_name": t_qualified,
            "namespace": t_ns,
            "description": tables.column("description").combine_chunks(),
            "kind_order": pa.array([1] * n, pa.int8()),
            "row": pa.array(range(n), pa.int32()),
        }
    )
    columns = tables.column("columns").combine_chunks()
    if columns.null_count:
        columns = pc.fill_null(columns, pa.scalar([], columns.type))
    cols = pc.list_flatten(columns)
    parent = pc.list_parent_indices(columns).cast(pa.int32())
    c_name = pc.struct_field(cols, "name")
    c_ids = pc.struct_field(cols, "column_id").cast(pa.string())
    m = len(cols)
    col_docs = pa.table(
        {
            "doc_id": pc.binary_join_element_wise(
                "col:", pc.binary_join_element_wise(t_ids.take(parent), c_ids, ":"), ""
            ),
            "kind": pa.array(["column"] * m, pa.string()),
            "name": c_name,
            "qualified_name": pc.binary_join_element_wise(t_qualified.take(parent), c_name, "."),
            "namespace": t_ns.take(parent),
            "description": pc.struct_field(cols, "description"),
            "kind_order": pa.array([2] * m, pa.int8()),
            "row": parent,
        }
    )
    return pa.concat_tables([ns_docs, table_docs, col_docs])


def _table_q_lists(tables: pa.Table) -> pa.ListArray:
    """The ``q:`` tokens of each table row's qualified name (one list per row): a
    table's own, and the first part of each of its columns'. The tokens are
    dictionary-encoded: a full build keeps them while it makes all postings."""
    qualified = pc.binary_join_element_wise(
        tables.column("namespace").combine_chunks(), tables.column("name").combine_chunks(), "."
    )
    q_tokens, q_owners = _token_pairs(qualified)
    return _pair_lists(_marked("q:", q_tokens).dictionary_encode(), q_owners, len(qualified))


def _caret_postings(docs: pa.Table) -> pa.Table:
    """The ``^`` postings of numbered documents, unsorted: one per name and one per
    table's qualified name, with ``name_len`` and ``min_len``."""
    kind = docs.column("kind_order").combine_chunks()
    num = docs.column("doc").combine_chunks()
    name = docs.column("name").combine_chunks()
    is_table = pc.equal(kind, 1)
    # Whole-name prefixes: one "^" posting per name, matched by range.
    encoded = name.dictionary_encode()
    lowered = [v.lower() for v in encoded.dictionary.to_pylist()]
    lens = [min(len(v), _INT16_MAX) for v in lowered]
    names = pa.table(
        {
            "token": pa.array([f"^{v}" for v in lowered], pa.string()).take(encoded.indices),
            "doc": num,
            "name_len": pa.array(lens, pa.int16()).take(encoded.indices),
            "min_len": pa.array([min(n, MIN_PREFIX) for n in lens], pa.int16()).take(
                encoded.indices
            ),
        },
        schema=POSTING_SCHEMA,
    )
    # A table's qualified name, matched past its namespace and the dot.
    t_lower = [q.lower() for q in docs.column("qualified_name").filter(is_table).to_pylist()]
    qualified = pa.table(
        {
            "token": pa.array([f"^{q}" for q in t_lower], pa.string()),
            "doc": num.filter(is_table),
            "name_len": pc.fill_null(name_len_of(name.filter(is_table)), 0),
            "min_len": pa.array([min(q.rfind(".") + 2, _INT16_MAX) for q in t_lower], pa.int16()),
        },
        schema=POSTING_SCHEMA,
    )
    return pa.concat_tables([names, qualified])


def _word_postings(
    docs: pa.Table, namespaces: pa.Table, tables: pa.Table, q_lists: pa.ListArray
) -> tuple[pa.Array, pa.Array]:
    """The other postings of numbered documents (``n:``, ``n=``, ``d:``, ``p:``, ``q:``),
    unsorted and with repeats: their tokens and document numbers. ``q_lists`` is
    :func:`_table_q_lists` of all of ``tables`` (a column's table may be in another
    slice of the documents)."""
    tokens: list[pa.Array] = []
    nums: list[pa.Array] = []

    def add(t: pa.Array, d: pa.Array) -> None:
        tokens.append(t)
        nums.append(d)

    kind = docs.column("kind_order").combine_chunks()
    num = docs.column("doc").combine_chunks()
    row = docs.column("row").combine_chunks()
    name = docs.column("name").combine_chunks()
    is_ns = pc.equal(kind, 0)
    not_ns = pc.invert(is_ns)

    # Names: namespaces also get the words of their full dotted name (few: in Python).
    add(*_explode_names(name.filter(not_ns), num.filter(not_ns)))
    ns_tokens: list[str] = []
    ns_nums: list[int] = []
    for short, full, d in zip(
        name.filter(is_ns).to_pylist(),
        docs.column("qualified_name").filter(is_ns).to_pylist(),
        num.filter(is_ns).to_pylist(),
        strict=True,
    ):
        words = list(dict.fromkeys(tokenize(short) + tokenize(full)))
        whole = [w for w in dict.fromkeys([short.lower(), full.lower()]) if w not in words]
        mine = [f"n:{w}" for w in words] + [f"n={w}" for w in whole]
        ns_tokens.extend(mine)
        ns_nums.extend([d] * len(mine))
    add(pa.array(ns_tokens, pa.string()), pa.array(ns_nums, pa.int32()))

    # Descriptions and properties.
    add(*_explode_words(docs.column("description").combine_chunks(), num, "d"))
    _add_properties(add, docs, namespaces, tables)

    # Where an object lives: the words of its qualified name. A column's are its
    # table's plus its own (repeats go in the final sort).
    in_table = pc.invert(is_ns)
    q_docs = q_lists.take(row.filter(in_table))
    add(pc.list_flatten(q_docs), num.filter(in_table).take(pc.list_parent_indices(q_docs)))
    is_col = pc.equal(kind, 2)
    if pc.any(is_col).as_py():
        add(*_explode_words(name.filter(is_col), num.filter(is_col), "q"))
    return (
        pa.concat_arrays([t.cast(pa.string()) for t in tokens]),
        pa.concat_arrays([d.cast(pa.int32()) for d in nums]),
    )


def _postings(docs: pa.Table, namespaces: pa.Table, tables: pa.Table) -> pa.Table:
    """The postings of numbered documents (``docs`` of :func:`_documents` plus
    ``doc``), sorted by ``(token, doc)``, without repeats, built in one piece."""
    tokens, nums = _word_postings(docs, namespaces, tables, _table_q_lists(tables))
    n = len(tokens)
    words = pa.table(
        {
            "token": tokens,
            "doc": nums,
            "name_len": pa.nulls(n, pa.int16()),
            "min_len": pa.nulls(n, pa.int16()),
        },
        schema=POSTING_SCHEMA,
    )
    return _sort_postings(pa.concat_tables([_caret_postings(docs), words]))


def name_len_of(names: pa.Array) -> pa.Array:
    """Length of each lowercased name (Python's lowercasing), as int16."""
    return pa.array([min(len(v.lower()), _INT16_MAX) for v in names.to_pylist()], pa.int16())


def _add_properties(add: Any, docs: pa.Table, namespaces: pa.Table, tables: pa.Table) -> None:
    kind_order = docs.column("kind_order").combine_chunks()
    row = docs.column("row").combine_chunks()
    t_props = tables.column("properties")
    t_with: set[int] = set()
    if tables.num_rows:
        # Map arrays have no list_value_length kernel: lengths from the offsets.
        offsets = t_props.combine_chunks().offsets
        lengths = pc.subtract(offsets.slice(1), offsets.slice(0, len(offsets) - 1))
        t_with = set(pc.indices_nonzero(pc.greater(lengths, 0)).to_pylist())
    # Only namespaces and tables with properties reach Python: a million column
    # documents as Python ints cost more memory than the whole postings table.
    with_props = pc.or_(
        pc.equal(kind_order, 0),
        pc.and_(
            pc.equal(kind_order, 1),
            pc.is_in(row, value_set=pa.array(sorted(t_with), row.type)),
        ),
    )
    kind = kind_order.filter(with_props).to_pylist()
    rows = row.filter(with_props).to_pylist()
    nums = docs.column("doc").combine_chunks().filter(with_props).to_pylist()
    ns_props = namespaces.column("properties").to_pylist()
    tokens: list[str] = []
    out: list[int] = []
    for k, r, d in zip(kind, rows, nums, strict=True):
        if k == 0:
            props = ns_props[r]
        elif k == 1 and r in t_with:
            props = t_props[r].as_py()
        else:
            continue
        words = [t for key, value in (props or ()) for t in tokenize(key) + tokenize(value)]
        mine = [f"p:{w}" for w in dict.fromkeys(words)]
        tokens.extend(mine)
        out.extend([d] * len(mine))
    add(pa.array(tokens, pa.string()), pa.array(out, pa.int32()))


def _sort_postings(table: pa.Table) -> pa.Table:
    """Postings in ``(token, doc)`` order, repeats dropped. Sorted as one int64 key
    (the token's rank among the distinct tokens, then the document): several times
    faster than a sort on the strings."""
    if table.num_rows == 0:
        return table
    tokens = table.column("token").combine_chunks()
    distinct = pc.unique(tokens)
    distinct = distinct.take(pc.sort_indices(distinct))
    rank = pc.index_in(tokens, value_set=distinct).cast(pa.int64())
    key = pc.add(pc.multiply(rank, 1 << 31), table.column("doc").combine_chunks().cast(pa.int64()))
    order = pc.sort_indices(key)
    key = key.take(order)
    n = len(key)
    keep = pa.concat_arrays([pa.array([True]), pc.not_equal(key.slice(1), key.slice(0, n - 1))])
    order = order.filter(keep)
    return pa.table(
        {
            "token": distinct.take(pc.divide(key.filter(keep), 1 << 31)),
            "doc": table.column("doc").take(order),
            "name_len": table.column("name_len").take(order),
            "min_len": table.column("min_len").take(order),
        },
        schema=POSTING_SCHEMA,
    )


def _doc_rows(docs: pa.Table) -> pa.Table:
    """The ``docs`` table's rows of numbered documents (description cut to the snippet)."""
    desc = docs.column("description").combine_chunks()
    snippet = pc.utf8_slice_codeunits(desc, 0, _SNIPPET)
    snippet = pc.if_else(pc.equal(snippet, ""), pa.scalar(None, pa.string()), snippet)
    return pa.table(
        {
            "doc": docs.column("doc"),
            "doc_id": docs.column("doc_id"),
            "kind": docs.column("kind").cast(pa.string()),
            "name": docs.column("name"),
            "qualified_name": docs.column("qualified_name"),
            "namespace": docs.column("namespace").cast(pa.string()),
            "description": snippet,
        },
        schema=DOC_SCHEMA,
    )


def document_ids(
    namespaces: Collection[str], table_ids: Collection[str]
) -> tuple[list[str], list[str]]:
    """The document ids of these namespaces and tables, and the id prefixes of the
    tables' columns."""
    exact = [f"ns:{n}" for n in namespaces] + [f"tbl:{t}" for t in table_ids]
    return exact, [f"col:{t}:" for t in table_ids]


def incremental_change(
    snap: Snapshot[SearchState],
    namespaces: dict[str, dict[str, Any] | None],
    table_ids: dict[str, dict[str, Any] | None],
    old: dict[str, int],
) -> Change | None:
    """The change that indexes the given catalog rows (None: rebuild instead).

    A changed document gets a new number: its old number (``old``: the live numbers
    of the changed documents' ids) goes to ``dead`` (its postings stay in place but
    no query returns them) and its new postings and row go to delta files.
    """
    meta = snap.manifest.meta if snap.manifest else {}
    ns_rows = [r for r in namespaces.values() if r is not None]
    t_rows = [r for r in table_ids.values() if r is not None]
    ns_schema = pa.schema([CatalogState.TABLES["namespaces"].schema.field(c) for c in _NS_COLUMNS])
    t_schema = pa.schema([CatalogState.TABLES["tables"].schema.field(c) for c in _TABLE_COLUMNS])
    ns_table = pa.Table.from_pylist(
        [{c: r[c] for c in _NS_COLUMNS} for r in ns_rows], schema=ns_schema
    )
    t_table = pa.Table.from_pylist(
        [{c: r[c] for c in _TABLE_COLUMNS} for r in t_rows], schema=t_schema
    )
    docs = _documents(ns_table, t_table)
    first = int(meta.get("next_doc", 0))
    docs = docs.append_column("doc", pa.array(range(first, first + docs.num_rows), pa.int32()))
    postings = _postings(docs, ns_table, t_table)
    pending = sum(f.rows for f in snap.files if f.table == POSTINGS and f.kind == "delta")
    if pending + postings.num_rows > REBUILD_DELTA_POSTINGS:
        return None
    change = Change()
    new_ids = set(docs.column("doc_id").to_pylist())
    for doc_id, num in old.items():
        change.upsert(DEAD, {"doc": num})
        if doc_id not in new_ids:
            change.delete(IDS, {"doc_id": doc_id, "doc": num})
    for row in postings.to_pylist():
        change.upsert(POSTINGS, row)
    for row in _doc_rows(docs).to_pylist():
        change.upsert(DOCS, row)
    for doc_id, num in zip(
        docs.column("doc_id").to_pylist(), docs.column("doc").to_pylist(), strict=True
    ):
        change.upsert(IDS, {"doc_id": doc_id, "doc": num})
    carried: dict[str, Any] = {k: meta[k] for k in ("base_docs", "kind_starts") if k in meta}
    change.meta = {**carried, "next_doc": first + docs.num_rows}
    return change
