"""A head reader decodes a manifest without its operation record (issue #12)."""

from __future__ import annotations

import json

import pytest

from arco.catalog.catalog import Catalog
from arco.core.errors import IntegrityError
from arco.domain.manifest import FileEntry, Manifest, ParentRef

TRICKY_OPS = [
    {"op": "create_table", "name": "a.b"},
    # Keys that also name top-level members, nested inside the operation:
    {"op": "iceberg_commit", "operation": "append", "parent": {"path": "x", "sha256": "y"}},
    {"op": "note", "text": ',"parent":{"path":"p"},"version":1,"writer":"w"} \u00e9\u6f22 "q"'},
]


def _manifest(operation: dict[str, object], meta: dict[str, object]) -> Manifest:
    return Manifest(
        domain="catalog",
        version=7,
        commit_id="c",
        committed_at="2026-01-01T00:00:00+00:00",
        fencing_token=3,
        writer='host:1:"w",\u00e9',
        parent=ParentRef("p/6.json", "ab" * 32),
        files=(FileEntry("s/f.parquet", "tables", "delta", 0, 7, 7, "cd" * 32, 10, 1),),
        operation=operation,
        meta=meta,
        actor="someone",
    )


@pytest.mark.parametrize(
    ("operation", "meta"),
    [
        ({"ops": TRICKY_OPS}, {}),
        ({"ops": TRICKY_OPS}, {"operation": {"parent": 1}, "x": ',"parent":'}),
        ({}, {}),
        ({"ops": [{"op": "compact", "from": 1, "to": 2}]}, {"watermark": [1, 2]}),
    ],
)
def test_a_lazy_decode_gives_the_same_manifest(
    operation: dict[str, object], meta: dict[str, object]
) -> None:
    data = _manifest(operation, meta).to_bytes()
    eager = Manifest.from_bytes(data)
    lazy = Manifest.from_bytes(data, lazy_operation=True)
    assert type(lazy) is not Manifest  # the operation really was left as text
    assert lazy.__dict__["_operation"] == json.dumps(
        operation, sort_keys=True, separators=(",", ":")
    )
    assert lazy == eager
    assert eager == lazy
    assert lazy.operation == operation
    assert lazy.meta == meta
    assert lazy.parent == ParentRef("p/6.json", "ab" * 32)
    assert lazy.writer == 'host:1:"w",\u00e9'
    assert lazy.to_bytes() == data


def test_another_layout_is_decoded_whole() -> None:
    raw = json.loads(_manifest({"ops": TRICKY_OPS}, {}).to_bytes())
    spaced = json.dumps(raw, indent=1).encode()  # not the writer's layout
    lazy = Manifest.from_bytes(spaced, lazy_operation=True)
    assert lazy.operation == {"ops": TRICKY_OPS}
    reordered = json.dumps({"operation": raw.pop("operation"), **raw}).encode()
    assert Manifest.from_bytes(reordered, lazy_operation=True).operation == {"ops": TRICKY_OPS}
    with pytest.raises(IntegrityError):
        Manifest.from_bytes(
            b'{"format":"arco.manifest/1","operation":{},"parent":null', lazy_operation=True
        )


def test_a_cold_reader_of_a_bulk_commit_does_not_decode_its_operation() -> None:
    cat = Catalog("memory://")
    cat.create_namespace("a")
    with cat.transaction() as tx:
        for i in range(50):
            tx.create_table("a", f"t{i}", ["x:int64"])
    cold = Catalog(cat.store)
    assert cold.get_table("a", "t7").name == "t7"
    head = cold.domain.read_head().manifest
    assert head is not None
    assert isinstance(head.__dict__.get("_operation"), str)  # still text
    assert [op["name"] for op in head.operation["ops"]][:2] == ["a.t0", "a.t1"]
    history = [
        op["name"] for _, m in Catalog(cat.store).domain.history(1) for op in m.operation["ops"]
    ]
    assert len(history) == 50


def test_a_member_out_of_the_writers_order_is_not_swallowed() -> None:
    raw = json.loads(_manifest({"ops": TRICKY_OPS}, {"w": [1]}).to_bytes())
    meta = raw.pop("meta")
    # meta after operation, compact: skipping to ',"parent":' would swallow it.
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    at = text.rfind(',"parent":')
    moved = text[:at] + ',"meta":' + json.dumps(meta) + text[at:]
    lazy = Manifest.from_bytes(moved.encode(), lazy_operation=True)
    assert lazy.meta == {"w": [1]}
    assert lazy.operation == {"ops": TRICKY_OPS}


def _reference_bytes(m: Manifest) -> bytes:
    """The manifest encoding as one ``json.dumps`` of the whole record."""
    files = []
    for f in m.files:
        entry = {k: getattr(f, k) for k in FileEntry.__dataclass_fields__}
        if entry["index"] is None:
            del entry["index"]
        files.append(entry)
    raw = {
        "format": "arco.manifest/1",
        "domain": m.domain,
        "version": m.version,
        "commit_id": m.commit_id,
        "committed_at": m.committed_at,
        "fencing_token": m.fencing_token,
        "writer": m.writer,
        "actor": m.actor,
        "parent": {"path": m.parent.path, "sha256": m.parent.sha256} if m.parent else None,
        "files": files,
        "operation": m.operation,
        "meta": m.meta,
    }
    return json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("operation", [{"ops": TRICKY_OPS}, {}])
def test_the_encoding_is_one_json_dumps_of_the_record(operation: dict[str, object]) -> None:
    indexed = FileEntry(
        "s/g.parquet",
        "tables",
        "delta",
        1,
        2,
        9,
        "ef" * 32,
        99,
        8,
        index={"kind": "key-ranges", "format": 1, "key_range": [["\u00e9"], ["z"]]},
    )
    m = _manifest(operation, {"z": 1.5, "a": [None, True, {"y": "\u6f22", "b": 2}]})
    for manifest in (
        m,
        Manifest(**{**m.__dict__, "files": (*m.files, indexed), "actor": None, "parent": None}),
    ):
        assert manifest.to_bytes() == _reference_bytes(manifest)
        assert manifest.to_bytes() == manifest.to_bytes()  # entries' cached text reused
        assert Manifest.from_bytes(manifest.to_bytes()) == manifest


def test_a_catalogs_manifests_are_one_json_dumps_of_their_record() -> None:
    cat = Catalog("memory://")
    cat.create_namespace("ns")
    for i in range(20):  # deltas of several levels, and their key-range indexes
        cat.create_table("ns", f"t{i}", ["a:int64"])
    for key, manifest in cat.domain.history(limit=25):
        data, _ = cat.store.get(key)
        assert data == _reference_bytes(manifest) == manifest.to_bytes()
