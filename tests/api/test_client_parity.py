"""The sync and async clients cannot drift: one is generated from the other."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from arco.client import ArcoClient, AsyncArcoClient

ROOT = Path(__file__).resolve().parents[2]

#: Methods that differ by design: context management and closing.
_LIFECYCLE = {"close": "aclose"}


def _public(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_generated_async_client_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_async_client.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_every_sync_method_has_an_async_twin_with_the_same_signature() -> None:
    sync, asyn = _public(ArcoClient), _public(AsyncArcoClient)
    expected = {_LIFECYCLE.get(name, name) for name in sync}
    assert set(asyn) == expected
    for name, method in sync.items():
        twin = asyn[_LIFECYCLE.get(name, name)]
        if name.startswith("iter_"):
            assert inspect.isasyncgenfunction(twin), name
        else:
            assert inspect.iscoroutinefunction(twin), name
        s, a = inspect.signature(method), inspect.signature(twin)
        assert list(s.parameters) == list(a.parameters), name
        for param in s.parameters.values():
            other = a.parameters[param.name]
            assert (param.kind, param.default, param.annotation) == (
                other.kind,
                other.default,
                other.annotation,
            ), f"{name}({param.name})"
        returns = str(s.return_annotation).replace("Iterator[", "AsyncIterator[")
        assert returns == str(a.return_annotation), name


def test_both_clients_send_the_same_requests() -> None:
    """Each call, made through both clients, reaches the server as the same request."""
    seen: list[tuple[str, str, bytes]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), request.content))
        page = {"items": [], "next_page_token": None, "runs": [], "assets": [], "lines": []}
        return httpx.Response(200, json=page)

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("get_table", ("sales", "orders"), {}),
        ("create_namespace", ("sales",), {"description": "d", "idempotency_key": "k1"}),
        ("update_table", ("sales", "orders"), {"description": None, "drop_columns": ["x"]}),
        ("search", ("ord",), {"kind": "table", "limit": 5}),
        ("trigger_run", ("a.b",), {"partition": "2024-01-01", "idempotency_key": "k2"}),
        ("rerun", ("r1",), {"from_failure": False}),
        ("list_assets", (), {}),
        ("run_logs", ("r1",), {"task_id": "t", "limit": 3}),
        ("request", ("GET", "/api/v1/namespaces"), {"params": {"prefix": "s"}}),
    ]
    with ArcoClient("http://arco", "tok", transport=httpx.MockTransport(answer)) as client:
        for name, args, kwargs in calls:
            getattr(client, name)(*args, **kwargs)
        assert list(client.iter_tables("sales")) == []
    sync_seen, seen[:] = list(seen), []

    async def run_async() -> None:
        transport = httpx.MockTransport(answer)
        async with AsyncArcoClient("http://arco", "tok", transport=transport) as client:
            for name, args, kwargs in calls:
                await getattr(client, name)(*args, **kwargs)
            assert [t async for t in client.iter_tables("sales")] == []

    asyncio.run(run_async())
    assert seen == sync_seen
    assert len(seen) == len(calls) + 1
