"""What a server process loads and allocates with before and while it answers (issue #12).

Each test starts a new Python process, as ``uvicorn arco.api.app:create_app``
does, because what matters is the state of a fresh interpreter: which modules it
loaded and which pool Arrow's C++ code chose when the library was first used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

#: Builds the app the way uvicorn's factory does, reads a Parquet file the way a
#: point read does, then reports what the process holds.
SCRIPT = textwrap.dedent(
    """
    import json, os, sys, tempfile
    import arco.api.app
    from arco.api.app import create_app
    os.environ.update({"ARCO_STORE": "memory://", "ARCO_JWT_SECRET": "s" * 32})
    app = create_app()
    import pyarrow as pa, pyarrow.parquet as pq
    path = os.path.join(tempfile.mkdtemp(), "t.parquet")
    pq.write_table(pa.table({"a": list(range(50_000))}), path)
    assert pq.read_table(path).num_rows == 50_000
    print(json.dumps({
        "pool": pa.default_memory_pool().backend_name,
        "env": os.environ.get("ARROW_DEFAULT_MEMORY_POOL"),
        "mimalloc_region": any(
            (int(b, 16) - int(a, 16)) >= 1 << 30
            for a, b in (line.split()[0].split("-") for line in open("/proc/self/maps"))
        ),
        "duckdb": "duckdb" in sys.modules,
        "sql_engine": "arco.sql.engine" in sys.modules,
        "pyiceberg": "pyiceberg" in sys.modules,
    }))
    """
)


def _run(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_arrow_c_plus_plus_code_allocates_with_malloc_in_a_server_process() -> None:
    """``pa.set_memory_pool`` alone left the Parquet reader on mimalloc, whose pages
    held ~50 MiB more in a loaded server; importing the API first fixes the C++ pool."""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    found = _run(env)
    assert found["pool"] == "system"
    assert found["env"] == "system"
    # mimalloc reserves a 1 GiB region on its first allocation; malloc does not.
    assert found["mimalloc_region"] is False


def test_a_pool_the_user_chose_stays() -> None:
    found = _run({**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"})
    assert found["pool"] == "mimalloc"
    assert found["env"] == "mimalloc"


def test_the_server_loads_duckdb_only_for_a_query() -> None:
    """The SQL engine (and DuckDB, ~12 MiB) is loaded by the first query, not at start."""
    found = _run(dict(os.environ))
    assert found["duckdb"] is False
    assert found["sql_engine"] is False


def test_the_server_loads_pyiceberg_only_for_an_iceberg_request() -> None:
    """The Iceberg app (and pyiceberg, ~20 MiB) is made by the first Iceberg request."""
    assert _run(dict(os.environ))["pyiceberg"] is False


def test_the_iceberg_app_made_on_first_use_answers_the_first_request() -> None:
    """The first request under /iceberg is answered by the app it makes, and a second
    by the same app; URLs under the mount still resolve."""
    from fastapi.testclient import TestClient

    from .conftest import Tokens, make_app

    app = make_app()
    headers = Tokens().headers(roles=["admin"])
    with TestClient(app) as client:
        r = client.get("/iceberg/v1/config", headers=headers)
        assert r.status_code == 200, r.text
        assert "defaults" in r.json()
        r = client.post(
            "/iceberg/v1/main/namespaces", json={"namespace": ["sales"]}, headers=headers
        )
        assert r.status_code == 200, r.text
        r = client.get("/iceberg/v1/main/namespaces", headers=headers)
        assert r.json()["namespaces"] == [["sales"]]
    mounts = [m for m in app.routes if getattr(m, "path", "") == "/iceberg"]
    assert mounts
    assert any(getattr(r, "path", "") == "/v1/config" for r in mounts[0].routes)


def _mallopt_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The ``mallopt`` calls the app makes from here on (a fake C library records them)."""
    from arco.api import app as app_module

    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1

    class Libc:
        def __init__(self) -> None:
            self.mallopt = mallopt

    monkeypatch.setattr(app_module.ctypes, "CDLL", lambda _name: Libc())
    monkeypatch.setattr(sys, "platform", "linux")
    return calls


def test_the_app_fixes_the_malloc_mmap_threshold_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With Arrow on malloc, glibc's moving mmap threshold would leave the freed
    buffers of concurrent requests in the heaps; the app fixes it (a user's own
    ``MALLOC_MMAP_THRESHOLD_`` stays)."""
    from arco.api import app as app_module

    calls = _mallopt_calls(monkeypatch)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert app_module.fix_mmap_threshold()
    assert calls == [(-3, app_module.MMAP_THRESHOLD)]
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    assert not app_module.fix_mmap_threshold()
    assert len(calls) == 1


def test_the_app_limits_malloc_heaps_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two glibc heaps for the request threads (the GIL runs them one at a time); a
    ``MALLOC_ARENA_MAX`` the user set stays."""
    from arco.api import app as app_module

    calls = _mallopt_calls(monkeypatch)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert app_module.limit_malloc_arenas()
    assert calls == [(-8, app_module.MALLOC_ARENAS)]
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert not app_module.limit_malloc_arenas()
    assert len(calls) == 1


WARM = textwrap.dedent(
    """
    import asyncio, gc, json, os, sys
    os.environ.update({"ARCO_STORE": "memory://", "ARCO_JWT_SECRET": "s" * 32})
    from arco.api.app import create_app
    app = create_app()
    before = {"parquet": "pyarrow._parquet" in sys.modules, "frozen": gc.get_freeze_count()}

    async def main():
        async with app.router.lifespan_context(app):
            during = {"parquet": "pyarrow._parquet" in sys.modules, "frozen": gc.get_freeze_count()}
        return during

    during = asyncio.run(main())
    print(json.dumps({"before": before, "during": during, "after": gc.get_freeze_count()}))
    """
)


def test_a_started_server_has_loaded_the_parquet_reader_and_frozen_its_heap() -> None:
    out = subprocess.run(
        [sys.executable, "-c", WARM],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    # Not at import (a CLI or a test that builds the app pays nothing)...
    assert found["before"] == {"parquet": False, "frozen": 0}
    # ...but once the server starts, before its first request.
    assert found["during"]["parquet"] is True
    assert found["during"]["frozen"] > 10_000
    assert found["after"] == 0  # collectable again once the app stops
