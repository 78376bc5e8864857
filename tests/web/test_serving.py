"""Serving the UI: MIME types, SPA fallback, API paths untouched, dev-mode token route."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI

from arco.api.app import create_app
from arco.api.settings import Settings
from arco.web import StaticUI, UIMount

from .conftest import SECRET, TENANT, WORKSPACE, WebServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A fake build: index.html, hashed assets, a wasm file, and a secret outside it."""
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>Arco</title><div id=app></div>")
    (root / "assets" / "index-abc123.js").write_text("console.log(1)")
    (root / "assets" / "duckdb-eh-abc.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "assets" / "worker.mjs").write_text("export {}")
    (root / "assets" / "index-abc.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("do not serve")
    return root


def ui_client(directory: Path) -> TestClient:
    app = FastAPI()

    @app.get("/api/v1/thing")
    def thing() -> dict[str, str]:
        return {"ok": "yes"}

    app.router.routes.append(UIMount("/", app=StaticUI(directory)))
    return TestClient(app)


def test_mime_types_and_caching(site: Path) -> None:
    client = ui_client(site)
    wasm = client.get("/assets/duckdb-eh-abc.wasm")
    assert wasm.status_code == 200
    assert wasm.headers["content-type"] == "application/wasm"
    assert wasm.content == b"\0asm\1\0\0\0"
    assert "immutable" in wasm.headers["cache-control"]
    for path in ("/assets/index-abc123.js", "/assets/worker.mjs"):
        assert client.get(path).headers["content-type"].startswith("text/javascript")
    assert client.get("/assets/index-abc.css").headers["content-type"].startswith("text/css")
    index = client.get("/")
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "no-cache"  # must pick up new hashed bundles
    assert index.headers["x-content-type-options"] == "nosniff"
    assert client.head("/assets/duckdb-eh-abc.wasm").status_code == 200


def test_precompressed_files_go_to_clients_that_accept_gzip(site: Path) -> None:
    original = b"\0asm" + bytes(range(256)) * 64
    (site / "assets" / "big.wasm").write_bytes(original)
    (site / "assets" / "big.wasm.gz").write_bytes(gzip.compress(original))
    client = ui_client(site)
    packed = client.get("/assets/big.wasm", headers={"Accept-Encoding": "br, gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["content-type"] == "application/wasm"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.content == original  # the client decodes it
    for refuses in ("identity", "gzip;q=0", "br"):
        plain = client.get("/assets/big.wasm", headers={"Accept-Encoding": refuses})
        assert "content-encoding" not in plain.headers, refuses
        assert plain.content == original


def test_client_routes_get_index_but_missing_assets_and_escapes_do_not(site: Path) -> None:
    client = ui_client(site)
    routes = ["/catalog/raw", "/tables/raw/orders", "/sql", "/runs/01ABC", "/assets", "/signin"]
    # Names with dots look like file names but are client routes (a reload must work).
    routes += ["/catalog/analytics.marketing", "/tables/analytics.marketing/campaigns.v2"]
    routes += ["/lineage/analytics.daily_summary", "/lineage/s3.bucket.export.csv"]
    for route in routes:
        response = client.get(route)
        assert response.status_code == 200, route
        assert "<div id=app>" in response.text
    assert client.get("/assets/index-old999.js").status_code == 404
    assert client.get("/favicon.ico").status_code == 404
    assert client.get("/../secret.txt").status_code == 404
    assert client.get("/assets/..%2F..%2Fsecret.txt").status_code == 404
    assert "do not serve" not in client.get("/%2e%2e/secret.txt").text
    assert client.get("/api/v1/thing").json() == {"ok": "yes"}
    assert client.post("/tables/raw/orders").status_code in (404, 405)


def test_missing_build_explains_how_to_build(tmp_path: Path) -> None:
    client = ui_client(tmp_path / "nothing-here")
    response = client.get("/catalog")
    assert response.status_code == 503
    assert "make ui" in response.text
    assert "npm ci --prefix web" in response.text


def test_api_answers_are_unchanged_by_the_ui_mount() -> None:
    app = create_app(Settings(store_url="memory://web-ui-mount", jwt_secret=SECRET))
    client = TestClient(app)
    unknown = client.get("/api/v1/no-such-route")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    wrong_method = client.delete("/api/v1/namespaces")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/openapi.json").json()["info"]["title"] == "Arco"
    # The dev route is hidden from the API document and absent outside dev mode.
    assert not any("/dev/" in p for p in client.get("/openapi.json").json()["paths"])
    assert client.get("/api/v1/dev/token").status_code == 404


def test_dev_token_needs_dev_mode_and_a_loopback_caller() -> None:
    app = create_app(Settings(store_url="memory://web-ui-dev", jwt_secret=SECRET, dev_mode=True))
    # TestClient's peer is "testclient", not a loopback address.
    assert TestClient(app).get("/api/v1/dev/token").status_code == 404


def test_dev_token_signs_in_loopback_clients_only(dev_server: WebServer) -> None:
    url = dev_server.base_url + "/api/v1/dev/token"
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"], audience="arco")
    assert (claims["tenant"], claims["workspace"]) == (TENANT, WORKSPACE)
    assert claims["roles"] == ["writer"]
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    headers = {"Authorization": f"Bearer {body['token']}"}
    listed = httpx.get(dev_server.base_url + "/api/v1/namespaces", headers=headers, timeout=10)
    assert [n["name"] for n in listed.json()["items"]] == [
        "analytics",
        "analytics.marketing",
        "bulk",
        "raw",
    ]
    # DNS rebinding: a foreign host name pointed at 127.0.0.1 gets nothing.
    rebound = httpx.get(url, headers={"Host": "evil.example:8484"}, timeout=10)
    assert rebound.status_code == 404
    assert rebound.headers["content-type"] == "application/problem+json"
    assert httpx.get(url, headers={"Host": "localhost"}, timeout=10).status_code == 200


def test_built_ui_is_served_with_duckdb_from_this_origin(
    web_ui: Path, dev_server: WebServer
) -> None:
    index = httpx.get(dev_server.base_url + "/", timeout=10)
    assert index.status_code == 200
    assert '<div id="app">' in index.text
    wasm = sorted(p.name for p in (web_ui / "assets").glob("*.wasm"))
    assert any(n.startswith("duckdb-eh") for n in wasm)
    assert any(n.startswith("duckdb-mvp") for n in wasm)
    head = httpx.head(f"{dev_server.base_url}/assets/{wasm[0]}", timeout=10)
    assert head.status_code == 200
    assert head.headers["content-type"] == "application/wasm"
    # Sent gzip-compressed (about 4x smaller) and decoded to the very same module.
    got = httpx.get(f"{dev_server.base_url}/assets/{wasm[0]}", timeout=60)
    assert got.headers["content-encoding"] == "gzip"
    assert int(got.headers["content-length"]) < (web_ui / "assets" / wasm[0]).stat().st_size / 3
    assert got.content == (web_ui / "assets" / wasm[0]).read_bytes()
    workers = sorted((web_ui / "assets").glob("duckdb-browser-*.worker-*.js"))
    assert len(workers) == 2
    js = httpx.head(f"{dev_server.base_url}/assets/{workers[0].name}", timeout=10)
    assert js.headers["content-type"].startswith("text/javascript")
    # No CDN anywhere in the bundle.
    bundle = "".join(p.read_text(errors="ignore") for p in (web_ui / "assets").glob("index-*.js"))
    assert "cdn.jsdelivr" not in bundle
    assert "unpkg.com" not in bundle
