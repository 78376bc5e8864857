"""Audit trail, tenant administration and quotas through the API (issue #16)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from fastapi import FastAPI

from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.governance import tenants
from arco.governance.audit import read_audit
from arco.ledger.compactor import Compactor
from arco.sql.engine import run_query
from arco.sql.tables import SystemTables

from .conftest import SECRET, Tokens, in_process_client, make_app

API = "/api/v1"


def _client(app: FastAPI) -> Any:
    return in_process_client(app)


def _flush(app: FastAPI) -> None:
    assert app.state.audit.flush(10)


def test_writes_denials_and_admin_reads_are_audited_without_secrets(tokens: Tokens) -> None:
    app = make_app()
    store = app.state.store
    scope = Scope("acme", "main")
    writer = tokens.headers(roles=["writer"], sub="alice")
    reader = tokens.headers(roles=["reader"], sub="bob")
    admin = tokens.headers(roles=["admin"], sub="root")
    with _client(app) as c:
        assert (
            c.post(f"{API}/namespaces", json={"name": "sales"}, headers=writer).status_code == 201
        )
        # A reader's write is refused (403): recorded as denied.
        r = c.post(f"{API}/namespaces", json={"name": "hr"}, headers=reader)
        assert r.status_code == 403
        # A duplicate is refused (409): recorded as rejected.
        assert (
            c.post(f"{API}/namespaces", json={"name": "sales"}, headers=writer).status_code == 409
        )
        # Plain reads by non-admins are not audited; an admin's read is.
        assert c.get(f"{API}/namespaces", headers=reader).status_code == 200
        assert c.get(f"{API}/namespaces", headers=admin).status_code == 200
        # A signed-URL mint (a POST) is audited.
        r = c.post(f"{API}/browser/urls", json={"domains": ["catalog"]}, headers=reader)
        assert r.status_code == 200, r.text
        urls = [f["url"] for f in r.json()["urls"]]
        assert urls
        # A query is a read: not audited for a reader.
        assert c.post(f"{API}/query", json={"sql": "select 1"}, headers=reader).status_code == 200
    _flush(app)
    rows = read_audit(store, scope)
    got = [(r["actor"], r["action"], r["outcome"], r["status"]) for r in rows]
    assert got == [
        ("alice", "POST /api/v1/namespaces", "ok", 201),
        ("bob", "POST /api/v1/namespaces", "denied", 403),
        ("alice", "POST /api/v1/namespaces", "rejected", 409),
        ("root", "GET /api/v1/namespaces", "ok", 200),
        ("bob", "POST /api/v1/browser/urls", "ok", 200),
    ]
    for row in rows:
        assert row["tenant"] == "acme"
        assert row["workspace"] == "main"
        assert row["request_id"]
    # Nothing secret reaches the ledger: no token, no signature, no signed URL.
    blob = b"".join(
        store.get(m.key)[0] for m in store.list("tenant=acme/workspace=main/ledger/audit/")
    )
    for secret in [writer["Authorization"][7:], reader["Authorization"][7:], SECRET, *urls]:
        assert secret.encode() not in blob
    sig = urls[0].split("sig=")[1]
    assert sig.encode() not in blob


def test_system_audit_after_compaction_is_admin_only(tokens: Tokens) -> None:
    app = make_app()
    store = app.state.store
    scope = Scope("acme", "main")
    writer = tokens.headers(roles=["writer"], sub="alice")
    with _client(app) as c:
        c.post(f"{API}/namespaces", json={"name": "sales"}, headers=writer, params={})
        _flush(app)
        report = Compactor(store, scope).compact("audit")
        assert report.events == 1
        sql = "select actor, action, outcome from system.audit"
        r = c.post(f"{API}/query", json={"sql": sql}, headers=tokens.headers(roles=["writer"]))
        assert r.status_code == 403
        assert r.json()["type"].endswith(":forbidden")
        r = c.post(f"{API}/query", json={"sql": sql}, headers=tokens.headers(roles=["admin"]))
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == [["alice", "POST /api/v1/namespaces", "ok"]]
    # The library (store credentials) reads it directly.
    result = run_query(SystemTables(store, scope), sql)
    assert result.rows == [["alice", "POST /api/v1/namespaces", "ok"]]


def test_admin_api_needs_admin_and_stays_in_its_tenant(tokens: Tokens) -> None:
    app = make_app()
    admin = tokens.headers(roles=["admin"], sub="root")
    with _client(app) as c:
        r = c.get(f"{API}/admin/workspaces", headers=tokens.headers(roles=["writer"]))
        assert r.status_code == 403
        r = c.post(f"{API}/admin/workspaces", json={"workspace": "dev"}, headers=admin)
        assert r.status_code == 201, r.text
        assert (
            c.post(f"{API}/admin/workspaces", json={"workspace": "dev"}, headers=admin).status_code
            == 409
        )
        # Another tenant's data exists, but this admin never sees it.
        other = tokens.headers(tenant="globex", roles=["writer"])
        assert c.post(f"{API}/namespaces", json={"name": "x"}, headers=other).status_code == 201
        names = [
            w["workspace"]
            for w in c.get(f"{API}/admin/workspaces", headers=admin).json()["workspaces"]
        ]
        assert names == ["dev", "main"]
        # Retire dev: a dev token is refused, reactivating lets it in again.
        dev = tokens.headers(workspace="dev", roles=["writer"])
        assert c.get(f"{API}/namespaces", headers=dev).status_code == 200
        assert (
            c.post(f"{API}/admin/workspaces/dev/retire", headers=admin).json()["status"]
            == "retired"
        )
        r = c.get(f"{API}/namespaces", headers=dev)
        assert r.status_code == 403
        assert r.json()["type"].endswith(":workspace-retired")
        assert c.post(f"{API}/admin/workspaces/main/retire", headers=admin).status_code == 400
        c.post(f"{API}/admin/workspaces/dev/activate", headers=admin)
        assert c.get(f"{API}/namespaces", headers=dev).status_code == 200


def test_quotas_are_shared_by_two_server_processes_through_the_store(tokens: Tokens) -> None:
    url = f"memory://{uuid.uuid4().hex}"
    one, two = make_app(url), make_app(url)
    admin = tokens.headers(roles=["admin"])
    writer = tokens.headers(roles=["writer"])
    event = {
        "type": "lineage.edges_observed",
        "payload": {"edges": [{"source": "a.b", "target": "c.d"}]},
    }
    with _client(one) as a, _client(two) as b:
        r = a.patch(f"{API}/admin/quotas", json={"ingest_per_minute": 5}, headers=admin)
        assert r.status_code == 200
        assert r.json()["quotas"]["ingest_per_minute"] == 5
        statuses = []
        minute = int(time.time() // 60)
        for i in range(8):
            c = a if i % 2 else b
            statuses.append(c.post(f"{API}/events/lineage", json=event, headers=writer).status_code)
        if int(time.time() // 60) == minute:  # a new minute brings a fresh allowance
            # Exactly the tenant's 5 a minute, across both processes.
            assert statuses == [202] * 5 + [429] * 3
        r = a.post(f"{API}/events/lineage", json=event, headers=writer)
        if r.status_code == 429:
            assert r.json()["type"].endswith(":quota-exceeded")
            assert int(r.headers["Retry-After"]) >= 1
        # Another tenant is not limited by acme's quota.
        other = tokens.headers(tenant="globex", roles=["writer"])
        assert a.post(f"{API}/events/lineage", json=event, headers=other).status_code == 202


def test_minute_allowance_never_over_admits_across_processes() -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    now = [1_000_000.0 * 60]
    procs = [
        tenants.MinuteAllowance(store, "acme", "ingest_per_minute", clock=lambda: now[0])
        for _ in range(3)
    ]
    admitted = 0
    for i in range(200):
        try:
            procs[i % 3].take(100)
            admitted += 1
        except tenants.QuotaExceededError:
            pass
    assert admitted <= 100
    assert admitted >= 100 - 3 * 4  # at most one partly spent slice (size 4) per process lost
    now[0] += 60  # next minute: a fresh allowance
    procs[0].take(100)


def test_signed_url_quota_counts_each_url(tokens: Tokens) -> None:
    app = make_app()
    admin = tokens.headers(roles=["admin"])
    writer = tokens.headers(roles=["writer"])
    with _client(app) as c:
        c.post(f"{API}/namespaces", json={"name": "sales"}, headers=writer)
        c.post(
            f"{API}/namespaces/sales/tables",
            json={"name": "orders", "columns": [{"name": "id", "type": "int64"}]},
            headers=writer,
        )
        n = len(
            c.post(f"{API}/browser/urls", json={"domains": ["catalog"]}, headers=writer).json()[
                "urls"
            ]
        )
        assert n >= 1
        c.patch(f"{API}/admin/quotas", json={"signed_urls_per_minute": n}, headers=admin)
        r = c.post(f"{API}/browser/urls", json={"domains": ["catalog"]}, headers=writer)
        assert r.status_code in (200, 429)
        r2 = c.post(f"{API}/browser/urls", json={"domains": ["catalog"]}, headers=writer)
        assert 429 in (r.status_code, r2.status_code)
        bad = r if r.status_code == 429 else r2
        assert bad.json()["type"].endswith(":quota-exceeded")


def test_storage_and_concurrent_run_quotas(tokens: Tokens) -> None:
    app = make_app()
    store = app.state.store
    admin = tokens.headers(roles=["admin"])
    writer = tokens.headers(roles=["writer"])
    with _client(app) as c:
        assert (
            c.post(f"{API}/namespaces", json={"name": "sales"}, headers=writer).status_code == 201
        )
        used = tenants.measure_storage(store, "acme")
        assert used.bytes > 0
        c.patch(f"{API}/admin/quotas", json={"storage_bytes": used.bytes}, headers=admin)
        r = c.post(f"{API}/namespaces", json={"name": "hr"}, headers=writer)
        assert r.status_code == 429
        assert r.json()["type"].endswith(":quota-exceeded")
        # Reads go on.
        assert c.get(f"{API}/namespaces", headers=writer).status_code == 200
        c.patch(f"{API}/admin/quotas", json={"storage_bytes": None}, headers=admin)
        assert c.post(f"{API}/namespaces", json={"name": "hr"}, headers=writer).status_code == 201
        usage = c.get(f"{API}/admin/usage", headers=admin).json()
        assert usage["storage"]["bytes"] == used.bytes
        assert usage["active_runs"] == 0
    # Two unfinished runs (queue markers), a quota of 2: the third launch is refused.
    from arco.core.ids import new_ulid
    from arco.core.keys import Keys

    for _ in range(2):
        store.put(Keys(Scope("acme", "main")).run_queued(new_ulid()), b"{}", "create")
    gov = app.state.governance
    tenants.set_quotas(store, "acme", {"concurrent_runs": 2})
    gov.forget("acme")
    from arco.api.auth import Principal
    from arco.api.governance import QuotaRejectedError

    with pytest.raises(QuotaRejectedError, match="2 unfinished runs"):
        gov.check_runs(Principal("x", "acme", "main", ("writer",)))


def test_audit_records_are_folded_like_any_ledger_domain(tokens: Tokens) -> None:
    app = make_app()
    store = app.state.store
    with _client(app) as c:
        for name in ("a", "b", "c"):
            c.post(f"{API}/namespaces", json={"name": name}, headers=tokens.headers(sub="alice"))
    _flush(app)
    scope = Scope("acme", "main")
    before = read_audit(store, scope)
    Compactor(store, scope).compact("audit")
    Compactor(store, scope).compact("audit")  # idempotent
    after = read_audit(store, scope, include_pending=False)
    assert [r["event_id"] for r in after] == [r["event_id"] for r in before]
    assert len(after) == 3
    assert json.loads(after[0]["detail_json"]) == {}
