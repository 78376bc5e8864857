"""The background audit writer: group commit, its flush interval, what it refuses."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from arco.core.scope import Scope
from arco.core.storage import ObjectStore, open_store
from arco.governance.audit import AuditRecord, AuditWriter, read_audit
from arco.ledger.events import REGISTRY, InvalidEventError
from arco.ledger.log import Ledger


def _record(i: int, tenant: str = "acme", **changes: Any) -> AuditRecord:
    fields: dict[str, Any] = {
        "action": "POST /api/v1/lineage",
        "outcome": "ok",
        "actor": f"user{i}",
        "tenant": tenant,
        "workspace": "main",
        "request_id": f"req-{i}",
        "target": "/api/v1/lineage",
        "status": 201,
        "roles": ("writer",),
        "duration_ms": 0.5,
    }
    fields.update(changes)
    return AuditRecord(**fields)


def _objects(store: ObjectStore, tenant: str = "acme") -> int:
    return sum(1 for _ in Ledger(store, Scope(tenant, "main")).list_objects("audit"))


def test_a_stream_of_records_shares_objects_and_each_is_written_once() -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    writer = AuditWriter(store, min_interval=0.05)
    try:
        for i in range(200):
            writer.record(_record(i, tenant="acme" if i % 4 else "globex"))
            time.sleep(0.0005)
        assert writer.flush(10)
    finally:
        writer.close()
    acme = read_audit(store, Scope("acme", "main"))
    globex = read_audit(store, Scope("globex", "main"))
    assert sorted(r["request_id"] for r in acme + globex) == sorted(f"req-{i}" for i in range(200))
    assert {r["actor"] for r in globex} == {f"user{i}" for i in range(0, 200, 4)}
    # ~0.1 s of records, at most one object per scope every 50 ms (not one per record).
    assert _objects(store, "acme") + _objects(store, "globex") <= 2 * 10


def test_a_record_after_a_quiet_period_is_written_at_once() -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    writer = AuditWriter(store, min_interval=30.0)
    try:
        writer.record(_record(1))
        deadline = time.monotonic() + 10
        while _objects(store) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _objects(store) == 1
        # The next one, within the interval, waits for it (or for a flush).
        writer.record(_record(2))
        time.sleep(0.2)
        assert _objects(store) == 1
        started = time.monotonic()
        assert writer.flush(10)
        assert time.monotonic() - started < 5
        assert _objects(store) == 2
    finally:
        writer.close()


def test_close_writes_what_is_queued() -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    writer = AuditWriter(store, min_interval=30.0)
    for i in range(5):
        writer.record(_record(i))
    writer.close()
    assert len(read_audit(store, Scope("acme", "main"))) == 5


def test_an_invalid_record_fails_in_the_callers_thread() -> None:
    writer = AuditWriter(open_store(f"memory://{uuid.uuid4().hex}"))
    try:
        with pytest.raises(InvalidEventError):
            writer.record(_record(1, outcome="maybe"))
        with pytest.raises(InvalidEventError, match="bytes"):
            writer.record(_record(2, detail={f"k{i}": "x" * 10_000 for i in range(30)}))
    finally:
        writer.close()


def test_a_deep_audit_payload_is_refused_without_the_depth_walk() -> None:
    # audit.recorded skips the registry's depth walk (FIXED_DEPTH): its shape must
    # refuse a nested value anywhere as a typed error.
    payload = _record(1).payload()
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    for field in ("detail", "roles", "target", "action"):
        bad = {**payload, field: deep if field != "detail" else {"k": deep}}
        with pytest.raises(InvalidEventError, match=f"at {field}"):
            REGISTRY.validate("audit", "audit.recorded", 1, bad)
