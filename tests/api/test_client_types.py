"""The client's TypedDicts name the same fields as the API's OpenAPI schemas (no drift).

The client imports nothing of the server, so its response types are written by
hand; this test holds them to the checked-in ``openapi.json`` (which
``test_openapi.py`` holds to the app).
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from arco.client import _types

OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "openapi.json").read_text())
SCHEMAS = OPENAPI["components"]["schemas"]

#: client TypedDict -> OpenAPI component schema.
MIRRORS = {
    "Asset": "AssetOut",
    "Column": "ColumnOut",
    "ColumnIn": "ColumnIn",
    "CompactionReport": "CompactionOut",
    "CompactionResult": "CompactionsOut",
    "Edge": "EdgeOut",
    "EdgeIn": "EdgeIn",
    "EdgePage": "EdgePage",
    "Event": "EventOut",
    "EventIn": "EventIn",
    "EventsAccepted": "EventsAccepted",
    "FlowPlan": "PlanOut",
    "Health": "HealthOut",
    "HistoryEntry": "HistoryEntry",
    "LastMaterialization": "LastMaterializationOut",
    "LogLine": "LogLineOut",
    "Namespace": "NamespaceOut",
    "NamespacePage": "NamespacePage",
    "QueryColumn": "QueryColumn",
    "QueryResult": "QueryOut",
    "Run": "RunOut",
    "RunAccepted": "RunAccepted",
    "RunDetail": "RunDetailOut",
    "RunPage": "RunPage",
    "RunTask": "TaskOut",
    "SearchHit": "SearchHitOut",
    "SearchResult": "SearchOut",
    "Table": "TableOut",
    "TablePage": "TablePage",
    "Traversal": "TraversalOut",
    "TraversalNode": "TraversalNodeOut",
    "VersionInfo": "VersionOut",
}


def _typeddicts() -> dict[str, type]:
    return {
        name: obj
        for name, obj in vars(_types).items()
        if isinstance(obj, type) and typing.is_typeddict(obj)
    }


def test_every_client_type_mirrors_a_schema() -> None:
    assert set(_typeddicts()) == set(MIRRORS), "map the new client type to its schema"


@pytest.mark.parametrize(("name", "schema"), sorted(MIRRORS.items()))
def test_client_type_has_the_schema_fields(name: str, schema: str) -> None:
    fields = set(typing.get_type_hints(_typeddicts()[name]))
    assert fields == set(SCHEMAS[schema].get("properties", {}))
