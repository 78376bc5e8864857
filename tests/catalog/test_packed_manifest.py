"""A manifest keeps a base's index as columns and a large operation record compressed
(ADR 030), and reads back exactly what was written, in either layout."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arco.catalog import pointread
from arco.catalog.catalog import Catalog
from arco.core.errors import IntegrityError
from arco.core.ids import sha256_hex
from arco.core.storage import open_store
from arco.domain import packed
from arco.domain.manifest import Manifest
from arco.domain.verify import verify

HEX = st.binary(min_size=32, max_size=32).map(bytes.hex)
INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
KEYS = st.lists(st.one_of(st.text(), st.integers(min_value=-(2**53), max_value=2**53)), max_size=3)


@pytest.fixture(autouse=True)
def _cold_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pointread, "_GROUPS", pointread._GroupCache(pointread.GROUP_CACHE_SIZE))
    monkeypatch.setattr(pointread, "_OWN_FOOTERS", pointread._GroupCache(16))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(KEYS, KEYS, INTS, INTS, HEX, INTS).map(list), max_size=40))
def test_packed_rows_read_back_as_the_rows_they_pack(rows: list[list[Any]]) -> None:
    table = packed.PackedRows.of_rows("jjiihi", rows)
    # Through JSON text, as a manifest stores it.
    back = packed.PackedRows.from_json(json.loads(json.dumps(table.to_json())), "jjiihi")
    assert list(back) == rows
    assert back == rows
    assert len(back) == len(rows)
    assert [back[i] for i in range(-len(rows), 0)] == rows
    assert back[1:-1:2] == rows[1:-1:2]
    assert list(back.column(0)) == [r[0] for r in rows]
    assert list(back.column(4)) == [r[4] for r in rows]
    assert packed.key_bounds(back) == ([r[0] for r in rows], [r[1] for r in rows])
    with pytest.raises(IndexError):
        back[len(rows)]


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw.update(rows=raw["rows"] + 1),
        lambda raw: raw.update(rows=-1),
        lambda raw: raw.update(packed="iihi"),
        lambda raw: raw["columns"].pop(),
        lambda raw: raw["columns"].__setitem__(2, raw["columns"][2][:-4]),
        lambda raw: raw["columns"].__setitem__(2, "!!" + raw["columns"][2][2:]),
        lambda raw: raw["columns"].__setitem__(4, raw["columns"][4][:-2]),
        lambda raw: raw["columns"].__setitem__(4, 7),
        lambda raw: raw["columns"].__setitem__(0, raw["columns"][0][:-1]),
    ],
)
def test_a_damaged_packed_index_refuses_the_manifest(damage: Any) -> None:
    store, cat = _bulk_catalog(2500)
    key, data = _head_manifest(store, cat)
    raw = json.loads(data)
    base = next(f for f in raw["files"] if f["kind"] == "base" and f["table"] == "tables")
    damage(base["index"]["groups"])
    with pytest.raises(IntegrityError, match="malformed manifest"):
        Manifest.from_bytes(json.dumps(raw).encode(), key=key)


def test_rows_that_do_not_fit_the_layout_are_written_as_rows() -> None:
    index = {"format": 1, "groups": [[["a"], ["b"], 0, 5, "AB" * 32, 3]], "footer": [5, 9, "c"]}
    written = packed.pack_index(index)
    assert written["groups"] == index["groups"]  # capitals: not this code's hashes
    assert packed.unpack_index(written) == index


def _bulk_catalog(tables: int) -> tuple[Any, Catalog]:
    store = open_store("memory://")
    cat = Catalog(store)
    cat.create_namespace("a")
    with cat.transaction() as tx:
        for i in range(tables):
            tx.create_table("a", f"t{i:05d}", ["x:int64"], description=f"d{i}")
    return store, cat


def _head_manifest(store: Any, cat: Catalog) -> tuple[str, bytes]:
    head = cat.domain.read_head(0)
    assert head.manifest_key is not None
    data, _ = store.get(head.manifest_key)
    return head.manifest_key, data


def test_a_bulk_commit_writes_a_small_manifest_that_reads_back_whole() -> None:
    store, cat = _bulk_catalog(3000)
    key, data = _head_manifest(store, cat)
    raw = json.loads(data)
    # 3,000 creates are ~130 KB of operation record and 6 row groups of index.
    assert set(raw["operation"]) == {packed.PACKED_OPERATION}
    base = next(f for f in raw["files"] if f["kind"] == "base" and f["table"] == "tables")
    assert base["index"]["groups"]["packed"] == "jjiihi"
    assert base["index"]["group_footers"]["packed"] == "iihi"
    assert len(data) < 20_000

    for lazy in (False, True):
        manifest = Manifest.from_bytes(data, key=key, lazy_operation=lazy)
        ops = manifest.operation["ops"]
        assert len(ops) == 3000  # every table, in order
        assert ops[0] == {"op": "create_table", "name": "a.t00000"}
        assert ops[-1] == {"op": "create_table", "name": "a.t02999"}
        assert manifest.to_bytes() == data  # re-encoded byte for byte
    # The readers' view of the index is the writer's, entry for entry.
    written = cat.domain.read_head(0).manifest
    assert written is not None
    cold = Catalog(store).domain.read_head(0).manifest
    assert cold is not None
    for mine, theirs in zip(written.files, cold.files, strict=True):
        assert dataclasses.asdict(mine) == dataclasses.asdict(theirs) or mine == theirs
        assert mine.index == theirs.index
    assert Catalog(store).get_table("a", "t02999").description == "d2999"
    page = Catalog(store).list_tables("a", page_size=5000)
    assert [t.name for t in page.items][-1] == "t02999"
    report = verify(store, cat.scope)
    assert report.ok, [p.message for p in report.problems]


def test_a_damaged_compressed_operation_is_refused_when_read() -> None:
    store, cat = _bulk_catalog(600)
    key, data = _head_manifest(store, cat)
    raw = json.loads(data)
    blob = raw["operation"][packed.PACKED_OPERATION]
    raw["operation"][packed.PACKED_OPERATION] = blob[:40] + blob[48:]
    damaged = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    # A reader of the head does not decode the operation; one that does is refused.
    lazy = Manifest.from_bytes(damaged, key=key, lazy_operation=True)
    with pytest.raises(IntegrityError, match="operation"):
        _ = lazy.operation
    with pytest.raises(IntegrityError, match="malformed manifest"):
        Manifest.from_bytes(damaged, key=key)


def test_a_small_operation_stays_readable_and_a_lookalike_is_compressed() -> None:
    store, cat = _bulk_catalog(3)
    _, data = _head_manifest(store, cat)
    assert json.loads(data)["operation"]["ops"][0] == {"op": "create_table", "name": "a.t00000"}
    lookalike = {packed.PACKED_OPERATION: "eJwDAAAAAAE="}
    text = packed.pack_operation(json.dumps(lookalike, separators=(",", ":")))
    assert json.loads(text) != lookalike
    assert packed.unpack_operation(json.loads(text)) == lookalike


def test_a_manifest_in_the_row_layout_reads_as_before() -> None:
    """A catalog written before ADR 030: the same reads, verify included."""
    store, cat = _bulk_catalog(2500)
    key, data = _head_manifest(store, cat)
    manifest = Manifest.from_bytes(data, key=key)
    raw = json.loads(data)
    for entry, record in zip(manifest.files, raw["files"], strict=True):
        if entry.index is not None:
            record["index"] = {
                k: [list(r) for r in v] if k in packed.INDEX_LAYOUTS else v
                for k, v in entry.index.items()
            }
    raw["operation"] = manifest.operation
    old = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    assert b'"packed"' not in old
    assert len(old) > 3 * len(data)
    head = cat.domain.read_head(0)
    assert head.pointer is not None
    store.put(key, old)  # the same manifest, written the old way
    pointer = json.loads(store.get(_pointer_key(cat))[0])
    pointer["manifest_sha256"] = sha256_hex(old)
    store.put(_pointer_key(cat), json.dumps(pointer).encode())
    old_manifest = Catalog(store).domain.read_head(0).manifest
    assert old_manifest is not None
    base = next(f for f in old_manifest.files if f.kind == "base" and f.table == "tables")
    assert isinstance(base.index, dict)
    assert isinstance(base.index["groups"], list)
    assert (
        base.index["groups"]
        == next(f for f in manifest.files if f.kind == "base" and f.table == "tables").index[
            "groups"
        ]
    )  # type: ignore[index]
    assert Catalog(store).get_table("a", "t01234").description == "d1234"
    assert len(Catalog(store).list_tables("a", page_size=5000).items) == 2500
    report = verify(store, cat.scope)
    assert report.ok, [p.message for p in report.problems]


def _pointer_key(cat: Catalog) -> str:
    return cat.domain.keys.pointer(cat.domain.domain)
