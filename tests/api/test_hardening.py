"""Smaller holes of issue #10 (item 4): each is rejected cleanly, in the library and the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arco.catalog import Catalog
from arco.catalog.parse import MAX_COLUMNS
from arco.core import InvalidArgumentError, Scope
from arco.core.ids import MAX_JSON_DEPTH, check_idempotency_key, json_depth_over
from arco.core.storage import open_store
from arco.ledger.events import InvalidEventError, build_envelope

from .conftest import PROBLEM_JSON, Tokens, in_process_client, make_app

API = "/api/v1"
SCOPE = Scope("acme", "main")


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep (``{}`` is one level)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:arco:problem:{code}"
    return body


# ------------------------------------------------------------- nesting depth
def test_json_depth_is_measured_without_recursion() -> None:
    assert not json_depth_over(nested(MAX_JSON_DEPTH))
    assert json_depth_over(nested(MAX_JSON_DEPTH + 1))
    assert json_depth_over(nested(5000))  # deeper than Python's recursion limit
    deep_list: list[Any] = []
    for _ in range(100):
        deep_list = [deep_list]
    assert json_depth_over({"x": deep_list})
    assert not json_depth_over({"a": [1, "b", None], "c": {"d": [[]]}})


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 256, 300, 900])
def test_a_deeply_nested_event_payload_is_a_400_not_a_500(tokens: Tokens, depth: int) -> None:
    payload = {"asset": "raw.orders", "metadata": nested(depth)}
    with in_process_client(make_app()) as client:
        response = client.post(
            f"{API}/events/executions",
            json={"type": "materialization.recorded", "payload": payload},
            headers=tokens.headers(),
        )
        body = problem(response, 400, "invalid-event")
        assert f"deeper than {MAX_JSON_DEPTH} levels" in body["detail"]
        batch = client.post(
            f"{API}/events/executions/batch",
            json={"events": [{"type": "materialization.recorded", "payload": payload}]},
            headers=tokens.headers(),
        )
        problem(batch, 400, "invalid-event")
        fine = {"asset": "raw.orders", "metadata": nested(MAX_JSON_DEPTH - 2)}
        ok = client.post(
            f"{API}/events/executions",
            json={"type": "materialization.recorded", "payload": fine},
            headers=tokens.headers(),
        )
        assert ok.status_code == 202, ok.text


def test_the_library_refuses_deep_payloads_too() -> None:
    with pytest.raises(InvalidEventError, match="nested deeper"):
        build_envelope(
            "executions",
            "materialization.recorded",
            {"asset": "raw.orders", "metadata": nested(300)},
        )


# ---------------------------------------------------------------- columns
def _wide(tmp_path: Path, columns: int) -> Catalog:
    cat = Catalog(open_store(f"file://{tmp_path}"), SCOPE)
    cat.create_namespace("raw")
    cat.create_table("raw", "wide", [f"c{i}:int" for i in range(columns)])
    return cat


def test_the_column_limit_counts_the_whole_table(tmp_path: Path) -> None:
    cat = _wide(tmp_path, MAX_COLUMNS - 2)
    version = cat.version
    with pytest.raises(InvalidArgumentError, match=f"at most {MAX_COLUMNS} columns"):
        cat.update_table("raw", "wide", add_columns=["x:int", "y:int", "z:int"])
    assert cat.version == version  # nothing committed
    cat.update_table("raw", "wide", add_columns=["x:int", "y:int"])  # exactly the limit
    assert len(cat.get_table("raw", "wide").columns) == MAX_COLUMNS
    with pytest.raises(InvalidArgumentError, match=f"would have {MAX_COLUMNS + 1} columns"):
        cat.update_table("raw", "wide", add_columns=["one_more:int"])
    # Dropping makes room again; a drop and an add in one change count together.
    cat.update_table("raw", "wide", drop_columns=["c0"], add_columns=["one_more:int"])
    assert len(cat.get_table("raw", "wide").columns) == MAX_COLUMNS


def test_the_column_limit_holds_across_requests_in_the_api(tmp_path: Path, tokens: Tokens) -> None:
    app = make_app(f"file://{tmp_path}/store")
    headers = tokens.headers()
    with in_process_client(app) as client:
        assert client.post(f"{API}/namespaces", json={"name": "raw"}, headers=headers).is_success
        columns = [{"name": f"c{i}", "type": "int"} for i in range(MAX_COLUMNS)]
        created = client.post(
            f"{API}/namespaces/raw/tables",
            json={"name": "wide", "columns": columns},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        grown = client.patch(
            f"{API}/namespaces/raw/tables/wide",
            json={"add_columns": [{"name": "extra", "type": "int"}]},
            headers=headers,
        )
        body = problem(grown, 400, "invalid-argument")
        assert f"at most {MAX_COLUMNS} columns" in body["detail"]
        table = client.get(f"{API}/namespaces/raw/tables/wide", headers=headers).json()
        assert len(table["columns"]) == MAX_COLUMNS


# ---------------------------------------------------------- idempotency keys
BAD_KEYS = ["a\x00b", "tab\tkey", "line\nbreak", "bell\x07", "del\x7f", "zero\u200bwidth", ""]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_idempotency_keys_must_be_printable(key: str) -> None:
    with pytest.raises(InvalidArgumentError):
        check_idempotency_key(key)
    with pytest.raises(InvalidEventError):
        build_envelope(
            "executions", "materialization.recorded", {"asset": "a.b"}, idempotency_key=key
        )
    cat = Catalog(open_store("memory://idem-" + str(abs(hash(key)))), SCOPE)
    with pytest.raises(InvalidArgumentError, match="idempotency key"):
        cat.create_namespace("raw", idempotency_key=key)
    assert cat.version == 0


def test_idempotency_keys_with_control_characters_are_400_in_the_api(tokens: Tokens) -> None:
    with in_process_client(make_app()) as client:
        body_key = client.post(
            f"{API}/events/executions",
            json={
                "type": "materialization.recorded",
                "payload": {"asset": "a.b"},
                "idempotency_key": "evil\x1b[31m",
            },
            headers=tokens.headers(),
        )
        problem(body_key, 400, "invalid-event")
        header_key = client.post(
            f"{API}/namespaces",
            json={"name": "raw"},
            headers={**tokens.headers(), "Idempotency-Key": "tab\tinside"},
        )
        problem(header_key, 400, "invalid-argument")
        fine = client.post(
            f"{API}/namespaces",
            json={"name": "raw"},
            headers={**tokens.headers(), "Idempotency-Key": "ns-1 (retry: ok)"},
        )
        assert fine.status_code == 201, fine.text


def test_run_queue_refuses_control_characters_in_keys(tmp_path: Path) -> None:
    from arco.flow.queue import enqueue

    with pytest.raises(InvalidArgumentError, match="idempotency key"):
        enqueue(open_store("memory://q"), SCOPE, None, idempotency_key="x\x00")  # type: ignore[arg-type]


# --------------------------------------------------------------- run states
def test_an_unknown_run_state_filter_is_a_400(tmp_path: Path, tokens: Tokens) -> None:
    app = make_app(project_dir=str(tmp_path))
    with in_process_client(app) as client:
        headers = tokens.headers("acme", "main", ("reader",))
        body = problem(
            client.get(f"{API}/runs?state=BOGUS", headers=headers), 400, "invalid-argument"
        )
        assert "QUEUED" in body["detail"]
        for state in ("queued", "SUCCEEDED", "Cancelled"):
            listed = client.get(f"{API}/runs", params={"state": state}, headers=headers)
            assert listed.status_code == 200, listed.text


# ------------------------------------------------------------------ redirects
@pytest.mark.parametrize("path", ["/api/v1/namespaces/", "/api/v1/runs/", "/healthz/"])
def test_redirects_do_not_trust_the_host_header(tokens: Tokens, path: str) -> None:
    with in_process_client(make_app()) as client:
        response = client.get(
            path,
            headers={**tokens.headers(), "Host": "evil.example"},
            follow_redirects=False,
        )
    assert response.status_code in (307, 308), response.text
    location = response.headers["location"]
    assert "evil.example" not in location
    assert location == path.rstrip("/")
    with in_process_client(make_app()) as client:
        followed = client.get(path, headers=tokens.headers())
    assert followed.status_code == 200, followed.text


def test_a_location_to_another_host_is_left_alone() -> None:
    from arco.api.app import _relative_location

    assert _relative_location(b"https://s3.example/b/k?sig=1", b"arco.example") == (
        b"https://s3.example/b/k?sig=1"
    )
    assert _relative_location(b"http://ARCO.example//x?q=1", b"arco.example") == b"/x?q=1"
    assert _relative_location(b"/already/relative", b"arco.example") == b"/already/relative"
