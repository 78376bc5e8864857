"""The local-folder store reads and writes whole objects itself, exactly as obstore would.

LocalFolderStore does GET and PUT of plain keys in the calling thread instead of
on obstore's I/O runtime (a thread hand-off per request). The files, staging
names and versions must stay those of obstore's LocalStore, so a folder written
by either can be read, listed and compare-and-swapped by the other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import obstore
import pytest
from obstore.store import LocalStore

from arco.core.errors import ObjectNotFoundError, PreconditionFailedError
from arco.core.storage import Match, local_files
from arco.core.storage.local_files import plain_path
from arco.core.storage.obstore_backend import LocalFolderStore
from conftest import require_or_skip  # tests/conftest.py: fails under ARCO_REQUIRE_ALL=1


@pytest.fixture
def root(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def store(root: str) -> LocalFolderStore:
    return LocalFolderStore(root, "file://test")


def _staging_files(root: str) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if "#" in f]


def test_plain_keys_never_reach_the_obstore_runtime(
    store: LocalFolderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("went through obstore")

    monkeypatch.setattr(obstore, "put", refuse)
    monkeypatch.setattr(obstore, "get", refuse)
    v1 = store.put("t/manifests/catalog.pointer.json", b"1", "create")
    v2 = store.put("t/manifests/catalog.pointer.json", b"22", Match(v1))
    v3 = store.put("t/snapshots/catalog/00000000000000000001-X.L0.parquet", b"333")
    assert store.get("t/manifests/catalog.pointer.json") == (b"22", v2)
    assert store.get("t/snapshots/catalog/00000000000000000001-X.L0.parquet") == (b"333", v3)


def test_objects_and_versions_are_the_ones_obstore_writes_and_reads(
    store: LocalFolderStore, root: str
) -> None:
    native = LocalStore(root, mkdir=True)
    version = store.put("a/b/mine.json", b"written by arco", "create")
    got = obstore.get(native, "a/b/mine.json")
    assert bytes(got.bytes()) == b"written by arco"
    assert got.meta["e_tag"] == version
    theirs = obstore.put(native, "a/b/theirs.json", b"written by obstore")
    assert store.get("a/b/theirs.json") == (b"written by obstore", theirs["e_tag"])
    # A version obstore reported is good for a compare-and-swap here, and back.
    v2 = store.put("a/b/theirs.json", b"swapped", Match(str(theirs["e_tag"])))
    assert obstore.head(native, "a/b/theirs.json")["e_tag"] == v2
    assert sorted(m["path"] for b in obstore.list(native, "a") for m in b) == [
        "a/b/mine.json",
        "a/b/theirs.json",
    ]


def test_writes_leave_no_staging_file_and_step_over_a_crashed_one(
    store: LocalFolderStore, root: str
) -> None:
    store.put("k/obj", b"1", "create")
    with pytest.raises(PreconditionFailedError):
        store.put("k/obj", b"2", "create")
    store.put("k/obj", b"3")
    assert _staging_files(root) == []
    # A writer that crashed mid-put leaves "key#1"; the next writer uses "#2".
    Path(root, "k", "next#1").write_bytes(b"partial")
    store.put("k/next", b"whole", "create")
    assert store.get("k/next")[0] == b"whole"
    assert _staging_files(root) == [os.path.join(root, "k", "next#1")]
    # Listings hide staging names, as obstore's always have.
    assert sorted(m.key for m in store.list("k/")) == ["k/next", "k/obj"]


def test_a_volatile_cas_swaps_in_a_spare_file_without_a_rename(
    store: LocalFolderStore, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if local_files._load_renameat2() is None:
        # Linux has had it since 3.15: CI must run this test (ARCO_REQUIRE_ALL=1).
        require_or_skip("no renameat2 here: a volatile CAS is a rename")

    def no_rename(*args: Any) -> None:
        raise AssertionError("renamed over the object")

    key = "t/locks/catalog.lock.json"
    v1 = store.put(key, b"token 1 is long", "create")
    first = os.stat(os.path.join(root, key)).st_ino
    monkeypatch.setattr(local_files.os, "rename", no_rename)
    v2 = store.put(key, b"token 2", Match(v1, volatile=True))
    assert v2 != v1
    assert store.get(key) == (b"token 2", v2)  # the longer old bytes were cut
    # The spare file holds the old object, hidden from listings...
    spare = os.path.join(root, "t", "locks", "catalog.lock.json#0")
    assert _staging_files(root) == [spare]
    assert Path(spare).read_bytes() == b"token 1 is long"
    assert [m.key for m in store.list("t/")] == [key]
    # ...and takes the next object's bytes: two files take turns, no new inode.
    v3 = store.put(key, b"token 3, longer again", Match(v2, volatile=True))
    assert os.stat(os.path.join(root, key)).st_ino == first
    assert store.get(key) == (b"token 3, longer again", v3)
    assert len({v1, v2, v3}) == 3
    # Still a compare-and-swap: a stale version loses and changes nothing.
    for stale in (v1, v2):
        with pytest.raises(PreconditionFailedError):
            store.put(key, b"token 4", Match(stale, volatile=True))
    native = LocalStore(root, mkdir=True)
    got = obstore.get(native, key)
    assert (bytes(got.bytes()), got.meta["e_tag"]) == (b"token 3, longer again", v3)


def test_a_volatile_cas_renames_where_no_exchange_is_possible(
    store: LocalFolderStore, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_files, "_exchange", lambda stage, path: False)
    v1 = store.put("t/locks/catalog.lock.json", b"token 1", "create")
    v2 = store.put("t/locks/catalog.lock.json", b"token 2", Match(v1, volatile=True))
    assert store.get("t/locks/catalog.lock.json") == (b"token 2", v2)
    assert _staging_files(root) == []  # the spare itself was renamed into place


def test_a_cas_makes_the_lock_folder_again_if_it_went(store: LocalFolderStore, root: str) -> None:
    v1 = store.put("k/ptr", b"1", "create")
    v2 = store.put("k/ptr", b"2", Match(v1))
    locks = Path(root, ".cas-locks")
    for child in locks.iterdir():
        child.unlink()
    locks.rmdir()
    v3 = store.put("k/ptr", b"3", Match(v2))
    assert store.get("k/ptr") == (b"3", v3)
    assert locks.is_dir()


def test_a_failed_create_keeps_the_existing_object(store: LocalFolderStore) -> None:
    version = store.put("k/obj", b"first", "create")
    with pytest.raises(PreconditionFailedError):
        store.put("k/obj", b"second", "create")
    assert store.get("k/obj") == (b"first", version)


def test_folders_and_paths_through_objects_are_not_objects(
    store: LocalFolderStore,
) -> None:
    store.put("dir/sub/obj", b"x")
    for key in ("dir", "dir/sub", "dir/sub/obj/below", "missing/obj"):
        with pytest.raises(ObjectNotFoundError):
            store.get(key)


def test_large_objects_read_back_whole(store: LocalFolderStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    version = store.put("big/obj", data)
    assert store.get("big/obj") == (data, version)


@pytest.mark.parametrize(
    ("key", "plain"),
    [
        ("t/manifests/catalog.pointer.json", True),
        ("a-b_c.d=e/f", True),
        ("with space/x", False),
        ("hash#1", False),
        ("per%25cent", False),
        ("a/../b", False),
        ("a/./b", False),
        ("a//b", False),
        ("/abs", False),
        ("trailing/", False),
        ("ünï", False),
    ],
)
def test_only_keys_obstore_names_verbatim_take_the_direct_path(key: str, plain: bool) -> None:
    assert (plain_path("/root", key) is not None) is plain


def test_other_keys_still_work_through_obstore(store: LocalFolderStore) -> None:
    version = store.put("odd key/with space", b"v", "create")
    assert store.get("odd key/with space") == (b"v", version)
    v2 = store.put("odd key/with space", b"w", Match(version))
    assert store.get("odd key/with space") == (b"w", v2)
