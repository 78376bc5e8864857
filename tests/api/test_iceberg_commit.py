"""Iceberg commits with the short critical section (ADR 014), in process.

The next metadata file is written before the catalog lease; under the lease the
commit only checks the table still has the base it was applied to. These tests
force the interleaving the lease must catch: another commit lands between the
early write and the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pyiceberg.schema import Schema
from pyiceberg.table.update import AssertTableUUID, SetPropertiesUpdate, TableRequirement
from pyiceberg.types import LongType, NestedField

from arco.catalog import Catalog
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.iceberg.metadata import CommitRejectedError, Warehouse
from arco.iceberg.service import IcebergCatalog, TableChange

SCHEMA = Schema(NestedField(1, "id", LongType(), required=False))


class Interleaved(IcebergCatalog):
    """Runs ``between`` after the early apply-and-write, before the lease."""

    between: Any = None

    def _prepare(self, changes: Sequence[TableChange]) -> Any:
        prepared = super()._prepare(changes)
        step, self.between = self.between, None
        if step is not None:
            step()
        return prepared


def make(url: str) -> Interleaved:
    store = open_store(url)
    scope = Scope("acme", "lake")
    svc = Interleaved(Catalog(store, scope), store, Warehouse(store.url, Keys(scope)))
    svc.create_namespace(["s"], {})
    svc.create_table(
        ["s"],
        "t",
        SCHEMA,
        location=None,
        partition_spec=None,
        sort_order=None,
        properties={},
        stage=False,
    )
    return svc


def change(key: str, value: str, *requirements: TableRequirement) -> TableChange:
    return TableChange(("s",), "t", requirements, (SetPropertiesUpdate(updates={key: value}),))


def test_an_uncontended_commit_publishes_the_file_written_before_the_lease() -> None:
    svc = make("memory://early")
    written: list[tuple[str, bool]] = []
    original = svc._write_metadata

    def spy(metadata: Any, previous: str | None) -> tuple[str, bytes]:
        location, raw = original(metadata, previous)
        # The domain's commit mutex is held exactly while this process holds the lease.
        written.append((location, svc.catalog.domain._commit_mutex.locked()))
        return location, raw

    svc._write_metadata = spy  # type: ignore[method-assign]
    (loaded,) = svc.commit([change("a", "1")])
    # One file, written outside the critical section, and that is the one published.
    assert written == [(loaded.metadata_location, False)]
    assert svc.load_table(["s"], "t").metadata.properties["a"] == "1"


def test_a_commit_whose_base_moved_is_redone_under_the_lease_without_losing_either() -> None:
    svc = make("memory://moved")
    svc.between = lambda: svc.commit([change("b", "2")])
    (loaded,) = svc.commit([change("a", "1")])
    props = svc.load_table(["s"], "t").metadata.properties
    assert (props["a"], props["b"]) == ("1", "2")  # no lost update
    assert loaded.metadata_location == svc.load_table(["s"], "t").metadata_location
    log = [e.metadata_file for e in loaded.metadata.metadata_log]
    assert len(log) == 2  # create, the interleaved commit, then this one


def test_requirements_are_checked_again_on_the_moved_base() -> None:
    svc = make("memory://recheck")
    uuid = svc.load_table(["s"], "t").metadata.table_uuid
    before = svc.load_table(["s"], "t").metadata_location

    def replace_table() -> None:
        # Drop and register-over: same name, another table uuid.
        svc.drop_table(["s"], "t", purge=False)
        svc.create_table(
            ["s"],
            "t",
            SCHEMA,
            location=None,
            partition_spec=None,
            sort_order=None,
            properties={},
            stage=False,
        )

    svc.between = replace_table
    with pytest.raises(CommitRejectedError):
        svc.commit([change("a", "1", AssertTableUUID(uuid=uuid))])
    assert svc.load_table(["s"], "t").metadata_location != before
    assert "a" not in svc.load_table(["s"], "t").metadata.properties
