"""The direct ingest route (``arco.api.direct``) answers exactly as the FastAPI route.

``POST /api/v1/lineage`` without a query string is served without FastAPI's router;
any query string sends it through FastAPI. Every case below is asked both ways and
must get the same answer, and the direct way must really be the direct route.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from arco.api import direct
from arco.api.deps import as_of_version_guard, bearer, principal
from arco.api.routes_openlineage import post_lineage
from arco.api.routes_openlineage import router as openlineage_router
from arco.api.settings import RateLimit
from arco.core.scope import Scope
from arco.governance.audit import read_audit

from .conftest import PROBLEM_JSON, Tokens, in_process_client, make_app

URL = "/api/v1/lineage"
#: Any query string takes FastAPI's route (an unknown parameter is ignored there).
VIA_FASTAPI = URL + "?via=fastapi"
PRODUCER = "https://example.test/direct"


def _event(i: int = 0, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventType": "COMPLETE",
        "eventTime": f"2026-03-01T12:00:{i % 60:02d}Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.UUID(int=i + 1))},
        "job": {"namespace": "ns", "name": "job"},
        "inputs": [{"namespace": "pg", "name": "raw.a"}],
        "outputs": [{"namespace": "pg", "name": "mart.b"}],
    }
    event.update(changes)
    return event


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FastAPI, TestClient, list[str]]]:
    """An app, its client, and the paths the direct route answered."""
    taken: list[str] = []
    call = direct.DirectRoute.__call__

    async def spy(self: direct.DirectRoute, scope: Any, receive: Any, send: Any) -> None:
        taken.append(scope["path"])
        await call(self, scope, receive, send)

    monkeypatch.setattr(direct.DirectRoute, "__call__", spy)
    app = make_app()
    with in_process_client(app) as client:
        yield app, client, taken


def _answer(response: Any) -> dict[str, Any]:
    """What must not depend on the way taken (the event ids and request ids do)."""
    body = response.json()
    if response.headers["content-type"].startswith(PROBLEM_JSON):
        body = {k: v for k, v in body.items() if k not in ("request_id", "instance")}
    else:
        body = {"accepted": body["accepted"], "ids": len(body["event_ids"])}
    headers = {
        k: response.headers.get(k)
        for k in ("content-type", "retry-after", "www-authenticate")
        if k in response.headers
    }
    return {"status": response.status_code, "body": body, "headers": headers}


def _both(client: TestClient, taken: list[str], *, expect: int, **request: Any) -> dict[str, Any]:
    before = len(taken)
    fast = client.post(URL, **request)
    assert taken[before:] == [URL], "the direct route did not answer"
    slow = client.post(VIA_FASTAPI, **request)
    assert len(taken) == before + 1, "a query string must go through FastAPI"
    assert fast.headers["x-request-id"]
    assert _answer(fast) == _answer(slow), (fast.text, slow.text)
    assert fast.status_code == expect, fast.text
    return _answer(fast)


def test_direct_route_answers_as_fastapi_does(
    served: tuple[FastAPI, TestClient, list[str]], tokens: Tokens
) -> None:
    _app, client, taken = served
    writer = tokens.headers(roles=["writer"])
    ok = _both(client, taken, expect=201, json=_event(1), headers=writer)
    assert ok["body"] == {"accepted": 1, "ids": 1}
    # A batch, and {"events": [...]}.
    _both(client, taken, expect=201, json=[_event(2), _event(3)], headers=writer)
    _both(client, taken, expect=201, json={"events": [_event(4)]}, headers=writer)
    # gzip, as openlineage-python's compression sends it.
    _both(
        client,
        taken,
        expect=201,
        content=gzip.compress(json.dumps(_event(5)).encode()),
        headers={**writer, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    # Authentication: none, not Bearer, a bad token, a token of another secret.
    missing = _both(client, taken, expect=401, json=_event(6))
    assert missing["headers"]["www-authenticate"] == 'Bearer realm="arco"'
    _both(client, taken, expect=401, json=_event(6), headers={"Authorization": "Basic x"})
    _both(client, taken, expect=401, json=_event(6), headers={"Authorization": "Bearer junk"})
    forged = Tokens(secret="another-secret-0123456789-abcdefghijklmn").headers()
    _both(client, taken, expect=401, json=_event(6), headers=forged)
    # Authorization: a reader may not ingest.
    denied = _both(
        client, taken, expect=403, json=_event(6), headers=tokens.headers(roles=["reader"])
    )
    assert "writer" in denied["body"]["detail"]
    # Validation: 400 problem+json naming the field.
    bad = _both(client, taken, expect=400, json=_event(7, run={"runId": "nope"}), headers=writer)
    assert bad["body"]["type"].endswith(":invalid-openlineage-event")
    assert bad["body"]["detail"].startswith("run.runId")
    batch = _both(
        client, taken, expect=400, json=[_event(8), _event(9, eventTime="x")], headers=writer
    )
    assert batch["body"]["detail"].startswith("events[1].eventTime")
    _both(client, taken, expect=400, content=b"{not json", headers=writer)
    _both(client, taken, expect=400, json=[], headers=writer)
    _both(
        client,
        taken,
        expect=400,
        content=b"{}",
        headers={**writer, "Content-Encoding": "br"},
    )


def test_direct_route_keeps_the_body_limits(tokens: Tokens) -> None:
    app = make_app(max_body_bytes=2048)
    writer = tokens.headers(roles=["writer"])
    big = json.dumps(_event(1, job={"namespace": "ns", "name": "j" * 1000, "x": "y" * 2000}))
    with in_process_client(app) as client:
        declared = client.post(URL, content=big, headers=writer)
        assert declared.status_code == 413
        assert declared.headers["content-type"].startswith(PROBLEM_JSON)

        def chunks() -> Iterator[bytes]:
            yield big[:1000].encode()
            yield big[1000:].encode()

        streamed = client.post(URL, content=chunks(), headers=writer)
        assert streamed.status_code == 413
        assert streamed.json()["type"].endswith(":payload-too-large")


def test_direct_route_enforces_rate_limit_quota_and_retired_workspace(
    served: tuple[FastAPI, TestClient, list[str]], tokens: Tokens
) -> None:
    _app, client, taken = served
    writer = tokens.headers(roles=["writer"])
    admin = tokens.headers(roles=["admin"])
    # The tenant's ingest quota (shared through the store): 2 a minute.
    r = client.patch("/api/v1/admin/quotas", json={"ingest_per_minute": 2}, headers=admin)
    assert r.status_code == 200, r.text
    minute = int(time.time() // 60)
    statuses = [client.post(URL, json=_event(i), headers=writer).status_code for i in range(3)]
    if int(time.time() // 60) == minute:  # a new minute brings a fresh allowance
        assert statuses == [201, 201, 429]
        quota = client.post(URL, json=_event(3), headers=writer)
        assert quota.json()["type"].endswith(":quota-exceeded")
        assert int(quota.headers["Retry-After"]) >= 1
    client.patch("/api/v1/admin/quotas", json={"ingest_per_minute": None}, headers=admin)
    # A retired workspace is refused.
    assert client.post("/api/v1/admin/workspaces", json={"workspace": "dev"}, headers=admin)
    dev = tokens.headers(workspace="dev", roles=["writer"])
    assert client.post(URL, json=_event(4), headers=dev).status_code == 201
    client.post("/api/v1/admin/workspaces/dev/retire", headers=admin)
    retired = client.post(URL, json=_event(5), headers=dev)
    assert retired.status_code == 403
    assert retired.json()["type"].endswith(":workspace-retired")
    assert set(taken) == {URL}
    # The per-process rate limit of ingest requests.
    limited_app = make_app(rate_limits={"ingest": RateLimit(rate=0.001, burst=2)})
    with in_process_client(limited_app) as limited:
        assert limited.post(URL, json=_event(1), headers=writer).status_code == 201
        assert limited.post(URL, json=_event(2), headers=writer).status_code == 201
        refused = limited.post(URL, json=_event(3), headers=writer)
        assert refused.status_code == 429
        assert refused.json()["type"].endswith(":rate-limited")
        assert int(refused.headers["Retry-After"]) >= 1


def test_direct_route_is_audited_measured_and_traced(
    served: tuple[FastAPI, TestClient, list[str]], tokens: Tokens, spans: Any
) -> None:
    app, client, taken = served
    r = client.post(
        URL, json=_event(1), headers={**tokens.headers(sub="alice"), "X-Request-Id": "req-1"}
    )
    assert r.status_code == 201
    assert taken == [URL]
    assert r.headers["x-request-id"] == "req-1"
    denied = client.post(URL, json=_event(2), headers=tokens.headers(roles=["reader"], sub="bob"))
    assert denied.status_code == 403
    assert app.state.audit.flush(10)
    rows = read_audit(app.state.store, Scope("acme", "main"))
    got = [(row["actor"], row["action"], row["outcome"], row["status"]) for row in rows]
    assert got == [
        ("alice", "POST /api/v1/lineage", "ok", 201),
        ("bob", "POST /api/v1/lineage", "denied", 403),
    ]
    assert rows[0]["request_id"] == "req-1"
    again = client.post(URL, json=_event(3), headers=tokens.headers())
    assert again.status_code == 201
    metrics = client.get("/metrics").text
    assert 'arco_http_request_seconds_count{route="/api/v1/lineage"} 3.0' in metrics
    assert (
        'arco_http_requests_total{method="POST",route="/api/v1/lineage",status="403"} 1.0'
        in metrics
    )
    assert (
        'arco_http_requests_total{method="POST",route="/api/v1/lineage",status="201"} 2.0'
        in metrics
    )
    request = next(s for s in spans.get_finished_spans() if s.name == "http.request")
    assert request.attributes["http.route"] == "/api/v1/lineage"
    assert request.attributes["http.response.status_code"] == 201


def test_as_of_version_still_refused_on_the_ingest_route(
    served: tuple[FastAPI, TestClient, list[str]], tokens: Tokens
) -> None:
    _app, client, taken = served
    r = client.post(URL + "?as_of_version=1", json=_event(1), headers=tokens.headers())
    assert r.status_code == 400
    assert "as_of_version" in r.json()["detail"]
    assert taken == []


def _calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def test_fastapi_route_depends_on_what_the_direct_route_runs(app: FastAPI) -> None:
    """A dependency added to the FastAPI route must be added to ``ingest_lineage`` too."""
    routes = [
        r
        for r in openlineage_router.routes
        if isinstance(r, APIRoute) and r.endpoint is post_lineage
    ]
    (route,) = routes
    calls = list(_calls(route.dependant))
    checks = [c for c in calls if getattr(c, "arco_role", None) is not None]
    assert [(c.arco_role, c.arco_rate) for c in checks] == [("writer", "ingest")]
    others = {c for c in calls if c not in checks}
    assert others == {principal, bearer}
    # The app-wide dependency (as_of_version) is handled by leaving query strings to FastAPI.
    assert [d.dependency for d in app.router.dependencies] == [as_of_version_guard]
