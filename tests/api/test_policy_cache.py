"""Tenant policy answered on the event loop when it is cached, in the thread pool otherwise.

A write or ingest request whose policy (workspace status, quotas, storage measure,
ingest allowance slice) is at hand must not hop to the thread pool; anything that
needs the store must.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from arco.api import deps
from arco.api.auth import Principal
from arco.api.governance import Governance
from arco.core.storage import open_store
from arco.governance import tenants

from .conftest import Tokens, in_process_client, make_app

WHO = Principal("alice", "acme", "main", ("writer",))
URL = "/api/v1/lineage"


def _event(i: int) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": f"2026-03-01T12:00:{i % 60:02d}Z",
        "producer": "https://example.test/policy",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.UUID(int=i + 1))},
        "job": {"namespace": "ns", "name": "job"},
    }


def test_ready_only_with_every_policy_read_cached_and_fresh() -> None:
    clock = [0.0]
    store = open_store(f"memory://{uuid.uuid4().hex}")
    gov = Governance(store, ttl=10.0)
    gov_clock = pytest.MonkeyPatch()
    gov_clock.setattr("arco.api.governance.time.monotonic", lambda: clock[0])
    try:
        assert not gov.ready(WHO, "ingest")
        gov.check_workspace(WHO)
        assert not gov.ready(WHO, "ingest")  # quotas not read yet
        gov.take_ingest("acme")
        gov.check_storage("acme")
        assert gov.ready(WHO, "ingest")
        assert gov.ready(WHO, None)
        clock[0] = 10.5  # past the TTL: read the store again
        assert not gov.ready(WHO, "ingest")
        assert not gov.ready(WHO, None)
    finally:
        gov_clock.undo()


def test_ready_needs_the_storage_measure_when_a_storage_quota_is_set() -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    tenants.set_quotas(store, "acme", {"storage_bytes": 10**9})
    gov = Governance(store)
    gov.check_workspace(WHO)
    gov.quotas("acme")
    assert gov.ready(WHO, None)  # a read does not check storage
    assert not gov.ready(WHO, "write")
    gov.check_storage("acme")
    assert gov.ready(WHO, "write")


def test_ready_needs_an_ingest_allowance_slice_in_hand() -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    # 40 a minute: slices of 1 (at most MAX_SLICES slices), so every take claims one.
    tenants.set_quotas(store, "acme", {"ingest_per_minute": 40})
    gov = Governance(store)
    gov.check_workspace(WHO)
    gov.check_storage("acme")
    assert not gov.ready(WHO, "ingest")  # no slice claimed yet
    assert gov.ready(WHO, "write")
    size = max(1, -(-40 // tenants.MAX_SLICES))
    gov.take_ingest("acme")  # claims a slice of ``size`` (a store write)
    assert gov.ready(WHO, "ingest") == (size > 1)
    for _ in range(size - 1):
        gov.take_ingest("acme")
    assert not gov.ready(WHO, "ingest")  # the slice is spent: the next take claims one


def test_minute_allowance_local_is_false_in_a_new_minute() -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    now = [60.0 * 1_000_000]
    allowance = tenants.MinuteAllowance(store, "acme", "ingest_per_minute", clock=lambda: now[0])
    assert not allowance.local(1000)
    allowance.take(1000)
    assert allowance.local(1000)
    assert not allowance.local(500)  # another limit: another window
    now[0] += 60
    assert not allowance.local(1000)


def test_ingest_with_cached_policy_makes_no_thread_pool_hop(
    tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops: list[str] = []
    real = deps.run_in_threadpool

    async def counted(func: Any, *args: Any) -> Any:
        hops.append(getattr(func, "__name__", "?"))
        return await real(func, *args)

    monkeypatch.setattr(deps, "run_in_threadpool", counted)
    app = make_app()
    writer = tokens.headers(roles=["writer"])
    with in_process_client(app) as client:
        assert client.post(URL, json=_event(1), headers=writer).status_code == 201
        assert hops == ["apply"]  # the first request reads the policy from the store
        for i in range(2, 5):
            assert client.post(URL, json=_event(i), headers=writer).status_code == 201
        assert hops == ["apply"]
        # With an ingest quota, the allowance slice is claimed in the thread pool.
        app.state.governance.forget("acme")
        tenants.set_quotas(app.state.store, "acme", {"ingest_per_minute": 10_000})
        assert client.post(URL, json=_event(5), headers=writer).status_code == 201
        assert hops == ["apply", "apply"]
        assert client.post(URL, json=_event(6), headers=writer).status_code == 201
        assert hops == ["apply", "apply"]  # the slice claimed holds more than one
