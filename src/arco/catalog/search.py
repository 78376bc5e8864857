"""Search over namespace, table and column names, descriptions and properties.

The index is the ``search`` domain: postings hashed into ``BUCKETS`` tables so a
query reads only the buckets of its own tokens, and per-document token lists
(hashed into ``DOC_BUCKETS`` tables) so an update removes exactly the postings
it replaces. It follows the catalog incrementally: the manifest records the
catalog version it reflects, and a refresh folds only the catalog rows changed
since then.

Posting tokens carry a field marker: ``n:`` name token, ``d:`` description
token, ``p:`` property token, ``^`` a prefix of the whole name. Ranking: exact
name, then name prefix, then name tokens, then description, then properties.
"""

from __future__ import annotations

import heapq
import re
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pyarrow as pa

from arco.catalog.catalog import Catalog
from arco.catalog.domain import Change, DomainStore, Snapshot
from arco.catalog.state import CatalogState
from arco.catalog.tableset import TableDef
from arco.catalog.tier2state import RowMapState
from arco.core.errors import InvalidArgumentError
from arco.core.scope import Scope
from arco.core.storage import ObjectStore

BUCKETS = 64
DOC_BUCKETS = 16
MAX_PREFIX = 24
MIN_PREFIX = 2
Kind = Literal["namespace", "table", "column"]
KINDS = ("namespace", "table", "column")
_KIND_ORDER = {"namespace": 0, "table": 1, "column": 2}
_SPLIT_RE = re.compile(r"[^0-9A-Za-z]+")
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

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
        if not chunk:
            continue
        parts = _CAMEL_RE.findall(chunk) or [chunk]
        out.extend(p.lower() for p in parts)
    return list(dict.fromkeys(out))


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
        start = lower.rfind(".") + 2
        tokens.extend(f"^{lower[:i]}" for i in range(start, min(len(lower), MAX_PREFIX) + 1))
    return tokens


def _doc_tokens(name: str, description: str | None, props: dict[str, str]) -> list[str]:
    tokens = [f"n:{t}" for t in name_tokens(name)]
    lower = name.lower()
    tokens.extend(f"^{lower[:i]}" for i in range(MIN_PREFIX, min(len(lower), MAX_PREFIX) + 1))
    if len(lower) < MIN_PREFIX:
        tokens.append(f"^{lower}")
    tokens.extend(f"d:{t}" for t in tokenize(description))
    for key, value in props.items():
        tokens.extend(f"p:{t}" for t in tokenize(key) + tokenize(value))
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
            dict.fromkeys(
                _doc_tokens(short, row["description"], dict(row["properties"] or {}))
                + [f"n:{t}" for t in name_tokens(name)]
            )
        ),
    )


def docs_for_table(state: CatalogState, row: dict[str, Any]) -> list[Doc]:
    """The documents of a table row: the table and each of its columns."""
    qualified = f"{row['namespace']}.{row['name']}"
    columns = state.column_rows(row["id"])
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


class SearchIndex:
    """Maintains and queries the search domain of one scope."""

    def __init__(
        self,
        store: ObjectStore,
        scope: Scope,
        *,
        catalog: Catalog | None = None,
        max_staleness: float = 0.0,
        lock_ttl: float = 300.0,
    ) -> None:
        self.catalog = catalog or Catalog(store, scope)
        # A full rebuild of a large catalog is one long commit: the lease must
        # outlive it (a crashed indexer only delays the next one by the TTL).
        self.domain: DomainStore[SearchState] = DomainStore(
            store,
            scope,
            "search",
            SearchState,
            max_staleness=max_staleness,
            lock_ttl=lock_ttl,
            lock_wait=lock_ttl + 60,
        )
        self._buckets: OrderedDict[tuple[int, str], dict[str, list[dict[str, Any]]]] = OrderedDict()

    # ------------------------------------------------------------- indexing
    def indexed_version(self) -> int:
        """The catalog version the index reflects."""
        snap = self.domain.read()
        return int((snap.manifest.meta if snap.manifest else {}).get("catalog_version", 0))

    def refresh(self) -> int:
        """Bring the index up to the latest catalog version; returns that version."""
        head = self.catalog.snapshot()
        if self.indexed_version() >= head.version:
            return head.version

        def mutate(snap: Snapshot[SearchState]) -> Change:
            meta = snap.manifest.meta if snap.manifest else {}
            indexed = int(meta.get("catalog_version", 0))
            if indexed >= head.version:
                return Change()
            changed_ns, changed_tables, full = self._changes(indexed, head)
            change = Change(meta={"catalog_version": head.version})
            change.operation = {"ops": [{"op": "index", "from": indexed, "to": head.version}]}
            if full:
                self._full(snap, head.state, change)
            else:
                self._incremental(snap, head.state, changed_ns, changed_tables, change)
            return change

        self.domain.commit(mutate)
        return head.version

    def _changes(
        self, indexed: int, head: Snapshot[CatalogState]
    ) -> tuple[set[str], set[str], bool]:
        """Namespace names and table ids changed after ``indexed`` (from delta files)."""
        if indexed == 0:
            return set(), set(), True
        namespaces: set[str] = set()
        tables: set[str] = set()
        for entry in head.files:
            if entry.max_version <= indexed:
                continue
            if entry.kind == "base":
                # The catalog folded its deltas into a new base: rebuild from state.
                return set(), set(), True
            data = self.catalog.domain.load_file(entry)
            rows = [r for r in data.to_pylist() if r["_version"] > indexed]
            if entry.table == "namespaces":
                namespaces.update(r["name"] for r in rows)
            elif entry.table == "tables":
                tables.update(r["id"] for r in rows)
        return namespaces, tables, False

    def _full(self, snap: Snapshot[SearchState], state: CatalogState, change: Change) -> None:
        docs: list[Doc] = [docs_for_namespace(r) for r in state.namespaces.values()]
        for row in state.tables.values():
            docs.extend(docs_for_table(state, row))
        change.replace.update(SearchState.TABLES)
        self._emit(docs, change)

    def _incremental(
        self,
        snap: Snapshot[SearchState],
        state: CatalogState,
        namespaces: set[str],
        table_ids: set[str],
        change: Change,
    ) -> None:
        wanted = [f"ns:{n}" for n in namespaces] + [f"tbl:{t}" for t in table_ids]
        old = self._old_docs(snap, wanted)
        for doc_id in list(old):
            for child in old[doc_id]["children"] or ():
                if child not in old:
                    old.update(self._old_docs(snap, [child]))
        for doc_id, doc_row in old.items():
            for token in doc_row["tokens"] or ():
                change.delete(_posting_table(bucket_of(token)), {"token": token, "doc_id": doc_id})
            change.delete(_doc_table(doc_bucket_of(doc_id)), doc_row)
        docs: list[Doc] = []
        for name in namespaces:
            ns_row = state.namespaces.get(name)
            if ns_row is not None:
                docs.append(docs_for_namespace(ns_row))
        for table_id in table_ids:
            trow = state.tables.get(table_id)
            if trow is not None:
                docs.extend(docs_for_table(state, trow))
        self._emit(docs, change)

    def _old_docs(
        self, snap: Snapshot[SearchState], doc_ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        by_bucket: dict[int, set[str]] = {}
        for doc_id in doc_ids:
            by_bucket.setdefault(doc_bucket_of(doc_id), set()).add(doc_id)
        out: dict[str, dict[str, Any]] = {}
        for bucket, ids in by_bucket.items():
            table = self.domain.load_table(snap, _doc_table(bucket))
            for row in table.to_pylist():
                if row["doc_id"] in ids:
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
    def _bucket(self, snap: Snapshot[SearchState], bucket: int) -> dict[str, list[dict[str, Any]]]:
        files = ",".join(f.path for f in snap.files if f.table == _posting_table(bucket))
        key = (bucket, files)
        hit = self._buckets.get(key)
        if hit is not None:
            self._buckets.move_to_end(key)
            return hit
        table = self.domain.load_table(snap, _posting_table(bucket))
        index: dict[str, list[dict[str, Any]]] = {}
        for row in table.to_pylist():
            index.setdefault(row["token"], []).append(row)
        self._buckets[key] = index
        while len(self._buckets) > BUCKETS * 2:
            self._buckets.popitem(last=False)
        return index

    def _lookup(self, snap: Snapshot[SearchState], token: str) -> list[dict[str, Any]]:
        return self._bucket(snap, bucket_of(token)).get(token, [])

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
        version = self.refresh() if refresh else self.indexed_version()
        snap = self.domain.read()
        q = query.strip().lower()
        # Tokenize before lowercasing so a camelCase query splits like the names.
        q_tokens = tokenize(query.strip())
        scores: dict[str, float] = {}
        matched: dict[str, set[str]] = {}
        rows: dict[str, dict[str, Any]] = {}
        per_token: list[set[str]] = []
        direct: set[str] = set()
        for token in q_tokens:
            hits: set[str] = set()
            for field_marker, weight in (("n:", 100.0), ("d:", 10.0), ("p:", 5.0)):
                for row in self._lookup(snap, field_marker + token):
                    doc = row["doc_id"]
                    rows[doc] = row
                    hits.add(doc)
                    direct.add(doc)
                    scores[doc] = scores.get(doc, 0.0) + weight
                    matched.setdefault(doc, set()).add(field_marker.rstrip(":") + ":" + token)
            # Where an object lives (``q:``) can satisfy a query token but never makes
            # a hit on its own: "sales orders" finds sales.orders, "sales" alone does
            # not list every column in the namespace.
            for row in self._lookup(snap, "q:" + token):
                rows.setdefault(row["doc_id"], row)
                hits.add(row["doc_id"])
            per_token.append(hits)
        required = (set.intersection(*per_token) if per_token else set()) & direct
        prefix_hits: set[str] = set()
        probe = q[:MAX_PREFIX]
        for row in self._lookup(snap, "^" + probe):
            full = row["name"].lower()
            qualified = row["qualified_name"].lower()
            if not (full.startswith(q) or qualified.startswith(q)):
                continue
            doc = row["doc_id"]
            rows[doc] = row
            prefix_hits.add(doc)
            exact = full == q or qualified == q
            scores[doc] = scores.get(doc, 0.0) + (
                1000.0 if exact else 500.0 + 100.0 * len(q) / len(full)
            )
            matched.setdefault(doc, set()).add("exact" if exact else "prefix")
        candidates = required | prefix_hits
        ranked: list[tuple[float, int, str, str]] = []
        for doc in candidates:
            row = rows[doc]
            if kind is not None and row["kind"] != kind:
                continue
            if namespace is not None and not (
                row["namespace"] == namespace
                or row["namespace"].startswith(namespace + ".")
                or (row["kind"] == "namespace" and row["qualified_name"] == namespace)
            ):
                continue
            ranked.append(
                (-scores.get(doc, 0.0), _KIND_ORDER[row["kind"]], row["qualified_name"], doc)
            )
        # Only the requested page is materialised: a common token can match every table.
        top = heapq.nsmallest(offset + limit, ranked)[offset:]
        page = []
        for neg_score, _, _, doc in top:
            row = rows[doc]
            page.append(
                SearchHit(
                    kind=row["kind"],
                    name=row["name"],
                    qualified_name=row["qualified_name"],
                    namespace=row["namespace"],
                    description=row["description"],
                    score=-neg_score,
                    matched=tuple(sorted(matched.get(doc, ()))),
                )
            )
        next_token = str(offset + limit) if offset + limit < len(ranked) else None
        return SearchResults(page, len(ranked), next_token, version)
