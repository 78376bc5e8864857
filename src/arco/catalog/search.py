"""Search over namespace, table and column names, descriptions and properties.

The index is the ``search`` domain: postings hashed into ``BUCKETS`` tables so a
query reads only the buckets of its own tokens, and per-document token lists
(hashed into ``DOC_BUCKETS`` tables) so an update removes exactly the postings
it replaces. It follows the catalog incrementally: the manifest records the
catalog version it reflects, and a refresh folds only the catalog rows changed
since then.

Posting tokens carry a field marker: ``n:`` name token, ``d:`` description
token, ``p:`` property token (``n^``, ``d^``, ``p^``: a proper prefix of one),
``q:`` a token of the qualified name, ``^`` a prefix of the whole name. Ranking:
exact name, then name prefix, then name tokens, then description, then
properties. The matching rules are in docs/adr/005-search-index.md.
"""

from __future__ import annotations

import functools
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc

from arco.catalog import tableset
from arco.catalog.catalog import Catalog
from arco.catalog.domain import Change, DomainStore, Snapshot
from arco.catalog.lock import DEFAULT_LOCK_TTL
from arco.catalog.manifest import FileEntry
from arco.catalog.state import CatalogState
from arco.catalog.tableset import TableDef
from arco.catalog.tier2state import RowMapState
from arco.core.errors import InvalidArgumentError
from arco.core.scope import Scope
from arco.core.storage import ObjectStore

#: How long a search writer waits for another one's lease (a rebuild is long).
SEARCH_LOCK_WAIT = 360.0
BUCKETS = 64
DOC_BUCKETS = 16
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
#: posting kinds) is rebuilt in full by the next refresh.
INDEX_REVISION = 2

_POSTING_SCHEMA = pa.schema(
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
_DOC_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("tokens", pa.list_(pa.string())),
        pa.field("children", pa.list_(pa.string())),
    ]
)


def _posting_table(i: int) -> str:
    return f"postings_{i:02d}"


def _doc_table(i: int) -> str:
    return f"docs_{i:02d}"


def bucket_of(token: str) -> int:
    """The postings bucket of a token (stable across processes: CRC-32)."""
    return zlib.crc32(token.encode()) % BUCKETS


def doc_bucket_of(doc_id: str) -> int:
    """The docs bucket of a document id."""
    return zlib.crc32(doc_id.encode()) % DOC_BUCKETS


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


def _field_tokens(marker: str, words: Iterable[str], exact: Iterable[str] = ()) -> list[str]:
    """Postings of one field: ``{marker}:`` each word (and each of ``exact``), and
    ``{marker}^`` each proper prefix of a word, so "rev" finds "revenue"."""
    words = list(words)
    tokens = [f"{marker}:{w}" for w in [*words, *exact]]
    tokens.extend(f"{marker}^{p}" for w in words for p in token_prefixes(w))
    return tokens


def name_tokens(name: str) -> list[str]:
    """Tokens of an object name: its parts plus the whole (lowercased) name."""
    tokens = tokenize(name)
    whole = name.lower()
    return tokens if whole in tokens else [*tokens, whole]


class SearchState(RowMapState):
    """The search domain keeps nothing resident; buckets are read on demand."""

    TABLES: ClassVar[dict[str, TableDef]] = {
        **{
            _posting_table(i): TableDef(
                _posting_table(i), _POSTING_SCHEMA, ("token", "doc_id"), resident=False
            )
            for i in range(BUCKETS)
        },
        **{
            _doc_table(i): TableDef(_doc_table(i), _DOC_SCHEMA, ("doc_id",), resident=False)
            for i in range(DOC_BUCKETS)
        },
    }


@dataclass(frozen=True)
class Doc:
    """One searchable object."""

    doc_id: str
    kind: str
    name: str
    qualified_name: str
    namespace: str
    description: str | None
    tokens: tuple[str, ...]
    children: tuple[str, ...] = ()


def _qualified_tokens(qualified: str, *, prefixes: bool) -> list[str]:
    """Where an object lives: ``q:`` tokens of its qualified name and (for tables)
    prefixes of it past the namespace, so ``sales.orders`` and ``sales`` + ``orders``
    find the table ``orders`` without multiplying the index for every column."""
    lower = qualified.lower()
    tokens = [f"q:{t}" for t in tokenize(qualified)]
    if prefixes:
        # A namespace of MAX_PREFIX characters or more still gets the (truncated)
        # posting: the query checks longer prefixes against the name itself.
        start = min(lower.rfind(".") + 2, MAX_PREFIX)
        tokens.extend(f"^{lower[:i]}" for i in range(start, min(len(lower), MAX_PREFIX) + 1))
    return tokens


def _doc_tokens(
    name: str, description: str | None, props: dict[str, str], *, full_name: str | None = None
) -> list[str]:
    words = tokenize(name)
    whole = [name.lower()]
    if full_name is not None:
        words = list(dict.fromkeys(words + tokenize(full_name)))
        whole.append(full_name.lower())
    tokens = _field_tokens("n", words, [w for w in whole if w not in words])
    lower = name.lower()
    tokens.extend(f"^{lower[:i]}" for i in range(MIN_PREFIX, min(len(lower), MAX_PREFIX) + 1))
    if len(lower) < MIN_PREFIX:
        tokens.append(f"^{lower}")
    tokens.extend(_field_tokens("d", tokenize(description)))
    prop_words = [t for key, value in props.items() for t in tokenize(key) + tokenize(value)]
    tokens.extend(_field_tokens("p", dict.fromkeys(prop_words)))
    return list(dict.fromkeys(tokens))


def docs_for_namespace(row: dict[str, Any]) -> Doc:
    """The document of a namespace row."""
    name = row["name"]
    short = name.rsplit(".", 1)[-1]
    return Doc(
        doc_id=f"ns:{name}",
        kind="namespace",
        name=name.rsplit(".", 1)[-1] if "." in name else name,
        qualified_name=name,
        namespace=name.rsplit(".", 1)[0] if "." in name else "",
        description=row["description"],
        tokens=tuple(
            _doc_tokens(short, row["description"], dict(row["properties"] or {}), full_name=name)
        ),
    )


def docs_for_table(state: CatalogState | None, row: dict[str, Any]) -> list[Doc]:
    """The documents of a table row: the table and each of its columns.

    The columns are nested in the row; ``state`` is not needed (kept for callers
    that pass it).
    """
    qualified = f"{row['namespace']}.{row['name']}"
    columns = sorted(row["columns"] or (), key=lambda c: c["ordinal"])
    col_docs = [
        Doc(
            doc_id=f"col:{row['id']}:{c['column_id']}",
            kind="column",
            name=c["name"],
            qualified_name=f"{qualified}.{c['name']}",
            namespace=row["namespace"],
            description=c["description"],
            tokens=tuple(
                dict.fromkeys(
                    _doc_tokens(c["name"], c["description"], {})
                    + _qualified_tokens(f"{qualified}.{c['name']}", prefixes=False)
                )
            ),
        )
        for c in columns
    ]
    table = Doc(
        doc_id=f"tbl:{row['id']}",
        kind="table",
        name=row["name"],
        qualified_name=qualified,
        namespace=row["namespace"],
        description=row["description"],
        tokens=tuple(
            dict.fromkeys(
                _doc_tokens(row["name"], row["description"], dict(row["properties"] or {}))
                + _qualified_tokens(qualified, prefixes=True)
            )
        ),
        children=tuple(d.doc_id for d in col_docs),
    )
    return [table, *col_docs]


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


# ------------------------------------------------------------ full rebuild
#: Documents per chunk of a full rebuild: postings are turned into Arrow every this
#: many documents, so the build never holds one Python object per posting.
BUILD_CHUNK_DOCS = 20_000
_META_SCHEMA = pa.schema([f for f in _POSTING_SCHEMA if f.name != "token"])
_SLIM_SCHEMA = pa.schema([pa.field("token", pa.string()), pa.field("doc", pa.int32())])
#: Catalog rows become Python values this many at a time during a full rebuild.
_ROW_BATCH = 2_048
#: The catalog columns a document is made of.
_NS_COLUMNS = ("name", "description", "properties")
_TABLE_COLUMNS = ("id", "namespace", "name", "description", "properties", "columns")


class _Builder:
    """The tables of a full rebuild, built from documents in bounded chunks.

    Postings are kept "slim" (token, document number) until the commit writes each
    bucket; only then is the bucket expanded with its documents' columns (one
    bucket at a time), so peak memory is the slim index plus one bucket.
    """

    def __init__(self) -> None:
        self.n_docs = 0
        self._meta: dict[str, list[Any]] = {f.name: [] for f in _META_SCHEMA}
        self._meta_chunks: list[pa.Table] = []
        self._tok: list[list[str]] = [[] for _ in range(BUCKETS)]
        self._doc: list[list[int]] = [[] for _ in range(BUCKETS)]
        self._post_chunks: list[list[pa.Table]] = [[] for _ in range(BUCKETS)]
        self._docs: list[dict[str, list[Any]]] = [
            {"doc_id": [], "tokens": [], "children": []} for _ in range(DOC_BUCKETS)
        ]
        self._doc_chunks: list[list[pa.Table]] = [[] for _ in range(DOC_BUCKETS)]
        self._buckets: dict[str, int] = {}

    def add(self, doc: Doc) -> None:
        """Add one document."""
        number = self.n_docs
        self.n_docs += 1
        meta = self._meta
        meta["doc_id"].append(doc.doc_id)
        meta["kind"].append(doc.kind)
        meta["name"].append(doc.name)
        meta["qualified_name"].append(doc.qualified_name)
        meta["namespace"].append(doc.namespace)
        meta["description"].append((doc.description or "")[:300] or None)
        memo = self._buckets
        for token in doc.tokens:
            b = memo.get(token)
            if b is None:
                b = memo[token] = bucket_of(token)
            self._tok[b].append(token)
            self._doc[b].append(number)
        rows = self._docs[doc_bucket_of(doc.doc_id)]
        rows["doc_id"].append(doc.doc_id)
        rows["tokens"].append(list(doc.tokens))
        rows["children"].append(list(doc.children))
        if len(meta["doc_id"]) >= BUILD_CHUNK_DOCS:
            self._flush()

    def _flush(self) -> None:
        if self._meta["doc_id"]:
            self._meta_chunks.append(pa.Table.from_pydict(self._meta, schema=_META_SCHEMA))
            self._meta = {f.name: [] for f in _META_SCHEMA}
        for b in range(BUCKETS):
            if self._tok[b]:
                self._post_chunks[b].append(
                    pa.Table.from_arrays(
                        [pa.array(self._tok[b], pa.string()), pa.array(self._doc[b], pa.int32())],
                        schema=_SLIM_SCHEMA,
                    )
                )
                self._tok[b], self._doc[b] = [], []
        for b in range(DOC_BUCKETS):
            if self._docs[b]["doc_id"]:
                self._doc_chunks[b].append(pa.Table.from_pydict(self._docs[b], schema=_DOC_SCHEMA))
                self._docs[b] = {"doc_id": [], "tokens": [], "children": []}
        # Common tokens repeat within a chunk; whole-name prefixes hardly ever do.
        self._buckets.clear()

    def finish(self) -> tuple[dict[str, pa.Table], Callable[[pa.Table], pa.Table]]:
        """Slim posting tables and full docs tables, and the expander of a slim table."""
        self._flush()
        tables: dict[str, pa.Table] = {}
        for b, chunks in enumerate(self._post_chunks):
            if chunks:
                tables[_posting_table(b)] = pa.concat_tables(chunks)
        for b, chunks in enumerate(self._doc_chunks):
            if chunks:
                tables[_doc_table(b)] = pa.concat_tables(chunks)
        meta = (
            pa.concat_tables(self._meta_chunks).combine_chunks()
            if self._meta_chunks
            else _META_SCHEMA.empty_table()
        )
        self._post_chunks, self._doc_chunks, self._meta_chunks = [], [], []

        def expand(slim: pa.Table) -> pa.Table:
            rows = meta.take(slim.column("doc"))
            return pa.Table.from_arrays(
                [slim.column("token"), *rows.columns], schema=_POSTING_SCHEMA
            )

        return tables, expand


# ------------------------------------------------------------- query side
_EMPTY_GIDS = pa.array([], pa.int32())
#: Default memory bound of one index's decoded postings buckets.
CACHE_BYTES = 64 << 20
#: Above this many candidates left after the score cut, ties are broken by rank.
_TIES_BY_RANK = 2_000


class _Registry:
    """Every document seen in a decoded bucket, numbered (``gid``) in Arrow columns.

    Buckets map their postings to these numbers so a query combines tokens from
    different buckets with Arrow set operations instead of Python row dicts.
    Numbers only grow: a document whose columns changed gets a new number (the
    old one is retired), which is safe because a change rewrites every posting of
    the document, so every bucket that still holds it is decoded afresh.
    """

    _COLUMNS = ("doc_id", "kind", "name", "qualified_name", "namespace", "description")

    def __init__(self) -> None:
        self._chunks: list[pa.Table] = []
        self._table: pa.Table | None = None
        self._lookup: pa.Array | None = None
        self.size = 0
        self._retired: list[int] = []
        self._rank: pa.Array | None = None
        #: Index versions documents were registered from.
        self._versions: set[int] = set()

    @property
    def table(self) -> pa.Table:
        """All documents, row ``gid``: the columns above plus ``kind_order``, lengths."""
        if self._table is None:
            if not self._chunks:
                return _registry_schema().empty_table()
            # One chunk per column: ``take`` over many chunks is several times slower.
            self._table = pa.concat_tables(self._chunks).combine_chunks()
            self._chunks = [self._table]
        return self._table

    def rank(self) -> pa.Array:
        """Each gid's position in (qualified name, doc id) order: the tie-break of
        ranking, as a number (computed once per registry growth)."""
        if self._rank is None or len(self._rank) != self.size:
            names = self.table.select(["qualified_name", "doc_id"])
            order = pc.sort_indices(
                names, sort_keys=[("qualified_name", "ascending"), ("doc_id", "ascending")]
            )
            # The inverse of a permutation is its argsort.
            self._rank = pc.sort_indices(order).cast(pa.int32())
        return self._rank

    def _ids(self) -> pa.Array:
        if self._lookup is None:
            ids = self.table.column("doc_id").combine_chunks()
            if self._retired:
                retired = pc.is_in(
                    pa.array(range(len(ids)), pa.int32()),
                    value_set=pa.array(self._retired, pa.int32()),
                )
                ids = pc.if_else(retired, pa.scalar(None, pa.string()), ids)
            self._lookup = ids
        return self._lookup

    def register(self, postings: pa.Table, version: int = 0) -> pa.Array:
        """The gid of each row of a decoded postings table (registering new documents).

        ``version`` is the index version the postings were read at: while every
        document was registered from that one version, a known document cannot have
        changed, and the comparison of its columns is skipped.
        """
        # Every posting of a document carries the same columns: any row stands for it.
        # (A hash pass and a take; a group_by with "first" aggregates cost ~10x more.)
        doc_ids = postings.column("doc_id").combine_chunks()
        encoded = doc_ids.dictionary_encode()
        unique_ids = encoded.dictionary
        row_doc = encoded.indices
        first = pc.index_in(unique_ids, value_set=doc_ids)
        docs = postings.select(list(self._COLUMNS)).take(first).combine_chunks()
        pos = pc.index_in(unique_ids, value_set=self._ids())
        known = pc.is_valid(pos)
        one_version = self._versions <= {version}
        self._versions.add(version)
        if self.size and not one_version and pc.any(known).as_py():
            same = known
            # Unconsolidated: combining the whole registry per decoded bucket costs more.
            whole = pa.concat_tables(self._chunks).select(list(self._COLUMNS[1:]))
            old = whole.take(pc.fill_null(pos, 0)).combine_chunks()
            for col in self._COLUMNS[1:]:
                same = pc.and_(
                    same,
                    pc.equal(
                        pc.fill_null(docs.column(col), "\x00"),
                        pc.fill_null(old.column(col), "\x00"),
                    ),
                )
            same = pc.fill_null(same, False)
            changed = pc.and_(known, pc.invert(same))
            if pc.any(changed).as_py():
                self._retired.extend(pc.filter(pos, changed).to_pylist())
                self._lookup = None
            new = pc.invert(same)
        else:
            new = pc.invert(known)
        if isinstance(new, pa.ChunkedArray):
            new = new.combine_chunks()
        fresh = docs.filter(new)
        first = self.size
        gid_of_doc = pc.fill_null(pos, 0).cast(pa.int32())
        if fresh.num_rows:
            numbers = pa.array(range(first, first + fresh.num_rows), pa.int32())
            gid_of_doc = pc.replace_with_mask(gid_of_doc, new, numbers)
            kind = fresh.column("kind")
            extra = [
                pc.fill_null(pc.index_in(kind, value_set=pa.array(KINDS)), 1).cast(pa.int8()),
                pc.utf8_length(pc.utf8_lower(fresh.column("name"))).cast(pa.int32()),
                pc.utf8_length(pc.utf8_lower(fresh.column("qualified_name"))).cast(pa.int32()),
            ]
            chunk = pa.Table.from_arrays([*fresh.columns, *extra], schema=_registry_schema())
            self._chunks.append(chunk)
            self.size += chunk.num_rows
            self._table = None
            self._lookup = None
        return gid_of_doc.take(row_doc)


def _registry_schema() -> pa.Schema:
    return pa.schema(
        [
            *(_POSTING_SCHEMA.field(c) for c in _Registry._COLUMNS),
            pa.field("kind_order", pa.int8()),
            pa.field("name_len", pa.int32()),
            pa.field("qualified_len", pa.int32()),
        ]
    )


@dataclass(frozen=True)
class _Bucket:
    """One decoded postings bucket, all in Arrow: the bucket's distinct tokens
    (sorted), where each token's postings start in ``gids``, and ``gids`` (each
    token's slice ascending). No Python object per token: a bucket of a large
    catalog holds tens of thousands of distinct tokens."""

    words: pa.Array
    offsets: pa.Array
    gids: pa.Array

    @property
    def nbytes(self) -> int:
        """Memory the bucket holds (what the bucket cache is bounded by)."""
        return int(self.words.nbytes + self.offsets.nbytes + self.gids.nbytes)

    def lookup(self, token: str) -> pa.Array:
        """The gids (ascending) of the documents holding ``token``."""
        words = self.words
        lo, hi = 0, len(words)
        # Binary search over the sorted words (UTF-8 bytes order, as Arrow sorts).
        key = token.encode()
        while lo < hi:
            mid = (lo + hi) // 2
            if words[mid].as_buffer().to_pybytes() < key:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(words) or words[lo].as_py() != token:
            return _EMPTY_GIDS
        start = self.offsets[lo].as_py()
        return self.gids.slice(start, self.offsets[lo + 1].as_py() - start)


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
            # A rebuild of a large catalog can hold the lease for minutes.
            lock_wait=SEARCH_LOCK_WAIT,
        )
        self._buckets: OrderedDict[tuple[int, str], _Bucket] = OrderedDict()
        self._bucket_bytes = 0
        #: Memory the decoded buckets may hold (least recently used go first).
        self.cache_bytes = cache_bytes
        self._registry = _Registry()
        self._files_of: tuple[str | None, dict[str, list[FileEntry]]] = (None, {})
        # Decoding grows the shared registry; queries from several threads take turns.
        self._mutex = threading.RLock()

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
        Arrow without folding them into the shared :class:`Catalog` (which would keep
        every table in memory for the life of the process).
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
            change: Change
            if changed is None:
                change = self._full(*self._catalog_tables(files))
            else:
                change = Change()
                self._incremental(snap, *changed, change)
            change.meta = {"catalog_version": head.version, "revision": INDEX_REVISION}
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
        """A rebuild of every table of the domain, streamed into Arrow.

        A rebuild of a large catalog has ~100 postings per table; as row dicts that
        took gigabytes. The catalog is read in Arrow and turned into Python rows a
        batch at a time; the tables go in as Arrow bases, posting tables in a slim
        form that is expanded with its documents' columns one bucket at a time, just
        before the bucket is written.
        """
        builder = _Builder()
        for ns_row in namespaces.to_pylist():
            builder.add(docs_for_namespace(ns_row))
        for batch in tables.to_batches(max_chunksize=_ROW_BATCH):
            for row in batch.to_pylist():
                for doc in docs_for_table(None, row):
                    builder.add(doc)
        tables_out, expand = builder.finish()

        def prepare(_table: str, data: pa.Table) -> pa.Table:
            return expand(data) if data.schema.equals(_SLIM_SCHEMA) else data

        return Change(replace=set(SearchState.TABLES), bases=tables_out, prepare_base=prepare)

    def _incremental(
        self,
        snap: Snapshot[SearchState],
        namespaces: dict[str, dict[str, Any] | None],
        table_ids: dict[str, dict[str, Any] | None],
        change: Change,
    ) -> None:
        wanted = [f"ns:{n}" for n in namespaces] + [f"tbl:{t}" for t in table_ids]
        old = self._old_docs(snap, wanted)
        children = [c for row in old.values() for c in row["children"] or () if c not in old]
        old.update(self._old_docs(snap, children))
        for doc_id, doc_row in old.items():
            for token in doc_row["tokens"] or ():
                change.delete(_posting_table(bucket_of(token)), {"token": token, "doc_id": doc_id})
            change.delete(_doc_table(doc_bucket_of(doc_id)), doc_row)
        docs: list[Doc] = []
        for ns_row in namespaces.values():
            if ns_row is not None:
                docs.append(docs_for_namespace(ns_row))
        for trow in table_ids.values():
            if trow is not None:
                docs.extend(docs_for_table(None, trow))
        self._emit(docs, change)

    def _load(self, snap: Snapshot[SearchState], table: str) -> pa.Table:
        """The live rows of one of the domain's tables, folded in Arrow."""
        entries = [f for f in snap.files if f.table == table]
        base = next((f for f in entries if f.kind == "base"), None)
        deltas = sorted((f for f in entries if f.kind == "delta"), key=lambda f: f.min_version)
        return _fold(
            SearchState.TABLES[table],
            self.domain.load_file(base) if base is not None else None,
            [self.domain.load_file(d) for d in deltas],
        )

    def _old_docs(
        self, snap: Snapshot[SearchState], doc_ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        by_bucket: dict[int, set[str]] = {}
        for doc_id in doc_ids:
            by_bucket.setdefault(doc_bucket_of(doc_id), set()).add(doc_id)
        out: dict[str, dict[str, Any]] = {}
        for bucket, ids in by_bucket.items():
            table = self._load(snap, _doc_table(bucket))
            mine = table.filter(pc.is_in(table.column("doc_id"), value_set=pa.array(list(ids))))
            for row in mine.to_pylist():
                out[row["doc_id"]] = row
        return out

    @staticmethod
    def _emit(docs: Sequence[Doc], change: Change) -> None:
        for doc in docs:
            change.upsert(
                _doc_table(doc_bucket_of(doc.doc_id)),
                {"doc_id": doc.doc_id, "tokens": list(doc.tokens), "children": list(doc.children)},
            )
            desc = (doc.description or "")[:300] or None
            for token in doc.tokens:
                change.upsert(
                    _posting_table(bucket_of(token)),
                    {
                        "token": token,
                        "doc_id": doc.doc_id,
                        "kind": doc.kind,
                        "name": doc.name,
                        "qualified_name": doc.qualified_name,
                        "namespace": doc.namespace,
                        "description": desc,
                    },
                )

    # --------------------------------------------------------------- query
    def _bucket(self, snap: Snapshot[SearchState], bucket: int) -> _Bucket:
        manifest_key, by_table = self._files_of
        if manifest_key != snap.manifest_key or manifest_key is None:
            by_table = {}
            for f in snap.files:
                by_table.setdefault(f.table, []).append(f)
            self._files_of = (snap.manifest_key, by_table)
        table_name = _posting_table(bucket)
        key = (bucket, ",".join(f.path for f in by_table.get(table_name, ())))
        hit = self._buckets.get(key)
        if hit is not None:
            self._buckets.move_to_end(key)
            return hit
        decoded = self._decode(self._load(snap, table_name), snap.version)
        self._buckets[key] = decoded
        self._bucket_bytes += decoded.nbytes
        # Bounded by memory, not by count: a bucket of a large catalog is megabytes.
        while len(self._buckets) > 1 and (
            self._bucket_bytes > self.cache_bytes or len(self._buckets) > BUCKETS * 2
        ):
            _, dropped = self._buckets.popitem(last=False)
            self._bucket_bytes -= dropped.nbytes
        return decoded

    def _decode(self, table: pa.Table, version: int = 0) -> _Bucket:
        """Postings grouped by token (tokens sorted), each group's gids ascending."""
        if table.num_rows == 0:
            return _Bucket(pa.array([], pa.string()), pa.array([0], pa.int32()), _EMPTY_GIDS)
        gids = self._registry.register(table, version)
        tokens = table.column("token").combine_chunks()
        order = pc.sort_indices(
            pa.table({"t": tokens, "g": gids}), sort_keys=[("t", "ascending"), ("g", "ascending")]
        )
        runs = pc.run_end_encode(tokens.take(order))
        ends = runs.run_ends.cast(pa.int32())
        return _Bucket(
            runs.values,
            pa.concat_arrays([pa.array([0], pa.int32()), ends]),
            gids.take(order),
        )

    def _lookup(self, snap: Snapshot[SearchState], token: str) -> pa.Array:
        return self._bucket(snap, bucket_of(token)).lookup(token)

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
        with self._mutex:
            return self._search(snap, query, kind, namespace, limit, offset, version)

    def _search(
        self,
        snap: Snapshot[SearchState],
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
        # (label, gids, weight) of every field match; gids ascending, no repeats.
        field_hits: list[tuple[str, pa.Array, float]] = []
        per_token: list[list[pa.Array]] = []
        direct: list[pa.Array] = []
        for token in q_tokens:
            parts: list[pa.Array] = []
            can_prefix = MIN_PREFIX <= len(token) <= MAX_PREFIX
            for marker, weight, prefix_weight in FIELDS:
                gids = self._lookup(snap, f"{marker}:{token}")
                starts = self._lookup(snap, f"{marker}^{token}") if can_prefix else _EMPTY_GIDS
                # A document holding the token itself scores as exact, not also as prefix.
                starts = _without(starts, gids)
                exact_and_prefix = (
                    (f"{marker}:{token}", gids, weight),
                    (f"{marker}:{token}*", starts, prefix_weight),
                )
                for label, hits, w in exact_and_prefix:
                    if len(hits):
                        field_hits.append((label, hits, w))
                        parts.append(hits)
                        direct.append(hits)
            # Where an object lives (``q:``) can satisfy a query token but never makes
            # a hit on its own: "sales orders" finds sales.orders, "sales" alone does
            # not list every column in the namespace.
            # With one token only direct matches count, so its ``q:`` bucket is not read.
            located = self._lookup(snap, "q:" + token) if len(q_tokens) > 1 else _EMPTY_GIDS
            if len(located):
                parts.append(located)
            per_token.append(parts)
        required = _EMPTY_GIDS
        if len(per_token) == 1:
            required = _union(direct)
        elif per_token and direct:
            # Every token must match: start from the rarest token and keep narrowing,
            # probing each (large) posting list against the (small) set so far.
            per_token.sort(key=lambda parts: sum(len(p) for p in parts))
            required = _union(per_token[0])
            for parts in per_token[1:]:
                if not len(required):
                    break
                required = _union([_within(p, required) for p in parts])
            if len(required):
                required = _union([_within(p, required) for p in direct])

        prefix_gids = self._lookup(snap, "^" + q[:MAX_PREFIX])
        # Only now: every lookup above may decode a bucket, which grows the registry.
        reg = self._registry.table
        prefix_scores = pa.array([], pa.float64())
        exact: set[int] = set()
        if len(prefix_gids):
            prefix_gids, prefix_scores, exact = _prefix_scores(reg, prefix_gids, q)
        candidates = _union([required, prefix_gids])
        if not len(candidates):
            return SearchResults([], 0, None, version)

        # Score: field weights (integers, summed exactly) plus the prefix score, added
        # last so the float result is the same whatever order the tokens came in.
        rows = [
            pa.table({"g": g, "w": pa.repeat(pa.scalar(w, pa.float64()), len(g))})
            for _, g, w in field_hits
        ]
        if len(prefix_gids):
            zero = pa.repeat(pa.scalar(0.0, pa.float64()), len(prefix_gids))
            rows.append(pa.table({"g": prefix_gids, "w": zero}))
        scored = pa.concat_tables(rows)
        if len(per_token) > 1:
            # One token: every field match is a candidate already.
            scored = scored.filter(pc.is_in(scored.column("g"), value_set=candidates))
        summed = scored.group_by("g", use_threads=False).aggregate([("w", "sum")])
        gids = summed.column("g")
        scores = summed.column("w_sum")
        if len(prefix_gids):
            extra = pc.index_in(gids, value_set=prefix_gids)
            add = pc.fill_null(pc.take(prefix_scores, extra), 0.0)
            scores = pc.add(scores, add)
        kinds = reg.column("kind_order").take(gids)
        ranked = pa.table({"g": gids, "score": scores, "kind_order": kinds})
        keep = None
        if kind is not None:
            keep = pc.equal(ranked.column("kind_order"), _KIND_ORDER[kind])
        if namespace is not None:
            meta = reg.select(["kind_order", "namespace", "qualified_name"]).take(gids)
            ns = meta.column("namespace")
            inside = pc.or_(
                pc.or_(pc.equal(ns, namespace), pc.starts_with(ns, namespace + ".")),
                pc.and_(
                    pc.equal(meta.column("kind_order"), _KIND_ORDER["namespace"]),
                    pc.equal(meta.column("qualified_name"), namespace),
                ),
            )
            keep = inside if keep is None else pc.and_(keep, inside)
        if keep is not None:
            ranked = ranked.filter(pc.fill_null(keep, False))
        total = ranked.num_rows
        need = offset + limit
        if total > need:
            # Cut on the score first (cheap), then break the remaining ties by name.
            kth = pc.select_k_unstable(ranked, k=need, sort_keys=[("score", "descending")])
            floor = ranked.column("score")[kth[-1].as_py()]
            ranked = ranked.filter(pc.greater_equal(ranked.column("score"), floor))
        if ranked.num_rows > _TIES_BY_RANK:
            # Many equal scores (a common word): order them by each document's
            # precomputed rank by name instead of comparing the names themselves.
            ranked = ranked.append_column("r", self._registry.rank().take(ranked.column("g")))
            keys = [("score", "descending"), ("kind_order", "ascending"), ("r", "ascending")]
            picked = pc.select_k_unstable(ranked, k=min(need, ranked.num_rows), sort_keys=keys)
            ranked = ranked.take(picked)
            order = pc.sort_indices(ranked, sort_keys=keys)
        else:
            names_of = reg.select(["qualified_name", "doc_id"]).take(ranked.column("g"))
            ranked = ranked.append_column("q", names_of.column(0)).append_column(
                "d", names_of.column(1)
            )
            order = pc.sort_indices(
                ranked,
                sort_keys=[
                    ("score", "descending"),
                    ("kind_order", "ascending"),
                    ("q", "ascending"),
                    ("d", "ascending"),
                ],
            )
        top = ranked.take(order.slice(offset, limit))
        page_gids = top.column("g").combine_chunks()
        labels: dict[int, set[str]] = {g: set() for g in page_gids.to_pylist()}
        for label, g, _ in field_hits:
            for hit in pc.filter(g, pc.is_in(g, value_set=page_gids)).to_pylist():
                labels[hit].add(label)
        if len(prefix_gids):
            for hit in pc.filter(
                prefix_gids, pc.is_in(prefix_gids, value_set=page_gids)
            ).to_pylist():
                labels[hit].add("exact" if hit in exact else "prefix")
        page = []
        docs = reg.select(list(_Registry._COLUMNS)).take(page_gids).to_pylist()
        for gid, doc, score in zip(
            page_gids.to_pylist(), docs, top.column("score").to_pylist(), strict=True
        ):
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
        next_token = str(offset + limit) if offset + limit < total else None
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
        return parts[0]
    return pc.unique(pa.concat_arrays(parts))


def _without(gids: pa.Array, removed: pa.Array) -> pa.Array:
    """The gids not in ``removed``."""
    if not len(gids) or not len(removed):
        return gids
    return pc.filter(gids, pc.invert(pc.is_in(gids, value_set=removed)))


def _within(gids: pa.Array, allowed: pa.Array) -> pa.Array:
    """The gids also in ``allowed`` (hashes ``allowed``: pass the smaller set there)."""
    if not len(gids) or not len(allowed):
        return _EMPTY_GIDS
    return pc.filter(gids, pc.is_in(gids, value_set=allowed))


def _prefix_scores(reg: pa.Table, gids: pa.Array, q: str) -> tuple[pa.Array, pa.Array, set[int]]:
    """Prefix hits of ``q`` among the postings of its (truncated) prefix token: the
    gids, their scores (1000 exact, else 500 + 100 * len(q) / len(name)) and which
    are exact."""
    meta = reg.select(
        ["name", "qualified_name", "namespace", "kind_order", "name_len", "qualified_len"]
    ).take(gids)
    if len(q) >= MAX_PREFIX:
        # The token held only the first MAX_PREFIX characters (and a table in a long
        # namespace posts that much of its qualified name): check the whole rule.
        # Names are ASCII identifiers, so Arrow's lowercasing equals Python's.
        table_prefix = pc.and_(
            pc.equal(meta.column("kind_order"), _KIND_ORDER["table"]),
            pc.and_(
                pc.starts_with(pc.utf8_lower(meta.column("qualified_name")), q),
                pc.less(pc.utf8_length(meta.column("namespace")), len(q) - 1),
            ),
        )
        mask = pc.or_(pc.starts_with(pc.utf8_lower(meta.column("name")), q), table_prefix)
        mask = pc.fill_null(mask, False).combine_chunks()
        gids, meta = pc.filter(gids, mask), meta.filter(mask)
    # Otherwise every posting of "^" + q is a prefix of the name or, for a table, of
    # its qualified name past the namespace.
    n = len(q)
    maybe = pc.or_(pc.equal(meta.column("name_len"), n), pc.equal(meta.column("qualified_len"), n))
    exact: set[int] = set()
    for gid, name, qualified in zip(
        pc.filter(gids, maybe).to_pylist(),
        pc.filter(meta.column("name"), maybe).to_pylist(),
        pc.filter(meta.column("qualified_name"), maybe).to_pylist(),
        strict=True,
    ):
        if name.lower() == q or qualified.lower() == q:
            exact.add(gid)
    scores = pc.add(500.0, pc.divide(100.0 * n, pc.cast(meta.column("name_len"), pa.float64())))
    if exact:
        is_exact = pc.is_in(gids, value_set=pa.array(sorted(exact), pa.int32()))
        scores = pc.if_else(is_exact, 1000.0, scores)
    return gids, scores, exact
