"""Invariants I1-I4 and I6 (docs/architecture.md) for the Tier-1 catalog."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from arco.catalog import Catalog, Change, ColumnSpec, Snapshot
from arco.core import (
    ArcoError,
    FencedError,
    IntegrityError,
    InvalidNameError,
    Keys,
    ObjectStore,
    Scope,
    StorageError,
    new_ulid,
    open_store,
    utc_now,
)
from arco.core.storage import FaultInjectingStore, SimulatedCrash
from arco.domain.lock import LeaseLock
from arco.domain.verify import verify, walk_chain
from arco.maintenance.gc import collect_garbage

SCOPE = Scope("default", "default")
KEYS = Keys(SCOPE)
POINTER = KEYS.pointer("catalog")
COLS3 = ["a:int", "b:string", "c:bigint"]


def summary(cat: Catalog) -> tuple[Any, ...]:
    """What a reader sees, without ids and timestamps (comparable across attempts)."""
    view = cat.view()
    namespaces = tuple(
        (n.name, n.description, tuple(sorted(n.properties.items())))
        for n in view.list_namespaces().items
    )
    tables = tuple(
        (
            t.qualified_name,
            t.format,
            t.description,
            tuple(sorted(t.properties.items())),
            t.schema_version,
            tuple((c.name, c.data_type, c.nullable, c.ordinal, c.column_id) for c in t.columns),
        )
        for t in view.list_tables().items
    )
    return namespaces, tables


def chain_versions(store: ObjectStore, scope: Scope = SCOPE) -> list[int]:
    walk = walk_chain(store, Keys(scope), "catalog")
    assert walk.complete, walk.problems
    assert walk.problems == []
    return [m.version for _, m in walk.manifests]


def live_keys(store: ObjectStore, scope: Scope = SCOPE) -> set[str]:
    walk = walk_chain(store, Keys(scope), "catalog")
    assert walk.complete
    live: set[str] = set()
    for key, manifest in walk.manifests:
        live.add(key)
        live.update(f.path for f in manifest.files)
    return live


def immutable_keys(store: ObjectStore, scope: Scope = SCOPE) -> set[str]:
    keys = Keys(scope)
    out = {m.key for m in store.list(keys.snapshots_prefix("catalog"))}
    out |= {m.key for m in store.list(keys.manifests_prefix("catalog"))}
    return out


def all_keys(store: ObjectStore) -> set[str]:
    return {m.key for m in store.list("")}


def namespace_change(name: str) -> Change:
    """A hand-built change that adds a namespace (for driving DomainStore directly)."""
    now = utc_now()
    change = Change(operation={"ops": [{"op": "create_namespace", "name": name}]})
    change.upsert(
        "namespaces",
        {
            "id": new_ulid(),
            "name": name,
            "description": None,
            "properties": [],
            "created_at": now,
            "updated_at": now,
        },
    )
    return change


# ------------------------------------------------------------------------ I1
def _run_with_readers(
    url: str,
    write: Callable[[], None],
    check: Callable[[Catalog, list[str]], None],
    n_readers: int = 2,
) -> list[int]:
    """Run ``write`` while reader threads poll the catalog and ``check`` every read.

    Reader 0 opens a new Catalog for every read (a cold reader), the others keep
    one Catalog that follows the pointer (max_staleness=0, incremental folding).
    """
    stop = threading.Event()
    errors: list[str] = []
    reads = [0] * n_readers

    def reader(idx: int) -> None:
        store = open_store(url)
        follower = Catalog(store, max_staleness=0)
        last_version = -1
        try:
            while not stop.is_set():
                cat = Catalog(store, max_staleness=0) if idx == 0 else follower
                before = len(errors)
                check(cat, errors)
                version = cat.snapshot().version
                if idx != 0 and version < last_version:
                    errors.append(f"reader {idx}: version went back {last_version}->{version}")
                last_version = max(last_version, version)
                reads[idx] += 1
                if len(errors) > before + 5:
                    return
        except Exception as exc:  # a reader must never fail
            errors.append(f"reader {idx} raised {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(n_readers)]
    for t in threads:
        t.start()
    try:
        write()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert errors == []
    return reads


def test_i1_readers_see_each_create_table_whole(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    writer = Catalog(open_store(url))
    writer.create_namespace("ns")
    seen_max: dict[int, int] = {}

    def check(cat: Catalog, errors: list[str]) -> None:
        view = cat.view()
        tables = view.list_tables().items
        for t in tables:
            if [c.name for c in t.columns] != ["a", "b", "c"]:
                errors.append(f"v{view.version}: {t.qualified_name} has {t.columns}")
        # every commit after the first adds exactly one table
        if len(tables) != max(view.version - 1, 0):
            errors.append(f"v{view.version}: {len(tables)} tables")
        key = threading.get_ident()
        if len(tables) < seen_max.get(key, 0):
            errors.append(f"table count decreased {seen_max[key]} -> {len(tables)}")
        seen_max[key] = max(seen_max.get(key, 0), len(tables))

    def write() -> None:
        for i in range(200):
            writer.create_table("ns", f"t{i:03d}", COLS3)

    reads = _run_with_readers(url, write, check)
    assert min(reads) >= 3, f"readers did not overlap the writer: {reads}"
    assert len(writer.list_tables().items) == 200
    assert len(Catalog(open_store(url)).list_tables().items) == 200


def test_i1_multi_table_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    writer = Catalog(open_store(url))
    writer.create_namespace("ns")
    batches = 25

    def check(cat: Catalog, errors: list[str]) -> None:
        view = cat.view()
        groups: dict[str, int] = {}
        for t in view.list_tables().items:
            groups[t.name.split("_")[0]] = groups.get(t.name.split("_")[0], 0) + 1
            if len(t.columns) != 3:
                errors.append(f"{t.qualified_name} has {len(t.columns)} columns")
        for group, count in groups.items():
            if count != 5:
                errors.append(f"v{view.version}: saw {count} of the 5 tables of {group}")
        if len(groups) != max(view.version - 1, 0):
            errors.append(f"v{view.version}: {len(groups)} batches visible")

    def write() -> None:
        for b in range(batches):
            with writer.transaction() as tx:
                for j in range(5):
                    tx.create_table("ns", f"b{b:02d}_{j}", COLS3)
            assert tx.version == b + 2

    _run_with_readers(url, write, check)
    assert len(writer.list_tables().items) == 5 * batches


def test_i7_reads_never_list(tmp_path: Path) -> None:
    inner = open_store(f"file://{tmp_path / 'store'}")
    cat = Catalog(inner)
    cat.create_namespace("ns")
    for i in range(12):
        cat.create_table("ns", f"t{i}", COLS3)
    spy = FaultInjectingStore(inner)
    reader = Catalog(spy)
    reader.list_tables()
    reader.get_table("ns", "t3")
    reader.at_version(3).list_tables()
    cat.create_table("ns", "more", COLS3)
    reader.list_tables()
    spy2 = FaultInjectingStore(inner)
    Catalog(spy2).create_table("ns", "by_spy", COLS3)
    ops = {c.op for c in spy.calls} | {c.op for c in spy2.calls}
    assert "list" not in ops
    assert spy.calls


# ------------------------------------------------------------------------ I2
def _create_tables_worker(url: str, worker: int, count: int) -> list[str]:
    cat = Catalog(url, lock_wait=120)
    return [cat.create_table("ns", f"w{worker}_{i:02d}", ["a:int"]).id for i in range(count)]


def _check_linear_history(store: ObjectStore, n_tables: int, ids: list[str]) -> None:
    cat = Catalog(store)
    tables = cat.list_tables().items
    assert len(tables) == n_tables
    assert len({t.qualified_name for t in tables}) == n_tables
    assert {t.id for t in tables} == set(ids), "an acknowledged commit is missing"
    history = cat.domain.history(limit=10_000)
    versions = [m.version for _, m in history]
    assert versions == list(range(n_tables + 1, 0, -1))  # gapless, strictly increasing
    assert chain_versions(store) == versions
    assert len({m.commit_id for _, m in history}) == len(history)
    tokens = [m.fencing_token for _, m in reversed(history)]
    assert all(a < b for a, b in itertools.pairwise(tokens)), tokens
    created = [op["name"] for _, m in history for op in m.operation["ops"]]
    assert sorted(created) == sorted([f"ns.{t.name}" for t in tables] + ["ns"])
    report = verify(store, SCOPE)
    assert report.ok, report.problems


def test_i2_processes_lose_no_update(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    Catalog(url).create_namespace("ns")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        result = pool.starmap_async(_create_tables_worker, [(url, w, 50) for w in range(4)])
        per_worker = result.get(timeout=240)
    ids = [i for chunk in per_worker for i in chunk]
    assert len(ids) == len(set(ids)) == 200
    _check_linear_history(open_store(url), 200, ids)


def test_i2_threads_lose_no_update_memory() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    Catalog(url).create_namespace("ns")
    with ThreadPoolExecutor(4) as pool:
        per_worker = list(pool.map(lambda w: _create_tables_worker(url, w, 25), range(4)))
    ids = [i for chunk in per_worker for i in chunk]
    _check_linear_history(open_store(url), 100, ids)


@pytest.mark.s3
def test_i2_threads_lose_no_update_s3(seaweed: Any) -> None:
    url = seaweed.fresh_url()
    Catalog(url).create_namespace("ns")
    with ThreadPoolExecutor(4) as pool:
        per_worker = list(pool.map(lambda w: _create_tables_worker(url, w, 8), range(4)))
    ids = [i for chunk in per_worker for i in chunk]
    _check_linear_history(open_store(url), 32, ids)


# ------------------------------------------------------------ stale fencing
def test_slow_writer_past_its_lease_is_fenced() -> None:
    store = open_store("memory://")
    fast = Catalog(store)
    fast.create_namespace("ns")
    slow = Catalog(store, lock_ttl=0.2)

    def mutate(snap: Snapshot[Any]) -> Change:
        time.sleep(0.3)  # the lease runs out while we "work"
        fast.create_namespace("fast")  # another writer takes over and commits
        return namespace_change("slow")

    with pytest.raises(FencedError):
        slow.domain.commit(mutate)
    head = Catalog(store)
    assert [n.name for n in head.list_namespaces().items] == ["fast", "ns"]
    assert head.version == 2
    assert chain_versions(store) == [2, 1]
    assert verify(store, SCOPE).ok
    # The slow writer's attempt left only unreferenced objects, which GC removes.
    orphans = immutable_keys(store) - live_keys(store)
    assert orphans
    report = collect_garbage(store, SCOPE, grace_seconds=0)
    assert set(report.deleted) == orphans
    assert verify(store, SCOPE).ok
    # The lock is still the fast writer's (released), not clobbered by the slow one.
    record = fast.domain.lock.read()
    assert record is not None
    assert record[0].holder == fast.domain.lock.holder
    # And the slow writer can commit again normally afterwards.
    slow.create_namespace("slow_again")
    assert "slow_again" in [n.name for n in Catalog(store).list_namespaces().items]


def test_expired_lease_without_takeover_cannot_publish() -> None:
    store = open_store("memory://")
    cat = Catalog(store, lock_ttl=0.1)
    cat.create_namespace("ns")
    head = store.get(POINTER)

    def mutate(snap: Snapshot[Any]) -> Change:
        time.sleep(0.2)
        return namespace_change("late")

    with pytest.raises(FencedError):
        cat.domain.commit(mutate)
    assert store.get(POINTER) == head
    assert [n.name for n in Catalog(store).list_namespaces().items] == ["ns"]


def test_writer_with_older_token_than_pointer_is_refused() -> None:
    store = open_store("memory://")
    fast = Catalog(store)
    fast.create_namespace("ns")
    stale = Catalog(store, lock_ttl=0.1).domain
    lease = stale.lock.acquire()
    time.sleep(0.15)
    fast.create_namespace("fast")  # takes the lock with a newer token and publishes
    head = store.get(POINTER)
    pointer_token = fast.snapshot().pointer.fencing_token  # type: ignore[union-attr]
    assert pointer_token > lease.token
    before = all_keys(store)
    calls: list[int] = []

    def mutate(snap: Snapshot[Any]) -> Change:
        calls.append(snap.version)
        return namespace_change("stale")

    with pytest.raises(FencedError):
        stale._commit_locked(mutate, lease)
    assert calls == []  # refused before doing any work
    assert all_keys(store) == before
    assert store.get(POINTER) == head
    assert verify(store, SCOPE).ok


def test_lease_lock_tokens_and_fencing() -> None:
    store = open_store("memory://")
    key = KEYS.lock("catalog")
    first = LeaseLock(store, key, ttl=0.5, holder="first")
    second = LeaseLock(store, key, ttl=5, wait_timeout=5, holder="second")
    lease1 = first.acquire()
    first.check(lease1)
    t0 = time.monotonic()
    lease2 = second.acquire()  # waits for lease1 to expire
    assert time.monotonic() - t0 >= 0.2
    assert lease2.token == lease1.token + 1
    with pytest.raises(FencedError):
        first.check(lease1)
    second.check(lease2)
    first.release(lease1)  # must not release the second writer's lock
    second.check(lease2)
    record = second.read()
    assert record is not None
    assert (record[0].holder, record[0].released) == ("second", False)
    second.release(lease2)
    lease3 = first.acquire()  # released: no waiting for the TTL
    assert lease3.token == lease2.token + 1


# ------------------------------------------------------------------------ I3
class DyingStore(FaultInjectingStore):
    """A FaultInjectingStore whose process stays dead after a simulated crash.

    Without this, ``finally`` blocks (such as the lock release) would still reach
    storage after the "crash", which a dead process cannot do.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.dead = False

    def _begin(self, op: str, key: str) -> int:
        if self.dead:
            raise SimulatedCrash(f"process already dead ({op} {key})")
        return super()._begin(op, key)

    def _fire(self, when: str, n: int, op: str, key: str) -> None:
        try:
            super()._fire(when, n, op, key)
        except SimulatedCrash:
            self.dead = True
            raise


#: Lease of the writer that crashes. Long, so a loaded machine never fences the
#: attempt before its planned crash; the test moves the lock clock past it instead
#: of sleeping (see ``lock_clock``).
CRASH_TTL = 30.0


class SkewedClock:
    """Stands in for the ``time`` module inside arco.domain.lock: real time plus an offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def lock_clock(monkeypatch: pytest.MonkeyPatch) -> SkewedClock:
    """Let a test expire leases by moving the lock's clock instead of waiting."""
    import arco.domain.lock as lock_module

    clock = SkewedClock()
    monkeypatch.setattr(lock_module, "time", clock)
    return clock


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[[str], ObjectStore]:
    counter = iter(range(1_000_000))

    def make(kind: str) -> ObjectStore:
        if kind == "memory":
            return open_store("memory://")
        return open_store(f"file://{tmp_path / f's{next(counter)}'}")

    return make


def _seed(store: ObjectStore, n_tables: int) -> None:
    cat = Catalog(store)
    cat.create_namespace("ns")
    for i in range(n_tables):
        cat.create_table("ns", f"t{i}", COLS3)


def _attempt(store: ObjectStore) -> None:
    Catalog(store, lock_ttl=CRASH_TTL).create_table("ns", "x", COLS3)


def _probe(make: Callable[[str], ObjectStore], kind: str, n_tables: int) -> dict[str, Any]:
    inner = make(kind)
    _seed(inner, n_tables)
    old = summary(Catalog(inner))
    spy = FaultInjectingStore(inner)
    _attempt(spy)
    calls = [(c.op, c.key) for c in spy.calls]
    pointer_puts = [i for i, (op, key) in enumerate(calls) if op == "put" and key == POINTER]
    assert len(pointer_puts) == 1
    return {
        "ops": [op for op, _ in calls],
        "puts": [key for op, key in calls if op == "put"],
        "pointer_at": pointer_puts[0],
        "old": old,
        "new": summary(Catalog(inner)),
    }


def _after_fault(inner: ObjectStore, expected: tuple[Any, ...], orphans: set[str]) -> None:
    """The next process: reads, verifies, commits, collects garbage."""
    reader = Catalog(inner)
    assert summary(reader) == expected
    report = verify(inner, SCOPE)
    assert report.ok, report.problems
    assert immutable_keys(inner) - live_keys(inner) == orphans
    reader.create_table("ns", "next", COLS3)  # proceeds without manual repair
    after_next = summary(reader)
    assert "ns.next" in [t[0] for t in after_next[1]]
    gc = collect_garbage(inner, SCOPE, grace_seconds=0)
    assert set(gc.deleted) == orphans
    assert gc.skipped_domains == []
    assert immutable_keys(inner) == live_keys(inner)
    assert verify(inner, SCOPE).ok
    assert summary(Catalog(inner)) == after_next


def _effective_writes(store: FaultInjectingStore, n: int, when: str) -> set[str]:
    """Immutable objects the attempt durably wrote before the fault at call ``n``."""
    last = n if when == "after" else n - 1
    prefixes = (KEYS.snapshots_prefix("catalog"), KEYS.manifests_prefix("catalog"))
    return {
        c.key for c in store.calls if c.n <= last and c.op == "put" and c.key.startswith(prefixes)
    }


# (store kind, tables before the commit); 7 tables make the crashed commit merge deltas.
CRASH_CASES = [("memory", 1), ("memory", 7), ("file", 1), ("file", 7)]


@pytest.mark.parametrize(("kind", "n_tables"), CRASH_CASES)
def test_i3_crash_at_every_storage_call(
    make_store: Callable[[str], ObjectStore], lock_clock: SkewedClock, kind: str, n_tables: int
) -> None:
    probe = _probe(make_store, kind, n_tables)
    assert probe["old"] != probe["new"]
    if n_tables == 7:
        # sanity: this commit merges the level-0 deltas into level-1 files
        assert any(k.endswith(".L1.parquet") for k in probe["puts"]), probe["puts"]
    for n in range(len(probe["ops"])):
        for when in ("before", "after"):
            inner = make_store(kind)
            _seed(inner, n_tables)
            faulty = DyingStore(inner)
            faulty.arm("crash", when, call=n)
            with pytest.raises(SimulatedCrash):
                _attempt(faulty)
            assert [c.op for c in faulty.calls] == probe["ops"][: n + 1], (n, when)
            published = n > probe["pointer_at"] or (n == probe["pointer_at"] and when == "after")
            orphans = set() if published else _effective_writes(faulty, n, when)
            lock_clock.advance(CRASH_TTL + 1)  # the dead writer's lease runs out
            try:
                _after_fault(inner, probe["new"] if published else probe["old"], orphans)
            except AssertionError as exc:
                raise AssertionError(f"crash {when} call {n} ({probe['ops'][n]}): {exc}") from exc


@pytest.mark.parametrize(("kind", "n_tables"), [("memory", 1), ("memory", 7), ("file", 1)])
def test_i3_transient_failure_at_every_storage_call(
    make_store: Callable[[str], ObjectStore], lock_clock: SkewedClock, kind: str, n_tables: int
) -> None:
    probe = _probe(make_store, kind, n_tables)
    for n in range(len(probe["ops"])):
        for when in ("before", "after"):
            inner = make_store(kind)
            _seed(inner, n_tables)
            faulty = FaultInjectingStore(inner)
            faulty.arm("fail", when, call=n)
            raised: BaseException | None = None
            try:
                _attempt(faulty)
            except ArcoError as exc:
                raised = exc
            if raised is not None:
                assert isinstance(raised, StorageError), raised
            published = (
                raised is None
                or n > probe["pointer_at"]
                or (n == probe["pointer_at"] and when == "after")
            )
            orphans = set() if published else _effective_writes(faulty, n, when)
            lock_clock.advance(CRASH_TTL + 1)  # a lease the failed call left behind runs out
            try:
                _after_fault(inner, probe["new"] if published else probe["old"], orphans)
            except AssertionError as exc:
                raise AssertionError(f"fail {when} call {n} ({probe['ops'][n]}): {exc}") from exc


def test_gc_keeps_recent_orphans_and_live_objects() -> None:
    store = open_store("memory://")
    _seed(store, 2)
    faulty = DyingStore(store)
    faulty.arm("crash", "before", op="put", key_glob="*.pointer.json")
    with pytest.raises(SimulatedCrash):
        _attempt(faulty)
    orphans = immutable_keys(store) - live_keys(store)
    assert orphans
    dry = collect_garbage(store, SCOPE, grace_seconds=0, dry_run=True)
    assert set(dry.deleted) == orphans
    assert immutable_keys(store) - live_keys(store) == orphans  # dry run deletes nothing
    kept = collect_garbage(store, SCOPE, grace_seconds=3600)
    assert kept.deleted == []
    assert immutable_keys(store) - live_keys(store) == orphans
    done = collect_garbage(store, SCOPE, grace_seconds=0)
    assert set(done.deleted) == orphans
    assert verify(store, SCOPE).ok


# ------------------------------------------------------------------------ I4
def _corruptions(data: bytes) -> Iterator[tuple[str, bytes | None]]:
    for pos in sorted({0, len(data) // 2, len(data) - 1}):
        flipped = bytearray(data)
        flipped[pos] ^= 0x01
        yield f"flip byte {pos}", bytes(flipped)
    yield "truncate to half", data[: len(data) // 2]
    yield "truncate by one", data[:-1]
    yield "delete", None


@pytest.fixture
def busy_store() -> ObjectStore:
    store = open_store("memory://")
    cat = Catalog(store)
    cat.create_namespace("ns", idempotency_key="k")
    for i in range(10):  # enough to merge level-0 deltas
        cat.create_table("ns", f"t{i}", COLS3)
    cat.update_table("ns", "t0", drop_columns=["b"])
    return store


def _referenced(store: ObjectStore) -> tuple[list[str], set[str]]:
    """Every manifest and file the chain references; and those the head reads."""
    walk = walk_chain(store, KEYS, "catalog")
    assert walk.complete
    objects: list[str] = []
    for key, manifest in walk.manifests:
        objects.append(key)
        objects += [f.path for f in manifest.files if f.path not in objects]
    head_key, head = walk.manifests[0]
    return objects, {head_key, *(f.path for f in head.files)}


def test_i4_verify_detects_every_damaged_object(busy_store: ObjectStore) -> None:
    store = busy_store
    objects, head_reads = _referenced(store)
    assert any(k.endswith(".parquet") for k in objects)
    assert sum(k.endswith(".json") for k in objects) == 12
    head_key = walk_chain(store, KEYS, "catalog").manifests[0][0]
    tables_files = {k for k in head_reads if "-tables." in k}
    assert tables_files
    assert verify(store, SCOPE).ok
    for key in objects:
        original, _ = store.get(key)
        for label, damaged in _corruptions(original):
            if damaged is None:
                store.delete(key)
            else:
                store.put(key, damaged)
            report = verify(store, SCOPE)
            assert any(p.key == key for p in report.problems), (key, label, report.problems)
            if key in head_reads:
                # a reader refuses damaged state rather than serving it: the full fold
                # reads every file of the head...
                with pytest.raises(IntegrityError):
                    Catalog(store).view()
                # ...and a cold point read (ADR 015) every byte it reads: the manifest,
                # the deltas and every row group and the footer of the tables' base.
                # (The leading magic number of a sorted base is not among them.)
                unread = label == "flip byte 0" and key.endswith("base.parquet")
                if key == head_key or (key in tables_files and not unread):
                    with pytest.raises(IntegrityError):
                        Catalog(store).list_tables()
            store.put(key, original)
        assert verify(store, SCOPE).ok


def test_i4_verify_detects_damaged_pointer(busy_store: ObjectStore) -> None:
    store = busy_store
    original, _ = store.get(POINTER)
    missed: list[tuple[str, list[str]]] = []
    for label, damaged in _corruptions(original):
        if damaged is None:
            store.delete(POINTER)
        else:
            store.put(POINTER, damaged)
        report = verify(store, SCOPE)
        if not any(p.key == POINTER for p in report.problems):
            missed.append((label, [str(p) for p in report.problems]))
        store.put(POINTER, original)
    assert verify(store, SCOPE).ok
    assert missed == [], f"no problem reported at {POINTER}"


def test_i4_verify_detects_any_altered_pointer_byte(busy_store: ObjectStore) -> None:
    store = busy_store
    original, _ = store.get(POINTER)
    undetected: list[str] = []
    for pos in range(len(original)):
        flipped = bytearray(original)
        flipped[pos] ^= 0x01
        store.put(POINTER, bytes(flipped))
        if verify(store, SCOPE).ok:
            undetected.append(f"{pos}:{chr(original[pos])!r}")
    store.put(POINTER, original)
    assert undetected == [], f"flips undetected at {len(undetected)} positions of {original!r}"


# ------------------------------------------------------------------------ I6
BAD_NAMES = [
    "",
    "..",
    "../x",
    "x/..",
    "/abs",
    "\\abs",
    "a/b",
    "a\\b",
    "%2e%2e",
    "%2E%2E",
    "a%2Fb",
    "a%2fb",
    "a%5cb",
    "a%5Cb",
    "a%25b",
    "a\x00b",
    "a\nb",
    "a\rb",
    "a\tb",
    "a\x7fb",
    "a\x1bb",
    "x" * 129,
    "x" * 1000,
    "a\u202eb",  # right-to-left override
    "a\u200bb",  # zero-width space
    "\ufeffa",  # byte order mark
    "a\u2215b",  # division slash
    "a\u2044b",  # fraction slash
    "\uff0e\uff0e",  # fullwidth full stops
    "a\uff0fb",  # fullwidth solidus
    "\u0430dmin",  # Cyrillic a
    "e\u0301",  # combining accent
    "a\ud800",  # lone surrogate
    "a b",
    " a",
]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_i6_bad_names_are_rejected_everywhere(bad: str) -> None:
    with pytest.raises(InvalidNameError):
        Scope(bad, "w")
    with pytest.raises(InvalidNameError):
        Scope("t", bad)
    store = open_store("memory://")
    cat = Catalog(store)
    cat.create_namespace("ns")
    cat.create_table("ns", "t", ["a:int"])
    version = cat.version
    before = all_keys(store)
    attempts: list[Callable[[], Any]] = [
        lambda: cat.create_namespace(bad),
        lambda: cat.create_namespace(f"ns.{bad}"),
        lambda: cat.get_namespace(bad),
        lambda: cat.drop_namespace(bad),
        lambda: cat.list_tables(bad),
        lambda: cat.create_table(bad, "t2", ["a:int"]),
        lambda: cat.create_table("ns", bad, ["a:int"]),
        lambda: cat.get_table("ns", bad),
        lambda: cat.get_table(bad, "t"),
        lambda: cat.drop_table("ns", bad),
        lambda: cat.rename_table("ns", "t", bad),
        lambda: cat.rename_table("ns", "t", "t3", new_namespace=bad),
        lambda: cat.create_table("ns", "t4", [ColumnSpec(bad, "int")]),
        lambda: cat.create_table("ns", "t5", [{"name": bad, "type": "int"}]),
        lambda: cat.update_table("ns", "t", add_columns=[ColumnSpec(bad, "int")]),
        lambda: cat.update_table("ns", "t", rename_columns={"a": bad}),
    ]
    for i, attempt in enumerate(attempts):
        try:
            attempt()
        except InvalidNameError:
            continue
        pytest.fail(f"attempt {i} accepted {bad!r}")
    assert cat.version == version
    assert all_keys(store) == before


def test_i6_name_length_limits() -> None:
    Scope("a" * 63, "w")
    with pytest.raises(InvalidNameError):
        Scope("a" * 64, "w")
    with pytest.raises(InvalidNameError):
        Scope("Upper", "w")
    cat = Catalog(open_store("memory://"))
    cat.create_namespace("n" * 128)
    cat.create_table("n" * 128, "t" * 128, [ColumnSpec("c" * 128, "int")])
    with pytest.raises(InvalidNameError):
        cat.create_table("n" * 128, "t" * 129, ["a:int"])
    with pytest.raises(InvalidNameError):
        cat.create_namespace("n" * 129)


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_i6_scopes_do_not_see_each_other(
    make_store: Callable[[str], ObjectStore], kind: str
) -> None:
    inner = make_store(kind)
    spy = FaultInjectingStore(inner)
    a = Catalog(spy, Scope("a", "w"))
    b = Catalog(inner, Scope("b", "w"))
    ab = Catalog(inner, Scope("ab", "w"))  # a prefix of "a"... must not overlap
    a.create_namespace("shared")
    a.create_table("shared", "t", ["only_a:int"])
    a.create_namespace("a_only")
    b.create_namespace("shared")
    b.create_table("shared", "t", ["only_b:string"])
    ab.create_namespace("ab_only")
    assert [n.name for n in a.list_namespaces().items] == ["a_only", "shared"]
    assert [n.name for n in b.list_namespaces().items] == ["shared"]
    assert [n.name for n in ab.list_namespaces().items] == ["ab_only"]
    assert [c.name for c in a.get_table("shared", "t").columns] == ["only_a"]
    assert [c.name for c in b.get_table("shared", "t").columns] == ["only_b"]
    assert a.get_table("shared", "t").id != b.get_table("shared", "t").id
    for cat in (Catalog(inner, Scope("a", "w")), Catalog(inner, Scope("b", "w"))):
        assert cat.version > 0
    assert Catalog(inner, Scope("a", "other")).list_namespaces().items == []
    # Every key scope a touched lies under its prefix.
    touched = {c.key for c in spy.calls}
    assert touched
    assert all(k.startswith("tenant=a/workspace=w/") for k in touched), touched
    # And the raw store holds only scoped keys.
    for key in all_keys(inner):
        assert key.startswith(("tenant=a/workspace=w/", "tenant=b/workspace=w/", "tenant=ab/")), key
    a_keys = {k for k in all_keys(inner) if k.startswith("tenant=a/workspace=w/")}
    assert a_keys >= live_keys(inner, Scope("a", "w"))
    # verify and GC of one scope look only at that scope
    report = verify(inner, Scope("a", "w"))
    assert report.ok
    assert report.manifests_checked == a.version
    faulty = DyingStore(inner)
    faulty.arm("crash", "before", op="put", key_glob="*.pointer.json")
    with pytest.raises(SimulatedCrash):
        Catalog(faulty, Scope("b", "w")).create_namespace("crashed")
    b_orphans = immutable_keys(inner, Scope("b", "w")) - live_keys(inner, Scope("b", "w"))
    assert b_orphans
    gc = collect_garbage(inner, Scope("a", "w"), grace_seconds=0)
    assert gc.deleted == []
    assert immutable_keys(inner, Scope("b", "w")) >= b_orphans


def test_i6_reader_refuses_pointer_into_another_scope() -> None:
    # Copying a workspace (or a tampered pointer) must not make scope "c" read
    # scope "a"'s objects: manifests and files are named by full keys.
    store = open_store("memory://")
    a = Catalog(store, Scope("a", "w"))
    a.create_namespace("secret")
    a.create_table("secret", "t", ["x:int"])
    a_pointer, _ = store.get(Keys(Scope("a", "w")).pointer("catalog"))
    c_scope = Scope("c", "w")
    store.put(Keys(c_scope).pointer("catalog"), a_pointer)
    assert not verify(store, c_scope).ok  # verify already flags it
    with pytest.raises(IntegrityError):
        Catalog(store, c_scope).list_namespaces()
