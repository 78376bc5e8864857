"""Fixtures of the REST API tests.

* ``tokens``: mints HS256 tokens for the test secret (``tokens(tenant=..., roles=[...])``).
* ``app`` / ``client``: an in-process app on a fresh memory store and its ``TestClient``.
* ``live_server``: a real ``uvicorn`` process on 127.0.0.1 (session scope, file store).
* :func:`run_server`: start more servers (the two-server S3 test).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from arco.api.app import create_app
from arco.api.auth import mint_token
from arco.api.settings import Settings
from conftest import free_port, start_logged, stop_process, wait_for_http

with warnings.catch_warnings():
    # Starlette nudges towards httpx2; the test client works the same.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET = "arco-api-tests-secret-0123456789-abcdefghij"
PROBLEM_JSON = "application/problem+json"
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Tokens:
    """Mints tokens signed with the test secret."""

    secret: str = SECRET

    def __call__(
        self,
        tenant: str = "acme",
        workspace: str = "main",
        roles: Sequence[str] = ("writer",),
        **kwargs: Any,
    ) -> str:
        return mint_token(
            self.secret, tenant=tenant, workspace=workspace, roles=list(roles), **kwargs
        )

    def headers(
        self,
        tenant: str = "acme",
        workspace: str = "main",
        roles: Sequence[str] = ("writer",),
        **kwargs: Any,
    ) -> dict[str, str]:
        """An ``Authorization`` header for a token with these claims."""
        return {"Authorization": f"Bearer {self(tenant, workspace, roles, **kwargs)}"}


def make_app(store_url: str | None = None, **overrides: Any) -> FastAPI:
    """An app on ``store_url`` (a fresh memory store by default) with the test secret."""
    settings = Settings(
        store_url=store_url or f"memory://{uuid.uuid4().hex}",
        jwt_secret=overrides.pop("jwt_secret", SECRET),
        **overrides,
    )
    return create_app(settings)


def in_process_client(app: FastAPI) -> TestClient:
    """A ``TestClient`` that returns error answers instead of raising."""
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def tokens() -> Tokens:
    """Token factory for the test secret."""
    return Tokens()


@pytest.fixture
def app() -> FastAPI:
    """An in-process app on a fresh memory store."""
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A ``TestClient`` of ``app``."""
    with in_process_client(app) as tc:
        yield tc


# ----------------------------------------------------------------- real servers


@dataclass
class LiveServer:
    """A running ``uvicorn`` process serving the Arco API."""

    base_url: str
    store_url: str
    log_path: Path
    proc: subprocess.Popen[bytes]
    tokens: Tokens

    def log(self) -> str:
        """The tail of the server's output."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@contextlib.contextmanager
def run_server(
    store_url: str,
    workdir: Path,
    *,
    secret: str = SECRET,
    env: dict[str, str] | None = None,
) -> Iterator[LiveServer]:
    """Run ``python -m uvicorn arco.api.app:create_app --factory`` until the block ends."""
    child_env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("ARCO_") and k != "ARCO_REQUIRE_ALL")
    }
    child_env.update({"ARCO_STORE": store_url, "ARCO_JWT_SECRET": secret, **(env or {})})
    workdir.mkdir(parents=True, exist_ok=True)
    last = ""
    for _attempt in range(3):  # a port can be taken between choosing and binding it
        port = free_port()
        log_path = workdir / f"uvicorn-{port}.log"
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "arco.api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        proc = start_logged(cmd, log_path, cwd=workdir, env=child_env)
        server = LiveServer(f"http://127.0.0.1:{port}", store_url, log_path, proc, Tokens(secret))
        try:
            if wait_for_http(server.base_url + "/healthz", proc, _START_TIMEOUT_S):
                yield server
                return
            last = server.log()
        finally:
            stop_process(proc)
        if "address already in use" not in last.lower():
            break
    pytest.fail(f"uvicorn did not become healthy within {_START_TIMEOUT_S}s:\n{last}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real uvicorn server (file store) for the session; tests use their own tenants."""
    workdir = tmp_path_factory.mktemp("uvicorn")
    with run_server(f"file://{workdir / 'store'}", workdir) as server:
        yield server
