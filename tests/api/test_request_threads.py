"""How many request handlers run at once (ADR 028): few on a local store, where
requests are CPU-bound under one GIL; many on an object store; the user's count wins."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from anyio.to_thread import current_default_thread_limiter

from arco.api import app as app_module
from arco.api.settings import Settings

from .conftest import Tokens, in_process_client, make_app


def test_a_local_store_gets_a_thread_per_core_from_two_to_four(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for cores, expected in ((1, 2), (2, 2), (3, 3), (4, 4), (64, 4)):
        monkeypatch.setattr(os, "cpu_count", lambda c=cores: c)
        for url in ("file:///srv/arco", "memory://"):
            assert app_module.request_threads(Settings(store_url=url)) == expected


def test_an_object_store_gets_many_threads_and_the_users_count_wins() -> None:
    for url in ("s3://bucket/prefix", "gs://bucket", "az://container/p"):
        assert app_module.request_threads(Settings(store_url=url)) == 32
    assert app_module.request_threads(Settings(store_url="s3://b", request_threads=7)) == 7
    assert app_module.request_threads(Settings(store_url="file:///x", request_threads=9)) == 9


def test_the_thread_count_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCO_REQUEST_THREADS", "5")
    assert Settings.from_env(store_url="memory://").request_threads == 5
    monkeypatch.delenv("ARCO_REQUEST_THREADS")
    assert Settings.from_env(store_url="memory://").request_threads is None
    for bad in ("0", "-1", "two", "2.5", "5000"):
        monkeypatch.setenv("ARCO_REQUEST_THREADS", bad)
        with pytest.raises(ValueError, match="ARCO_REQUEST_THREADS"):
            Settings.from_env(store_url="memory://")


def test_a_running_server_runs_at_most_that_many_handlers_at_once(
    tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set on the server's event loop at start: 6 slow concurrent requests never have
    more than 2 handlers running together, and all are answered."""
    from arco.catalog.catalog import Catalog

    app = make_app(request_threads=2)
    running = 0
    most = 0
    lock = threading.Lock()
    listing = Catalog.list_namespaces

    def slow_listing(self: Catalog, *args: object, **kwargs: object) -> object:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return listing(self, *args, **kwargs)  # type: ignore[arg-type]

    headers = tokens.headers(roles=["writer"])
    with in_process_client(app) as client:
        assert client.portal is not None
        assert client.portal.call(lambda: current_default_thread_limiter().total_tokens) == 2
        monkeypatch.setattr(Catalog, "list_namespaces", slow_listing)

        def ask(_: int) -> int:
            # A sync handler: its body runs in the thread pool, under the limit.
            return client.get("/api/v1/namespaces", headers=headers).status_code

        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(ask, range(6))) == [200] * 6
    assert most == 2


def test_a_bad_number_in_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every numeric setting names its variable when it cannot be read."""
    for name in ("ARCO_MAX_STALENESS", "ARCO_QUERY_SECONDS", "ARCO_RATE_QUERY"):
        monkeypatch.setenv(name, "abc")
        with pytest.raises(ValueError, match=f"{name} must be a number, not 'abc'"):
            Settings.from_env(store_url="memory://")
        monkeypatch.delenv(name)
    monkeypatch.setenv("ARCO_MAX_STALENESS", " 2.5 ")
    assert Settings.from_env(store_url="memory://").max_staleness == 2.5
