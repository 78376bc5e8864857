"""Oversized request headers get a 431 problem, not a connection reset (#10 item 4).

Run against ``arco serve`` itself, as a user starts it: the HTTP parser uvicorn
picks (httptools when installed, else h11 with its 16 KiB default) decides whether
an oversized head reaches the app at all.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arco.api.settings import MAX_HEADER_BYTES
from conftest import free_port


def _serve(tmp_path: Path, http_impl: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCO_")}
    env.update({"ARCO_JWT_SECRET": "s" * 32, "ARCO_STORE": f"file://{tmp_path / 'store'}"})
    code = (
        "import sys, uvicorn\n"
        "from arco.cli.main import main\n"
        f"impl = {http_impl!r}\n"
        "if impl:\n"
        "    real = uvicorn.run\n"
        "    uvicorn.run = lambda *a, **k: real(*a, **{**k, 'http': impl})\n"
        f"sys.argv = ['arco', 'serve', '--port', '{port}']\n"
        "main()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("arco serve did not start")


def _get(port: int, token_bytes: int) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(
        "GET", "/api/v1/namespaces", headers={"Authorization": "Bearer " + "a" * token_bytes}
    )
    response = conn.getresponse()
    body = response.read()
    return response.status, json.loads(body) if body.startswith(b"{") else {}


@pytest.mark.parametrize("http_impl", [None, "h11"])
def test_oversized_token_is_431_problem(tmp_path: Path, http_impl: str | None) -> None:
    proc, port = _serve(tmp_path, http_impl)
    try:
        status, body = _get(port, 100_000)
        assert status == 431
        assert body["type"] == "urn:arco:problem:request-header-too-large"
        assert str(MAX_HEADER_BYTES) in str(body["detail"])
        # Just under the bound, a bad token is what is wrong, not its size.
        status, body = _get(port, MAX_HEADER_BYTES - 2_000)
        assert status == 401
        # The server still answers after the oversized requests.
        assert _get(port, 10)[0] == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
