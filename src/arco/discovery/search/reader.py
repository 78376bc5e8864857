"""The cold-read machinery: ranged, verified, cached reads of the index's files.

Owns how a query reads the search domain without loading it: the view of one
index manifest (base files by their row-group index, the small delta files
folded in memory), ranged reads checked against the manifest's SHA-256, Parquet
decoding of one row group through a sparse in-memory file, the compact form of a
postings group, and the byte-bounded cache of decoded groups.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from arco.core.errors import IntegrityError, ObjectNotFoundError
from arco.core.ids import sha256_hex
from arco.domain import packed, tableset
from arco.domain.manifest import FileEntry
from arco.domain.store import DomainStore, Snapshot
from arco.domain.tableset import TableDef

from .state import DEAD, DOC_SCHEMA, DOCS, IDS, POSTINGS, SearchState, _indexed

#: Default memory bound of one index's decoded row groups.
CACHE_BYTES = 32 << 20
#: Default memory bound of the lookups and page rows kept for the index's latest
#: versions (apart from the groups: a kept lookup saves a query far more work than
#: a group, and in one LRU the groups of rare tokens would push them out).
KEPT_BYTES = 32 << 20


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
    # The newest row of each key is found on the keys alone, and the rows are copied
    # once, by one take (a full index build folds the whole ``tables`` base here).
    rows = pa.concat_tables(parts)
    keys = pa.table(
        {
            **{k: rows.column(k) for k in tdef.key},
            "_pos": pa.array(range(rows.num_rows), pa.int64()),
        }
    )
    last = keys.group_by(list(tdef.key), use_threads=False).aggregate([("_pos", "max")])
    del keys
    newest = last.column("_pos_max").combine_chunks()
    newest = newest.take(pc.sort_indices(newest))
    live = pc.not_equal(rows.column("_op").take(newest), tableset.OP_DELETE)
    return rows.select(names).take(newest.filter(live))


T = TypeVar("T")

_HIT_SCHEMA = pa.schema(
    [
        pa.field("doc", pa.int32(), nullable=False),
        pa.field("exact", pa.bool_(), nullable=False),
        pa.field("name_len", pa.int16()),
        pa.field("min_len", pa.int16()),
    ]
)


@dataclass(frozen=True)
class _Views:
    """Zero-copy views of a :class:`PostingRuns`' token offsets and bytes and run ends."""

    offsets: memoryview
    data: memoryview
    ends: memoryview


@dataclass(frozen=True)
class PostingRuns:
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
    _views: _Views = field(init=False, repr=False, compare=False)

    @classmethod
    def of(cls, group: pa.Table) -> PostingRuns:
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

    def __post_init__(self) -> None:
        # The binary searches read the tokens' bytes and the run ends in place
        # (zero-copy views of the Arrow buffers): a scalar per step cost ~3 µs, and
        # a lookup takes ~30 steps in a group of 8,192 tokens.
        offsets, data = self.tokens.buffers()[1:3]
        start = self.tokens.offset
        if offsets is None:
            all_offsets = memoryview(bytes(8)).cast("i")
        elif pa.types.is_large_string(self.tokens.type):
            all_offsets = memoryview(offsets).cast("q")
        else:
            all_offsets = memoryview(offsets).cast("i")
        views = _Views(
            all_offsets[start : start + len(self.tokens) + 1],
            memoryview(data) if data is not None else memoryview(b""),
            memoryview(self.ends.buffers()[1] or b"").cast("i")[
                self.ends.offset : self.ends.offset + len(self.ends)
            ],
        )
        object.__setattr__(self, "_views", views)

    def _token(self, i: int) -> bytes:
        """The UTF-8 bytes of distinct token ``i``."""
        v = self._views
        return bytes(v.data[v.offsets[i] : v.offsets[i + 1]])

    def _end(self, i: int) -> int:
        """The row where distinct token ``i``'s postings end."""
        return int(self._views.ends[i])

    def _first(self, key: bytes, prefix: bool) -> int:
        """The first distinct token past ``key`` (past every token starting with it
        when ``prefix``): binary search, tokens in code point order (UTF-8 byte order)."""
        lo, hi = 0, len(self.tokens)
        while lo < hi:
            mid = (lo + hi) // 2
            token = self._token(mid)
            if token <= key or (prefix and token.startswith(key)):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def rows(self, key: str, prefix: bool) -> tuple[int, int, int]:
        """Where the postings of ``key`` are, ``(start, mid, end)``: ``key``'s own in
        rows ``start .. mid``, then (when ``prefix``) those of the tokens starting
        with it, to ``end`` (all three equal if there are none)."""
        raw = key.encode()
        n = len(self.tokens)
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if self._token(mid) < raw:
                lo = mid + 1
            else:
                hi = mid
        first = lo
        if first == n:
            return 0, 0, 0
        exact = self._token(first) == raw
        last = self._first(raw, prefix) if prefix else first + (1 if exact else 0)
        if last == first:
            return 0, 0, 0
        row = self._end(first - 1) if first else 0
        mid_row = self._end(first) if exact else row
        return row, mid_row, self._end(last - 1)

    def find(self, key: str, prefix: bool) -> pa.Table:
        """The postings of ``key`` (and of the tokens starting with it, when ``prefix``),
        ``key``'s own first; columns of ``_HIT_SCHEMA``."""
        row, mid_row, end = self.rows(key, prefix)
        if end == row:
            return _HIT_SCHEMA.empty_table()
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
        firsts, lasts = packed.key_bounds(index["groups"])
        return cls(entry, [k[0] for k in firsts], [k[0] for k in lasts])

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


class IndexReader:
    """Reads one scope's search domain for queries and incremental refreshes: the
    view of the latest manifest (cached), and row groups of its sorted bases by
    verified ranged reads (decoded ones cached by content hash)."""

    def __init__(
        self, domain: DomainStore[SearchState], cache_bytes: int, kept_bytes: int = KEPT_BYTES
    ) -> None:
        self.domain = domain
        #: Decoded row groups, least recently used dropped first past ``cache_bytes``.
        self.groups = _GroupCache(cache_bytes)
        #: Lookups and rows kept per index version, bounded by ``kept_bytes``.
        self.lookups = _GroupCache(kept_bytes)
        #: Per lookup being made: its lock and how many threads hold or wait for it.
        self._making: dict[str, list[Any]] = {}
        self._making_lock = threading.Lock()
        self._view: _View | None = None
        self._view_lock = threading.Lock()

    def view(self, snap: Snapshot[SearchState]) -> _View:
        """The query-side view of an index snapshot (cached for its manifest)."""
        with self._view_lock:
            view = self._view
            if view is None or view.manifest_key != snap.manifest_key:
                view = self._view = self._load_view(snap)
            return view

    def _load_view(self, snap: Snapshot[SearchState]) -> _View:
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
            delta_postings = delta_postings.sort_by([("token", "ascending"), ("doc", "ascending")])
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
        return _View(
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

    def group(self, base: _Sorted, g: int) -> pa.Table:
        """Row group ``g`` of a sorted base: fetched by range, verified, decoded (cached)."""
        table: pa.Table = self._cached_group(base, g, runs=False)
        return table

    def posting_runs(self, base: _Sorted, g: int) -> PostingRuns:
        """Row group ``g`` of a postings base, kept (and returned) as :class:`PostingRuns`."""
        runs: PostingRuns = self._cached_group(base, g, runs=True)
        return runs

    def _cached_group(self, base: _Sorted, g: int, runs: bool) -> Any:
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
            sparse = tableset.SparseFile(entry.size, {f_start: footer})
            meta = tableset.parquet_reader(pa.PythonFile(sparse, mode="r")).metadata
            self.groups.put(f_sha, meta, len(footer) * 4)
        data = self._fetch(entry, g_start, g_len, g_sha)
        reader = tableset.parquet_reader(
            pa.PythonFile(tableset.SparseFile(entry.size, {g_start: data}), mode="r"), meta
        )
        table: pa.Table = reader.read_row_group(g, use_threads=False)
        table = table.combine_chunks()
        if runs:
            compact = PostingRuns.of(table)
            self.groups.put(key, compact, compact.nbytes)
            return compact
        self.groups.put(key, table, table.nbytes)
        return table

    def kept(self, view: _View, kind: str, key: str) -> Any:
        """What a query kept for this index view under ``kind`` and ``key`` (None if
        nothing, or evicted). Keyed by the view's manifest (immutable, unique per
        index commit): nothing kept for one index version answers for another."""
        return self.lookups.get(f"{view.manifest_key}\x00{kind}\x00{key}")

    def kept_or_made(
        self, view: _View, kind: str, key: str, make: Callable[[], tuple[T, int | None]]
    ) -> T:
        """What is kept for ``kind``/``key`` of this view, else what ``make`` returns,
        kept under the size it gives with it (None: not kept, too small to matter).

        One thread at a time makes a given lookup: concurrent requests for one query
        (a popular search, the first ones after a commit) would each make the same
        common-token lookup, megabytes of Arrow buffers and milliseconds of CPU
        apiece; the second waits for the first and then finds the lookup kept.
        ``make`` must not itself call this (no lock order to keep)."""
        kept: T | None = self.kept(view, kind, key)
        if kept is not None:
            return kept
        with self._one_maker(view, kind, key):
            kept = self.kept(view, kind, key)
            if kept is not None:
                return kept
            value, size = make()
            if size is not None:
                self.keep(view, kind, key, value, size)
            return value

    @contextmanager
    def _one_maker(self, view: _View, kind: str, key: str) -> Iterator[None]:
        """Held while one thread makes the lookup ``kind``/``key`` of this view."""
        name = f"{view.manifest_key}\x00{kind}\x00{key}"
        with self._making_lock:
            entry = self._making.get(name)
            if entry is None:
                entry = self._making[name] = [threading.Lock(), 0]
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._making_lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._making[name]

    def keep(self, view: _View, kind: str, key: str, value: Any, size: int) -> None:
        """Keep a query's lookup for this index view, under the cache's byte bound."""
        self.lookups.put(f"{view.manifest_key}\x00{kind}\x00{key}", value, size)

    def doc_rows(self, view: _View, gids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The ``docs`` rows of these document numbers as dicts, by number. Rows are
        kept for the view one by one (a page needs a few rows of many groups): once a
        page's rows are kept, its decoded groups are no longer used and age out of
        the group cache."""
        out: dict[int, dict[str, Any]] = {}
        missing = []
        for g in gids:
            row = self.kept(view, "doc", str(g))
            if row is None:
                missing.append(g)
            else:
                out[g] = row
        if missing:
            rows = self.docs(view, pa.array(missing, pa.int32()))
            for row in rows.to_pylist():
                out[row["doc"]] = row
                size = 160 + sum(len(v) for v in row.values() if isinstance(v, str))
                self.keep(view, "doc", str(row["doc"]), row, size)
        return out

    def docs(self, view: _View, gids: pa.Array) -> pa.Table:
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
                group = self.group(view.docs, g)
                part = group.filter(pc.is_in(group.column("doc"), value_set=wanted))
                if part.num_rows:
                    parts.append(part)
        if not parts:
            return DOC_SCHEMA.empty_table()
        return pa.concat_tables([p.select(DOC_SCHEMA.names).cast(DOC_SCHEMA) for p in parts])

    def old_ids(self, view: _View, exact: Sequence[str], prefixes: Sequence[str]) -> dict[str, int]:
        """The live document numbers of these ids (and of ids starting with a prefix)."""
        found: dict[str, int] = {}
        tdef = SearchState.TABLES[IDS]
        if view.ids is not None:
            for key, prefix in [(k, None) for k in exact] + [(p, p) for p in prefixes]:
                for g in view.ids.groups_for(key, prefix):
                    group = self.group(view.ids, g)
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
