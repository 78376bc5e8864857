"""The Iceberg door obeys the same tenant policy as /api/v1 (a retired workspace,
the storage quota), and its audit records name the path as requested."""

from __future__ import annotations

from arco.core.scope import Scope
from arco.governance import tenants
from arco.governance.audit import read_audit

from .conftest import Tokens, in_process_client, make_app

API = "/api/v1"
ICEBERG = "/iceberg/v1"


def test_a_retired_workspace_is_closed_to_the_iceberg_door(tokens: Tokens) -> None:
    app = make_app()
    admin = tokens.headers(roles=["admin"])
    dev = tokens.headers(workspace="dev", roles=["writer"])
    with in_process_client(app) as c:
        assert (
            c.post(f"{API}/admin/workspaces", json={"workspace": "dev"}, headers=admin).status_code
            == 201
        )
        r = c.post(f"{ICEBERG}/dev/namespaces", json={"namespace": ["sales"]}, headers=dev)
        assert r.status_code == 200, r.text
        c.post(f"{API}/admin/workspaces/dev/retire", headers=admin)
        for method, path, body in [
            ("GET", f"{ICEBERG}/dev/namespaces", None),
            ("POST", f"{ICEBERG}/dev/namespaces", {"namespace": ["hr"]}),
            ("GET", f"{ICEBERG}/config", None),
        ]:
            r = c.request(method, path, json=body, headers=dev)
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error"]["type"] == "ForbiddenException"
            assert "retired" in r.json()["error"]["message"]
        c.post(f"{API}/admin/workspaces/dev/activate", headers=admin)
        assert c.get(f"{ICEBERG}/dev/namespaces", headers=dev).status_code == 200


def test_the_storage_quota_stops_iceberg_writes_not_reads(tokens: Tokens) -> None:
    app = make_app()
    store = app.state.store
    admin = tokens.headers(roles=["admin"])
    writer = tokens.headers(roles=["writer"])
    with in_process_client(app) as c:
        r = c.post(f"{ICEBERG}/main/namespaces", json={"namespace": ["sales"]}, headers=writer)
        assert r.status_code == 200, r.text
        used = tenants.measure_storage(store, "acme")
        c.patch(f"{API}/admin/quotas", json={"storage_bytes": used.bytes}, headers=admin)
        r = c.post(f"{ICEBERG}/main/namespaces", json={"namespace": ["hr"]}, headers=writer)
        assert r.status_code == 429
        assert r.json()["error"]["type"] == "SlowDownException"
        assert r.headers["Retry-After"]
        assert c.get(f"{ICEBERG}/main/namespaces", headers=writer).status_code == 200
        c.patch(f"{API}/admin/quotas", json={"storage_bytes": None}, headers=admin)
        r = c.post(f"{ICEBERG}/main/namespaces", json={"namespace": ["hr"]}, headers=writer)
        assert r.status_code == 200, r.text


def test_iceberg_audit_records_name_the_path_once(tokens: Tokens) -> None:
    app = make_app()
    writer = tokens.headers(roles=["writer"], sub="ana")
    with in_process_client(app) as c:
        r = c.post(f"{ICEBERG}/main/namespaces", json={"namespace": ["sales"]}, headers=writer)
        assert r.status_code == 200, r.text
    assert app.state.audit.flush(10)
    rows = [r for r in read_audit(app.state.store, Scope("acme", "main")) if r["actor"] == "ana"]
    assert [row["target"] for row in rows] == ["/iceberg/v1/main/namespaces"]
