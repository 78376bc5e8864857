"""Deltas carry the ranges of their keys; a point read skips the deltas outside them (ADR 015)."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from test_pointread import _check_same

from arco.catalog.catalog import Catalog
from arco.catalog.state import TABLES, CatalogState
from arco.core.errors import NotFoundError
from arco.core.storage import open_store
from arco.domain import tableset
from arco.domain.manifest import FileEntry
from arco.domain.verify import index_problem, verify


def _deltas(cat: Catalog) -> list[FileEntry]:
    files = cat.snapshot().manifest.files  # type: ignore[union-attr]
    return [f for f in files if f.table == "tables" and f.kind == "delta"]


def _bulk_catalog() -> tuple[Catalog, object]:
    store = open_store("memory://")
    cat = Catalog(store)
    cat.create_namespace("a")
    with cat.transaction() as tx:  # a base
        for i in range(tableset.BASE_MIN_DELTA_ROWS + 1):
            tx.create_table("a", f"b{i:05d}", ["x:int64"])
    with cat.transaction() as tx:  # a bulk delta of names m0000..m0299
        for i in range(300):
            tx.create_table("a", f"m{i:04d}", ["x:int64"])
    return cat, store


def test_every_delta_records_its_key_ranges_and_verify_checks_them() -> None:
    cat, store = _bulk_catalog()
    cat.rename_table("a", "b00007", "z-renamed")  # an old id, a name after every other
    for entry in _deltas(cat):
        index = entry.index
        assert index is not None
        assert index["kind"] == tableset.DELTA_INDEX
        table = tableset.decode(store.get(entry.path)[0])  # type: ignore[attr-defined]
        sorts = sorted(
            zip(
                table.column("namespace").to_pylist(), table.column("name").to_pylist(), strict=True
            )
        )
        ids = sorted(table.column("id").to_pylist())
        assert index["sort_range"] == [list(sorts[0]), list(sorts[-1])]
        assert index["key_range"] == [[ids[0]], [ids[-1]]]
        data = store.get(entry.path)[0]  # type: ignore[attr-defined]
        assert index_problem(index, data) is None
        narrowed = {**index, "sort_range": [index["sort_range"][0], ["a", ""]]}
        if sorts[-1] > ("a", ""):
            assert "outside the index's key ranges" in str(index_problem(narrowed, data))
        assert index_problem({**index, "key_range": "x"}, data) == "index: malformed"
    assert verify(store, cat.scope).ok  # type: ignore[arg-type]


def test_a_point_read_fetches_only_the_deltas_that_may_hold_the_key() -> None:
    cat, store = _bulk_catalog()
    cat.rename_table("a", "b00007", "z-renamed")
    bulk, rename = _deltas(cat)
    fetched: list[str] = []
    inner_get = store.get  # type: ignore[attr-defined]

    def get(key: str) -> tuple[bytes, str]:
        fetched.append(key)
        return inner_get(key)  # type: ignore[no-any-return]

    store.get = get  # type: ignore[attr-defined]

    def deltas_read(name: str) -> set[str]:
        fetched.clear()
        with contextlib.suppress(NotFoundError):
            Catalog(store).get_table("a", name)  # type: ignore[arg-type]
        return {p for p in fetched if p in (bulk.path, rename.path)}

    assert deltas_read("b01000") == set()  # in the base, untouched: no delta read
    assert deltas_read("m0100") == {bulk.path}  # the bulk delta's range; the rename's ids not
    # The renamed table's old name is in the base, its id in the rename's range: superseded.
    assert deltas_read("b00007") == {rename.path}
    with pytest.raises(NotFoundError):
        Catalog(store).get_table("a", "b00007")  # type: ignore[arg-type]
    assert Catalog(store).get_table("a", "z-renamed").id == cat.get_table("a", "z-renamed").id  # type: ignore[arg-type]


def test_deltas_written_without_ranges_are_read_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store("memory://")
    monkeypatch.setitem(
        CatalogState.TABLES, "tables", dataclasses.replace(TABLES, delta_ranges=False)
    )
    cat = Catalog(store)
    for ns in ("a", "b", "a.x"):
        cat.create_namespace(ns)
    names = set()
    with cat.transaction() as tx:
        for i in range(tableset.BASE_MIN_DELTA_ROWS + 1):
            tx.create_table("a", f"b{i:05d}", ["x:int64"])
            names.add(("a", f"b{i:05d}"))
    cat.rename_table("a", "b00007", "z-renamed")
    cat.drop_table("a", "b00009")
    cat.create_table("a", "new", ["x:int64"])
    assert all(d.index is None for d in _deltas(cat))
    monkeypatch.setitem(CatalogState.TABLES, "tables", TABLES)
    cat.create_table("a", "newer", ["x:int64"])  # deltas with and without ranges
    assert [d.index is None for d in _deltas(cat)] == [True, True, True, False]
    names |= {("a", "z-renamed"), ("a", "new"), ("a", "newer")}
    _check_same(store, Catalog(store), names)
    assert verify(store, cat.scope).ok
