"""A lost head pointer: reads and writes refuse, verify and gc refuse, repair re-points.

Issue #10 item 3: deleting ``manifests/catalog.pointer.json`` made the catalog
read as empty, the next write started a new history at version 1, verify said OK
and ``gc --grace 0`` deleted the whole old history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from arco.catalog import Catalog, ColumnSpec
from arco.cli.main import app
from arco.core import Keys, Scope
from arco.core.errors import IntegrityError, PointerMissingError
from arco.core.storage import ObjectMeta, ObjectStore, open_store
from arco.core.storage.faults import FaultInjectingStore
from arco.discovery.search import SearchIndex
from arco.domain.repair import repair_domain
from arco.domain.verify import verify
from arco.ledger.compactor import tier2_store
from arco.maintenance.gc import collect_garbage

SCOPE = Scope("default", "default")
KEYS = Keys(SCOPE)
COLS = [ColumnSpec("a", "int")]


def all_keys(store: ObjectStore) -> set[str]:
    return {m.key for m in store.list("")}


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return open_store(f"file://{tmp_path / 'store'}")
    return open_store(request.getfixturevalue("seaweed").fresh_url())


def _busy_catalog(store: ObjectStore, lock_ttl: float = 15.0) -> Catalog:
    catalog = Catalog(store, SCOPE, lock_ttl=lock_ttl)
    catalog.create_namespace("ns")
    for i in range(4):
        catalog.create_table("ns", f"t{i}", COLS)
    return catalog


def test_a_lost_catalog_pointer_is_refused_everywhere_and_repaired(store: ObjectStore) -> None:
    _busy_catalog(store)
    head, _ = store.get(KEYS.pointer("catalog"))
    store.delete(KEYS.pointer("catalog"))
    before = all_keys(store)

    # Reads error instead of answering empty.
    with pytest.raises(PointerMissingError, match="arco repair --domain catalog"):
        Catalog(store, SCOPE).list_tables("ns")
    # A writer refuses to start a new history over the old one.
    with pytest.raises(PointerMissingError, match="arco verify"):
        Catalog(store, SCOPE).create_namespace("other")
    assert not store.exists(KEYS.pointer("catalog"))
    # verify fails; gc refuses and deletes nothing, even with no grace period.
    report = verify(store, SCOPE)
    assert not report.ok
    assert any("pointer is missing" in p.message for p in report.problems)
    with pytest.raises(IntegrityError, match="gc refuses"):
        collect_garbage(store, SCOPE, grace_seconds=0)
    assert all_keys(store) - {KEYS.lock("catalog")} == before - {KEYS.lock("catalog")}

    # A dry run changes nothing; the repair re-points to the newest manifest.
    dry = repair_domain(store, SCOPE, "catalog", dry_run=True)
    assert (dry.action, dry.before, dry.after) == ("repointed", None, 5)
    assert not store.exists(KEYS.pointer("catalog"))
    fixed = repair_domain(store, SCOPE, "catalog")
    assert (fixed.action, fixed.after) == ("repointed", 5)
    assert json.loads(store.get(KEYS.pointer("catalog"))[0]) == json.loads(head)
    assert verify(store, SCOPE).ok
    catalog = Catalog(store, SCOPE)
    assert [t.name for t in catalog.list_tables("ns").items] == ["t0", "t1", "t2", "t3"]
    catalog.create_namespace("after")
    assert Catalog(store, SCOPE).version == 6
    assert repair_domain(store, SCOPE, "catalog").action == "ok"
    assert collect_garbage(store, SCOPE, grace_seconds=0).deleted == []


def test_repair_skips_a_newest_manifest_whose_chain_does_not_verify(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'store'}")
    catalog = _busy_catalog(store)
    head = catalog.snapshot()
    assert head.manifest is not None
    assert head.manifest_key is not None
    newest_file = head.manifest.files[-1].path
    store.delete(KEYS.pointer("catalog"))
    # The newest commit's manifest survives but one of its new files is damaged.
    store.put(newest_file, b"truncated")
    fixed = repair_domain(store, SCOPE, "catalog")
    assert fixed.action == "repointed"
    assert fixed.after == 4
    assert head.manifest_key in fixed.rejected
    assert Catalog(store, SCOPE).version == 4


def test_a_crashed_first_commit_is_not_mistaken_for_a_lost_head() -> None:
    store = open_store("memory://")
    # A short lease: the one left by the "crashed" commit must run out first.
    catalog = Catalog(store, SCOPE, lock_ttl=0.3)
    catalog.create_namespace("ns")
    store.delete(KEYS.pointer("catalog"))
    # Only a version-1 manifest remains: what a first commit that crashed before
    # publishing leaves. Readers see an empty domain and the next writer proceeds.
    assert Catalog(store, SCOPE).list_namespaces().items == []
    Catalog(store, SCOPE).create_namespace("again")
    assert verify(store, SCOPE).ok


def _lose(store: ObjectStore, domain: str) -> None:
    store.delete(KEYS.pointer(domain))


@pytest.mark.parametrize(
    ("domain", "fill", "read"),
    [
        (
            "search",
            lambda s: [SearchIndex(s, SCOPE).refresh() for _ in range(1)],
            lambda s: SearchIndex(s, SCOPE).domain.read(),
        ),
        (
            "executions",
            None,
            lambda s: tier2_store(s, SCOPE, "executions").read(),
        ),
    ],
)
def test_every_domain_refuses_a_lost_head(
    domain: str,
    fill: Callable[[ObjectStore], Any] | None,
    read: Callable[[ObjectStore], Any],
) -> None:
    store = open_store("memory://")
    catalog = Catalog(store, SCOPE)
    dstore = tier2_store(store, SCOPE, domain) if fill is None else None
    for i in range(3):
        catalog.create_namespace(f"ns{i}")
        if fill is not None:
            fill(store)
        else:
            assert dstore is not None
            dstore.commit(lambda snap, n=i: _meta_change(n))
    assert verify(store, SCOPE).ok
    _lose(store, domain)
    with pytest.raises(PointerMissingError):
        read(store)
    assert not verify(store, SCOPE).ok
    assert repair_domain(store, SCOPE, domain).action == "repointed"
    read(store)
    assert verify(store, SCOPE).ok


def _meta_change(i: int) -> Any:
    from arco.domain.store import Change

    return Change(meta={"n": i}, operation={"op": "test", "n": i})


def test_verify_and_gc_refuse_a_history_forked_by_a_recreated_pointer(tmp_path: Path) -> None:
    """What older versions did: the old history sits beside a new head at version 1."""
    store = open_store(f"file://{tmp_path / 'store'}")
    _busy_catalog(store, lock_ttl=0.3)  # its last lease is not ended by the foreign head
    other = open_store("memory://")
    Catalog(other, SCOPE).create_namespace("fresh")
    Catalog(other, SCOPE).create_namespace("fresh2")
    for meta in other.list(""):
        if "/locks/" not in meta.key:
            store.put(meta.key, other.get(meta.key)[0])  # overwrites the pointer
    assert Catalog(store, SCOPE).version == 2
    report = verify(store, SCOPE)
    assert any("not on the head's chain" in p.message for p in report.problems)
    before = all_keys(store)
    with pytest.raises(IntegrityError, match="gc refuses"):
        collect_garbage(store, SCOPE, grace_seconds=0)
    assert all_keys(store) == before
    # Repair does not pick a side on its own.
    assert repair_domain(store, SCOPE, "catalog").action == "diverged"
    # Dropping the pointer lets repair re-point to the newest (the old) history.
    store.delete(KEYS.pointer("catalog"))
    assert repair_domain(store, SCOPE, "catalog").after == 5


def test_cli_repair_and_gc(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    _busy_catalog(store)
    store.delete(KEYS.pointer("catalog"))
    runner = CliRunner()
    env = {"ARCO_TENANT": None, "ARCO_WORKSPACE": None, "ARCO_STORE": None}

    listed = runner.invoke(app, ["--store", url, "table", "list"], env=env)
    assert listed.exit_code != 0
    assert listed.stdout == ""
    assert "arco repair" in listed.stderr
    assert len(listed.stderr.strip().splitlines()) == 1
    gc = runner.invoke(app, ["--store", url, "gc", "--grace", "0"], env=env)
    assert gc.exit_code != 0
    assert "gc refuses" in gc.stderr
    verified = runner.invoke(app, ["--store", url, "verify"], env=env)
    assert verified.exit_code == 1
    assert "pointer is missing" in verified.stdout
    repaired = runner.invoke(app, ["--store", url, "repair", "--domain", "catalog"], env=env)
    assert repaired.exit_code == 0, repaired.stderr
    assert "re-pointed the head from missing to version 5" in repaired.stdout
    listed = runner.invoke(app, ["--store", url, "--json", "table", "list"], env=env)
    assert listed.exit_code == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 4


class _CommitsWhileListing(FaultInjectingStore):
    """A store on which other writers commit between verify's pointer read and its listing."""

    commits_left: int = 0
    committed: int = 0

    def list(self, prefix: str) -> Iterator[ObjectMeta]:
        if self.commits_left and prefix == KEYS.manifests_prefix("catalog"):
            self.commits_left -= 1
            writer = Catalog(self.inner, SCOPE)
            for _ in range(2):
                self.committed += 1
                writer.create_table("ns", f"late{self.committed}", COLS)
        return super().list(prefix)


@pytest.mark.parametrize("racing_walks", [1, 3])
def test_commits_landing_during_verify_are_not_taken_for_a_lost_pointer(
    tmp_path: Path, racing_walks: int
) -> None:
    inner = open_store(f"file://{tmp_path / 'store'}")
    _busy_catalog(inner)
    store = _CommitsWhileListing(inner)
    store.commits_left = racing_walks

    report = verify(store, SCOPE, ["catalog"])

    assert report.problems == []
    assert store.commits_left == 0
    # GC (which verifies first) runs beside writers too.
    store.commits_left = 1
    collect_garbage(store, SCOPE, grace_seconds=0)
    assert verify(inner, SCOPE).ok


def test_manifests_beside_a_head_that_stands_still_are_still_reported(store: ObjectStore) -> None:
    catalog = _busy_catalog(store)
    head, _ = store.get(KEYS.pointer("catalog"))
    catalog.create_table("ns", "newer", COLS)
    catalog.create_table("ns", "newest", COLS)
    # Roll the head back two versions: the newer manifests are off its chain for good.
    store.put(KEYS.pointer("catalog"), head, "overwrite")

    report = verify(store, SCOPE, ["catalog"])

    assert any("not on the head's chain" in p.message for p in report.problems)
