"""Search over namespace, table and column names, descriptions and properties.

The index is the ``search`` domain (docs/adr/005-search-index.md, layout of
docs/adr/021-search-postings-by-row-group.md). Its ``postings`` base is sorted by
``(token, doc)`` in row groups whose token ranges, byte ranges and SHA-256 the
manifest indexes, so a query fetches only the groups that hold its tokens (one
token, or a range of tokens for a prefix) by ranged reads and checks each
against its hash. Documents are numbered in rank order (kind, then qualified
name, then id); their details live in the ``docs`` table (sorted by number) and
are read only for the page of hits. An incremental refresh writes small delta
files: postings and documents of new document numbers, the numbers that are no
longer live (``dead``) and the id -> number map (``ids``); queries consult them
too, and a refresh rebuilds the index in full once they grow.

Posting tokens carry a field marker: ``n:`` a word of the name, ``n=`` the whole
lowercased name (matched exactly only), ``d:`` a word of the description, ``p:``
of a property, ``q:`` of the qualified name, ``^`` the whole lowercased name (or
a table's qualified name), matched by prefix. A query token's prefix matches are
the tokens of the range ``{marker}:{token}...``; no prefix is posted.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc

from arco.catalog.catalog import Catalog
from arco.catalog.state import CatalogState
from arco.core.errors import IntegrityError, InvalidArgumentError, ObjectNotFoundError
from arco.core.ids import sha256_hex
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.domain import tableset
from arco.domain.lock import DEFAULT_LOCK_TTL
from arco.domain.manifest import FileEntry
from arco.domain.store import Change, DomainStore, Snapshot
from arco.domain.tableset import TableDef
from arco.ledger.folds import RowMapState

#: How long a search writer waits for another one's lease (a rebuild is long).
SEARCH_LOCK_WAIT = 360.0
MAX_PREFIX = 24
MIN_PREFIX = 2
Kind = Literal["namespace", "table", "column"]
KINDS = ("namespace", "table", "column")
_KIND_ORDER = {"namespace": 0, "table": 1, "column": 2}
#: Words are runs of letters and digits (any script); ``_`` and punctuation separate.
_SPLIT_RE = re.compile(r"[\W_]+")
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
#: Field markers of token postings and their weights: a query token equal to a token
#: of the field scores the first weight, one that only starts a token the second
#: (each below the field's whole-token weight, above the next field's).
FIELDS = (("n", 100.0, 50.0), ("d", 10.0, 6.0), ("p", 5.0, 2.0))
#: What the index was built by: an index built by another revision (tokenizer,
#: posting kinds, layout) is rebuilt in full by the next refresh. Revision 3:
#: one postings table sorted by token, read by row group (ADR 021).
INDEX_REVISION = 3
#: Delta postings past which a refresh rebuilds the index instead (a query reads
#: every delta posting of its tokens' ranges from memory; a rebuild is seconds).
REBUILD_DELTA_POSTINGS = 50_000
#: Default memory bound of one index's decoded row groups.
CACHE_BYTES = 32 << 20

POSTINGS, DOCS, IDS, DEAD = "postings", "docs", "ids", "dead"
_POSTING_SCHEMA = pa.schema(
    [
        pa.field("token", pa.string(), nullable=False),
        pa.field("doc", pa.int32(), nullable=False),
        # ``^`` postings only: the length of the lowercased name (the prefix score's
        # denominator) and the shortest query that may match by this posting.
        pa.field("name_len", pa.int16()),
        pa.field("min_len", pa.int16()),
    ]
)
_DOC_SCHEMA = pa.schema(
    [
        pa.field("doc", pa.int32(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("kind", pa.string()),
        pa.field("name", pa.string()),
        pa.field("qualified_name", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("description", pa.string()),
    ]
)
_ID_SCHEMA = pa.schema(
    [pa.field("doc_id", pa.string(), nullable=False), pa.field("doc", pa.int32(), nullable=False)]
)
_DEAD_SCHEMA = pa.schema([pa.field("doc", pa.int32(), nullable=False)])

_LEGACY_POSTING_SCHEMA = pa.schema(
    [
        pa.field("token", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("kind", pa.string()),
        pa.field("name", pa.string()),
        pa.field("qualified_name", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("description", pa.string()),
    ]
)
_LEGACY_DOC_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("tokens", pa.list_(pa.string())),
        pa.field("children", pa.list_(pa.string())),
    ]
)


def tokenize(text: str | None) -> list[str]:
    """Lowercase tokens of ``text``: splits on punctuation, dots, snake_case and camelCase."""
    if not text:
        return []
    out: list[str] = []
    for chunk in _SPLIT_RE.split(text):
        if chunk:
            out.extend(_chunk_tokens(chunk))
    return list(dict.fromkeys(out))


@functools.lru_cache(maxsize=1 << 16)
def _chunk_tokens(chunk: str) -> tuple[str, ...]:
    # Words repeat across names, columns and descriptions: a full index build
    # splits each distinct word once instead of once per occurrence.
    if not chunk.isascii():
        # camelCase and digit runs are split in ASCII words only: splitting "Größe"
        # or "café2" at its non-ASCII letters would make words nobody types.
        return (chunk.lower(),)
    return tuple(p.lower() for p in _CAMEL_RE.findall(chunk))


def token_prefixes(token: str) -> list[str]:
    """The proper prefixes of ``token`` that a query token can match
    (``MIN_PREFIX`` to ``MAX_PREFIX`` characters)."""
    return [token[:i] for i in range(MIN_PREFIX, min(len(token) - 1, MAX_PREFIX) + 1)]


def name_tokens(name: str) -> list[str]:
    """Tokens of an object name: its parts plus the whole (lowercased) name."""
    tokens = tokenize(name)
    whole = name.lower()
    return tokens if whole in tokens else [*tokens, whole]


class SearchState(RowMapState):
    """The search domain keeps nothing resident; row groups are read on demand.

    The bucket tables of revisions 1 and 2 stay declared so their manifests can
    still be read; the next refresh replaces them (a full rebuild)."""

    TABLES: ClassVar[dict[str, TableDef]] = {
        POSTINGS: TableDef(
            POSTINGS,
            _POSTING_SCHEMA,
            ("token", "doc"),
            resident=False,
            sort_key=("token", "doc"),
            group_rows=8_192,
        ),
        DOCS: TableDef(
            DOCS, _DOC_SCHEMA, ("doc",), resident=False, sort_key=("doc",), group_rows=1_024
        ),
        IDS: TableDef(
            IDS, _ID_SCHEMA, ("doc_id",), resident=False, sort_key=("doc_id",), group_rows=4_096
        ),
        DEAD: TableDef(DEAD, _DEAD_SCHEMA, ("doc",), resident=False),
        **{
            f"postings_{i:02d}": TableDef(
                f"postings_{i:02d}", _LEGACY_POSTING_SCHEMA, ("token", "doc_id"), resident=False
            )
            for i in range(64)
        },
        **{
            f"docs_{i:02d}": TableDef(
                f"docs_{i:02d}", _LEGACY_DOC_SCHEMA, ("doc_id",), resident=False
            )
            for i in range(16)
        },
    }


@dataclass(frozen=True)
class SearchHit:
    """One ranked result."""

    kind: str
    name: str
    qualified_name: str
    namespace: str
    description: str | None
    score: float
    matched: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "name": self.name,
            "qualified_name": self.qualified_name,
            "namespace": self.namespace,
            "description": self.description,
            "score": self.score,
            "matched": list(self.matched),
        }


@dataclass
class SearchResults:
    """A page of hits."""

    hits: list[SearchHit] = field(default_factory=list)
    total: int = 0
    next_page_token: str | None = None
    catalog_version: int = 0


# ------------------------------------------------------------------ building
#: The catalog columns a document is made of.
_NS_COLUMNS = ("name", "description", "properties")
_TABLE_COLUMNS = ("id", "namespace", "name", "description", "properties", "columns")
#: Characters of a description a hit carries (the snippet).
_SNIPPET = 300
_INT16_MAX = (1 << 15) - 1


def _name_tokens(name: str) -> list[str]:
    words = tokenize(name)
    whole = name.lower()
    return [f"n:{w}" for w in words] + ([] if whole in words else [f"n={whole}"])


def _words(marker: str, text: str) -> list[str]:
    return [f"{marker}:{w}" for w in tokenize(text)]


def _explode(values: pa.Array, nums: pa.Array, fn: Any) -> tuple[pa.Array, pa.Array]:
    """Tokens of each value (``fn`` applied once per distinct value) and the document
    number of each token: Python work grows with the distinct names and texts, not
    with the documents."""
    if len(values) == 0:
        return pa.array([], pa.string()), pa.array([], pa.int32())
    encoded = values.dictionary_encode()
    offsets = [0]
    flat: list[str] = []
    for value in encoded.dictionary.to_pylist():
        flat.extend(fn(value))
        offsets.append(len(flat))
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, pa.string()))
    per_doc = lists.take(encoded.indices)
    return pc.list_flatten(per_doc), nums.take(pc.list_parent_indices(per_doc))


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


def _postings(docs: pa.Table, namespaces: pa.Table, tables: pa.Table) -> pa.Table:
    """The postings of numbered documents (``docs`` of :func:`_documents` plus
    ``doc``), sorted by ``(token, doc)``, without repeats."""
    tokens: list[pa.Array] = []
    nums: list[pa.Array] = []
    name_len: list[pa.Array] = []
    min_len: list[pa.Array] = []

    def add(
        t: pa.Array, d: pa.Array, nl: pa.Array | None = None, ml: pa.Array | None = None
    ) -> None:
        tokens.append(t)
        nums.append(d)
        name_len.append(nl if nl is not None else pa.nulls(len(t), pa.int16()))
        min_len.append(ml if ml is not None else pa.nulls(len(t), pa.int16()))

    kind = docs.column("kind_order").combine_chunks()
    num = docs.column("doc").combine_chunks()
    row = docs.column("row").combine_chunks()
    name = docs.column("name").combine_chunks()
    qualified = docs.column("qualified_name").combine_chunks()
    description = docs.column("description").combine_chunks()
    is_ns = pc.equal(kind, 0)
    not_ns = pc.invert(is_ns)
    is_table = pc.equal(kind, 1)

    # Names: namespaces also get the words of their full dotted name (few: in Python).
    add(*_explode(name.filter(not_ns), num.filter(not_ns), _name_tokens))
    ns_tokens: list[str] = []
    ns_nums: list[int] = []
    for short, full, d in zip(
        name.filter(is_ns).to_pylist(),
        qualified.filter(is_ns).to_pylist(),
        num.filter(is_ns).to_pylist(),
        strict=True,
    ):
        words = list(dict.fromkeys(tokenize(short) + tokenize(full)))
        whole = [w for w in dict.fromkeys([short.lower(), full.lower()]) if w not in words]
        mine = [f"n:{w}" for w in words] + [f"n={w}" for w in whole]
        ns_tokens.extend(mine)
        ns_nums.extend([d] * len(mine))
    add(pa.array(ns_tokens, pa.string()), pa.array(ns_nums, pa.int32()))

    # Whole-name prefixes: one "^" posting per name, matched by range.
    encoded = name.dictionary_encode()
    lowered = [v.lower() for v in encoded.dictionary.to_pylist()]
    lens = [min(len(v), _INT16_MAX) for v in lowered]
    add(
        pa.array([f"^{v}" for v in lowered], pa.string()).take(encoded.indices),
        num,
        pa.array(lens, pa.int16()).take(encoded.indices),
        pa.array([min(n, MIN_PREFIX) for n in lens], pa.int16()).take(encoded.indices),
    )
    # A table's qualified name, matched past its namespace and the dot.
    t_q = qualified.filter(is_table).to_pylist()
    t_lower = [q.lower() for q in t_q]
    add(
        pa.array([f"^{q}" for q in t_lower], pa.string()),
        num.filter(is_table),
        pc.fill_null(name_len_of(name.filter(is_table)), 0),
        pa.array([min(q.rfind(".") + 2, _INT16_MAX) for q in t_lower], pa.int16()),
    )

    # Descriptions and properties.
    add(*_explode(description, num, functools.partial(_words, "d")))
    _add_properties(add, docs, namespaces, tables)

    # Where an object lives: the words of its qualified name. A column's are its
    # table's plus its own (repeats go in the final sort).
    t_num = num.filter(is_table)
    q_table = _token_lists(qualified.filter(is_table), functools.partial(_words, "q"))
    add(pc.list_flatten(q_table), t_num.take(pc.list_parent_indices(q_table)))
    is_col = pc.equal(kind, 2)
    c_num = num.filter(is_col)
    if len(c_num):
        # Tables come before their columns in ``docs`` and ``row`` is the table row:
        # the i-th table document is table row i only when all tables are present.
        t_rows = row.filter(is_table)
        position = pc.index_in(row.filter(is_col), value_set=t_rows)
        q_cols = q_table.take(position)
        add(pc.list_flatten(q_cols), c_num.take(pc.list_parent_indices(q_cols)))
        add(*_explode(name.filter(is_col), c_num, functools.partial(_words, "q")))

    out = pa.table(
        {
            "token": pa.concat_arrays([t.cast(pa.string()) for t in tokens]),
            "doc": pa.concat_arrays([d.cast(pa.int32()) for d in nums]),
            "name_len": pa.concat_arrays([x.cast(pa.int16()) for x in name_len]),
            "min_len": pa.concat_arrays([x.cast(pa.int16()) for x in min_len]),
        }
    )
    return _sort_postings(out)


def name_len_of(names: pa.Array) -> pa.Array:
    """Length of each lowercased name (Python's lowercasing), as int16."""
    return pa.array([min(len(v.lower()), _INT16_MAX) for v in names.to_pylist()], pa.int16())


def _token_lists(values: pa.Array, fn: Any) -> pa.ListArray:
    encoded = values.dictionary_encode()
    offsets = [0]
    flat: list[str] = []
    for value in encoded.dictionary.to_pylist():
        flat.extend(fn(value))
        offsets.append(len(flat))
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, pa.string()))
    return lists.take(encoded.indices)


def _add_properties(add: Any, docs: pa.Table, namespaces: pa.Table, tables: pa.Table) -> None:
    kind = docs.column("kind_order").to_pylist()
    rows = docs.column("row").to_pylist()
    nums = docs.column("doc").to_pylist()
    ns_props = namespaces.column("properties").to_pylist()
    t_props = tables.column("properties")
    t_with: set[int] = set()
    if tables.num_rows:
        # Map arrays have no list_value_length kernel: lengths from the offsets.
        offsets = t_props.combine_chunks().offsets
        lengths = pc.subtract(offsets.slice(1), offsets.slice(0, len(offsets) - 1))
        t_with = {i for i, v in enumerate(pc.greater(lengths, 0).to_pylist()) if v}
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
        schema=_POSTING_SCHEMA,
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
            "kind": docs.column("kind"),
            "name": docs.column("name"),
            "qualified_name": docs.column("qualified_name"),
            "namespace": docs.column("namespace"),
            "description": snippet,
        },
        schema=_DOC_SCHEMA,
    )


def _fold(
    tdef: TableDef,
    base: pa.Table | None,
    deltas: Sequence[pa.Table],
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Live rows from a base and deltas (oldest first), vectorised: the newest row of
    each key wins, deletes drop it. ``columns`` (with the key) limits what is kept."""
    names = list(columns) if columns is not None else tdef.schema.names
    schema = pa.schema([tdef.delta_schema.field(n) for n in [*names, "_op", "_version"]])
    if not deltas:
        if base is None:
            return pa.schema([schema.field(n) for n in names]).empty_table()
        return base.select(names)
    parts: list[pa.Table] = []
    if base is not None:
        n = base.num_rows
        parts.append(
            base.select(names)
            .append_column("_op", pa.array([tableset.OP_UPSERT] * n, pa.int8()))
            .append_column("_version", pa.array([0] * n, pa.int64()))
            .cast(schema)
        )
    parts.extend(d.select([*names, "_op", "_version"]).cast(schema) for d in deltas)
    rows = pa.concat_tables(parts).combine_chunks()
    rows = rows.append_column("_pos", pa.array(range(rows.num_rows), pa.int64()))
    last = rows.group_by(list(tdef.key), use_threads=False).aggregate([("_pos", "max")])
    newest = last.column("_pos_max")
    rows = rows.take(pc.take(newest, pc.sort_indices(newest)))
    rows = rows.filter(pc.not_equal(rows.column("_op"), tableset.OP_DELETE))
    return rows.select(names)


# ------------------------------------------------------------------ reading
_EMPTY_GIDS = pa.array([], pa.int32())


class _Sparse:
    """A read-only file of ``size`` bytes of which only some ranges are known (the
    ones fetched and verified); Parquet reads only those for one row group."""

    def __init__(self, size: int, ranges: dict[int, bytes]) -> None:
        self.size = size
        self.ranges = ranges
        self.pos = 0
        self.closed = False

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else (self.pos + pos if whence == 1 else self.size + pos)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        out = bytearray(end - self.pos)
        for start, data in self.ranges.items():
            lo, hi = max(start, self.pos), min(start + len(data), end)
            if lo < hi:
                out[lo - self.pos : hi - self.pos] = data[lo - start : hi - start]
        self.pos = end
        return bytes(out)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


_HIT_SCHEMA = pa.schema(
    [
        pa.field("doc", pa.int32(), nullable=False),
        pa.field("exact", pa.bool_(), nullable=False),
        pa.field("name_len", pa.int16()),
        pa.field("min_len", pa.int16()),
    ]
)


@dataclass(frozen=True)
class _Runs:
    """A postings row group in compact form: its distinct tokens (sorted, as the group
    is), the row where each one's postings end, and the rows' numbers (and the ``^``
    lengths, in groups that have them). A token's postings are a zero-copy slice
    found by binary search, and a group costs ~4 bytes per posting plus its distinct
    tokens instead of a string per posting."""

    tokens: pa.Array
    ends: pa.Array
    docs: pa.Array
    name_len: pa.Array | None
    min_len: pa.Array | None

    @classmethod
    def of(cls, group: pa.Table) -> _Runs:
        """The compact form of a decoded postings group (sorted by token)."""
        encoded = pc.run_end_encode(group.column("token").combine_chunks(), pa.int32())
        lens = [group.column(c).combine_chunks() for c in ("name_len", "min_len")]
        with_lens = any(a.null_count < len(a) for a in lens)
        return cls(
            tokens=encoded.values,
            ends=encoded.run_ends,
            docs=group.column("doc").combine_chunks(),
            name_len=lens[0] if with_lens else None,
            min_len=lens[1] if with_lens else None,
        )

    @property
    def nbytes(self) -> int:
        """Memory held (what the cache bound counts)."""
        extra = sum(a.nbytes for a in (self.name_len, self.min_len) if a is not None)
        return int(self.tokens.nbytes + self.ends.nbytes + self.docs.nbytes + extra)

    def _first(self, key: str, prefix: bool) -> int:
        """The first distinct token past ``key`` (past every token starting with it
        when ``prefix``): binary search, tokens in code point order (UTF-8 byte order)."""
        lo, hi = 0, len(self.tokens)
        while lo < hi:
            mid = (lo + hi) // 2
            token = self.tokens[mid].as_py()
            if token < key or token == key or (prefix and token.startswith(key)):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def find(self, key: str, prefix: bool) -> pa.Table:
        """The postings of ``key`` (and of the tokens starting with it, when ``prefix``),
        ``key``'s own first; columns of ``_HIT_SCHEMA``."""
        n = len(self.tokens)
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if self.tokens[mid].as_py() < key:
                lo = mid + 1
            else:
                hi = mid
        first = lo
        if first == n:
            return _HIT_SCHEMA.empty_table()
        exact = self.tokens[first].as_py() == key
        last = self._first(key, prefix) if prefix else first + (1 if exact else 0)
        if last == first:
            return _HIT_SCHEMA.empty_table()
        row = self.ends[first - 1].as_py() if first else 0
        mid_row = self.ends[first].as_py() if exact else row
        end = self.ends[last - 1].as_py()
        count = end - row
        flags = pa.concat_arrays(
            [pa.repeat(pa.scalar(True), mid_row - row), pa.repeat(pa.scalar(False), end - mid_row)]
        )
        return pa.table(
            {
                "doc": self.docs.slice(row, count),
                "exact": flags,
                "name_len": (
                    self.name_len.slice(row, count)
                    if self.name_len is not None
                    else pa.nulls(count, pa.int16())
                ),
                "min_len": (
                    self.min_len.slice(row, count)
                    if self.min_len is not None
                    else pa.nulls(count, pa.int16())
                ),
            },
            schema=_HIT_SCHEMA,
        )


@dataclass
class _Sorted:
    """A base sorted by its table's sort key, read by row group (ADR 015 index)."""

    entry: FileEntry
    firsts: list[Any]
    lasts: list[Any]

    @classmethod
    def of(cls, entry: FileEntry | None, tdef: TableDef) -> _Sorted | None:
        index = entry.index if entry is not None else None
        if entry is None or index is None:
            return None
        if (
            index.get("format") != tableset.INDEX_FORMAT
            or tuple(index["sort_key"]) != tdef.sort_key
        ):
            raise IntegrityError(f"{entry.path}: unexpected index layout")
        return cls(entry, [g[0][0] for g in index["groups"]], [g[1][0] for g in index["groups"]])

    def groups_for(self, lo: Any, prefix: str | None = None, hi: Any = None) -> list[int]:
        """Groups that may hold keys from ``lo`` (to ``hi``, or starting with ``prefix``)."""
        out = []
        g = bisect.bisect_left(self.lasts, lo)
        while g < len(self.firsts):
            first = self.firsts[g]
            if hi is not None:
                if first > hi:
                    break
            elif prefix is not None:
                if first > lo and not first.startswith(prefix):
                    break
            elif first > lo:
                break
            out.append(g)
            g += 1
        return out


@dataclass
class _View:
    """What queries need of one index manifest, besides the base row groups."""

    manifest_key: str | None
    version: int
    meta: dict[str, Any]
    postings: _Sorted | None
    docs: _Sorted | None
    ids: _Sorted | None
    delta_postings: pa.Table
    delta_docs: pa.Table
    dead: pa.Array
    id_deltas: list[pa.Table]

    @property
    def base_docs(self) -> int:
        """Documents numbered in rank order by the last full build."""
        return int(self.meta.get("base_docs", 0))


class _GroupCache:
    """Decoded row groups (and parsed footers) by SHA-256, bounded by bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.nbytes = 0
        self.items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self.lock:
            hit = self.items.get(key)
            if hit is None:
                return None
            self.items.move_to_end(key)
            return hit[0]

    def put(self, key: str, value: Any, size: int) -> None:
        with self.lock:
            if key in self.items:
                return
            self.items[key] = (value, size)
            self.nbytes += size
            while len(self.items) > 1 and self.nbytes > self.limit:
                _, (_, dropped) = self.items.popitem(last=False)
                self.nbytes -= dropped


class SearchIndex:
    """Maintains and queries the search domain of one scope."""

    def __init__(
        self,
        store: ObjectStore,
        scope: Scope,
        *,
        catalog: Catalog | None = None,
        max_staleness: float = 0.0,
        lock_ttl: float = DEFAULT_LOCK_TTL,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.catalog = catalog or Catalog(store, scope)
        # A full rebuild of a large catalog is one long commit; its lease is renewed
        # while it runs (a crashed indexer only delays the next one by the TTL).
        self.domain: DomainStore[SearchState] = DomainStore(
            store,
            scope,
            "search",
            SearchState,
            max_staleness=max_staleness,
            lock_ttl=lock_ttl,
            lock_wait=SEARCH_LOCK_WAIT,
        )
        #: Decoded row groups, least recently used dropped first past ``cache_bytes``.
        self.groups = _GroupCache(cache_bytes)
        self._view: _View | None = None
        self._view_lock = threading.Lock()

    @property
    def cache_bytes(self) -> int:
        """Memory the decoded row groups may hold."""
        return self.groups.limit

    # ------------------------------------------------------------- indexing
    def indexed_version(self) -> int:
        """The catalog version the index reflects."""
        return _indexed(self.domain.read())

    def refresh(self) -> int:
        """Bring the index up to the latest catalog version; returns that version."""
        return self._refresh()[0]

    def _refresh(self) -> tuple[int, Snapshot[SearchState]]:
        """``refresh`` plus the index snapshot it leaves (saves a query a pointer read).

        Reads only the catalog's head (pointer and manifest): an index that is current
        costs no catalog state at all, and a refresh reads the catalog's files in
        Arrow without folding them into the shared :class:`Catalog`.
        """
        head = self.catalog.domain.read_head()
        current = self.domain.read()
        if _indexed(current) >= head.version:
            return head.version, current
        files = head.manifest.files if head.manifest is not None else ()

        def mutate(snap: Snapshot[SearchState]) -> Change:
            indexed = _indexed(snap)
            if indexed >= head.version:
                return Change()
            changed = self._changes(indexed, files)
            change: Change | None = None
            if changed is not None:
                change = self._incremental(snap, *changed)
            if change is None:
                change = self._full(*self._catalog_tables(files))
            change.meta = {
                **(change.meta or {}),
                "catalog_version": head.version,
                "revision": INDEX_REVISION,
            }
            change.operation = {"ops": [{"op": "index", "from": indexed, "to": head.version}]}
            return change

        return head.version, self.domain.commit(mutate).snapshot

    def _changes(
        self, indexed: int, files: Sequence[FileEntry]
    ) -> tuple[dict[str, dict[str, Any] | None], dict[str, dict[str, Any] | None]] | None:
        """The namespaces (by name) and tables (by id) changed after ``indexed``, each
        with its newest row (None once deleted); None when only a full rebuild can say.

        Every change after ``indexed`` is in a delta file newer than it (a newer base
        means a rewrite folded deltas away: rebuild), and the newest row of a key
        among those deltas is its current row.
        """
        if indexed == 0:
            return None
        found: dict[str, dict[str, tuple[int, dict[str, Any] | None]]] = {
            "namespaces": {},
            "tables": {},
        }
        for entry in files:
            if entry.max_version <= indexed:
                continue
            if entry.kind == "base":
                return None
            if entry.table not in found:
                continue
            data = self.catalog.domain.load_file(entry)
            newer = data.filter(pc.greater(data.column("_version"), indexed))
            key = "name" if entry.table == "namespaces" else "id"
            rows = found[entry.table]
            for row in newer.to_pylist():
                version = row["_version"]
                seen = rows.get(row[key])
                if seen is None or version >= seen[0]:
                    live = row["_op"] != tableset.OP_DELETE
                    rows[row[key]] = (version, row if live else None)
        return (
            {k: v[1] for k, v in found["namespaces"].items()},
            {k: v[1] for k, v in found["tables"].items()},
        )

    def _catalog_tables(self, files: Sequence[FileEntry]) -> tuple[pa.Table, pa.Table]:
        """The live namespaces and tables of a catalog version, folded in Arrow (only
        the columns the index needs)."""
        out = []
        for name, columns in (("namespaces", _NS_COLUMNS), ("tables", _TABLE_COLUMNS)):
            tdef = CatalogState.TABLES[name]
            entries = [f for f in files if f.table == name]
            base = next((f for f in entries if f.kind == "base"), None)
            deltas = sorted((f for f in entries if f.kind == "delta"), key=lambda f: f.min_version)
            load = self.catalog.domain.load_file
            out.append(
                _fold(
                    tdef,
                    load(base) if base is not None else None,
                    [load(d) for d in deltas],
                    columns,
                )
            )
        return out[0], out[1]

    @staticmethod
    def _full(namespaces: pa.Table, tables: pa.Table) -> Change:
        """A rebuild of the whole index in Arrow: documents numbered in rank order
        (kind, qualified name, id), their postings sorted by ``(token, doc)``."""
        docs = _documents(namespaces, tables)
        order = pc.sort_indices(
            docs,
            sort_keys=[
                ("kind_order", "ascending"),
                ("qualified_name", "ascending"),
                ("doc_id", "ascending"),
            ],
        )
        docs = docs.take(order)
        n = docs.num_rows
        docs = docs.append_column("doc", pa.array(range(n), pa.int32()))
        postings = _postings(docs, namespaces, tables)
        ids = pa.table({"doc_id": docs.column("doc_id"), "doc": docs.column("doc")})
        ids = ids.take(pc.sort_indices(ids, sort_keys=[("doc_id", "ascending")]))
        kinds = docs.column("kind_order")
        n_ns = pc.sum(pc.equal(kinds, 0)).as_py() or 0
        n_tables = pc.sum(pc.equal(kinds, 1)).as_py() or 0
        bases = {POSTINGS: postings, DOCS: _doc_rows(docs), IDS: ids.cast(_ID_SCHEMA)}
        change = Change(replace=set(SearchState.TABLES), bases=bases)
        change.meta = {
            "base_docs": n,
            "next_doc": n,
            "kind_starts": [n_ns, n_ns + n_tables],
        }
        return change

    def _incremental(
        self,
        snap: Snapshot[SearchState],
        namespaces: dict[str, dict[str, Any] | None],
        table_ids: dict[str, dict[str, Any] | None],
    ) -> Change | None:
        """The change that indexes the given catalog rows (None: rebuild instead).

        A changed document gets a new number: its old number goes to ``dead`` (its
        postings stay in place but no query returns them) and its new postings and
        row go to delta files.
        """
        view = self._view_of(snap)
        meta = snap.manifest.meta if snap.manifest else {}
        if view.postings is None and not meta.get("base_docs"):
            return None
        exact = [f"ns:{n}" for n in namespaces] + [f"tbl:{t}" for t in table_ids]
        old = self._old_ids(view, exact, [f"col:{t}:" for t in table_ids])
        ns_rows = [r for r in namespaces.values() if r is not None]
        t_rows = [r for r in table_ids.values() if r is not None]
        ns_schema = pa.schema(
            [CatalogState.TABLES["namespaces"].schema.field(c) for c in _NS_COLUMNS]
        )
        t_schema = pa.schema(
            [CatalogState.TABLES["tables"].schema.field(c) for c in _TABLE_COLUMNS]
        )
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

    def _old_ids(
        self, view: _View, exact: Sequence[str], prefixes: Sequence[str]
    ) -> dict[str, int]:
        """The live document numbers of these ids (and of ids starting with a prefix)."""
        found: dict[str, int] = {}
        tdef = SearchState.TABLES[IDS]
        if view.ids is not None:
            for key, prefix in [(k, None) for k in exact] + [(p, p) for p in prefixes]:
                for g in view.ids.groups_for(key, prefix):
                    group = self._group(view.ids, g)
                    ids = group.column("doc_id")
                    mask = pc.equal(ids, key) if prefix is None else pc.starts_with(ids, prefix)
                    for row in group.filter(mask).to_pylist():
                        found[row["doc_id"]] = row["doc"]
        if view.id_deltas:
            touched = set()
            for d in view.id_deltas:
                touched.update(d.column("doc_id").to_pylist())
            for doc_id in touched:
                found.pop(doc_id, None)
            live = _fold(tdef, None, view.id_deltas)
            for row in live.to_pylist():
                doc_id = row["doc_id"]
                if doc_id in exact or any(doc_id.startswith(p) for p in prefixes):
                    found[doc_id] = row["doc"]
        return found

    # --------------------------------------------------------------- reading
    def _view_of(self, snap: Snapshot[SearchState]) -> _View:
        """The query-side view of an index snapshot (cached for its manifest)."""
        with self._view_lock:
            view = self._view
            if view is not None and view.manifest_key == snap.manifest_key:
                return view
            by_table: dict[str, list[FileEntry]] = {}
            for f in snap.files:
                by_table.setdefault(f.table, []).append(f)

            def base(table: str) -> FileEntry | None:
                return next((f for f in by_table.get(table, ()) if f.kind == "base"), None)

            def deltas(table: str) -> list[pa.Table]:
                entries = sorted(
                    (f for f in by_table.get(table, ()) if f.kind == "delta"),
                    key=lambda f: f.min_version,
                )
                return [self.domain.load_file(f) for f in entries]

            tables = SearchState.TABLES
            delta_postings = _fold(tables[POSTINGS], None, deltas(POSTINGS))
            if delta_postings.num_rows:
                delta_postings = delta_postings.sort_by(
                    [("token", "ascending"), ("doc", "ascending")]
                )
            dead_base = base(DEAD)
            dead = (
                _fold(
                    tables[DEAD],
                    self.domain.load_file(dead_base) if dead_base is not None else None,
                    deltas(DEAD),
                )
                .column("doc")
                .combine_chunks()
            )
            view = _View(
                manifest_key=snap.manifest_key,
                version=_indexed(snap),
                meta=dict(snap.manifest.meta) if snap.manifest else {},
                postings=_Sorted.of(base(POSTINGS), tables[POSTINGS]),
                docs=_Sorted.of(base(DOCS), tables[DOCS]),
                ids=_Sorted.of(base(IDS), tables[IDS]),
                delta_postings=delta_postings,
                delta_docs=_fold(tables[DOCS], None, deltas(DOCS)),
                dead=dead,
                id_deltas=deltas(IDS),
            )
            self._view = view
            return view

    def _fetch(self, entry: FileEntry, start: int, length: int, sha256: str) -> bytes:
        """Bytes ``start .. start+length`` of a state file, checked against the index."""
        if not self.domain.keys.is_within(entry.path):
            raise IntegrityError(f"{entry.path}: state file outside scope {self.domain.scope}")
        try:
            data = self.domain.store.get_range(entry.path, start, start + length)
        except ObjectNotFoundError as exc:
            raise IntegrityError(f"{entry.path}: state file is missing") from exc
        if len(data) != length or sha256_hex(data) != sha256:
            raise IntegrityError(
                f"{entry.path}: bytes {start}-{start + length} do not match the manifest's index"
            )
        return bytes(data)

    def _group(self, base: _Sorted, g: int, runs: bool = False) -> Any:
        """Row group ``g`` of a sorted base: fetched by range, verified, decoded (cached).

        With ``runs``, a postings group is kept (and returned) as :class:`_Runs`."""
        entry = base.entry
        assert entry.index is not None
        f_start, f_len, f_sha = entry.index["footer"]
        _, _, g_start, g_len, g_sha, _ = entry.index["groups"][g]
        # By content hash (with the group's number: equal bytes at another place of
        # another file would decode by other metadata).
        key = f"{g_sha}:{f_sha}:{g}{':runs' if runs else ''}"
        hit = self.groups.get(key)
        if hit is not None:
            return hit
        meta = self.groups.get(f_sha)
        if meta is None:
            footer = self._fetch(entry, f_start, f_len, f_sha)
            sparse = _Sparse(entry.size, {f_start: footer})
            meta = tableset.parquet_reader(pa.PythonFile(sparse, mode="r")).metadata
            self.groups.put(f_sha, meta, len(footer) * 4)
        data = self._fetch(entry, g_start, g_len, g_sha)
        reader = tableset.parquet_reader(
            pa.PythonFile(_Sparse(entry.size, {g_start: data}), mode="r"), meta
        )
        table: pa.Table = reader.read_row_group(g, use_threads=False)
        table = table.combine_chunks()
        if runs:
            compact = _Runs.of(table)
            self.groups.put(key, compact, compact.nbytes)
            return compact
        self.groups.put(key, table, table.nbytes)
        return table

    def _postings(self, view: _View, token: str, prefix: bool) -> pa.Table:
        """Live postings of ``token`` (or of every token starting with it): ``doc``,
        ``exact`` (the posting's token is ``token`` itself), ``name_len``, ``min_len``."""
        parts = []
        if view.postings is not None:
            for g in view.postings.groups_for(token, token if prefix else None):
                part = self._group(view.postings, g, runs=True).find(token, prefix)
                if part.num_rows:
                    parts.append(part)
        if view.delta_postings.num_rows:
            col = view.delta_postings.column("token")
            mask = pc.starts_with(col, token) if prefix else pc.equal(col, token)
            part = view.delta_postings.filter(mask)
            if part.num_rows:
                parts.append(
                    pa.table(
                        {
                            "doc": part.column("doc"),
                            "exact": pc.equal(part.column("token"), token),
                            "name_len": part.column("name_len"),
                            "min_len": part.column("min_len"),
                        },
                        schema=_HIT_SCHEMA,
                    )
                )
        if not parts:
            return _HIT_SCHEMA.empty_table()
        out = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        if len(view.dead):
            out = out.filter(pc.invert(pc.is_in(out.column("doc"), value_set=view.dead)))
        return out

    def _docs(self, view: _View, gids: pa.Array) -> pa.Table:
        """The ``docs`` rows of these document numbers (any order)."""
        wanted = pc.unique(gids)
        parts = []
        delta = view.delta_docs
        if delta.num_rows:
            part = delta.filter(pc.is_in(delta.column("doc"), value_set=wanted))
            if part.num_rows:
                parts.append(part)
                wanted = pc.filter(
                    wanted, pc.invert(pc.is_in(wanted, value_set=part.column("doc")))
                )
        if len(wanted) and view.docs is not None:
            groups: set[int] = set()
            firsts = view.docs.firsts
            for num in wanted.to_pylist():
                groups.add(max(0, bisect.bisect_right(firsts, num) - 1))
            for g in sorted(groups):
                group = self._group(view.docs, g)
                part = group.filter(pc.is_in(group.column("doc"), value_set=wanted))
                if part.num_rows:
                    parts.append(part)
        if not parts:
            return _DOC_SCHEMA.empty_table()
        return pa.concat_tables([p.select(_DOC_SCHEMA.names).cast(_DOC_SCHEMA) for p in parts])

    def _kinds(self, view: _View, gids: pa.Array) -> pa.Array:
        """Each document's kind order (0 namespace, 1 table, 2 column)."""
        t0, c0 = view.meta.get("kind_starts", [0, 0])
        kinds = pc.add(
            pc.greater_equal(gids, t0).cast(pa.int8()), pc.greater_equal(gids, c0).cast(pa.int8())
        )
        late = pc.greater_equal(gids, view.base_docs)
        if pc.any(late).as_py():
            rows = self._docs(view, pc.filter(gids, late))
            order = pc.index_in(rows.column("kind"), value_set=pa.array(KINDS))
            at = pc.index_in(gids, value_set=rows.column("doc"))
            kinds = pc.if_else(late, pc.take(order.cast(pa.int8()), at), kinds)
        return kinds

    # --------------------------------------------------------------- query
    def search(
        self,
        query: str,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        limit: int = 20,
        page_token: str | None = None,
        refresh: bool = True,
    ) -> SearchResults:
        """Ranked hits for ``query`` (case-insensitive; all query tokens must match)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgumentError("search query must not be empty")
        if len(query) > 512:
            raise InvalidArgumentError("search query is longer than 512 characters")
        if kind is not None and kind not in KINDS:
            raise InvalidArgumentError(f"kind must be one of {', '.join(KINDS)}")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidArgumentError("limit must be between 1 and 1000")
        offset = 0
        if page_token:
            if not page_token.isdigit() or len(page_token) > 9:
                raise InvalidArgumentError("page token is malformed")
            offset = int(page_token)
        if refresh:
            version, snap = self._refresh()
        else:
            snap = self.domain.read()
            version = _indexed(snap)
        if snap.manifest is None or snap.manifest.meta.get("revision") != INDEX_REVISION:
            # Nothing indexed yet, or by a layout this code does not query: the next
            # refresh rebuilds it.
            return SearchResults([], 0, None, version)
        view = self._view_of(snap)
        return self._search(view, query, kind, namespace, limit, offset, version)

    def _search(
        self,
        view: _View,
        query: str,
        kind: str | None,
        namespace: str | None,
        limit: int,
        offset: int,
        version: int,
    ) -> SearchResults:
        q = query.strip().lower()
        # Tokenize before lowercasing so a camelCase query splits like the names.
        q_tokens = tokenize(query.strip())
        # (label, gids, weight) of every field match; gids without repeats.
        field_hits: list[tuple[str, pa.Array, float]] = []
        per_token: list[list[pa.Array]] = []
        direct: list[pa.Array] = []
        for token in q_tokens:
            parts: list[pa.Array] = []
            can_prefix = MIN_PREFIX <= len(token) <= MAX_PREFIX
            for marker, weight, prefix_weight in FIELDS:
                key = f"{marker}:{token}"
                rows = self._postings(view, key, can_prefix)
                is_exact = rows.column("exact")
                gids = pc.filter(rows.column("doc"), is_exact).combine_chunks()
                if marker == "n":
                    whole = self._postings(view, f"n={token}", False).column("doc")
                    gids = _union([gids, whole.combine_chunks()])
                starts = _EMPTY_GIDS
                if can_prefix:
                    starts = pc.unique(pc.filter(rows.column("doc"), pc.invert(is_exact)))
                    starts = (
                        starts.combine_chunks() if isinstance(starts, pa.ChunkedArray) else starts
                    )
                    # A document holding the token itself scores as exact, not also as prefix.
                    starts = _without(starts, gids)
                for label, hits, w in ((key, gids, weight), (f"{key}*", starts, prefix_weight)):
                    if len(hits):
                        field_hits.append((label, hits, w))
                        parts.append(hits)
                        direct.append(hits)
            # Where an object lives (``q:``) can satisfy a query token but never makes
            # a hit on its own: "sales orders" finds sales.orders, "sales" alone does
            # not list every column in the namespace.
            if len(q_tokens) > 1:
                located = self._postings(view, "q:" + token, False).column("doc")
                if len(located):
                    parts.append(located.combine_chunks())
            per_token.append(parts)
        required = _EMPTY_GIDS
        if len(per_token) == 1:
            required = _union(direct)
        elif per_token and direct:
            # Every token must match: start from the rarest token and keep narrowing.
            per_token.sort(key=lambda parts: sum(len(p) for p in parts))
            required = _union(per_token[0])
            for parts in per_token[1:]:
                if not len(required):
                    break
                required = _union([_within(p, required) for p in parts])
            if len(required):
                required = _union([_within(p, required) for p in direct])

        # The whole query as a prefix of a name (or of a table's qualified name past
        # its namespace and the dot): the "^" postings of the range.
        prefix_gids, prefix_scores, exact = _EMPTY_GIDS, pa.array([], pa.float64()), set()
        if q:
            rows = self._postings(view, "^" + q, True)
            rows = rows.filter(pc.less_equal(rows.column("min_len"), len(q)))
            if rows.num_rows:
                is_exact = rows.column("exact")
                score = pc.add(
                    500.0,
                    pc.divide(100.0 * len(q), rows.column("name_len").cast(pa.float64())),
                )
                score = pc.if_else(is_exact, 1000.0, score)
                best = (
                    pa.table({"g": rows.column("doc"), "s": score})
                    .group_by("g", use_threads=False)
                    .aggregate([("s", "max")])
                )
                prefix_gids = best.column("g").combine_chunks()
                prefix_scores = best.column("s_max").combine_chunks()
                exact = set(pc.filter(rows.column("doc"), is_exact).to_pylist())
        candidates = _union([required, prefix_gids])
        if not len(candidates):
            return SearchResults([], 0, None, version)

        # Score: field weights (integers, summed exactly) plus the prefix score, added
        # last so the float result is the same whatever order the tokens came in.
        parts_t = [
            pa.table({"g": g, "w": pa.repeat(pa.scalar(w, pa.float64()), len(g))})
            for _, g, w in field_hits
        ]
        if len(prefix_gids):
            zero = pa.repeat(pa.scalar(0.0, pa.float64()), len(prefix_gids))
            parts_t.append(pa.table({"g": prefix_gids, "w": zero}))
        scored = pa.concat_tables(parts_t)
        if len(per_token) > 1:
            scored = scored.filter(pc.is_in(scored.column("g"), value_set=candidates))
        summed = scored.group_by("g", use_threads=False).aggregate([("w", "sum")])
        gids = summed.column("g").combine_chunks()
        scores = summed.column("w_sum").combine_chunks()
        if len(prefix_gids):
            extra = pc.index_in(gids, value_set=prefix_gids)
            scores = pc.add(scores, pc.fill_null(pc.take(prefix_scores, extra), 0.0))
        ranked = pa.table({"g": gids, "score": scores})
        if kind is not None:
            keep = pc.equal(self._kinds(view, gids), _KIND_ORDER[kind])
            ranked = ranked.filter(keep)
        if namespace is not None and ranked.num_rows:
            meta = self._docs(view, ranked.column("g").combine_chunks())
            ns = meta.column("namespace")
            inside = pc.or_(
                pc.or_(pc.equal(ns, namespace), pc.starts_with(ns, namespace + ".")),
                pc.and_(
                    pc.equal(meta.column("kind"), "namespace"),
                    pc.equal(meta.column("qualified_name"), namespace),
                ),
            )
            allowed = pc.filter(meta.column("doc"), pc.fill_null(inside, False))
            ranked = ranked.filter(pc.is_in(ranked.column("g"), value_set=allowed))
        total = ranked.num_rows
        need = offset + limit
        if offset >= total:
            return SearchResults([], total, None, version)
        # Documents of the last full build are numbered in rank order (kind, qualified
        # name, id): among equal scores the lower number ranks first. Later ones are
        # placed by their rows, read with the page.
        early = pc.less(ranked.column("g"), view.base_docs)
        base = ranked.filter(early)
        late = ranked.filter(pc.invert(early))
        if base.num_rows > need:
            keys = [("score", "descending"), ("g", "ascending")]
            base = base.take(pc.select_k_unstable(base, k=need, sort_keys=keys))
        if late.num_rows and base.num_rows >= need:
            floor = pc.min(base.column("score")).as_py()
            late = late.filter(pc.greater_equal(late.column("score"), floor))
        top = pa.concat_tables([base, late]) if late.num_rows else base
        rows = self._docs(view, top.column("g").combine_chunks())
        by_num = {r["doc"]: r for r in rows.to_pylist()}
        order = sorted(
            zip(top.column("g").to_pylist(), top.column("score").to_pylist(), strict=True),
            key=lambda gs: (
                -gs[1],
                _KIND_ORDER[by_num[gs[0]]["kind"]],
                by_num[gs[0]]["qualified_name"],
                by_num[gs[0]]["doc_id"],
            ),
        )[offset:need]
        page_gids = pa.array([g for g, _ in order], pa.int32())
        labels: dict[int, set[str]] = {g: set() for g, _ in order}
        for label, g, _ in field_hits:
            for hit in pc.filter(g, pc.is_in(g, value_set=page_gids)).to_pylist():
                labels[hit].add(label)
        if len(prefix_gids):
            for hit in pc.filter(
                prefix_gids, pc.is_in(prefix_gids, value_set=page_gids)
            ).to_pylist():
                labels[hit].add("exact" if hit in exact else "prefix")
        page = []
        for gid, score in order:
            doc = by_num[gid]
            page.append(
                SearchHit(
                    kind=doc["kind"],
                    name=doc["name"],
                    qualified_name=doc["qualified_name"],
                    namespace=doc["namespace"],
                    description=doc["description"],
                    score=score,
                    matched=tuple(sorted(labels[gid])),
                )
            )
        next_token = str(need) if need < total else None
        return SearchResults(page, total, next_token, version)


def _indexed(snap: Snapshot[SearchState]) -> int:
    """The catalog version an index snapshot reflects (0 if another revision built it:
    its postings cannot answer this revision's queries, so it is rebuilt in full)."""
    meta = snap.manifest.meta if snap.manifest else {}
    if meta.get("revision", 1) != INDEX_REVISION:
        return 0
    return int(meta.get("catalog_version", 0))


def _union(parts: Sequence[pa.Array]) -> pa.Array:
    """Distinct gids of several arrays."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return _EMPTY_GIDS
    if len(parts) == 1:
        return pc.unique(parts[0])
    return pc.unique(pa.concat_arrays(parts))


def _without(gids: pa.Array, removed: pa.Array) -> pa.Array:
    """The gids not in ``removed``."""
    if not len(gids) or not len(removed):
        return gids
    return pc.filter(gids, pc.invert(pc.is_in(gids, value_set=removed)))


def _within(gids: pa.Array, allowed: pa.Array) -> pa.Array:
    """The gids also in ``allowed``."""
    if not len(gids) or not len(allowed):
        return _EMPTY_GIDS
    return pc.filter(gids, pc.is_in(gids, value_set=allowed))
