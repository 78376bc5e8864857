"""The storage contract (docs/architecture.md), run on memory, local folder and S3.

Every test takes ``store_url`` (see tests/conftest.py), so each one runs once per
backend; the s3 runs use the session's SeaweedFS server.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from arco.core.errors import (
    ObjectNotFoundError,
    PreconditionFailedError,
    UnsupportedOperationError,
)
from arco.core.storage import Match, ObjectStore, open_store
from arco.core.storage.obstore_backend import LocalFolderStore


def _backend(url: str) -> str:
    return url.split("://", 1)[0]


def _threads(url: str) -> int:
    # SeaweedFS makes losers of a contended conditional write wait 1-3 s server-side.
    return 4 if _backend(url) == "s3" else 8


@pytest.fixture
def store(store_url: str) -> ObjectStore:
    return open_store(store_url)


def _race(
    n: int, attempt: Callable[[int], Any]
) -> tuple[list[int], list[int], list[BaseException]]:
    """Run ``attempt(i)`` in ``n`` threads released at once; split winners and losers."""
    barrier = threading.Barrier(n)
    winners: list[int] = []
    losers: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            attempt(i)
        except PreconditionFailedError:
            with lock:
                losers.append(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                winners.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return winners, losers, errors


# --------------------------------------------------------------------------- basics


def test_put_get_roundtrip_returns_the_version(store: ObjectStore) -> None:
    data = bytes(range(256)) * 3
    version = store.put("dir/obj.bin", data)
    assert isinstance(version, str)
    assert version
    got, got_version = store.get("dir/obj.bin")
    assert got == data
    assert got_version == version


def test_empty_object_roundtrip(store: ObjectStore) -> None:
    version = store.put("empty", b"")
    assert store.get("empty") == (b"", version)
    assert store.head("empty").size == 0


def test_get_range_reads_half_open_intervals(store: ObjectStore) -> None:
    data = bytes(range(256)) * 4
    store.put("ranged", data)
    assert store.get_range("ranged", 0, 10) == data[:10]
    assert store.get_range("ranged", 100, 356) == data[100:356]
    assert store.get_range("ranged", len(data) - 7, len(data)) == data[-7:]
    assert store.get_range("ranged", 5, 6) == data[5:6]


def test_head_reports_key_size_and_version(store: ObjectStore) -> None:
    version = store.put("h/obj", b"12345")
    meta = store.head("h/obj")
    assert meta.key == "h/obj"
    assert meta.size == 5
    assert meta.version == version
    assert isinstance(meta.last_modified, datetime)
    assert store.exists("h/obj")
    assert not store.exists("h/other")


def test_missing_keys_raise_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError):
        store.get("nope/missing")
    with pytest.raises(ObjectNotFoundError):
        store.head("nope/missing")
    with pytest.raises(ObjectNotFoundError):
        store.get_range("nope/missing", 0, 1)
    store.delete("nope/missing")  # deleting a missing key is not an error
    assert list(store.list("nope")) == []


def test_delete_removes_the_object(store: ObjectStore) -> None:
    store.put("d/obj", b"x")
    store.delete("d/obj")
    with pytest.raises(ObjectNotFoundError):
        store.get("d/obj")
    assert not store.exists("d/obj")
    store.delete("d/obj")  # twice is fine


def test_overwrite_replaces_and_creates(store: ObjectStore) -> None:
    v0 = store.put("o/new", b"first", mode="overwrite")  # missing key: overwrite creates
    v1 = store.put("o/new", b"second", mode="overwrite")
    assert v1 != v0
    assert store.get("o/new") == (b"second", v1)
    assert store.put("o/default", b"d") == store.head("o/default").version  # default mode


# --------------------------------------------------------------------------- create-only


def test_create_only_refuses_an_existing_key(store: ObjectStore) -> None:
    version = store.put("c/obj", b"original", mode="create")
    with pytest.raises(PreconditionFailedError):
        store.put("c/obj", b"intruder", mode="create")
    assert store.get("c/obj") == (b"original", version)


def test_create_after_delete_succeeds(store: ObjectStore) -> None:
    store.put("c/again", b"one", mode="create")
    store.delete("c/again")
    version = store.put("c/again", b"two", mode="create")
    assert store.get("c/again") == (b"two", version)


# --------------------------------------------------------------------------- CAS


def test_cas_with_the_current_version_succeeds_and_stale_fails(store: ObjectStore) -> None:
    v1 = store.put("p/pointer", b'{"n": 1}')
    v2 = store.put("p/pointer", b'{"n": 2}', mode=Match(v1))
    assert v2 != v1
    assert store.get("p/pointer") == (b'{"n": 2}', v2)
    assert store.head("p/pointer").version == v2

    with pytest.raises(PreconditionFailedError):
        store.put("p/pointer", b'{"n": 99}', mode=Match(v1))
    assert store.get("p/pointer") == (b'{"n": 2}', v2)

    v3 = store.put("p/pointer", b'{"n": 3}', mode=Match(v2))
    assert len({v1, v2, v3}) == 3
    assert store.get("p/pointer") == (b'{"n": 3}', v3)


def test_cas_on_a_missing_key_fails(store: ObjectStore) -> None:
    version = store.put("p/gone", b"x")
    store.delete("p/gone")
    with pytest.raises(PreconditionFailedError):
        store.put("p/gone", b"y", mode=Match(version))
    with pytest.raises(PreconditionFailedError):
        store.put("p/never", b"y", mode=Match(version))
    assert not store.exists("p/gone")
    assert not store.exists("p/never")


def test_cas_with_a_made_up_version_fails(store: ObjectStore) -> None:
    store.put("p/obj", b"x")
    with pytest.raises(PreconditionFailedError):
        store.put("p/obj", b"y", mode=Match('"not-a-real-version"'))
    assert store.get("p/obj")[0] == b"x"


# --------------------------------------------------------------------------- races


def test_create_race_has_exactly_one_winner(store: ObjectStore, store_url: str) -> None:
    n = _threads(store_url)
    winners, losers, errors = _race(
        n, lambda i: store.put("race/create", f"writer-{i}".encode(), mode="create")
    )
    assert errors == []
    assert len(winners) == 1
    assert len(losers) == n - 1
    assert store.get("race/create")[0] == f"writer-{winners[0]}".encode()


def test_cas_race_from_one_version_has_exactly_one_winner(
    store: ObjectStore, store_url: str
) -> None:
    n = _threads(store_url)
    base = store.put("race/cas", b"base")
    winners, losers, errors = _race(
        n, lambda i: store.put("race/cas", f"writer-{i}".encode(), mode=Match(base))
    )
    assert errors == []
    assert len(winners) == 1
    assert len(losers) == n - 1
    data, version = store.get("race/cas")
    assert data == f"writer-{winners[0]}".encode()
    assert version != base


def _increment(store: ObjectStore, key: str) -> int:
    """Read-increment-CAS until it wins; return how many attempts lost."""
    lost = 0
    while True:
        data, version = store.get(key)
        try:
            store.put(key, str(int(data) + 1).encode(), mode=Match(version))
        except PreconditionFailedError:
            lost += 1
            continue
        return lost


@pytest.mark.parametrize("store_url", ["memory", "file"], indirect=True)
def test_threaded_cas_counter_loses_no_update(store: ObjectStore) -> None:
    store.put("counter", b"0")
    threads, rounds = 8, 25
    losses: list[int] = []

    def work() -> None:
        losses.append(sum(_increment(store, "counter") for _ in range(rounds)))

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert len(losses) == threads
    assert store.get("counter")[0] == str(threads * rounds).encode()


# --------------------------------------------------------------------------- ABA

# Whether a CAS with the version read *before* an A -> B -> A round trip still wins.
# S3 ETags are MD5 content hashes, so identical bytes get the identical ETag back;
# memory versions are a counter; the local folder's version is inode-mtime-size and
# LocalFolderStore keeps the mtime growing on every CAS.
STALE_CAS_WINS_AFTER_ABA = {"memory": False, "file": False, "s3": True}


def test_aba_identical_bytes_per_backend(store: ObjectStore, store_url: str) -> None:
    v1 = store.put("aba/plain", b"A")
    v2 = store.put("aba/plain", b"B", mode=Match(v1))
    v3 = store.put("aba/plain", b"A", mode=Match(v2))
    stale_wins = STALE_CAS_WINS_AFTER_ABA[_backend(store_url)]
    assert (v3 == v1) is stale_wins
    if stale_wins:
        # The writer that read v1 before B and A' were written is not refused:
        # its stale CAS silently overwrites a newer state.
        store.put("aba/plain", b"C-from-a-stale-writer", mode=Match(v1))
        assert store.get("aba/plain")[0] == b"C-from-a-stale-writer"
    else:
        with pytest.raises(PreconditionFailedError):
            store.put("aba/plain", b"C-from-a-stale-writer", mode=Match(v1))
        assert store.get("aba/plain") == (b"A", v3)


def test_aba_counter_in_content_makes_stale_cas_fail_everywhere(store: ObjectStore) -> None:
    """Why every mutable Arco object carries a counter (docs/architecture.md)."""

    def doc(counter: int, state: str) -> bytes:
        return json.dumps({"counter": counter, "state": state}).encode()

    v1 = store.put("aba/pointer", doc(1, "A"))
    v2 = store.put("aba/pointer", doc(2, "B"), mode=Match(v1))
    v3 = store.put("aba/pointer", doc(3, "A"), mode=Match(v2))  # same state as v1
    assert len({v1, v2, v3}) == 3
    with pytest.raises(PreconditionFailedError):
        store.put("aba/pointer", doc(2, "C"), mode=Match(v1))
    assert store.get("aba/pointer") == (doc(3, "A"), v3)


def test_file_cas_versions_stay_unique_with_a_coarse_file_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a coarse file clock (ext4 before Linux 6.13: jiffies) writes share an mtime.

    The rename in each write frees the old inode and the next write gets it back,
    so without help ``inode-mtime-size`` repeats two CAS writes later and a stale
    CAS on same-size content (a counter 5 -> 6 -> 7) would win. Simulate the coarse
    clock by truncating every written file's mtime to the whole second.
    """
    store = LocalFolderStore(str(tmp_path / "store"), "file://test")
    plain_write = LocalFolderStore._write_object

    def coarse_write(
        self: LocalFolderStore, key: str, data: bytes, mode: Any, *, volatile: bool = False
    ) -> str:
        # Every write, plain or inside a CAS, lands with a whole-second mtime.
        plain_write(self, key, data, mode, volatile=volatile)
        path = os.path.join(str(tmp_path / "store"), key)
        st = os.stat(path)
        coarse = st.st_mtime_ns // 1_000_000_000 * 1_000_000_000
        os.utime(path, ns=(st.st_atime_ns, coarse))
        return self.head(key).version

    monkeypatch.setattr(LocalFolderStore, "_write_object", coarse_write)
    # A volatile CAS (the lease lock's) frees the old inode too, by an exchange.
    for volatile in [False] * 5 + [True] * 5:
        v1 = store.put("ptr", b'{"counter": 5}')
        v2 = store.put("ptr", b'{"counter": 6}', mode=Match(v1, volatile))
        v3 = store.put("ptr", b'{"counter": 7}', mode=Match(v2, volatile))
        assert len({v1, v2, v3}) == 3
        with pytest.raises(PreconditionFailedError):
            store.put("ptr", b'{"counter": 6}', mode=Match(v1, volatile))
        assert store.get("ptr") == (b'{"counter": 7}', v3)
        store.delete("ptr")


# --------------------------------------------------------------------------- listing


def test_list_returns_exactly_the_keys_under_a_prefix(store: ObjectStore) -> None:
    inside = {"a/1", "a/2", "a/deep/3", "a/deep/er/4"}
    outside = {"ab/1", "abc", "b/a/1", "x-a/1"}
    for key in inside | outside:
        store.put(key, key.encode())
    assert {m.key for m in store.list("a")} == inside
    assert {m.key for m in store.list("a/")} == inside
    assert {m.key for m in store.list("ab")} == {"ab/1"}
    assert {m.key for m in store.list("a/deep")} == {"a/deep/3", "a/deep/er/4"}
    assert {m.key for m in store.list("")} == inside | outside
    assert list(store.list("zzz")) == []
    sizes = {m.key: m.size for m in store.list("a")}
    assert sizes == {key: len(key) for key in inside}
    versions = {m.key: m.version for m in store.list("a")}
    assert versions == {key: store.head(key).version for key in inside}


def test_list_is_by_path_segment_not_string_prefix(store: ObjectStore) -> None:
    # Listing matches whole ``/`` segments: "a/1" is an object, not a folder, and
    # "ab" does not list "abc".
    store.put("seg/a/1", b"x")
    store.put("seg/abc", b"x")
    assert list(store.list("seg/a/1")) == []
    assert {m.key for m in store.list("seg/ab")} == set()
    assert {m.key for m in store.list("seg")} == {"seg/a/1", "seg/abc"}


def test_list_more_than_one_page(store: ObjectStore, store_url: str) -> None:
    count = 30 if _backend(store_url) == "s3" else 1_500
    expected = {f"many/{i:05d}" for i in range(count)}
    for key in expected:
        store.put(key, b"")
    store.put("many-sibling/x", b"")
    store.put("other/x", b"")
    keys = [m.key for m in store.list("many")]
    assert len(keys) == count
    assert set(keys) == expected


# --------------------------------------------------------------------------- signing


def test_sign(store: ObjectStore, store_url: str) -> None:
    store.put("signed/obj", b"secret bytes")
    if _backend(store_url) != "s3":
        # A plain folder or memory cannot presign: Arco's HMAC signer serves those.
        with pytest.raises(UnsupportedOperationError):
            store.sign("signed/obj", 60)
        return
    url = store.sign("signed/obj", 60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"secret bytes"
    tampered = url.replace("signed/obj", "signed/other", 1)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(tampered, timeout=10)
    assert info.value.code == 403


# --------------------------------------------------------------------------- processes


def _process_worker(url: str, key: str, rounds: int, barrier: Any) -> None:
    store = open_store(url)
    barrier.wait(timeout=60)
    for _ in range(rounds):
        _increment(store, key)


@pytest.mark.parametrize("store_url", ["file"], indirect=True)
def test_cross_process_cas_counter_on_a_folder(store_url: str) -> None:
    store = open_store(store_url)
    store.put("counter", b"0")
    ctx = multiprocessing.get_context("spawn")
    processes, rounds = 4, 25
    barrier = ctx.Barrier(processes)
    workers = [
        ctx.Process(target=_process_worker, args=(store_url, "counter", rounds, barrier))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    for worker in workers:
        if worker.is_alive():  # pragma: no cover - only on a hang
            worker.kill()
    assert [w.exitcode for w in workers] == [0] * processes
    assert store.get("counter")[0] == str(processes * rounds).encode()


# --------------------------------------------------------------------------- fork

_FORK_SCRIPT = """
import json, os, sys
from arco.core.errors import UnsupportedOperationError
from arco.core.storage import open_store

url, use_first = sys.argv[1], sys.argv[2] == "used"
store = open_store(url)
if use_first:
    store.put("before-fork", b"1")
    store.get("before-fork")
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    outcome = {}
    for name, call in [
        ("put", lambda: store.put("child", b"2")),
        ("get", lambda: store.get("child")[0].decode()),
        ("list", lambda: sorted(m.key for m in store.list(""))),
        ("reopened", lambda: open_store(url).get("child")[0].decode()),
    ]:
        try:
            outcome[name] = call()
        except UnsupportedOperationError as exc:
            outcome[name] = "refused: " + str(exc)
    os.write(write, json.dumps(outcome).encode())
    os._exit(0)
os.close(write)
_, status = os.waitpid(pid, 0)
data = b""
while chunk := os.read(read, 65536):
    data += chunk
print(data.decode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _run_fork_script(url: str, mode: str) -> dict[str, Any]:
    import subprocess
    import sys

    # A real process: a hang in the forked child must not hang the test session.
    done = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT, url, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_child_forked_after_use_fails_fast_instead_of_hanging(store_url: str) -> None:
    outcome = _run_fork_script(store_url, "used")
    if _backend(store_url) == "memory":
        # An in-memory store needs no I/O runtime: the child works on its copy.
        assert outcome["put"]
        assert outcome["get"] == "2"
        assert outcome["list"] == ["before-fork", "child"]
        return
    for name in ("put", "get", "list", "reopened"):
        assert outcome[name].startswith("refused: "), (name, outcome)
        assert "forkserver" in outcome[name]
        assert "fork()" in outcome[name]


@pytest.mark.parametrize("store_url", ["file"], indirect=True)
def test_a_child_forked_before_any_request_can_use_the_store(store_url: str) -> None:
    outcome = _run_fork_script(store_url, "unused")
    assert outcome["get"] == "2"
    assert outcome["reopened"] == "2"
    assert outcome["list"] == ["child"]
