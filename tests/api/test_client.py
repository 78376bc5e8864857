"""``arco.client``: error mapping, retries and backoff (mock transport), async client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from arco.client import (
    ArcoAPIError,
    ArcoClient,
    ArcoConnectionError,
    AsyncArcoClient,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RetryPolicy,
    ServerError,
    Unauthenticated,
)

from .conftest import Tokens, make_app

Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    body = {
        "type": f"urn:arco:problem:{code}",
        "title": "t",
        "status": status,
        "detail": f"{code} happened",
        "request_id": "rid-1",
        "instance": "/x",
    }
    return httpx.Response(
        status, json=body, headers={"Content-Type": "application/problem+json", **headers}
    )


class Recorder:
    """A mock transport answering from a script and recording requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_for(rec: Recorder, **kwargs: Any) -> tuple[ArcoClient, list[float]]:
    arco = ArcoClient("http://arco.test", "tok", transport=httpx.MockTransport(rec), **kwargs)
    sleeps: list[float] = []
    arco._sleep = sleeps.append
    return arco, sleeps


OK_NS: dict[str, Any] = {
    "id": "1",
    "name": "sales",
    "description": None,
    "properties": {},
    "created_at": "x",
    "updated_at": "x",
}


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid-name", BadRequest),
        (422, "validation-error", BadRequest),
        (401, "unauthenticated", Unauthenticated),
        (403, "forbidden", Forbidden),
        (404, "not-found", NotFound),
        (409, "already-exists", Conflict),
        (413, "payload-too-large", PayloadTooLarge),
        (500, "internal", ServerError),
        (418, "teapot", ArcoAPIError),
    ],
)
def test_errors_are_typed(status: int, code: str, cls: type[ArcoAPIError]) -> None:
    arco, sleeps = client_for(Recorder(problem(status, code)))
    with pytest.raises(cls) as info:
        arco.get_namespace("sales")
    err = info.value
    assert type(err) is cls
    assert (err.status, err.code, err.type) == (status, code, f"urn:arco:problem:{code}")
    assert err.detail == f"{code} happened"
    assert err.request_id == "rid-1"
    assert err.instance == "/x"
    assert "rid-1" in str(err)
    assert sleeps == []  # no retry on these


def test_non_problem_error_body() -> None:
    answer = httpx.Response(502, text="<html>bad gateway</html>", headers={"X-Request-Id": "r9"})
    arco, _ = client_for(Recorder(answer))
    with pytest.raises(ServerError) as info:
        arco.health()
    assert info.value.type == "about:blank"
    assert info.value.request_id == "r9"
    assert "bad gateway" in info.value.detail


def test_requests_carry_token_idempotency_key_and_encoded_paths() -> None:
    rec = Recorder(
        httpx.Response(201, json=OK_NS),
        httpx.Response(204),
        httpx.Response(200, json={"items": [], "next_page_token": None}),
    )
    arco, _ = client_for(rec)
    arco.create_namespace("sales", properties={"a": "b"}, idempotency_key="key-1")
    arco.drop_table("../x", "a/b", idempotency_key="key-2")
    arco.list_namespaces("s", page_size=5)
    first, second, third = rec.requests
    assert first.headers["authorization"] == "Bearer tok"
    assert first.headers["idempotency-key"] == "key-1"
    assert json.loads(first.content) == {"name": "sales", "properties": {"a": "b"}}
    assert second.method == "DELETE"
    assert second.url.raw_path == b"/api/v1/namespaces/..%2Fx/tables/a%2Fb"
    assert second.headers["idempotency-key"] == "key-2"
    assert dict(third.url.params) == {"prefix": "s", "page_size": "5"}


def test_dot_segments_are_encoded_not_normalised() -> None:
    rec = Recorder(problem(400, "invalid-name"))
    arco, _ = client_for(rec)
    with pytest.raises(BadRequest):
        arco.get_namespace("..")
    assert rec.requests[0].url.raw_path == b"/api/v1/namespaces/%2E%2E"


def test_429_honours_retry_after_then_succeeds() -> None:
    rec = Recorder(
        problem(429, "rate-limited", **{"Retry-After": "2"}),
        problem(429, "rate-limited", **{"Retry-After": "1"}),
        httpx.Response(201, json=OK_NS),
    )
    arco, sleeps = client_for(rec)
    assert arco.create_namespace("sales") == OK_NS
    assert sleeps == [2.0, 1.0]
    assert len(rec.requests) == 3


def test_429_retry_after_is_capped_and_exhaustion_raises() -> None:
    answers = [problem(429, "rate-limited", **{"Retry-After": "3600"}) for _ in range(3)]
    arco, sleeps = client_for(Recorder(*answers), retry=RetryPolicy(max_retries=2))
    with pytest.raises(RateLimited) as info:
        arco.list_namespaces()
    assert sleeps == [30.0, 30.0]
    assert info.value.retry_after == 3600.0
    assert info.value.status == 429


def test_503_is_retried_with_exponential_backoff() -> None:
    rec = Recorder(
        httpx.Response(503, json={"status": "unavailable"}),
        problem(503, "commit-conflict"),
        problem(503, "commit-conflict"),
        httpx.Response(201, json=OK_NS),
    )
    policy = RetryPolicy(max_retries=3, backoff_base=1.0, backoff_cap=100.0)
    arco, sleeps = client_for(rec, retry=policy)
    arco.create_namespace("sales")
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps):
        assert 2**attempt * 0.5 <= slept <= 2**attempt


def test_503_exhaustion_raises_server_error() -> None:
    rec = Recorder(*(problem(503, "lock-unavailable") for _ in range(4)))
    arco, sleeps = client_for(rec)
    with pytest.raises(ServerError) as info:
        arco.get_table("a", "b")
    assert info.value.code == "lock-unavailable"
    assert len(sleeps) == 3


def test_connect_errors_are_retried_for_every_method() -> None:
    rec = Recorder(httpx.ConnectError("refused"), httpx.Response(201, json=OK_NS))
    arco, sleeps = client_for(rec)
    arco.create_namespace("sales")  # never reached the server: safe to resend
    assert len(sleeps) == 1


def test_read_errors_are_retried_only_when_idempotent() -> None:
    arco, sleeps = client_for(Recorder(httpx.ReadTimeout("slow"), httpx.Response(201, json=OK_NS)))
    with pytest.raises(ArcoConnectionError) as info:
        arco.create_namespace("sales")  # POST without a key may have been applied
    assert info.value.status == 0
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert sleeps == []

    arco, sleeps = client_for(Recorder(httpx.ReadError("reset"), httpx.Response(201, json=OK_NS)))
    arco.create_namespace("sales", idempotency_key="k")  # the key makes it safe
    assert len(sleeps) == 1

    page: dict[str, Any] = {"items": [], "next_page_token": None}
    arco, sleeps = client_for(
        Recorder(
            httpx.ReadError("a"), httpx.RemoteProtocolError("b"), httpx.Response(200, json=page)
        )
    )
    assert arco.list_namespaces() == page
    assert len(sleeps) == 2

    arco, sleeps = client_for(Recorder(*(httpx.ConnectError("down") for _ in range(4))))
    with pytest.raises(ArcoConnectionError):
        arco.health()
    assert len(sleeps) == 3


def test_iterators_follow_page_tokens() -> None:
    def page(names: list[str], token: str | None) -> httpx.Response:
        items = [{**OK_NS, "name": n} for n in names]
        return httpx.Response(200, json={"items": items, "next_page_token": token})

    rec = Recorder(page(["a", "b"], "t1"), page(["c"], "t2"), page([], None))
    arco, _ = client_for(rec)
    assert [n["name"] for n in arco.iter_namespaces(page_size=2)] == ["a", "b", "c"]
    tokens = [r.url.params.get("page_token") for r in rec.requests]
    assert tokens == [None, "t1", "t2"]


def test_query_arrow_parses_arrow_and_refuses_other_media() -> None:
    import pyarrow as pa
    import pyarrow.ipc

    table = pa.table({"name": ["a", "b"], "n": [1, 2]})
    sink = pa.BufferOutputStream()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    body = sink.getvalue().to_pybytes()
    rec = Recorder(
        httpx.Response(
            200, content=body, headers={"Content-Type": "application/vnd.apache.arrow.stream"}
        ),
        httpx.Response(200, json={"columns": [], "rows": [], "row_count": 0, "elapsed_ms": 1.0}),
    )
    arco, _ = client_for(rec)
    assert arco.query_arrow("SELECT 1").equals(table)
    assert rec.requests[0].headers["accept"] == "application/vnd.apache.arrow.stream"
    assert json.loads(rec.requests[0].content) == {"sql": "SELECT 1"}
    with pytest.raises(ArcoAPIError) as info:
        arco.query_arrow("SELECT 1")
    assert info.value.code == "not-acceptable"


def test_async_client_in_process(tokens: Tokens) -> None:
    app = make_app()

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncArcoClient("http://arco.test", tokens(), transport=transport) as arco:
            assert (await arco.health())["status"] == "ok"
            await arco.create_namespace("sales", idempotency_key="k1")
            for i in range(5):
                await arco.create_table("sales", f"t{i}", [("id", "int64")])
            names = [t["name"] async for t in arco.iter_tables("sales", page_size=2)]
            assert names == [f"t{i}" for i in range(5)]
            assert (await arco.get_table("sales", "t3"))["name"] == "t3"
            with pytest.raises(NotFound):
                await arco.get_namespace("nope")
            with pytest.raises(Conflict):
                await arco.create_namespace("sales")
            await arco.drop_table("sales", "t0")
            page = await arco.request(
                "GET", "/api/v1/namespaces/sales/tables", params={"page_size": 1}
            )
            assert page["items"][0]["name"] == "t1"
            accepted = await arco.append_event(
                "executions", "run.created", {"run_id": "r", "seq": 0}
            )
            assert accepted["accepted"] == 1
            assert (await arco.search("t1"))["hits"]
            assert (await arco.lineage("sales.t1"))["nodes"] == []

    asyncio.run(scenario())


def test_async_client_retries() -> None:
    rec = Recorder(problem(503, "commit-conflict"), httpx.Response(200, json=OK_NS))

    async def handler(request: httpx.Request) -> httpx.Response:
        return rec(request)

    async def scenario() -> None:
        arco = AsyncArcoClient("http://x", "tok", transport=httpx.MockTransport(handler))
        slept: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            slept.append(seconds)

        arco._sleep = fake_sleep
        assert await arco.get_namespace("sales") == OK_NS
        assert len(slept) == 1
        await arco.aclose()

    asyncio.run(scenario())
