"""The commit and read protocol shared by every domain (Tier 1 and Tier 2).

Commit (one writer at a time, serialised by the lease lock):

1. acquire the lease lock and its fencing token;
2. read the head pointer and bring the cached state up to it;
3. compute the change; write delta (and any merged) Parquet files, create-only,
   under a directory unique to this attempt;
4. write the manifest, create-only, naming its parent and every file;
5. re-check that the lock still carries our token;
6. compare-and-swap the pointer from the version read in step 2;
7. release the lock.

A keeper thread renews the lease every third of its TTL from step 1 to step 7.

A crash before step 6 leaves only unreferenced files (collected by GC); a crash
after it leaves a complete commit and, at worst, a lock that expires. A lost CAS
retries from step 2 with backoff and jitter. Readers follow pointer, manifest,
files, and never list (invariant I7).
"""

from __future__ import annotations

import gc
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Generic

import pyarrow as pa

from arco.core import metrics
from arco.core.actor import current_actor
from arco.core.errors import (
    CommitConflictError,
    FencedError,
    IntegrityError,
    NotFoundError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from arco.core.ids import new_ulid, sha256_hex, utc_now
from arco.core.keys import Keys, validate_domain
from arco.core.scope import Scope
from arco.core.storage import Match, ObjectStore, PutMode
from arco.core.telemetry import span
from arco.domain import merge, tableset
from arco.domain.lock import DEFAULT_LOCK_TTL, DEFAULT_LOCK_WAIT, Lease, LeaseLock
from arco.domain.manifest import FileEntry, Manifest, ParentRef, Pointer, fetch_manifest
from arco.domain.merge import Pending
from arco.domain.repair import find_stranded, pointer_missing
from arco.domain.retention import floor_version, require_retained
from arco.domain.types import Change, CommitResult, DomainState, Head, S, Snapshot

# The protocol's value types live in arco.domain.types; they stay importable from
# here, where every domain has always imported them.
__all__ = [
    "Change",
    "CommitResult",
    "DomainState",
    "DomainStore",
    "Head",
    "Snapshot",
    "gc_paused",
]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk fold or commit.

    Folds and commits allocate a dict per row and create no reference cycles; with
    the collector on, its generation-2 passes over a large heap took a quarter of
    a 100,000-table fold and a sixth of a 300,000-event compaction. Whatever
    cyclic garbage appears meanwhile is collected once the collector is back.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class DomainStore(Generic[S]):
    """Reads and commits one domain of one scope."""

    def __init__(
        self,
        store: ObjectStore,
        scope: Scope,
        domain: str,
        state_cls: type[S],
        *,
        lock_ttl: float = DEFAULT_LOCK_TTL,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        max_attempts: int = 20,
        max_staleness: float = 0.0,
        holder: str | None = None,
        verify_reads: bool = True,
    ) -> None:
        self.store = store
        self.scope = scope
        self.domain = validate_domain(domain)
        self.keys = Keys(scope)
        self.state_cls = state_cls
        self.max_attempts = max_attempts
        self.max_staleness = max_staleness
        self.verify_reads = verify_reads
        self.lock = LeaseLock(
            store,
            self.keys.lock(domain),
            ttl=lock_ttl,
            wait_timeout=lock_wait,
            holder=holder,
            published_token=self._published_token,
        )
        self._commit_mutex = threading.Lock()
        self._pointer_key = self.keys.pointer(domain)
        self._cache: Snapshot[S] | None = None
        self._checked_at = 0.0
        self._manifests: dict[str, tuple[Manifest, str]] = {}
        self._tables: OrderedDict[str, pa.Table] = OrderedDict()
        self._mutex = threading.Lock()
        self._head: Head | None = None
        self._head_checked_at = 0.0

    # ------------------------------------------------------------------ reads
    def empty_snapshot(self) -> Snapshot[S]:
        """The snapshot of a domain nobody has committed to yet."""
        return Snapshot(version=0, state=self.state_cls.empty())

    def read(self, max_staleness: float | None = None) -> Snapshot[S]:
        """The latest snapshot: one pointer GET, or none within ``max_staleness`` seconds."""
        staleness = self.max_staleness if max_staleness is None else max_staleness
        cached = self._cache
        now = time.monotonic()
        if cached is not None and staleness > 0 and now - self._checked_at < staleness:
            return cached
        try:
            data, version = self.store.get(self._pointer_key)
        except ObjectNotFoundError:
            # Rare path: tell a domain nobody committed to from one whose head was
            # lost (one LIST; reads with a pointer never list, invariant I7).
            evidence = find_stranded(self.store, self.keys, self.domain)
            if evidence is not None:
                raise pointer_missing(self.keys, self.domain, evidence) from None
            snap = self.empty_snapshot()
            self._remember(snap, now)
            return snap
        if cached is not None and cached.pointer_version == version:
            self._checked_at = now
            return cached
        pointer = Pointer.from_bytes(data, key=self._pointer_key)
        if (
            cached is not None
            and cached.pointer is not None
            and (pointer.commit_id == cached.pointer.commit_id)
        ):
            snap = replace(cached, pointer_version=version)
            self._remember(snap, now)
            return snap
        manifest = self._manifest(pointer.manifest, pointer.manifest_sha256)
        state = self._advance(cached, manifest)
        snap = Snapshot(
            version=manifest.version,
            state=state,
            pointer=pointer,
            pointer_version=version,
            manifest=manifest,
            manifest_key=pointer.manifest,
        )
        self._remember(snap, now)
        return snap

    @property
    def folded(self) -> bool:
        """Whether this store holds a folded state (after a read or a commit)."""
        return self._cache is not None

    def read_head(self, max_staleness: float | None = None) -> Head:
        """The latest pointer and manifest, without folding any state file.

        One pointer GET (none within ``max_staleness`` seconds of the last one);
        the manifest is read once per id. For readers that fetch only what a
        question needs (:mod:`arco.catalog.pointread`).
        """
        staleness = self.max_staleness if max_staleness is None else max_staleness
        cached = self._cache
        if cached is not None:
            snap = self.read(max_staleness)
            return Head(
                snap.version, snap.pointer, snap.pointer_version, snap.manifest, snap.manifest_key
            )
        head = self._head
        now = time.monotonic()
        if head is not None and staleness > 0 and now - self._head_checked_at < staleness:
            return head
        try:
            data, version = self.store.get(self._pointer_key)
        except ObjectNotFoundError:
            head = Head(0, None, None, None, None)
        else:
            if head is not None and head.pointer_version == version:
                self._head_checked_at = now
                return head
            pointer = Pointer.from_bytes(data, key=self._pointer_key)
            manifest = self._manifest(pointer.manifest, pointer.manifest_sha256)
            head = Head(manifest.version, pointer, version, manifest, pointer.manifest)
        with self._mutex:
            if self._head is None or head.version >= self._head.version:
                self._head, self._head_checked_at = head, now
        return head

    def read_version(self, version: int) -> Snapshot[S]:
        """The immutable snapshot of an earlier ``version`` (walks the parent chain)."""
        head = self.read()
        if version == head.version:
            return head
        if version < 0 or version > head.version:
            raise NotFoundError(
                f"{self.domain} has no version {version} (latest is {head.version})"
            )
        if version == 0:
            return self.empty_snapshot()
        require_retained(self.store, self.keys, self.domain, version)
        manifest, key = head.manifest, head.manifest_key
        while manifest is not None and manifest.version > version:
            if manifest.parent is None:
                break
            key = manifest.parent.path
            manifest = self._manifest(key, manifest.parent.sha256)
        if manifest is None or manifest.version != version:
            raise NotFoundError(f"{self.domain} version {version} is no longer retained")
        return Snapshot(
            version=version,
            state=self._advance(None, manifest),
            manifest=manifest,
            manifest_key=key,
        )

    def history(self, limit: int = 50) -> list[tuple[str, Manifest]]:
        """The newest ``limit`` retained manifests, newest first."""
        head = self.read()
        out: list[tuple[str, Manifest]] = []
        manifest, key = head.manifest, head.manifest_key
        oldest = floor_version(self.store, self.keys, self.domain) if manifest else 1
        while manifest is not None and key is not None and len(out) < limit:
            out.append((key, manifest))
            if manifest.parent is None or manifest.version <= oldest:
                break
            key = manifest.parent.path
            manifest = self._manifest(key, manifest.parent.sha256)
        return out

    def _published_token(self) -> int:
        try:
            data, _ = self.store.get(self._pointer_key)
        except ObjectNotFoundError:
            # Called only while another lease blocks us: fail now on a lost head
            # rather than after waiting that lease out.
            evidence = find_stranded(self.store, self.keys, self.domain)
            if evidence is not None:
                raise pointer_missing(self.keys, self.domain, evidence) from None
            return 0
        return Pointer.from_bytes(data, key=self._pointer_key).fencing_token

    def _remember(self, snap: Snapshot[S], now: float) -> None:
        with self._mutex:
            if self._cache is None or snap.version >= self._cache.version:
                self._cache = snap
                self._checked_at = now

    def _manifest(self, key: str, sha256: str) -> Manifest:
        hit = self._manifests.get(key)
        if hit is not None and hit[1] == sha256 and self.keys.is_within(key):
            return hit[0]
        manifest = fetch_manifest(self.store, self.keys, key, sha256, lazy_operation=True)
        self._manifests[key] = (manifest, sha256)
        return manifest

    def load_file(self, entry: FileEntry, columns: Sequence[str] | None = None) -> pa.Table:
        """Read one state file (verified against its manifest entry) as Arrow.

        ``columns``: decode only these (the whole file is still fetched and
        verified); a cold point reader needs only the key columns of the deltas.
        """
        if not self.keys.is_within(entry.path):
            raise IntegrityError(f"{entry.path}: state file outside scope {self.scope}")
        cache_key = entry.path if columns is None else f"{entry.path}#{','.join(columns)}"
        hit = self._tables.get(cache_key)
        if hit is not None:
            self._tables.move_to_end(cache_key)
            return hit
        try:
            data, _ = self.store.get(entry.path)
        except ObjectNotFoundError as exc:
            raise IntegrityError(f"{entry.path}: state file is missing") from exc
        if self.verify_reads and (len(data) != entry.size or sha256_hex(data) != entry.sha256):
            raise IntegrityError(f"{entry.path}: checksum or size does not match the manifest")
        table = tableset.decode(data, columns)
        if entry.kind == "delta":
            self._cache_table(cache_key, table)
        return table

    def _cache_table(self, path: str, table: pa.Table) -> None:
        self._tables[path] = table
        while len(self._tables) > 256:
            self._tables.popitem(last=False)

    def _advance(self, cached: Snapshot[S] | None, manifest: Manifest) -> S:
        """Fold ``manifest``'s files into state, reusing ``cached`` where it is a prefix."""
        with gc_paused():
            return self._fold(cached, manifest)

    def _fold(self, cached: Snapshot[S] | None, manifest: Manifest) -> S:
        state = cached.state if cached is not None else self.state_cls.empty()
        known = cached.version if cached is not None else 0
        old_bases = {f.table: f.path for f in (cached.files if cached else ()) if f.kind == "base"}
        by_table: dict[str, list[FileEntry]] = {}
        for entry in manifest.files:
            by_table.setdefault(entry.table, []).append(entry)
        for table, entries in by_table.items():
            tdef = self.state_cls.TABLES.get(table)
            if tdef is None:
                raise IntegrityError(f"manifest names unknown table {table!r}")
            if not tdef.resident:
                continue
            base = next((e for e in entries if e.kind == "base"), None)
            since = known
            if (
                base is not None
                and (cached is None or old_bases.get(table) != base.path)
                and (base.max_version > known or cached is None)
            ):
                state = state.clear(table)
                rows = tableset.to_rows(tableset.with_added_columns(tdef, self.load_file(base)))
                for row in rows:
                    row["_op"] = tableset.OP_UPSERT
                state = state.apply(table, rows)
                since = base.max_version
            deltas = sorted((e for e in entries if e.kind == "delta"), key=lambda e: e.min_version)
            for entry in deltas:
                if entry.max_version <= since:
                    continue
                rows = tableset.to_rows(tableset.with_added_columns(tdef, self.load_file(entry)))
                if entry.min_version <= since:
                    rows = [r for r in rows if r["_version"] > since]
                state = state.apply(table, rows)
        return state

    # ----------------------------------------------------------------- commit
    def commit(self, mutate: Callable[[Snapshot[S]], Change]) -> CommitResult[S]:
        """Run ``mutate`` on the latest snapshot and publish its change atomically.

        ``mutate`` may run more than once (after a lost CAS), always on the newest
        state; errors it raises abort the commit without writing anything visible.
        """
        start = time.perf_counter()
        outcome = "failed"
        attrs = {"arco.domain": self.domain, "arco.scope": str(self.scope)}
        with span("domain.commit", attrs) as sp, self._commit_mutex:
            try:
                lease = self.lock.acquire()
                published = False
                try:
                    with self.lock.kept_alive(lease), gc_paused():
                        result = self._commit_locked(mutate, lease)
                    published = result.committed
                    outcome = "committed" if published else "noop"
                    sp.set_attribute("arco.version", result.snapshot.version)
                    sp.set_attribute("arco.attempts", result.attempts)
                    return result
                finally:
                    self.lock.release(lease, published=published)
            finally:
                metrics.COMMIT_SECONDS.labels(self.domain).observe(time.perf_counter() - start)
                metrics.COMMITS.labels(self.domain, outcome).inc()

    def _commit_locked(
        self, mutate: Callable[[Snapshot[S]], Change], lease: Lease
    ) -> CommitResult[S]:
        delay = 0.005
        for attempt in range(1, self.max_attempts + 1):
            cached = self._cache
            if attempt == 1 and lease.uncontended and cached is not None:
                # Nobody took the lock since our last commit, so nobody published:
                # the cached snapshot is the head and the pointer GET can be skipped.
                snap = cached
            else:
                snap = self.read(max_staleness=0)
            if snap.pointer is not None and snap.pointer.fencing_token > lease.token:
                raise FencedError(
                    f"{self.domain}: head was published with fencing token "
                    f"{snap.pointer.fencing_token} > ours ({lease.token})"
                )
            change = mutate(snap)
            if change.is_empty:
                return CommitResult(snap, committed=False, result=change.result, attempts=attempt)
            try:
                new_snap = self._publish(snap, change, lease)
            except PreconditionFailedError:
                metrics.CAS_CONFLICTS.labels(self.domain).inc()
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
                continue
            return CommitResult(new_snap, committed=True, result=change.result, attempts=attempt)
        raise CommitConflictError(
            f"{self.domain}: commit lost the pointer race {self.max_attempts} times; try again"
        )

    def _publish(self, snap: Snapshot[S], change: Change, lease: Lease) -> Snapshot[S]:
        # The commit path: new immutable files, a create-only manifest, then one CAS
        # on the head pointer, checked against the lease just before (I1, I2).
        version = snap.version + 1
        commit_id = new_ulid()
        state, pending = self._stage(snap, change, version)
        files = self._write_all(pending, change, version, commit_id)
        manifest = self._next_manifest(snap, change, lease, version, commit_id, files)
        manifest_bytes = manifest.to_bytes()
        manifest_key = self.keys.manifest(self.domain, version, commit_id)
        self.store.put(manifest_key, manifest_bytes, "create")
        pointer = Pointer(
            domain=self.domain,
            version=version,
            manifest=manifest_key,
            manifest_sha256=sha256_hex(manifest_bytes),
            commit_id=commit_id,
            fencing_token=lease.token,
            updated_at=manifest.committed_at,
        )
        self.lock.check(lease)
        mode: PutMode = "create" if snap.pointer_version is None else Match(snap.pointer_version)
        pointer_version = self.store.put(self._pointer_key, pointer.to_bytes(), mode)
        self._manifests[manifest_key] = (manifest, pointer.manifest_sha256)
        new_snap = Snapshot(
            version=version,
            state=state,
            pointer=pointer,
            pointer_version=pointer_version,
            manifest=manifest,
            manifest_key=manifest_key,
        )
        self._remember(new_snap, time.monotonic())
        return new_snap

    def _stage(
        self, snap: Snapshot[S], change: Change, version: int
    ) -> tuple[S, list[FileEntry | Pending]]:
        """The next state and the files of version ``version``: kept, new and merged."""
        state = snap.state
        for table in change.bases:
            if self.state_cls.TABLES[table].resident:
                raise ValueError(f"{table}: Change.bases is for non-resident tables only")
        replaced = change.replace | set(change.bases)
        pending: list[FileEntry | Pending] = [f for f in snap.files if f.table not in replaced]
        for table in sorted(change.replace):
            if self.state_cls.TABLES[table].resident:
                state = state.clear(table)
        for table, rows in sorted(change.rows.items()):
            if not rows:
                continue
            tdef = self.state_cls.TABLES[table]
            if tdef.resident:
                state = state.apply(table, rows)
            pending.append(merge.new_file(tdef, table, rows, version, change))
        touched = {t for t, r in change.rows.items() if r and t not in replaced}
        # The merge policy: piled-up deltas of the touched tables merge (merge.py).
        pending = merge.compact(
            self.state_cls.TABLES, pending, state, version, touched, self._table_of
        )
        pending.extend(
            Pending(table, 0, 0, version, data, "base")
            for table, data in sorted(change.bases.items())
        )
        return state, pending

    def _write_all(
        self, pending: list[FileEntry | Pending], change: Change, version: int, commit_id: str
    ) -> list[FileEntry]:
        """Write the new files of ``pending`` (create-only); kept files pass through."""
        files = []
        for p in pending:
            if not isinstance(p, Pending):
                files.append(p)
                continue
            if (
                change.prepare_base is not None
                and p.kind == "base"
                and p.table in change.bases
                and not isinstance(p.source, tableset.SortedBatches)
            ):
                p = replace(p, source=change.prepare_base(p.table, p.data))
            files.append(self._write(p, version, commit_id))
        return files

    def _next_manifest(
        self,
        snap: Snapshot[S],
        change: Change,
        lease: Lease,
        version: int,
        commit_id: str,
        files: list[FileEntry],
    ) -> Manifest:
        """The manifest of the new version, naming its parent and every file by hash."""
        parent = (
            ParentRef(snap.manifest_key, snap.pointer.manifest_sha256)
            if snap.manifest_key is not None and snap.pointer is not None
            else None
        )
        meta = (
            change.meta
            if change.meta is not None
            else (snap.manifest.meta if snap.manifest else {})
        )
        return Manifest(
            domain=self.domain,
            version=version,
            commit_id=commit_id,
            committed_at=utc_now().isoformat(),
            fencing_token=lease.token,
            writer=lease.holder,
            actor=current_actor(),
            parent=parent,
            files=tuple(files),
            operation=change.operation,
            meta=meta,
        )

    def _write(self, pending: Pending, version: int, commit_id: str) -> FileEntry:
        suffix = "base" if pending.kind == "base" else f"L{pending.level}"
        key = self.keys.snapshot_file(
            self.domain, version, commit_id, f"{pending.table}.{suffix}.parquet"
        )
        tdef = self.state_cls.TABLES[pending.table]
        index = None
        if isinstance(pending.source, tableset.SortedBatches):
            if pending.kind != "base" or not tdef.sort_key:
                raise ValueError(f"{pending.table}: sorted batches are for sorted bases only")
            data, index = tableset.encode_sorted_base(tdef, pending.source)
            pending = replace(pending, rows=sum(g[5] for g in index["groups"]))
        elif pending.kind == "base" and tdef.sort_key:
            rows = pending.data
            if not tableset.is_sorted(rows, tdef.sort_key):
                rows = rows.sort_by([(k, "ascending") for k in tdef.sort_key])
            data, index = tableset.encode_sorted_base(tdef, rows)
        else:
            small = (
                pending.level == 0
                and pending.kind == "delta"
                and pending.data.num_rows <= tableset.SMALL_DELTA_ROWS
            )
            data = tableset.encode(pending.data, small=small)
            if pending.kind == "delta":
                index = tableset.delta_index(tdef, pending.data)
        self.store.put(key, data, "create")
        if pending.kind == "delta":
            self._cache_table(key, pending.data)
        return FileEntry(
            path=key,
            table=pending.table,
            kind=pending.kind,
            level=pending.level,
            min_version=pending.min_version,
            max_version=pending.max_version,
            sha256=sha256_hex(data),
            size=len(data),
            rows=pending.num_rows,
            index=index,
        )

    def load_table(self, snap: Snapshot[S], table: str) -> pa.Table:
        """The live rows of one state table at ``snap``, read from its files (base schema)."""
        tdef = self.state_cls.TABLES[table]
        entries = [f for f in snap.files if f.table == table]
        base = next((f for f in entries if f.kind == "base"), None)
        deltas = sorted((f for f in entries if f.kind == "delta"), key=lambda f: f.min_version)
        return tableset.fold_table(
            tdef,
            self.load_file(base) if base is not None else None,
            [self.load_file(d) for d in deltas],
        )

    def _table_of(self, f: FileEntry | Pending) -> pa.Table:
        return f.data if isinstance(f, Pending) else self.load_file(f)
