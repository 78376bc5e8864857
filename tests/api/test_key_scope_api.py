"""Issue #10 item 2 through a real server: an event cannot name another tenant's key."""

from __future__ import annotations

import uuid

import httpx

from .conftest import PROBLEM_JSON, LiveServer

API = "/api/v1"


def test_a_tenant_cannot_record_a_location_in_another_tenants_scope(
    live_server: LiveServer,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    alpha, beta = f"alpha{suffix}", f"beta{suffix}"
    headers = {"Authorization": f"Bearer {live_server.tokens(alpha)}"}
    foreign = f"tenant={beta}/workspace=main/assets/vault.secret/_/01J0000000000000000000000A.json"
    escapes = [
        foreign,
        f"tenant={alpha}/workspace=main/../../{foreign}",
        f"tenant={alpha}/workspace=main/assets/%2e%2e/%2e%2e/x.json",
        "/etc/passwd",
        f"tenant={alpha}/workspace=main/assets/x\u0000.json",
    ]
    with httpx.Client(base_url=live_server.base_url, headers=headers, timeout=30) as http:
        for location in escapes:
            event = {
                "type": "materialization.recorded",
                "payload": {"asset": "vault.secret", "location": location},
            }
            single = http.post(f"{API}/events/executions", json=event)
            assert single.status_code == 400, (location, single.text)
            assert single.headers["content-type"].startswith(PROBLEM_JSON)
            problem = single.json()
            assert problem["type"].endswith("invalid-event"), problem
            assert "location" in problem["detail"]
            assert live_server.store_url.removeprefix("file://") not in single.text
            batch = http.post(f"{API}/events/executions/batch", json={"events": [event]})
            assert 400 <= batch.status_code < 500, (location, batch.text)
        # Nothing was written to alpha's ledger.
        tail = http.get(f"{API}/events/executions", params={"limit": 50})
        assert tail.status_code == 200
        assert tail.json() == []
        own = f"tenant={alpha}/workspace=main/assets/vault.secret/_/01J0000000000000000000000A.json"
        accepted = http.post(
            f"{API}/events/executions",
            json={
                "type": "materialization.recorded",
                "payload": {"asset": "vault.secret", "location": own},
            },
        )
        assert accepted.status_code == 202, accepted.text
