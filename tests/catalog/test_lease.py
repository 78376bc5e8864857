"""Lease defaults and renewal: a dead writer costs one short TTL, a live one is never fenced."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from arco.catalog import Catalog, Change, Snapshot
from arco.core import Keys, Scope
from arco.core.errors import FencedError
from arco.core.ids import new_ulid, utc_now
from arco.core.storage import FaultInjectingStore, Match, ObjectStore, PutMode, open_store
from arco.discovery.search import SearchIndex
from arco.domain.lock import DEFAULT_LOCK_TTL, LeaseLock
from arco.domain.verify import verify
from arco.ledger.compactor import Compactor

SCOPE = Scope("default", "default")
KEYS = Keys(SCOPE)


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


def test_every_domain_writer_defaults_to_the_documented_short_lease() -> None:
    store = open_store("memory://")
    catalog = Catalog(store, SCOPE)
    writers = {
        "catalog": catalog.domain,
        "executions": Compactor(store, SCOPE).domain_store("executions"),
        "search": SearchIndex(store, SCOPE, catalog=catalog).domain,
        "lineage": Compactor(store, SCOPE).domain_store("lineage"),
    }
    assert DEFAULT_LOCK_TTL == 15.0
    for name, domain in writers.items():
        assert domain.lock.ttl == DEFAULT_LOCK_TTL, name
    # The docs state the same number.
    root = Path(__file__).resolve().parents[2]
    concepts = (root / "docs" / "concepts.md").read_text()
    adr = next((root / "docs" / "adr").glob("002-*.md")).read_text()
    assert "TTL 15 s" in concepts
    assert "15 s" in adr
    assert "300 s" not in concepts


def test_a_catalog_writes_its_lease_with_the_default_ttl() -> None:
    store = open_store("memory://")
    Catalog(store, SCOPE).create_namespace("ns")
    record = LeaseLock(store, KEYS.lock("catalog")).read()
    assert record is not None
    assert record[0].expires_at - record[0].acquired_at == pytest.approx(DEFAULT_LOCK_TTL)


class _Recording(FaultInjectingStore):
    """Records the mode of every put."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.modes: list[tuple[str, PutMode]] = []

    def put(self, key: str, data: bytes, mode: PutMode = "overwrite") -> str:
        self.modes.append((key, mode))
        return super().put(key, data, mode)


def test_only_a_domain_lock_is_written_as_a_volatile_cas() -> None:
    # A domain lock may lose its record in a machine crash (the next token continues
    # above the head's); a run lease has no head to continue from.
    store = _Recording(open_store("memory://"))
    catalog = Catalog(store, SCOPE)
    catalog.create_namespace("a")
    catalog.create_namespace("b")
    lock_modes = [m for k, m in store.modes if k == KEYS.lock("catalog")]
    assert lock_modes[0] == "create"
    assert lock_modes[1:]
    assert all(isinstance(m, Match) and m.volatile for m in lock_modes[1:])
    pointer_modes = [m for k, m in store.modes if k == KEYS.pointer("catalog")]
    assert all(not (isinstance(m, Match) and m.volatile) for m in pointer_modes)
    run_lock = LeaseLock(store, KEYS.run_lease(new_ulid()), ttl=15.0)
    store.modes.clear()
    run_lock.release(run_lock.acquire())
    run_lock.release(run_lock.acquire())
    assert [type(m) for _, m in store.modes] == [str, Match, Match, Match]
    assert not any(isinstance(m, Match) and m.volatile for _, m in store.modes)


def test_a_lock_emptied_by_a_machine_crash_neither_blocks_nor_lowers_the_token(
    tmp_path: Path,
) -> None:
    url = f"file://{tmp_path / 'store'}"
    catalog = Catalog(url, SCOPE)
    catalog.create_namespace("first")
    catalog.create_namespace("second")
    token = catalog.domain.read().pointer.fencing_token  # type: ignore[union-attr]
    # What a power loss may leave of a volatile write: the new file, without its bytes.
    lock_file = tmp_path / "store" / KEYS.lock("catalog")
    lock_file.write_bytes(b"")
    started = time.monotonic()
    other = Catalog(url, SCOPE)
    other.create_namespace("third")
    assert time.monotonic() - started < 5.0  # no lease to wait out
    head = other.domain.read()
    assert head.pointer is not None
    assert head.pointer.fencing_token == token + 1
    assert [n.name for n in Catalog(url, SCOPE).list_namespaces().items] == [
        "first",
        "second",
        "third",
    ]
    assert verify(open_store(url), SCOPE).ok  # the commit wrote the lock again


_DEAD_WRITER = """
import os, sys
from arco.catalog import Catalog
from arco.core import Scope

catalog = Catalog(sys.argv[1], Scope("default", "default"))
catalog.create_namespace("first")

def die(snapshot):
    print("holding", flush=True)
    os._exit(3)  # the process dies holding the lease, its keeper thread with it

catalog.domain.commit(die)
"""


def test_a_dead_writer_blocks_the_next_one_for_at_most_the_default_ttl(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    dead = subprocess.run(
        [sys.executable, "-c", _DEAD_WRITER, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert dead.returncode == 3, dead.stderr
    assert "holding" in dead.stdout
    died_at = time.time()
    Catalog(url, SCOPE).create_namespace("second")
    waited = time.time() - died_at
    assert waited <= DEFAULT_LOCK_TTL + 3, waited
    names = [n.name for n in Catalog(url, SCOPE).list_namespaces().items]
    assert names == ["first", "second"]


def test_a_live_commit_longer_than_its_lease_is_renewed_not_fenced() -> None:
    store = open_store("memory://")
    slow = Catalog(store, SCOPE, lock_ttl=1.2)
    slow.create_namespace("ns")
    other = Catalog(store, SCOPE, lock_ttl=1.2, lock_wait=30)
    started = threading.Event()
    finished: list[float] = []
    errors: list[BaseException] = []

    def work(snap: Snapshot[Any]) -> Change:
        started.set()
        time.sleep(4.0)  # more than three TTLs of real work
        return namespace_change("slow")

    def contender() -> None:
        started.wait(10)
        try:
            other.create_namespace("other")
            finished.append(time.monotonic())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=contender)
    thread.start()
    t0 = time.monotonic()
    result = slow.domain.commit(work)
    done = time.monotonic()
    thread.join(30)
    assert result.committed
    assert not errors
    # The contender waited for the live lease instead of taking it over.
    assert finished
    assert finished[0] >= done - 0.05
    assert done - t0 >= 4.0
    catalog = Catalog(store, SCOPE)
    assert [n.name for n in catalog.list_namespaces().items] == ["ns", "other", "slow"]
    assert catalog.version == 3
    assert verify(store, SCOPE).ok


def test_a_writer_that_cannot_renew_is_fenced_when_its_lease_runs_out() -> None:
    inner = open_store("memory://")
    store = FaultInjectingStore(inner)
    slow = Catalog(store, SCOPE, lock_ttl=1.2)
    slow.create_namespace("ns")
    fast = Catalog(inner, SCOPE, lock_ttl=1.2)
    lock_key = KEYS.lock("catalog")

    def work(snap: Snapshot[Any]) -> Change:
        # From here on the slow writer cannot reach the lock (a partition, a stall).
        store.arm("fail", op="put", key_glob=lock_key, times=1000)
        time.sleep(2.0)
        fast.create_namespace("fast")  # takes the expired lease and publishes
        return namespace_change("slow")

    with pytest.raises(FencedError):
        slow.domain.commit(work)
    catalog = Catalog(inner, SCOPE)
    assert [n.name for n in catalog.list_namespaces().items] == ["fast", "ns"]
    assert verify(inner, SCOPE).ok


def test_renewal_never_extends_a_lease_another_writer_took() -> None:
    store = open_store("memory://")
    key = KEYS.lock("catalog")
    first = LeaseLock(store, key, ttl=0.3, holder="first")
    second = LeaseLock(store, key, ttl=5, wait_timeout=5, holder="second")
    lease1 = first.acquire()
    lease2 = second.acquire()  # after lease1 expired
    assert not first.renew(lease1)
    assert lease1.lost
    with pytest.raises(FencedError):
        first.check(lease1)
    record = second.read()
    assert record is not None
    assert (record[0].holder, record[0].token) == ("second", lease2.token)
    assert second.renew(lease2)
    second.check(lease2, force=True)


def _keepers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("lease-keeper")]


def test_one_keeper_thread_serves_a_lock_across_commits() -> None:
    store = open_store("memory://")
    catalog = Catalog(store, SCOPE)
    before = set(_keepers())
    catalog.create_namespace("a")
    first = set(_keepers()) - before
    for name in ("b", "c", "d"):
        catalog.create_namespace(name)
    # Starting (and joining) a thread per commit cost two thread hand-offs each.
    assert len(first) == 1
    assert set(_keepers()) - before == first


def test_the_keeper_stops_renewing_when_the_commit_ends() -> None:
    store = open_store("memory://")
    catalog = Catalog(store, SCOPE, lock_ttl=1.2)  # renewed every 0.4 s
    catalog.create_namespace("ns")
    lock = LeaseLock(store, KEYS.lock("catalog"))
    before = lock.read()
    time.sleep(1.0)
    assert lock.read() == before  # no renewal of a finished commit's lease


def test_an_idle_keeper_thread_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    import arco.domain.lock as lock_module

    monkeypatch.setattr(lock_module, "KEEPER_IDLE_EXIT", 0.5)
    store = open_store("memory://")
    catalog = Catalog(store, SCOPE, lock_ttl=1.2)
    before = set(_keepers())
    catalog.create_namespace("ns")
    mine = set(_keepers()) - before
    assert len(mine) == 1
    (thread,) = mine
    thread.join(5)
    assert not thread.is_alive()
    catalog.create_namespace("again")  # a new keeper starts with the next commit
    assert len(set(_keepers()) - before) == 1
