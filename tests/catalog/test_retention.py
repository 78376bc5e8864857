"""History retention: expiring old versions, and GC reclaiming what only they used.

Invariants checked here: every version at or above the floor reads back exactly as
it was committed, versions below it answer "no longer retained", the floor never
moves down, ``arco verify`` passes after any expiry (also one cut short by a crash
at any storage call, or racing commits from threads and processes), and GC leaves
exactly the objects the retained versions reference.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from arco.catalog import Catalog
from arco.cli.main import app
from arco.core import Scope
from arco.core.errors import IntegrityError, InvalidArgumentError, NotFoundError
from arco.core.keys import Keys
from arco.core.storage import ObjectStore, open_store
from arco.core.storage.faults import FaultInjectingStore, SimulatedCrash
from arco.domain.retention import (
    Floor,
    RetentionPolicy,
    expire_history,
    floor_version,
    read_floor,
)
from arco.domain.verify import verify, walk_chain
from arco.maintenance.gc import collect_garbage
from conftest import repeating_in_background

SCOPE = Scope("default", "default")
KEYS = Keys(SCOPE)
COLS = ["id:int64", "note:string"]


def memory_store() -> ObjectStore:
    return open_store(f"memory://{uuid.uuid4().hex}")


def tables_at(cat: Catalog, version: int) -> list[str]:
    view = cat.at_version(version)
    return sorted(t.qualified_name for t in view.list_tables(page_size=10_000).items)


def commit_tables(cat: Catalog, start: int, count: int) -> dict[int, list[str]]:
    """Create tables ``t<start>..``, one commit each; what every new version holds."""
    seen = {}
    for i in range(start, start + count):
        cat.create_table("ns", f"t{i:03d}", COLS)
        seen[cat.version] = tables_at(cat, cat.version)
    return seen


def catalog_keys(store: ObjectStore) -> set[str]:
    out = {m.key for m in store.list(KEYS.snapshots_prefix("catalog"))}
    return out | {m.key for m in store.list(KEYS.manifests_prefix("catalog"))}


def referenced_keys(store: ObjectStore) -> set[str]:
    walk = walk_chain(store, KEYS, "catalog")
    assert walk.complete, walk.problems
    out: set[str] = set()
    for key, manifest in walk.manifests:
        out.add(key)
        out.update(f.path for f in manifest.files)
    return out


def check_history(store: ObjectStore, expected: dict[int, list[str]]) -> int:
    """Versions at or above the floor read back as committed; older ones are refused."""
    cat = Catalog(store)
    oldest = floor_version(store, KEYS, "catalog")
    for version, tables in expected.items():
        if version >= oldest:
            assert tables_at(cat, version) == tables, version
        else:
            with pytest.raises(NotFoundError, match="no longer retained"):
                cat.at_version(version)
    history = cat.domain.history(10_000)
    assert [m.version for _, m in history] == list(range(cat.version, oldest - 1, -1))
    report = verify(store, SCOPE)
    assert report.ok, report.problems
    return oldest


@pytest.fixture
def busy() -> tuple[ObjectStore, Catalog, dict[int, list[str]]]:
    store = memory_store()
    cat = Catalog(store)
    cat.create_namespace("ns")
    return store, cat, {1: [], **commit_tables(cat, 0, 30)}


# ------------------------------------------------------------------ policy
def test_keep_versions_expires_older_history_and_gc_reclaims_it(
    busy: tuple[ObjectStore, Catalog, dict[int, list[str]]],
) -> None:
    store, cat, expected = busy
    head = cat.version
    assert head == 31
    before = catalog_keys(store)
    report = collect_garbage(
        store, SCOPE, grace_seconds=0, retention=RetentionPolicy(keep_versions=5)
    )
    [expired] = [e for e in report.expired if e.domain == "catalog"]
    assert (expired.floor_before, expired.floor_after, expired.head) == (1, head - 4, head)
    assert expired.expired == head - 5
    assert check_history(store, expected) == head - 4
    # Exactly what the retained versions reference is left, and the rest was deleted.
    assert catalog_keys(store) == referenced_keys(store)
    assert set(report.deleted) >= before - catalog_keys(store)
    assert all(
        KEYS.manifests_prefix("catalog") + f"{v:020d}" not in "".join(report.deleted)
        for v in range(head - 4, head + 1)
    )
    # Commits go on as before, and the next expiry moves the floor further.
    more = commit_tables(cat, 30, 3)
    expected.update(more)
    assert check_history(store, expected) == head - 4
    collect_garbage(store, SCOPE, grace_seconds=0, retention=RetentionPolicy(keep_versions=2))
    assert check_history(store, expected) == cat.version - 1
    assert catalog_keys(store) == referenced_keys(store)


def test_keep_for_keeps_recent_commits(
    busy: tuple[ObjectStore, Catalog, dict[int, list[str]]],
) -> None:
    store, cat, expected = busy
    policy = RetentionPolicy(keep_for=timedelta(days=1))
    # Every commit is younger than a day: nothing goes.
    assert expire_history(store, SCOPE, "catalog", policy).expired == 0
    # A week later, all but the head is older than a day.
    later = datetime.now(UTC) + timedelta(days=7)
    report = expire_history(store, SCOPE, "catalog", policy, now=later)
    assert report.floor_after == cat.version
    assert check_history(store, expected) == cat.version


def test_both_rules_must_let_a_version_go(
    busy: tuple[ObjectStore, Catalog, dict[int, list[str]]],
) -> None:
    store, cat, _ = busy
    later = datetime.now(UTC) + timedelta(days=7)
    policy = RetentionPolicy(keep_versions=10, keep_for=timedelta(days=1))
    report = expire_history(store, SCOPE, "catalog", policy, now=later)
    assert report.floor_after == cat.version - 9


def test_floor_never_moves_down_and_dry_run_writes_nothing(
    busy: tuple[ObjectStore, Catalog, dict[int, list[str]]],
) -> None:
    store, cat, expected = busy
    dry = expire_history(store, SCOPE, "catalog", RetentionPolicy(keep_versions=3), dry_run=True)
    assert dry.floor_after == cat.version - 2
    assert read_floor(store, KEYS, "catalog") == (None, None)
    gc_dry = collect_garbage(
        store, SCOPE, grace_seconds=0, dry_run=True, retention=RetentionPolicy(keep_versions=3)
    )
    assert gc_dry.deleted  # it reports what the expiry would free ...
    assert check_history(store, expected) == 1  # ... and changes nothing
    expire_history(store, SCOPE, "catalog", RetentionPolicy(keep_versions=3))
    wider = expire_history(store, SCOPE, "catalog", RetentionPolicy(keep_versions=20))
    assert (wider.floor_before, wider.floor_after, wider.expired) == (
        cat.version - 2,
        cat.version - 2,
        0,
    )
    assert floor_version(store, KEYS, "catalog") == cat.version - 2


def test_policy_and_floor_records_reject_bad_input() -> None:
    with pytest.raises(InvalidArgumentError, match="keep_versions or keep_for"):
        RetentionPolicy()
    with pytest.raises(InvalidArgumentError, match="at least 1"):
        RetentionPolicy(keep_versions=0)
    with pytest.raises(InvalidArgumentError, match="negative"):
        RetentionPolicy(keep_for=timedelta(seconds=-1))
    for bad in (b"", b"{}", b'{"format":"arco.floor/1","version":0}', b"\xff"):
        with pytest.raises(IntegrityError, match="malformed history floor"):
            Floor.from_bytes(bad, key="k")


def test_empty_domain_has_nothing_to_expire() -> None:
    report = expire_history(memory_store(), SCOPE, "catalog", RetentionPolicy(keep_versions=1))
    assert (report.head, report.expired) == (0, 0)


# ------------------------------------------------------------------ damage and reads
def test_verify_reports_a_floor_off_the_chain(
    busy: tuple[ObjectStore, Catalog, dict[int, list[str]]],
) -> None:
    store, _, _ = busy
    expire_history(store, SCOPE, "catalog", RetentionPolicy(keep_versions=5))
    floor, tag = read_floor(store, KEYS, "catalog")
    assert floor is not None
    assert tag is not None
    forged = Floor(**{**floor.__dict__, "manifest_sha256": "0" * 64})
    store.put(KEYS.floor("catalog"), forged.to_bytes(), "overwrite")
    problems = verify(store, SCOPE).problems
    assert any("not on the chain" in p.message for p in problems)
    # GC refuses to delete anything while verify fails.
    before = {m.key for m in store.list("")}
    with pytest.raises(IntegrityError, match="gc refuses"):
        collect_garbage(store, SCOPE, grace_seconds=0)
    assert {m.key for m in store.list("")} == before
    store.put(KEYS.floor("catalog"), b"not json", "overwrite")
    assert any("malformed history floor" in p.message for p in verify(store, SCOPE).problems)


def test_time_travel_below_the_floor_is_a_404_from_the_api(
    busy: tuple[ObjectStore, Catalog, dict[int, list[str]]],
) -> None:
    from fastapi.testclient import TestClient

    from arco.api.app import create_app
    from arco.api.auth import mint_token
    from arco.api.settings import Settings

    store, cat, _ = busy
    collect_garbage(store, SCOPE, grace_seconds=0, retention=RetentionPolicy(keep_versions=3))
    secret = "retention-test-secret-0123456789abcdef"
    app = create_app(Settings(store_url=store.url, jwt_secret=secret), store=store)
    token = mint_token(secret, tenant="default", workspace="default", roles=["reader"])
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        old = client.post(
            "/api/v1/browser/urls",
            json={"domains": ["catalog"], "as_of_version": 2},
            headers=headers,
        )
        assert old.status_code == 404
        assert old.headers["content-type"].startswith("application/problem+json")
        assert "no longer retained" in old.json()["detail"]
        kept = client.post(
            "/api/v1/browser/urls",
            json={"domains": ["catalog"], "as_of_version": cat.version - 1},
            headers=headers,
        )
        assert kept.status_code == 200, kept.text
        sql = client.post(
            "/api/v1/query",
            json={"sql": "SELECT count(*) AS n FROM system.tables", "as_of_version": 2},
            headers=headers,
        )
        assert sql.status_code == 404, sql.text


# ------------------------------------------------------------------ faults
def _expire_and_collect(store: ObjectStore) -> None:
    collect_garbage(store, SCOPE, grace_seconds=0, retention=RetentionPolicy(keep_versions=4))


def test_crash_at_every_storage_call_of_expiry_and_gc() -> None:
    """Cut short anywhere, the store stays valid and the next run finishes the job."""
    probe_store = memory_store()
    cat = Catalog(probe_store)
    cat.create_namespace("ns")
    expected = {1: [], **commit_tables(cat, 0, 12)}
    spy = FaultInjectingStore(probe_store)
    _expire_and_collect(spy)
    total = len(spy.calls)
    assert total > 20
    for n in range(total):
        store = memory_store()
        seeded = Catalog(store)
        seeded.create_namespace("ns")
        commit_tables(seeded, 0, 12)
        faulty = FaultInjectingStore(store)
        faulty.arm("crash", call=n)
        with pytest.raises(SimulatedCrash):
            _expire_and_collect(faulty)
        oldest = check_history(store, expected)  # valid right after the crash
        assert oldest in (1, 10)
        _expire_and_collect(store)
        assert check_history(store, expected) == 10
        assert catalog_keys(store) == referenced_keys(store), n


# ------------------------------------------------------------------ concurrency
def test_commits_racing_expiry_and_gc_in_threads() -> None:
    """A head published between GC's walk and its expiry keeps its files."""
    store = memory_store()
    cat = Catalog(store)
    cat.create_namespace("ns")

    def collect() -> None:
        # A short grace protects in-flight attempts; everything older is fair game.
        collect_garbage(store, SCOPE, grace_seconds=0.3, retention=RetentionPolicy(keep_versions=1))

    with repeating_in_background(collect):
        for i in range(60):
            cat.create_table("ns", f"t{i:03d}", COLS)
            time.sleep(0.01)
    assert verify(store, SCOPE).ok
    fresh = Catalog(store)
    assert tables_at(fresh, fresh.version) == [f"ns.t{i:03d}" for i in range(60)]
    assert floor_version(store, KEYS, "catalog") > 1


def _writer(url: str, count: int) -> None:
    cat = Catalog(open_store(url))
    for i in range(count):
        cat.create_table("ns", f"p{i:03d}", COLS)


def _collector(url: str, keep: int, rounds: int) -> None:
    store = open_store(url)
    for _ in range(rounds):
        collect_garbage(
            store, SCOPE, grace_seconds=0.5, retention=RetentionPolicy(keep_versions=keep)
        )


def test_processes_commit_expire_and_collect_at_once(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    Catalog(open_store(url)).create_namespace("ns")
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_writer, args=(url, 40)),
        ctx.Process(target=_collector, args=(url, 2, 25)),
        ctx.Process(target=_collector, args=(url, 7, 25)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
        assert p.exitcode == 0
    store = open_store(url)
    assert verify(store, SCOPE).ok
    cat = Catalog(store)
    assert tables_at(cat, cat.version) == [f"ns.p{i:03d}" for i in range(40)]
    oldest = floor_version(store, KEYS, "catalog")
    for version in range(oldest, cat.version + 1):
        cat.at_version(version)  # every retained version still reads


# ------------------------------------------------------------------ property
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("commit"), st.integers(1, 4)),
            st.tuples(st.just("expire"), st.integers(1, 8)),
            st.tuples(st.just("gc"), st.integers(1, 8)),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_mix_of_commits_expiry_and_gc_keeps_retained_history(
    steps: list[tuple[str, int]],
) -> None:
    store = memory_store()
    cat = Catalog(store)
    cat.create_namespace("ns")
    expected: dict[int, Any] = {1: []}
    floors = [1]
    n = 0
    for op, arg in steps:
        if op == "commit":
            expected.update(commit_tables(cat, n, arg))
            n += arg
        elif op == "expire":
            expire_history(store, SCOPE, "catalog", RetentionPolicy(keep_versions=arg))
        else:
            collect_garbage(
                store, SCOPE, grace_seconds=0, retention=RetentionPolicy(keep_versions=arg)
            )
            assert catalog_keys(store) == referenced_keys(store)
        floors.append(check_history(store, expected))
    assert floors == sorted(floors)  # the floor only moves up


# ------------------------------------------------------------------ CLI
def test_cli_gc_expires_history(tmp_path: Path) -> None:
    runner = CliRunner()
    store_url = f"file://{tmp_path}/store"
    base = ["--store", store_url]
    cat = Catalog(open_store(store_url))
    cat.create_namespace("ns")
    commit_tables(cat, 0, 8)
    got = runner.invoke(app, [*base, "gc", "--grace", "0", "--keep-versions", "3", "--dry-run"])
    assert got.exit_code == 0, got.output
    assert "would expire catalog versions 1-6; history now starts at version 7 (head 9)" in (
        got.output
    )
    assert floor_version(open_store(store_url), KEYS, "catalog") == 1
    got = runner.invoke(app, [*base, "gc", "--grace", "0", "--keep-versions", "3"])
    assert got.exit_code == 0, got.output
    assert "expired catalog versions 1-6" in got.output
    log = runner.invoke(app, [*base, "log", "-n", "50"])
    assert log.exit_code == 0
    assert "Versions before 7 were expired by retention" in log.output
    short = runner.invoke(app, [*base, "log", "-n", "2"])  # cut by the limit, not the floor
    assert "expired" not in short.output
    assert runner.invoke(app, [*base, "verify"]).exit_code == 0
    bad = runner.invoke(app, [*base, "gc", "--keep-versions", "0"])
    assert bad.exit_code == 2
    assert "--keep-versions" in bad.output
