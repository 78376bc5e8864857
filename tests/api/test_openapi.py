"""The OpenAPI document: 3.1, checked in, and honoured by the app (schemathesis).

Regenerate the checked-in copy with::

    ARCO_UPDATE_OPENAPI=1 .venv/bin/pytest tests/api/test_openapi.py -k checked_in
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import Tokens, make_app

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "openapi.json"
PROBLEM_TYPE = "urn:arco:problem:"


def render(document: dict[str, Any]) -> str:
    """The checked-in form of the document."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_openapi_is_3_1_and_documents_the_api() -> None:
    doc = make_app().openapi()
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"] == "Arco"
    paths = doc["paths"]
    for path in (
        "/api/v1/namespaces",
        "/api/v1/namespaces/{namespace}",
        "/api/v1/namespaces/{namespace}/tables",
        "/api/v1/namespaces/{namespace}/tables/{name}",
        "/api/v1/lineage/edges",
        "/api/v1/lineage/{node}",
        "/api/v1/search",
        "/api/v1/events/{domain}",
        "/api/v1/events/{domain}/batch",
        "/api/v1/compaction",
        "/healthz",
        "/readyz",
        "/version",
        "/metrics",
    ):
        assert path in paths, path
    assert set(paths["/api/v1/namespaces/{namespace}/tables/{name}"]) == {"get", "patch", "delete"}
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    # Every /api/v1 operation needs the bearer token and documents its errors
    # as problem+json (not FastAPI's default {"detail": [...]} 422 body).
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path, item in paths.items():
        for method, op in item.items():
            if not path.startswith("/api/v1"):
                continue
            assert op.get("security") == [{"HTTPBearer": []}], (method, path)
            for status in ("400", "401", "403", "404", "422", "429"):
                content = op["responses"][status]["content"]
                assert content == {"application/problem+json": problem}, (method, path, status)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert set(doc["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
    }


def test_checked_in_openapi_matches_the_app() -> None:
    current = make_app().openapi()
    if os.environ.get("ARCO_UPDATE_OPENAPI") == "1":
        OPENAPI_PATH.write_text(render(current))
    assert OPENAPI_PATH.is_file(), f"{OPENAPI_PATH} is missing: run with ARCO_UPDATE_OPENAPI=1"
    checked_in = json.loads(OPENAPI_PATH.read_text())
    assert checked_in == current, (
        "openapi.json is stale: regenerate with "
        "ARCO_UPDATE_OPENAPI=1 .venv/bin/pytest tests/api/test_openapi.py -k checked_in"
    )
    assert OPENAPI_PATH.read_text() == render(checked_in)


# ------------------------------------------------------------------ fuzzing

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
]
_APP = make_app(rate_limits={})
_WRITER = {"Authorization": f"Bearer {Tokens()(roles=['admin'])}"}
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi(case: Any) -> None:
    """No input yields a 500, and answers match the documented schemas."""
    response = case.call(headers=_WRITER)
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json")
        body = response.json()
        assert body["type"].startswith(PROBLEM_TYPE), body
        assert body["status"] == response.status_code
    assert response.headers.get("x-request-id")


@pytest.fixture(autouse=True, scope="module")
def _seed() -> None:
    """A little data so that generated calls sometimes hit existing objects."""
    from .conftest import in_process_client

    with in_process_client(_APP) as client:
        for body in ({"name": "a"}, {"name": "b", "description": "x"}):
            client.post("/api/v1/namespaces", json=body, headers=_WRITER)
        client.post(
            "/api/v1/namespaces/a/tables",
            json={"name": "a", "columns": [{"name": "a", "type": "int64"}]},
            headers=_WRITER,
        )
