"""Tenant isolation and token attacks.

Tenants ``alpha`` and ``bravo`` both hold data; every route is exercised with
alpha's token (admin, the strongest role), including path traversal values and
spoofed tenant headers, and must only ever show alpha's data and leave bravo's
untouched. Then forged, expired, premature, misaddressed, unsigned (``alg: none``)
and algorithm-confused tokens must all be refused with 401.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from arco.client import ArcoClient

from .conftest import SECRET, LiveServer, Tokens, in_process_client, make_app
from .test_api import API, assert_problem, has_route

A, B = "alpha", "bravo"
# Strings that exist only in bravo's data: none may ever reach alpha.
B_MARKERS = ("bravo-secret", "bravo_secret_col", "payroll", "bravo-run", "bravo_only.src", "b-edge")
# The attacker names bravo's objects in its requests; problem answers echo the
# request (``detail``, ``instance``), so only their other fields are checked.
TRAVERSALS = [
    "../tenant=bravo",
    "..%2Ftenant=bravo",
    "..%2ftenant=bravo%2fworkspace=main",
    "%2e%2e",
    "%2E%2E%2Ftenant=bravo",
    "%252e%252e%252ftenant=bravo",
    "..",
    "..%5Ctenant=bravo",
    "tenant=bravo",
    "bravo",
    "..%00",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fbravo",
]
SPOOF_HEADERS = {
    "X-Tenant-Id": B,
    "X-Tenant": B,
    "X-Arco-Tenant": B,
    "X-Workspace-Id": "main",
    "Tenant": B,
    "X-Forwarded-Prefix": "/tenant=bravo",
}


def _no_bravo(text: str) -> None:
    """No data of bravo in an answer (problem answers: outside the echoed request)."""
    try:
        payload = json.loads(text) if text else None
    except ValueError:
        payload = text
    if isinstance(payload, dict) and str(payload.get("type", "")).startswith("urn:arco:problem:"):
        payload = {k: v for k, v in payload.items() if k not in ("detail", "instance")}
    dumped = json.dumps(payload)
    for marker in B_MARKERS:
        assert marker not in dumped, f"{marker!r} leaked: {text[:500]}"


def _run_created(run_id: str) -> dict[str, Any]:
    return {"type": "run.created", "payload": {"run_id": run_id, "seq": 0}}


def _seed(client: TestClient, tokens: Tokens) -> None:
    """Both tenants: a same-named namespace and table, plus data of their own."""
    for tenant, secret in ((A, "alpha-public"), (B, "bravo-secret")):
        h = tokens.headers(tenant, roles=["writer"])
        prefix = "a" if tenant == A else "bravo"
        calls: list[tuple[str, str, Any]] = [
            ("POST", "/namespaces", {"name": "shared", "description": secret}),
            ("POST", "/namespaces", {"name": f"{prefix}_only", "properties": {"k": secret}}),
            (
                "POST",
                "/namespaces/shared/tables",
                {"name": "orders", "columns": [{"name": f"{prefix}_secret_col", "type": "int64"}]},
            ),
            (
                "POST",
                f"/namespaces/{prefix}_only/tables",
                {"name": "payroll" if tenant == B else "ledger", "description": secret},
            ),
            (
                "POST",
                "/lineage/edges",
                {
                    "edges": [
                        {
                            "source": f"{prefix}_only.src",
                            "target": "shared.orders",
                            "edge_type": "b-edge" if tenant == B else "a-edge",
                        }
                    ]
                },
            ),
            ("POST", "/events/executions", _run_created(f"{tenant}-run")),
            ("POST", "/compaction", {}),
        ]
        for method, path, body in calls:
            r = client.request(method, API + path, json=body, headers=h)
            assert r.status_code < 300, r.text
    # Same tenant, another workspace: also invisible to alpha/main.
    h = tokens.headers(A, "other", roles=["writer"])
    r = client.post(f"{API}/namespaces", json={"name": "bravo_only_in_other_ws"}, headers=h)
    assert r.status_code == 201


def _state(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """Everything a scope holds, as its own token sees it."""

    def get(path: str, **params: Any) -> Any:
        return client.get(API + path, params=params, headers=headers).json()

    return {
        "namespaces": get("/namespaces"),
        "tables": get("/tables"),
        "edges": get("/lineage/edges"),
        "events": get("/events/executions", limit=100),
        "history": get("/catalog/history", limit=1000),
    }


def _world() -> Iterator[tuple[FastAPI, TestClient]]:
    app = make_app()
    with in_process_client(app) as client:
        _seed(client, Tokens())
        yield app, client


# Read-only attacks share one seeded world; attacks that write get their own.
world = pytest.fixture(scope="module", name="world")(_world)
fresh_world = pytest.fixture(name="fresh_world")(_world)


def asgi_request(
    app: FastAPI, method: str, raw_path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Call the ASGI app with an exact, un-normalised raw path (as uvicorn passes it)."""
    path, _, query = raw_path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"host", b"testserver"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    hdrs = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, content


# ----------------------------------------------------------------- isolation


def test_alpha_reads_only_its_own_data(world: tuple[FastAPI, TestClient], tokens: Tokens) -> None:
    _, client = world
    a = tokens.headers(A, roles=["admin"])
    b_before = _state(client, tokens.headers(B, roles=["reader"]))
    assert "bravo-secret" in json.dumps(b_before)  # bravo really holds the markers

    def get(path: str, **params: Any) -> Any:
        r = client.get(API + path, params=params, headers=a)
        _no_bravo(r.text)
        return r

    assert [n["name"] for n in get("/namespaces").json()["items"]] == ["a_only", "shared"]
    assert get("/namespaces/shared").json()["description"] == "alpha-public"
    cols = get("/namespaces/shared/tables/orders").json()["columns"]
    assert [c["name"] for c in cols] == ["a_secret_col"]
    assert [(t["namespace"], t["name"]) for t in get("/tables").json()["items"]] == [
        ("a_only", "ledger"),
        ("shared", "orders"),
    ]
    assert len(get("/namespaces/shared/tables").json()["items"]) == 1
    for path in (
        "/namespaces/bravo_only",
        "/namespaces/bravo_only/tables",
        "/namespaces/bravo_only/tables/payroll",
        "/namespaces/bravo_only_in_other_ws",
    ):
        assert_problem(get(path), 404, "not-found")
    for q in ("bravo", "payroll", "secret", "bravo_secret_col", "orders", "shared"):
        hits = get("/search", q=q).json()
        roots = {h["qualified_name"].split(".")[0] for h in hits["hits"]}
        assert roots <= {"a_only", "shared"}, hits
    assert get("/search", q="payroll").json()["total"] == 0
    assert client.get(f"{API}/lineage/bravo_only.src", headers=a).json()["nodes"] == []
    up = get("/lineage/shared.orders", direction="upstream").json()
    assert [n["name"] for n in up["nodes"]] == ["a_only.src"]
    assert [e["edge_type"] for e in get("/lineage/edges").json()["items"]] == ["a-edge"]
    events = get("/events/executions", limit=100).json()
    assert [e["payload"]["run_id"] for e in events] == ["alpha-run"]
    history = get("/catalog/history", limit=1000).json()
    assert len(history) == len(b_before["history"]) == 4

    # Bravo's page token only seeks inside alpha's data.
    b_page = client.get(
        f"{API}/namespaces", params={"page_size": 1}, headers=tokens.headers(B)
    ).json()
    assert b_page["next_page_token"]
    r = get("/namespaces", page_token=b_page["next_page_token"])
    assert r.status_code in (200, 400)
    assert _state(client, tokens.headers(B, roles=["reader"])) == b_before


def test_alpha_cannot_change_bravo(fresh_world: tuple[FastAPI, TestClient], tokens: Tokens) -> None:
    _, client = fresh_world
    a = tokens.headers(A, roles=["admin"])
    b_headers = tokens.headers(B, roles=["reader"])
    b_before = _state(client, b_headers)
    b_orders = client.get(f"{API}/namespaces/shared/tables/orders", headers=b_headers).json()

    not_found: list[tuple[str, str, Any]] = [
        ("PATCH", "/namespaces/bravo_only", {"description": "pwned"}),
        ("DELETE", "/namespaces/bravo_only?cascade=true", None),
        ("POST", "/namespaces/bravo_only/tables", {"name": "implant"}),
        ("PATCH", "/namespaces/bravo_only/tables/payroll", {"description": "pwned"}),
        ("POST", "/namespaces/bravo_only/tables/payroll/columns", [{"name": "x", "type": "int64"}]),
        ("DELETE", "/namespaces/bravo_only/tables/payroll/columns/id", None),
        ("POST", "/namespaces/bravo_only/tables/payroll/rename", {"new_name": "stolen"}),
        (
            "POST",
            "/namespaces/bravo_only/tables/payroll/rename",
            {"new_name": "stolen", "new_namespace": "a_only"},
        ),
        ("DELETE", "/namespaces/bravo_only/tables/payroll", None),
    ]
    for method, path, body in not_found:
        r = client.request(method, API + path, json=body, headers=a)
        assert_problem(r, 404, "not-found")
        _no_bravo(r.text)

    # Writes to same-named objects change alpha's copy only.
    ok: list[tuple[str, str, Any]] = [
        ("PATCH", "/namespaces/shared", {"description": "alpha changed"}),
        (
            "PATCH",
            "/namespaces/shared/tables/orders",
            {"add_columns": [{"name": "z", "type": "int8"}]},
        ),
        (
            "DELETE",
            "/lineage/edges?source=bravo_only.src&target=shared.orders&edge_type=b-edge",
            None,
        ),
        ("POST", "/events/executions", _run_created("alpha-run-2")),
        ("POST", "/compaction", {}),
        ("DELETE", "/namespaces/shared/tables/orders", None),
        ("DELETE", "/namespaces/shared?cascade=true", None),
    ]
    for method, path, body in ok:
        r = client.request(method, API + path, json=body, headers=a)
        assert r.status_code < 500, r.text
        _no_bravo(r.text)
    assert _state(client, b_headers) == b_before
    assert (
        client.get(f"{API}/namespaces/shared/tables/orders", headers=b_headers).json() == b_orders
    )


def test_spoofed_tenant_headers_and_params_are_ignored(
    fresh_world: tuple[FastAPI, TestClient], tokens: Tokens
) -> None:
    _, client = fresh_world
    a = {**tokens.headers(A, roles=["admin"]), **SPOOF_HEADERS}
    spoof_params = {"tenant": B, "workspace": "main", "scope": "bravo/main"}
    for path in (
        "/namespaces",
        "/tables",
        "/lineage/edges",
        "/events/executions",
        "/catalog/history",
    ):
        r = client.get(API + path, params=spoof_params, headers=a)
        assert r.status_code == 200, r.text
        _no_bravo(r.text)
    r = client.get(f"{API}/search", params={"q": "payroll", **spoof_params}, headers=a)
    assert r.json()["total"] == 0
    # Scope in the body is refused, never honoured.
    r = client.post(f"{API}/namespaces", json={"name": "x", "tenant": B}, headers=a)
    assert_problem(r, 422, "validation-error")
    r = client.post(f"{API}/events/executions", json={**_run_created("x"), "tenant": B}, headers=a)
    assert_problem(r, 422, "validation-error")
    # Created under alpha despite every header saying bravo.
    r = client.post(f"{API}/namespaces", json={"name": "made_by_alpha"}, headers=a)
    assert r.status_code == 201
    names = [n["name"] for n in _state(client, tokens.headers(B))["namespaces"]["items"]]
    assert "made_by_alpha" not in names


@pytest.mark.parametrize("value", TRAVERSALS)
def test_path_traversal_values_stay_in_scope(
    world: tuple[FastAPI, TestClient], tokens: Tokens, value: str
) -> None:
    app, client = world
    a = tokens.headers(A, roles=["admin"])
    b_before = _state(client, tokens.headers(B))
    attempts = [
        ("GET", f"/namespaces/{value}"),
        ("GET", f"/namespaces/{value}/tables"),
        ("GET", f"/namespaces/{value}/tables/payroll"),
        ("GET", f"/namespaces/shared/tables/{value}"),
        ("GET", f"/namespaces/{value}/bravo_only/tables/payroll"),
        ("GET", f"/lineage/{value}"),
        ("GET", f"/lineage/{value}.src"),
        ("GET", f"/events/{value}"),
        ("GET", f"/events/{value}/executions"),
        ("DELETE", f"/namespaces/{value}?cascade=true"),
        ("DELETE", f"/namespaces/{value}/tables/payroll"),
        ("PATCH", f"/namespaces/{value}"),
        ("GET", f"/namespaces?prefix={value}"),
        ("GET", f"/search?q=payroll&namespace={value}"),
    ]
    for method, path in attempts:
        body = b"{}" if method == "PATCH" else b""
        headers = {**a, "Content-Type": "application/json"}
        status, hdrs, content = asgi_request(app, method, API + path, headers, body)
        text = content.decode()
        assert status < 500, (method, path, status, text)
        if status >= 400:
            assert hdrs["content-type"].startswith("application/problem+json"), (path, hdrs)
        _no_bravo(text)
    assert _state(client, tokens.headers(B)) == b_before


def test_traversal_against_uvicorn(live_server: LiveServer) -> None:
    """Raw, un-normalised request targets through a real HTTP server."""
    suffix = uuid.uuid4().hex[:8]
    ta, tb = f"alpha{suffix}", f"bravo{suffix}"
    with ArcoClient(live_server.base_url, live_server.tokens(tb)) as b:
        b.create_namespace("bravo_only", "bravo-secret")
        b.create_table("bravo_only", "payroll", [("salary", "int64")])
    with ArcoClient(live_server.base_url, live_server.tokens(ta)) as a:
        a.create_namespace("shared")
        assert [n["name"] for n in a.iter_namespaces()] == ["shared"]
        assert a.search("payroll")["total"] == 0
    target = urlsplit(live_server.base_url)
    auth = {"Authorization": f"Bearer {live_server.tokens(ta, roles=['admin'])}", **SPOOF_HEADERS}
    auth["X-Tenant-Id"] = tb
    paths = [
        f"{API}/namespaces/../../tenant={tb}/workspace=main/namespaces/bravo_only",
        f"{API}/namespaces/..%2F..%2Ftenant={tb}%2Fworkspace=main",
        f"{API}/namespaces/%2e%2e/tables",
        f"{API}/namespaces/bravo_only/tables/payroll",
        f"{API}/namespaces/bravo_only/tables/..%2F..%2F..%2F{tb}",
        "/api/v1/../api/v1/namespaces/bravo_only",
        f"{API}/namespaces?tenant={tb}",
    ]
    for path in paths:
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=10)
        try:
            conn.request("GET", path, headers=auth)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        assert response.status < 500, (path, response.status, text)
        payload = json.loads(text) if text else {}
        if isinstance(payload, dict) and response.status >= 400:
            payload.pop("detail", None)
            payload.pop("instance", None)
        for marker in ("bravo-secret", "payroll", "salary"):
            assert marker not in json.dumps(payload), (path, text)
    with ArcoClient(live_server.base_url, live_server.tokens(tb)) as b:
        assert b.get_table("bravo_only", "payroll")["columns"][0]["name"] == "salary"


def test_query_cannot_reach_other_tenant(world: tuple[FastAPI, TestClient], tokens: Tokens) -> None:
    app, client = world
    if not has_route(app, f"{API}/query"):
        pytest.fail("POST /api/v1/query is missing from the app")
    a = tokens.headers(A, roles=["reader"])
    r = client.post(f"{API}/query", json={"sql": "SELECT * FROM system.namespaces"}, headers=a)
    assert r.status_code == 200, r.text
    _no_bravo(r.text)
    for sql in (
        "SELECT * FROM system.tables",
        "SELECT * FROM system.columns",
        "SELECT * FROM system.lineage_edges",
        "SELECT * FROM read_parquet('../tenant=bravo/**/*.parquet')",
        "SELECT * FROM read_json_auto('/etc/passwd')",
        "SELECT * FROM glob('**')",
        "ATTACH 'tenant=bravo.db' AS b",
        "SET enable_external_access = true",
        "COPY system.tables TO 'x.csv'",
        "SELECT current_setting('enable_external_access')",
    ):
        r = client.post(f"{API}/query", json={"sql": sql}, headers=a)
        assert r.status_code < 500, (sql, r.text)
        _no_bravo(r.text)


# -------------------------------------------------------------- token attacks


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A JWS built by hand (HS256 with ``key``, or no signature at all)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if key is None:
        return signing_input + "."
    digest = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "attacker",
        "tenant": B,
        "workspace": "main",
        "roles": ["admin"],
        "iss": "arco",
        "aud": "arco",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def _without(key: str) -> dict[str, Any]:
    out = claims()
    del out[key]
    return out


def _hs512(payload: dict[str, Any]) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the test secret is short for HS512: irrelevant here
        return jwt.encode(payload, SECRET, "HS512")


BAD_TOKENS: dict[str, tuple[str, str]] = {
    # name: (token, a word expected in the detail)
    "forged-signature": (
        Tokens("another-secret-of-at-least-32-characters!!")(B, roles=["admin"]),
        "signature",
    ),
    "expired": (Tokens()(B, roles=["admin"], ttl_seconds=-120), "expired"),
    "not-yet-valid": (jwt.encode(claims(nbf=int(time.time()) + 600), SECRET, "HS256"), "nbf"),
    "wrong-audience": (Tokens()(B, audience="someone-else"), "audience"),
    "wrong-issuer": (Tokens()(B, issuer="evil"), "issuer"),
    "missing-tenant": (jwt.encode(_without("tenant"), SECRET, "HS256"), "tenant"),
    "missing-workspace": (jwt.encode(_without("workspace"), SECRET, "HS256"), "workspace"),
    "missing-exp": (jwt.encode(_without("exp"), SECRET, "HS256"), "exp"),
    "missing-sub": (jwt.encode(_without("sub"), SECRET, "HS256"), "sub"),
    "roles-not-a-list": (jwt.encode(claims(roles="admin"), SECRET, "HS256"), "roles"),
    "traversal-tenant": (jwt.encode(claims(tenant="../bravo"), SECRET, "HS256"), "scope"),
    "uppercase-tenant": (jwt.encode(claims(tenant="BRAVO"), SECRET, "HS256"), "scope"),
    "alg-none": (craft({"alg": "none", "typ": "JWT"}, claims(), None), "none"),
    "alg-None": (craft({"alg": "None", "typ": "JWT"}, claims(), None), "none"),
    "alg-none-with-signature": (
        craft({"alg": "none"}, claims(), SECRET.encode()).replace('"', ""),
        "",
    ),
    "alg-missing": (craft({"typ": "JWT"}, claims(), SECRET.encode()), "algorithm"),
    "hs512-same-secret": (_hs512(claims()), "algorithm"),
    "header-says-hs256-signed-none": (craft({"alg": "HS256"}, claims(), None), ""),
    "tampered-payload": ("", "signature"),  # built in the test
}


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_bad_tokens_are_refused(name: str, world: tuple[FastAPI, TestClient]) -> None:
    _, client = world
    token, word = BAD_TOKENS[name]
    if name == "tampered-payload":
        good = Tokens()(A, roles=["reader"])
        head, _, sig = good.split(".")
        token = f"{head}.{_b64(json.dumps(claims(tenant=A)).encode())}.{sig}"
    headers = {"Authorization": f"Bearer {token}"}
    r = client.get(f"{API}/namespaces", headers=headers)
    body = assert_problem(r, 401, "unauthenticated")
    assert word in body["detail"].lower(), body["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = client.post(f"{API}/namespaces", json={"name": "implant"}, headers=headers)
    assert_problem(r, 401, "unauthenticated")
    names = [n["name"] for n in _state(client, Tokens().headers(B))["namespaces"]["items"]]
    assert "implant" not in names


def test_token_only_in_authorization_header(world: tuple[FastAPI, TestClient]) -> None:
    _, client = world
    token = Tokens()(A)
    for params, headers in (
        ({"access_token": token}, {}),
        ({"token": token}, {}),
        ({}, {"Cookie": f"token={token}; access_token={token}"}),
        ({}, {"X-Api-Key": token}),
        ({}, {"Authorization": token}),
    ):
        r = client.get(f"{API}/namespaces", params=params, headers=headers)
        assert_problem(r, 401, "unauthenticated")


# ------------------------------------------------------------ RS256 and JWKS


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    key, other = _rsa(), _rsa()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": "RS256", "use": "sig"})
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"key": key, "other": other, "path": path, "pem": pem, "jwk": jwk}


def test_rs256_jwks_and_algorithm_confusion(rsa_world: dict[str, Any]) -> None:
    path: Path = rsa_world["path"]
    app = make_app(jwt_secret=None, jwks=str(path))
    good_claims = claims(tenant=A, roles=["writer"])
    key, other, pem = rsa_world["key"], rsa_world["other"], rsa_world["pem"]

    def call(token: str) -> Any:
        return client.get(f"{API}/namespaces", headers={"Authorization": f"Bearer {token}"})

    with in_process_client(app) as client:
        valid = jwt.encode(good_claims, key, "RS256", headers={"kid": "k1"})
        assert call(valid).status_code == 200
        r = client.post(
            f"{API}/namespaces",
            json={"name": "rsa_ns"},
            headers={"Authorization": f"Bearer {valid}"},
        )
        assert r.status_code == 201, r.text
        no_kid = jwt.encode(good_claims, key, "RS256")
        assert call(no_kid).status_code == 200  # one key: no kid needed

        refused = {
            "unknown-kid": jwt.encode(good_claims, key, "RS256", headers={"kid": "k2"}),
            "other-rsa-key": jwt.encode(good_claims, other, "RS256", headers={"kid": "k1"}),
            "jku-injection": jwt.encode(
                good_claims,
                other,
                "RS256",
                headers={"kid": "k1", "jku": "http://127.0.0.1:1/jwks.json"},
            ),
            # The classic confusion: HS256 keyed with the server's public key.
            "hs256-public-pem": craft({"alg": "HS256", "typ": "JWT"}, good_claims, pem),
            "hs256-public-pem-kid": craft({"alg": "HS256", "kid": "k1"}, good_claims, pem),
            "hs256-public-jwk": craft(
                {"alg": "HS256"}, good_claims, json.dumps(rsa_world["jwk"]).encode()
            ),
            "hs256-test-secret": jwt.encode(good_claims, SECRET, "HS256"),
            "alg-none": craft({"alg": "none", "kid": "k1"}, good_claims, None),
            "rs256-expired": jwt.encode(
                claims(tenant=A, exp=int(time.time()) - 120), key, "RS256", headers={"kid": "k1"}
            ),
            "rs256-wrong-audience": jwt.encode(
                claims(tenant=A, aud="other"), key, "RS256", headers={"kid": "k1"}
            ),
            "ps256-same-key": jwt.encode(good_claims, key, "PS256", headers={"kid": "k1"}),
        }
        for name, token in refused.items():
            r = call(token)
            assert r.status_code == 401, (name, r.text)
            assert_problem(r, 401, "unauthenticated")
        body = call(refused["hs256-public-pem"]).json()
        assert "HS256" in body["detail"]
        assert "not accepted" in body["detail"]
        names = [n["name"] for n in call(valid).json()["items"]]
        assert names == ["rsa_ns"]


def test_hs256_app_refuses_rs256_tokens(rsa_world: dict[str, Any]) -> None:
    """With only a secret configured, an RS256 token (even a well-formed one) is refused."""
    with in_process_client(make_app()) as client:
        token = jwt.encode(claims(tenant=A), rsa_world["key"], "RS256", headers={"kid": "k1"})
        r = client.get(f"{API}/namespaces", headers={"Authorization": f"Bearer {token}"})
        assert_problem(r, 401, "unauthenticated")
