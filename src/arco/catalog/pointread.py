"""Reads that touch only what a question needs (ADR 015).

A cold reader (a new process, a new ``Catalog`` object) used to fold every row of
the catalog into Python objects before answering one question. Here one
question reads: the pointer, the manifest (both as before), the delta files of
the table newer than its base (bounded by the merge policy of ADR 003, and only
their key columns become Python values), and, from a base sorted by the table's
``sort_key``, only the footer and the row group whose key range holds the key —
two ranged GETs, each checked against the SHA-256 the manifest records for it.

The answer is the one the full fold gives at the same manifest: a delta row with
``_version`` above the base wins over the base (last write per primary key),
``_op = 1`` deletes, and a base row whose primary key any newer delta row
touches is superseded even if its sort key no longer matches (a rename).
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from arco.catalog.models import Namespace, Table
from arco.catalog.state import CatalogState
from arco.core.errors import IntegrityError, ObjectNotFoundError
from arco.core.ids import sha256_hex
from arco.domain import packed, tableset
from arco.domain.manifest import FileEntry, Manifest
from arco.domain.tableset import TableDef

if TYPE_CHECKING:
    from arco.domain.store import DomainStore

Key = tuple[Any, ...]

#: Decoded row groups kept per process, across readers (they are immutable).
GROUP_CACHE_SIZE = 64


class _GroupCache:
    """A bounded LRU of decoded row groups and parsed footers, keyed by SHA-256."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: tuple[str, int], value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_GROUPS = _GroupCache(GROUP_CACHE_SIZE)

#: The own footers (ADR 029) of a few bases, kept per process as fetched: a reader
#: that reads a second group of a base fetches them all at once (~0.8 KB a group).
_OWN_FOOTERS = _GroupCache(16)


def _checked(data: bytes, path: str, start: int, length: int, sha256: str) -> bytes:
    """``data``, the bytes ``start`` to ``start + length`` of ``path``, if they hash as listed."""
    if len(data) != length or sha256_hex(data) != sha256:
        raise _range_mismatch(path, start, length)
    return data


def _range_mismatch(path: str, start: int, length: int) -> IntegrityError:
    return IntegrityError(
        f"{path}: bytes {start}-{start + length} do not match the manifest's index"
    )


def _own_footer_of(index: dict[str, Any], g: int) -> tuple[int, int, str, int] | None:
    """Group ``g``'s own footer ``(start, length, sha256, size)`` in ``index``, if it lists one."""
    own = index.get("group_footers")
    if not isinstance(own, list | packed.PackedRows) or len(own) != len(index["groups"]):
        return None
    try:
        start, length, sha, size = own[g]
        return int(start), int(length), str(sha), int(size)
    except (TypeError, ValueError):
        return None  # not an entry this code wrote: read through the file's footer


class _Group:
    """A decoded row group of a sorted base and a way to find a sort key in it.

    Its sort keys become Python values only once the group is looked into again
    (a server's) or scanned: a cold reader's one lookup bisects the Arrow columns
    (9 steps of 512 rows) instead of converting every key (0.5 ms).
    """

    __slots__ = ("_columns", "_keys", "_lookups", "table")

    def __init__(self, table: pa.Table, sort_key: Sequence[str]) -> None:
        self.table = table
        self._columns = [table.column(c) for c in sort_key]
        self._keys: list[Key] | None = None
        self._lookups = 0

    @property
    def keys(self) -> list[Key]:
        """Every sort key of the group, in order (made once)."""
        keys = self._keys
        if keys is None:
            cols = [c.to_pylist() for c in self._columns]
            if not any(c.null_count for c in self._columns):
                keys = list(zip(*cols, strict=True))  # no None to order as "": 4x faster
            else:
                keys = [_key_of(k) for k in zip(*cols, strict=True)]
            self._keys = keys
        return keys

    def find(self, key: Key) -> int | None:
        """The row whose sort key is ``key``, or None."""
        self._lookups += 1
        keys: Sequence[Key] = (
            self.keys if self._keys is not None or self._lookups > 1 else _ArrowKeys(self._columns)
        )
        i = bisect.bisect_left(keys, key)
        return i if i < len(keys) and keys[i] == key else None


class _ArrowKeys(Sequence[Key]):
    """The sort keys of a group, read from its Arrow columns one at a time (for bisect)."""

    def __init__(self, columns: list[pa.ChunkedArray]) -> None:
        self._columns = columns

    def __len__(self) -> int:
        return len(self._columns[0])

    def __getitem__(self, i: int) -> Key:  # type: ignore[override]
        return _key_of([c[i].as_py() for c in self._columns])


def _key_of(row: Sequence[Any]) -> Key:
    return tuple("" if v is None else v for v in row)


class StateReader:
    """Point lookups and ordered scans of one state table at one manifest."""

    def __init__(self, domain: DomainStore[Any], manifest: Manifest, tdef: TableDef) -> None:
        if not tdef.sort_key:
            raise ValueError(f"{tdef.name} has no sort key")
        self.domain = domain
        self.tdef = tdef
        entries = [f for f in manifest.files if f.table == tdef.name]
        self.base: FileEntry | None = next((f for f in entries if f.kind == "base"), None)
        self.since = self.base.max_version if self.base is not None else 0
        self.deltas = sorted(
            (f for f in entries if f.kind == "delta" and f.max_version > self.since),
            key=lambda f: f.min_version,
        )
        index = self.base.index if self.base is not None else None
        self.indexed = self.base is None or (
            index is not None
            and index.get("format") == tableset.INDEX_FORMAT
            and tuple(index.get("sort_key", ())) == tdef.sort_key
        )
        self._bounds: list[tuple[Key, Key]] = []
        if index is not None:
            firsts, lasts = packed.key_bounds(index["groups"])
            self._bounds = [(tuple(a), tuple(b)) for a, b in zip(firsts, lasts, strict=True)]
        # Per delta, (first sort key, last sort key, first primary key, last primary
        # key) from its index, or None: a point read skips a delta outside them.
        self._ranges = [_delta_ranges(d.index, tdef) for d in self.deltas]
        self._overlay: tuple[set[Key], dict[Key, tuple[int, int]]] | None = None
        self._ordered: tuple[list[Key], list[tuple[int, int]]] | None = None
        self._keys: dict[int, pa.Table] = {}
        self._lists: dict[tuple[int, str], list[Any]] = {}
        self._rows: dict[int, pa.Table] = {}
        self._asked: dict[tuple[int, str], int] = {}
        self._where_maps: dict[tuple[int, str], dict[Any, list[int]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------- overlay
    def _deltas(self) -> tuple[set[Key], dict[Key, tuple[int, int]]]:
        """Primary keys the deltas touch, and where each live delta row is, by sort key.

        Only the key columns of the deltas are decoded here (each file is still
        fetched and verified whole); a full row is decoded when it is asked for.
        """
        pk, sk = self.tdef.key, self.tdef.sort_key
        lists = [
            {c: self._col(d, c) for c in dict.fromkeys((*pk, *sk, "_op", "_version"))}
            for d in range(len(self.deltas))
        ]
        with self._lock:
            if self._overlay is not None:
                return self._overlay
            latest: dict[Key, tuple[int, int, int, Key]] = {}
            for d, cols in enumerate(lists):
                versions, ops = cols["_version"], cols["_op"]
                pks = list(zip(*(cols[c] for c in pk), strict=True))
                sks = list(zip(*(cols[c] for c in sk), strict=True))
                for r, version in enumerate(versions):
                    if version <= self.since:
                        continue
                    old = latest.get(pks[r])
                    if old is None or version >= old[0]:
                        latest[pks[r]] = (version, ops[r], d * (1 << 32) + r, _key_of(sks[r]))
            live = {
                skey: (pos >> 32, pos & 0xFFFFFFFF)
                for _, op, pos, skey in latest.values()
                if op != tableset.OP_DELETE
            }
            self._overlay = (set(latest), live)
            return self._overlay

    def _ordered_live(self) -> tuple[list[Key], list[tuple[int, int]]]:
        """The live delta rows' sort keys in order, and their (file, row) positions.

        Sorted once per reader: a listing page bisects its range here instead of
        filtering and sorting the whole overlay (10,000 rows after two bulk loads).
        """
        ordered = self._ordered
        if ordered is None:
            _, live = self._deltas()
            pairs = sorted(live.items())
            ordered = ([k for k, _ in pairs], [w for _, w in pairs])
            with self._lock:
                if self._ordered is None:
                    self._ordered = ordered
                ordered = self._ordered
        return ordered

    def _key_table(self, d: int) -> pa.Table:
        """The key columns of delta ``d`` (fetched, verified and decoded once per reader)."""
        with self._lock:
            hit = self._keys.get(d)
            if hit is None:
                names = tuple(
                    dict.fromkeys((*self.tdef.key, *self.tdef.sort_key, "_op", "_version"))
                )
                hit = self._keys[d] = self.domain.load_file(self.deltas[d], names)
            return hit

    def _col(self, d: int, column: str) -> list[Any]:
        """Column ``column`` of delta ``d``'s key columns as a Python list (made once)."""
        table = self._key_table(d)
        with self._lock:
            hit = self._lists.get((d, column))
            if hit is None:
                hit = self._lists[(d, column)] = table.column(column).to_pylist()
            return hit

    def _where(self, d: int, column: str, value: Any) -> Iterable[int]:
        """Rows of delta ``d`` whose key column ``column`` holds ``value``.

        The first lookups scan the column with ``list.index`` (a C loop, nothing to
        build: a cold reader asks one question); a reader asked more often (a
        server's) maps the column's values to rows once, as a scan of a bulk
        load's 5,000-row delta per lookup was a fifth of a get-table request.
        """
        where = self._where_maps.get((d, column))
        if where is not None:
            return where.get(value, ())
        asked = self._asked[(d, column)] = self._asked.get((d, column), 0) + 1
        if asked <= _SCANS_BEFORE_MAP:
            return _occurrences(self._col(d, column), value)
        where = {}
        for r, v in enumerate(self._col(d, column)):
            where.setdefault(v, []).append(r)
        with self._lock:
            self._where_maps[(d, column)] = where
        return where.get(value, ())

    def _value(self, d: int, column: str, row: int) -> Any:
        return self._key_table(d).column(column)[row].as_py()

    def _may_hold(self, d: int, key: Key | None = None, pk: Key | None = None) -> bool:
        """Whether delta ``d`` may hold sort key ``key`` / primary key ``pk`` (by its index)."""
        ranges = self._ranges[d]
        if ranges is None:
            return True
        s_lo, s_hi, k_lo, k_hi = ranges
        if key is not None and not s_lo <= key <= s_hi:
            return False
        return pk is None or k_lo <= pk <= k_hi

    def _newest(self, pk: Any) -> tuple[int, int, int] | None:
        """(version, file, row) of the newest delta row newer than the base with primary key ``pk``.

        For a one-column primary key; ``list.index`` finds its rows at C speed,
        where building the whole overlay (:meth:`_deltas`) costs a Python step
        per delta row (25 ms for the 10,000 rows a bulk load can leave).
        """
        best: tuple[int, int, int] | None = None
        column = self.tdef.key[0]
        for d in range(len(self.deltas)):
            if not self._may_hold(d, pk=(pk,)):
                continue
            for r in self._where(d, column, pk):
                version = self._value(d, "_version", r)
                if version > self.since and (best is None or version >= best[0]):
                    best = (version, d, r)
        return best

    def _delta_lookup(self, key: Key) -> tuple[int, int] | None:
        """Where the live delta row with sort key ``key`` is, found without the overlay."""
        sk, pk = self.tdef.sort_key, self.tdef.key[0]
        for d in range(len(self.deltas)):
            if not self._may_hold(d, key=key):
                continue
            for r in self._where(d, sk[-1], key[-1]):
                if self._value(d, "_version", r) <= self.since:
                    continue
                if _key_of(tuple(self._value(d, c, r) for c in sk)) != key:
                    continue
                newest = self._newest(self._value(d, pk, r))
                # Live only if no newer row of that table renamed, changed or dropped it.
                live = newest is not None and newest[1:] == (d, r)
                if live and self._value(d, "_op", r) != tableset.OP_DELETE:
                    return (d, r)
        return None

    def _delta_rows(self, wheres: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        """Delta rows at (file, row) positions, built in one pass per file."""
        by_file: dict[int, set[int]] = {}
        for d, r in wheres:
            by_file.setdefault(d, set()).add(r)
        found: dict[tuple[int, int], dict[str, Any]] = {}
        for d, wanted in by_file.items():
            table = self.domain.load_file(self.deltas[d])
            positions = sorted(wanted)
            # Slices of contiguous runs, not Table.take: take loads pyarrow.compute.
            runs: list[list[int]] = []
            for r in positions:
                if runs and runs[-1][1] == r:
                    runs[-1][1] = r + 1
                else:
                    runs.append([r, r + 1])
            parts = [table.slice(a, b - a) for a, b in runs]
            part = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
            for r, row in zip(positions, tableset.to_rows(part), strict=True):
                row.pop("_op", None)
                row.pop("_version", None)
                found[(d, r)] = row
        return [found[w] for w in wheres]

    # ---------------------------------------------------------------- base
    def _fetch(self, path: str, start: int, length: int, sha256: str | None) -> bytes:
        """Bytes ``start`` to ``start + length`` of ``path``, checked against ``sha256``
        (None: the caller checks each part it uses)."""
        if not self.domain.keys.is_within(path):
            raise IntegrityError(f"{path}: state file outside scope {self.domain.scope}")
        try:
            data = self.domain.store.get_range(path, start, start + length)
        except ObjectNotFoundError as exc:
            raise IntegrityError(f"{path}: state file is missing") from exc
        if sha256 is None:
            if len(data) != length:
                raise _range_mismatch(path, start, length)
            return data
        return _checked(data, path, start, length, sha256)

    def _own_footer(self, own: tuple[int, int, str, int], f_sha: str) -> bytes:
        """A group's own footer (ADR 029), uncompressed, checked against its SHA-256.

        The first group read of a base fetches only its own footer (a one-shot
        reader: the CLI, a new server's first request); a second fetches every own
        footer of the base in one ranged GET and keeps them, so a reader that goes on
        makes one GET per group and never parses the file's footer.
        """
        base = self.base
        assert base is not None
        assert base.index is not None
        start, length, sha, size = own
        kept: tuple[int, bytes] | None = _OWN_FOOTERS.get((f_sha, 0))
        if kept is None:
            seen = _OWN_FOOTERS.get((f_sha, 1))
            if seen is None:
                _OWN_FOOTERS.put((f_sha, 1), True)
                return tableset.unpack_own_footer(self._fetch(base.path, start, length, sha), size)
            entries = base.index["group_footers"]
            starts, lengths = packed.column_of(entries, 0), packed.column_of(entries, 1)
            lo = min(int(a) for a in starts)
            hi = max(int(a) + int(n) for a, n in zip(starts, lengths, strict=True))
            kept = (lo, self._fetch(base.path, lo, hi - lo, None))
            _OWN_FOOTERS.put((f_sha, 0), kept)
        lo, blob = kept
        stored = _checked(blob[start - lo : start - lo + length], base.path, start, length, sha)
        return tableset.unpack_own_footer(stored, size)

    def _group(self, g: int, *, keep: bool = True) -> tuple[pa.Table, list[Key]]:
        """Row group ``g`` of the base and its sort keys, fetched by range and verified.

        Cached unless ``keep`` is false: a full listing reads each group once, and
        keeping them would hold 64 groups of memory for nothing (pages of a
        listing do keep them: the next page starts in the same group).
        """
        group = self._group_at(g, keep=keep)
        return group.table, group.keys

    def _group_at(self, g: int, *, keep: bool = True) -> _Group:
        base = self.base
        assert base is not None
        assert base.index is not None
        index = base.index
        f_start, f_len, f_sha = index["footer"]
        _, _, g_start, g_len, g_sha, _ = index["groups"][g]
        # Keyed by content hash, not path: two stores may hold one path with other bytes.
        cached: _Group | None = _GROUPS.get((g_sha, g))
        if cached is not None:
            return cached
        meta = _GROUPS.get((f_sha, -1))
        data = self._fetch(base.path, g_start, g_len, g_sha)
        own = _own_footer_of(index, g)
        if meta is None and own is not None:
            # The group's own footer (~1 KB) instead of the file's, whose size grows
            # with the catalog (ADR 029).
            table = tableset.read_group_alone(data, self._own_footer(own, f_sha))
        else:
            if meta is None:
                footer = self._fetch(base.path, f_start, f_len, f_sha)
                sparse = tableset.SparseFile(base.size, {f_start: footer})
                meta = tableset.parquet_reader(pa.PythonFile(sparse, mode="r")).metadata
                _GROUPS.put((f_sha, -1), meta)
            sparse = tableset.SparseFile(base.size, {g_start: data})
            reader = tableset.parquet_reader(pa.PythonFile(sparse, mode="r"), meta)
            table = reader.read_row_group(g, use_threads=False)
        hit = _Group(table, self.tdef.sort_key)
        if keep:
            _GROUPS.put((g_sha, g), hit)
        return hit

    def _groups_for(self, lo: Key, hi: Key | None) -> range:
        """Indexes of the base groups whose key range meets ``[lo, hi]`` (hi None: open)."""
        bounds = self._bounds
        first = bisect.bisect_left([b[1] for b in bounds], lo)
        last = len(bounds) if hi is None else bisect.bisect_right([b[0] for b in bounds], hi)
        return range(first, max(first, last))

    # --------------------------------------------------------------- reads
    def get(self, key: Key) -> dict[str, Any] | None:
        """The live row whose sort key is ``key``, or None."""
        touched: Callable[[Key], bool]
        if self._overlay is None and len(self.tdef.key) == 1:
            # One question: search the deltas' key lists instead of building the overlay.
            where = self._delta_lookup(key)

            def touched(pk: Key) -> bool:
                return self._newest(pk[0]) is not None

        else:
            touched_set, live = self._deltas()
            where = live.get(key)
            touched = touched_set.__contains__
        if where is not None:
            return self._delta_rows([where])[0]
        if self.base is None:
            return None
        for g in self._groups_for(key, key):
            group = self._group_at(g)
            i = group.find(key)
            if i is not None:
                row = tableset.to_rows(group.table.slice(i, 1))[0]
                if touched(tuple(row[c] for c in self.tdef.key)):
                    return None  # renamed, changed or deleted by a newer delta
                return row
        return None

    def scan(
        self, prefix: Key = (), *, after: Key | None = None, name_prefix: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Live rows whose sort key starts with ``prefix``, in sort-key order, in batches.

        ``after`` skips keys up to and including it (a page marker);
        ``name_prefix`` keeps keys whose last component starts with it.
        Rows come out a slice of a group at a time, so the first batch is ready
        before the last group is read.
        """
        for group, runs in self._live(prefix, after, name_prefix, _SCAN_ROWS):
            yield tableset.to_rows(self._assemble(group, runs))

    def scan_page(
        self, prefix: Key, *, after: Key | None, name_prefix: str | None, limit: int
    ) -> pa.Table:
        """The first ``limit`` rows :meth:`scan` gives, as one Arrow table of the schema.

        Cut from the groups and deltas as slices: only the rows of the page are
        ever decoded into Python, by whoever reads the table (a page of 100 used
        to convert one or two slices of 128 base rows, and each delta row apart).
        """
        parts: list[pa.Table] = []
        need = limit
        for group, runs in self._live(prefix, after, name_prefix, limit):
            runs = _first_runs(runs, need)
            parts.append(self._assemble(group, runs))
            need -= sum(stop - start for _, start, stop in runs)
            if need <= 0:
                break
        if not parts:
            return self.tdef.schema.empty_table()
        return parts[0] if len(parts) == 1 else self._concat(parts)

    def scan_arrow(self, prefix: Key = ()) -> Iterator[pa.Table]:
        """:meth:`scan` as Arrow tables of the table's schema, one per base group.

        The live rows are cut from the decoded group and the delta files as slices
        of contiguous runs, so no row becomes a Python object: a caller that
        renders them (``arco table list``) works column by column.
        """
        for group, runs in self._live(prefix, None, None, None, keep=False):
            yield self._assemble(group, runs)

    def _live(
        self,
        prefix: Key,
        after: Key | None,
        name_prefix: str | None,
        chunk: int | None,
        *,
        keep: bool = True,
    ) -> Iterator[tuple[pa.Table | None, list[list[int]]]]:
        """Where the live rows of a scan are, in sort-key order, as ``(group, runs)``.

        A run ``[source, start, stop]`` is contiguous rows of ``group`` (source -1)
        or of delta file ``source``. One item per ``chunk`` keys of a base group (or
        per group, if None), with the delta rows whose keys fall among them; then
        the delta rows past the last group. Only sort and primary keys are read as
        Python values; see :meth:`scan` for ``after`` and ``name_prefix``.
        """
        touched, _ = self._deltas()
        n = len(prefix)
        past = after is not None and after >= prefix
        start = after if past and after is not None else prefix

        def first(keys: Sequence[Key], lo: int = 0) -> int:
            """Where the keys after ``after`` (else from ``prefix``) begin in ``keys``."""
            if past:
                return bisect.bisect_right(keys, start, lo)
            return bisect.bisect_left(keys, prefix, lo)

        def end(keys: Sequence[Key], lo: int) -> int:
            """Where the keys that start with ``prefix`` end in ``keys`` (from ``lo``)."""
            return bisect.bisect_right(keys, prefix, lo, key=lambda k: k[:n])

        def named(key: Key) -> bool:
            return name_prefix is None or str(key[-1]).startswith(name_prefix)

        live_keys, live_where = self._ordered_live()
        p = first(live_keys)
        p_end = end(live_keys, p)
        groups: Sequence[int] = ()
        if self.base is not None:
            groups = self._groups_for(start, None)
        for g in groups:
            if self._bounds[g][0][:n] > prefix:
                break
            table, keys = self._group(g, keep=keep)
            lo_i = first(keys)
            hi_i = end(keys, lo_i)
            step = chunk or max(1, hi_i - lo_i)
            for c in range(lo_i, hi_i, step):
                c_end = min(hi_i, c + step)
                cols = [table.column(k).slice(c, c_end - c).to_pylist() for k in self.tdef.key]
                pks = zip(*cols, strict=True)
                runs: list[list[int]] = []
                for i, key, pk in zip(range(c, c_end), keys[c:c_end], pks, strict=True):
                    if not named(key) or pk in touched:
                        continue
                    while p < p_end and live_keys[p] < key:
                        if named(live_keys[p]):
                            _extend(runs, *live_where[p])
                        p += 1
                    _extend(runs, -1, i)
                if runs:
                    yield table, runs
            if hi_i < len(keys):
                break  # the next key of this group is past the prefix
        pending = [live_where[i] for i in range(p, p_end) if named(live_keys[i])]
        for c in range(0, len(pending), tableset.GROUP_ROWS):
            runs = []
            for d, r in pending[c : c + tableset.GROUP_ROWS]:
                _extend(runs, d, r)
            yield None, runs

    def _assemble(self, group: pa.Table | None, runs: list[list[int]]) -> pa.Table:
        """The rows of ``runs`` (see :meth:`_live`) as one table of the schema."""
        parts = []
        for source, start, stop in runs:
            if source < 0:
                assert group is not None
                parts.append(group.slice(start, stop - start))
            else:
                parts.append(self._delta_table(source).slice(start, stop - start))
        return parts[0] if len(parts) == 1 else self._concat(parts)

    def _delta_table(self, d: int) -> pa.Table:
        """Delta ``d`` without ``_op`` and ``_version``, kept (a page asks once per run)."""
        table = self._rows.get(d)
        if table is None:
            table = self.domain.load_file(self.deltas[d]).drop_columns(["_op", "_version"])
            with self._lock:
                self._rows[d] = table
        return table

    def _concat(self, parts: list[pa.Table]) -> pa.Table:
        """``parts`` as one table; files written before a column was added get it as nulls."""
        schema = parts[0].schema
        if any(not p.schema.equals(schema) for p in parts):
            names = self.tdef.schema.names
            parts = [tableset.with_added_columns(self.tdef, p).select(names) for p in parts]
            if any(not p.schema.equals(self.tdef.schema) for p in parts):
                parts = [p.cast(self.tdef.schema) for p in parts]
        return pa.concat_tables(parts)


#: Base keys a scan turns into Python rows at a time.
_SCAN_ROWS = 128
#: Lookups of a delta's key column by scanning it before it is mapped (:meth:`StateReader._where`).
_SCANS_BEFORE_MAP = 16


def _first_runs(runs: list[list[int]], n: int) -> list[list[int]]:
    """The runs of the first ``n`` rows of ``runs``."""
    out: list[list[int]] = []
    for source, start, stop in runs:
        if n <= 0:
            break
        take = min(n, stop - start)
        out.append([source, start, start + take])
        n -= take
    return out


def _delta_ranges(index: dict[str, Any] | None, tdef: TableDef) -> tuple[Key, Key, Key, Key] | None:
    """First and last sort key and primary key of a delta index of ``tdef``, or None."""
    if (
        index is None
        or index.get("kind") != tableset.DELTA_INDEX
        or index.get("format") != tableset.INDEX_FORMAT
        or tuple(index.get("sort_key", ())) != tdef.sort_key
        or tuple(index.get("key", ())) != tdef.key
    ):
        return None
    (s_lo, s_hi), (k_lo, k_hi) = index["sort_range"], index["key_range"]
    return tuple(s_lo), tuple(s_hi), tuple(k_lo), tuple(k_hi)


def _occurrences(values: list[Any], value: Any) -> Iterator[int]:
    """Indexes of ``value`` in ``values``, found by ``list.index`` (a C loop)."""
    i = -1
    while True:
        try:
            i = values.index(value, i + 1)
        except ValueError:
            return
        yield i


def _extend(runs: list[list[int]], source: int, row: int) -> None:
    """Add ``row`` of ``source`` to ``runs``, growing the last run when it is contiguous."""
    if runs and runs[-1][0] == source and runs[-1][2] == row:
        runs[-1][2] = row + 1
    else:
        runs.append([source, row, row + 1])


def table_from_row(row: dict[str, Any]) -> Table:
    """A :class:`~arco.catalog.models.Table` from a ``tables`` state row."""
    return CatalogState.table_from_row(row)


def namespace_from_row(row: dict[str, Any]) -> Namespace:
    """A :class:`~arco.catalog.models.Namespace` from a ``namespaces`` state row."""
    return Namespace(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        properties=dict(row["properties"] or {}),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
