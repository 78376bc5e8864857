"""GC of stored asset values: only values no materialization names, compacted or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from arco.cli.main import app
from arco.core import Keys, ObjectStore, open_store
from arco.core.ids import new_ulid
from arco.ledger.compactor import Compactor
from arco.ledger.log import Ledger
from arco.maintenance.gc import collect_asset_outputs

from ._support import SCOPE, memory_store

KEYS = Keys(SCOPE)
MAT = "materialization.recorded"
LATER = datetime.now(UTC) + timedelta(hours=2)  # every value written now is an hour past grace


def value(store: ObjectStore, asset: str = "w.orders", partition: str | None = None) -> str:
    key = KEYS.asset_output(asset, partition, new_ulid(), "parquet")
    store.put(key, b"PAR1 not really parquet PAR1", "create")
    return key


def record(store: ObjectStore, key: str, asset: str = "w.orders") -> None:
    Ledger(store, SCOPE).append("executions", MAT, {"asset": asset, "location": key})


def seeded() -> tuple[ObjectStore, dict[str, str]]:
    store = memory_store()
    keys = {
        "compacted": value(store),
        "pending": value(store),
        "orphan": value(store),
        "orphan_partition": value(store, partition="abc123"),
        "other_asset": value(store, asset="w.customers"),
    }
    record(store, keys["compacted"])
    record(store, keys["other_asset"], asset="w.customers")
    Compactor(store, SCOPE).compact("executions")
    record(store, keys["pending"])  # recorded, not compacted yet
    return store, keys


def assets(store: ObjectStore) -> set[str]:
    return {m.key for m in store.list(f"{KEYS.root}assets/")}


def test_only_unreferenced_values_past_grace_are_deleted() -> None:
    store, keys = seeded()
    dry = collect_asset_outputs(store, SCOPE, grace_seconds=3600, dry_run=True, now=LATER)
    assert dry.deleted == sorted([keys["orphan"], keys["orphan_partition"]])
    assert assets(store) == set(keys.values())  # a dry run deletes nothing
    report = collect_asset_outputs(store, SCOPE, grace_seconds=3600, now=LATER)
    assert report.deleted == dry.deleted
    assert report.kept == 3
    assert report.bytes_freed == 2 * len(b"PAR1 not really parquet PAR1")
    assert assets(store) == {keys["compacted"], keys["pending"], keys["other_asset"]}
    # Once compacted, the pending one is still referenced; nothing else goes.
    Compactor(store, SCOPE).compact("executions")
    assert collect_asset_outputs(store, SCOPE, grace_seconds=3600, now=LATER).deleted == []


def test_young_values_are_kept_whatever_references_them() -> None:
    store, keys = seeded()
    report = collect_asset_outputs(store, SCOPE, grace_seconds=3 * 3600, now=LATER)
    assert report.deleted == []
    assert assets(store) == set(keys.values())


def test_without_outputs_or_events_nothing_happens() -> None:
    store = memory_store()
    report = collect_asset_outputs(store, SCOPE, grace_seconds=0)
    assert (report.deleted, report.kept) == ([], 0)
    orphan = value(store)
    # No executions domain at all: an unnamed value past grace is an orphan.
    assert collect_asset_outputs(store, SCOPE, grace_seconds=0, now=LATER).deleted == [orphan]


def test_cli_gc_assets(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    store = open_store(url)
    kept = value(store)
    record(store, kept)
    Compactor(store, SCOPE).compact("executions")
    orphan = value(store)
    runner = CliRunner()
    base = ["--store", url, "--tenant", SCOPE.tenant, "--workspace", SCOPE.workspace]
    got = runner.invoke(app, [*base, "gc", "--grace", "0", "--assets"])
    assert got.exit_code == 0, got.output
    assert f"deleted {orphan}" in got.output
    assert "Deleted 1 unreferenced asset values" in got.output
    assert assets(store) == {kept}
    plain = runner.invoke(app, [*base, "--json", "gc", "--grace", "0"])
    assert '"assets": null' in plain.output  # not asked for: not touched
