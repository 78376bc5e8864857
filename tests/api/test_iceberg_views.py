"""Iceberg views through the REST catalog, driven by pyiceberg's RestCatalog, and
seen through Arco's own door (a view is a catalog row of format ``iceberg-view``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyiceberg.exceptions import (
    ForbiddenError,
    NoSuchNamespaceError,
    NoSuchTableError,
    NoSuchViewError,
    TableAlreadyExistsError,
    ViewAlreadyExistsError,
)
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType
from pyiceberg.view.metadata import SQLViewRepresentation, ViewVersion

from arco.catalog import Catalog
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.domain.retention import RetentionPolicy
from arco.domain.verify import verify
from arco.maintenance.gc import collect_garbage

from .conftest import LiveServer, run_server
from .test_iceberg_rest import SCHEMA, TENANT, WORKSPACE, arco_cli, fresh_ns, rest_catalog

VIEW_SCHEMA = Schema(
    NestedField(1, "region", StringType(), required=False),
    NestedField(2, "orders", LongType(), required=False),
)


def version(sql: str, ns: str) -> ViewVersion:
    """A view version with one Spark SQL representation."""
    return ViewVersion(
        schema_id=0,
        representations=[SQLViewRepresentation(type="sql", sql=sql, dialect="spark")],
        default_namespace=[ns],
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server on a local folder for this module."""
    workdir = tmp_path_factory.mktemp("iceberg-views")
    with run_server(f"file://{workdir / 'store'}", workdir) as live:
        yield live


def _headers(server: LiveServer, tenant: str = TENANT, role: str = "writer") -> dict[str, str]:
    return {"Authorization": f"Bearer {server.tokens(tenant, WORKSPACE, [role])}"}


def _url(server: LiveServer, path: str) -> str:
    return f"{server.base_url}/iceberg/v1/{WORKSPACE}/{path}"


def _location(server: LiveServer, ns: str, name: str, tenant: str = TENANT) -> str:
    """A view's current metadata location (pyiceberg's View does not expose it)."""
    answer = httpx.get(
        _url(server, f"namespaces/{ns}/views/{name}"), headers=_headers(server, tenant)
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["metadata-location"])


def test_pyiceberg_creates_lists_loads_and_drops_views(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    cat.create_table(f"{ns}.orders", schema=SCHEMA)
    sql = f"SELECT region, count(*) AS orders FROM {ns}.orders GROUP BY region"
    view = cat.create_view(
        f"{ns}.by_region", VIEW_SCHEMA, version(sql, ns), properties={"comment": "per region"}
    )
    assert view.metadata.current_version_id == 1
    assert cat.view_exists(f"{ns}.by_region")
    assert cat.list_views(ns) == [(ns, "by_region")]
    # Views and tables are listed apart.
    assert cat.list_tables(ns) == [(ns, "orders")]
    loaded = cat.load_view(f"{ns}.by_region")
    (rep,) = loaded.metadata.versions[0].representations
    assert rep.root.sql == sql
    assert loaded.metadata.properties["comment"] == "per region"
    location = view.metadata.location
    assert location.startswith(server.store_url.rstrip("/"))

    # Through Arco's door: a row of format iceberg-view with the view's columns.
    table = Catalog(open_store(server.store_url), Scope(TENANT, WORKSPACE)).get_table(
        ns, "by_region"
    )
    assert table.format == "iceberg-view"
    assert [(c.name, c.data_type) for c in table.columns] == [
        ("region", "string"),
        ("orders", "int64"),
    ]
    assert table.description == "per region"

    cat.drop_view(f"{ns}.by_region")
    assert not cat.view_exists(f"{ns}.by_region")
    assert cat.list_views(ns) == []
    with pytest.raises(NoSuchViewError):
        cat.load_view(f"{ns}.by_region")
    with pytest.raises(NoSuchViewError):
        cat.drop_view(f"{ns}.by_region")


def test_views_and_tables_share_one_name_space(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    cat.create_table(f"{ns}.t", schema=SCHEMA)
    with pytest.raises(ViewAlreadyExistsError):
        cat.create_view(f"{ns}.t", VIEW_SCHEMA, version("SELECT 1", ns))
    cat.create_view(f"{ns}.v", VIEW_SCHEMA, version("SELECT 1", ns))
    with pytest.raises(ViewAlreadyExistsError):
        cat.create_view(f"{ns}.v", VIEW_SCHEMA, version("SELECT 2", ns))
    with pytest.raises(TableAlreadyExistsError):
        cat.create_table(f"{ns}.v", schema=SCHEMA)
    # A view is not a table, a table is not a view.
    with pytest.raises(NoSuchTableError):
        cat.load_table(f"{ns}.v")
    with pytest.raises(NoSuchViewError):
        cat.load_view(f"{ns}.t")
    # pyiceberg maps only 409 for create_view: the spec's 404 is checked on the wire.
    with pytest.raises(NoSuchNamespaceError):
        cat.list_views("nowhere")
    answer = httpx.get(_url(server, "namespaces/nowhere/views/v"), headers=_headers(server))
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "NoSuchNamespaceException"


def test_replace_view_adds_a_version_and_checks_the_uuid(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    first = cat.create_view(f"{ns}.v", VIEW_SCHEMA, version("SELECT 1", ns))
    first_location = _location(server, ns, "v")
    uuid_ = str(first.metadata.view_uuid)
    new_schema = {
        "type": "struct",
        "schema-id": 1,
        "fields": [{"id": 1, "name": "n", "type": "long", "required": False}],
    }
    body = {
        "requirements": [{"type": "assert-view-uuid", "uuid": uuid_}],
        "updates": [
            {"action": "add-schema", "schema": new_schema, "last-column-id": 1},
            {
                "action": "add-view-version",
                "view-version": {
                    "version-id": 2,
                    "schema-id": -1,
                    "timestamp-ms": 1_700_000_000_000,
                    "summary": {"engine-name": "spark"},
                    "representations": [
                        {"type": "sql", "sql": "SELECT 2 AS n", "dialect": "spark"}
                    ],
                    "default-namespace": [ns],
                },
            },
            {"action": "set-current-view-version", "view-version-id": -1},
            {"action": "set-properties", "updates": {"owner": "ana"}},
        ],
    }
    answer = httpx.post(
        _url(server, f"namespaces/{ns}/views/v"), json=body, headers=_headers(server)
    )
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["metadata"]["current-version-id"] == 2
    assert [v["version-id"] for v in got["metadata"]["version-log"]] == [1, 2]
    assert got["metadata-location"] != first_location
    reloaded = cat.load_view(f"{ns}.v")
    assert reloaded.metadata.current_version_id == 2
    assert reloaded.metadata.properties == {"owner": "ana"}
    table = Catalog(open_store(server.store_url), Scope(TENANT, WORKSPACE)).get_table(ns, "v")
    assert [c.name for c in table.columns] == ["n"]
    # A stale uuid is the spec's 409 CommitFailedException, and nothing changes.
    stale = {**body, "requirements": [{"type": "assert-view-uuid", "uuid": str(uuid.uuid4())}]}
    answer = httpx.post(
        _url(server, f"namespaces/{ns}/views/v"), json=stale, headers=_headers(server)
    )
    assert answer.status_code == 409
    assert answer.json()["error"]["type"] == "CommitFailedException"
    # An update naming a version that does not exist is a 400.
    bad = {"updates": [{"action": "set-current-view-version", "view-version-id": 9}]}
    answer = httpx.post(
        _url(server, f"namespaces/{ns}/views/v"), json=bad, headers=_headers(server)
    )
    assert answer.status_code == 400
    assert "9" in answer.json()["error"]["message"]
    assert _location(server, ns, "v") == got["metadata-location"]


def test_rename_register_and_roles(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    other_ns = fresh_ns(cat)
    view = cat.create_view(f"{ns}.v", VIEW_SCHEMA, version("SELECT 1", ns))
    view_location = _location(server, ns, "v")
    rename = {
        "source": {"namespace": [ns], "name": "v"},
        "destination": {"namespace": [other_ns], "name": "w"},
    }
    answer = httpx.post(_url(server, "views/rename"), json=rename, headers=_headers(server))
    assert answer.status_code == 204, answer.text
    assert cat.list_views(ns) == []
    assert cat.list_views(other_ns) == [(other_ns, "w")]
    again = httpx.post(_url(server, "views/rename"), json=rename, headers=_headers(server))
    assert again.status_code == 404
    assert again.json()["error"]["type"] == "NoSuchViewException"

    # Register the same metadata file under a new name.
    cat.drop_view(f"{other_ns}.w")
    registered = cat.register_view(f"{ns}.back", view_location)
    assert registered.metadata.view_uuid == view.metadata.view_uuid
    assert cat.list_views(ns) == [(ns, "back")]

    # A reader lists and loads, but cannot create or drop.
    reader = _headers(server, role="reader")
    assert httpx.get(_url(server, f"namespaces/{ns}/views"), headers=reader).status_code == 200
    assert (
        httpx.delete(_url(server, f"namespaces/{ns}/views/back"), headers=reader).status_code == 403
    )
    assert httpx.get(_url(server, f"namespaces/{ns}/views"), headers={}).status_code == 401


def test_tenant_isolation_and_locations(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    cat.create_view(f"{ns}.secret", VIEW_SCHEMA, version("SELECT 1", ns))
    secret_location = _location(server, ns, "secret")
    other = rest_catalog(server, tenant="intruder")
    other.create_namespace(ns)
    assert other.list_views(ns) == []
    with pytest.raises(NoSuchViewError):
        other.load_view(f"{ns}.secret")
    with pytest.raises(ForbiddenError):
        other.register_view(f"{ns}.stolen", secret_location)
    with pytest.raises(ForbiddenError):
        other.create_view(
            f"{ns}.escape", VIEW_SCHEMA, version("SELECT 1", ns), location="file:///etc"
        )
    # A view may not sit inside a table's folder (a purge would take it along).
    table = cat.create_table(f"{ns}.t", schema=SCHEMA)
    inside = table.metadata.location + "/views/v"
    answer = httpx.post(
        _url(server, f"namespaces/{ns}/views"),
        headers=_headers(server),
        json={
            "name": "inside",
            "location": inside,
            "schema": {"type": "struct", "schema-id": 0, "fields": []},
            "view-version": {
                "version-id": 1,
                "schema-id": 0,
                "timestamp-ms": 1,
                "summary": {},
                "representations": [{"type": "sql", "sql": "SELECT 1", "dialect": "spark"}],
                "default-namespace": [ns],
            },
        },
    )
    assert answer.status_code == 409, answer.text


def test_bad_requests_get_a_clear_400(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    url, headers = _url(server, f"namespaces/{ns}/views"), _headers(server)
    cases: list[tuple[Any, str]] = [
        ({}, "name"),
        ({"name": "v"}, "schema"),
        ({"name": "v", "schema": {"type": "struct", "fields": []}, "view-version": {}}, "view"),
        ({"name": "bad name!", "schema": {}, "view-version": {}}, "name"),
    ]
    for body, word in cases:
        answer = httpx.post(url, json=body, headers=headers)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"]["type"] == "BadRequestException"
        assert word in answer.json()["error"]["message"].lower()
    assert cat.list_views(ns) == []


def test_arco_door_shows_a_view_but_refuses_to_change_it(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    cat.create_view(f"{ns}.v", VIEW_SCHEMA, version("SELECT 1", ns))
    shown = arco_cli(server, "table", "show", f"{ns}.v")
    assert shown.exit_code == 0, shown.output
    assert "iceberg-view" in shown.output
    refused = arco_cli(server, "table", "add-column", f"{ns}.v", "extra:string")
    assert refused.exit_code != 0
    assert "Iceberg view" in refused.output
    assert cat.load_view(f"{ns}.v").metadata.current_version_id == 1
    # Arco does not run a view's SQL (an engine's dialect): a clear refusal.
    queried = arco_cli(server, "sql", f"SELECT * FROM {ns}.v")
    assert queried.exit_code != 0
    assert "iceberg-view" in queried.output
    listed = arco_cli(server, "--json", "sql", "SELECT name, format FROM system.tables")
    assert listed.exit_code == 0, listed.output
    assert "iceberg-view" in listed.output


def test_verify_hashes_view_metadata_and_gc_keeps_the_live_file(server: LiveServer) -> None:
    tenant = "viewgc"
    cat = rest_catalog(server, tenant=tenant)
    ns = fresh_ns(cat)
    cat.create_view(f"{ns}.v", VIEW_SCHEMA, version("SELECT 1", ns))
    first = Path(_location(server, ns, "v", tenant).removeprefix("file://"))
    replace = {
        "updates": [
            {
                "action": "add-view-version",
                "view-version": {
                    "version-id": 2,
                    "schema-id": 0,
                    "timestamp-ms": 2,
                    "summary": {},
                    "representations": [{"type": "sql", "sql": "SELECT 2", "dialect": "spark"}],
                    "default-namespace": [ns],
                },
            },
            {"action": "set-current-view-version", "view-version-id": -1},
        ]
    }
    answer = httpx.post(
        _url(server, f"namespaces/{ns}/views/v"), json=replace, headers=_headers(server, tenant)
    )
    assert answer.status_code == 200, answer.text
    current = Path(answer.json()["metadata-location"].removeprefix("file://"))
    store, scope = open_store(server.store_url), Scope(tenant, WORKSPACE)
    assert verify(store, scope).ok
    original = current.read_bytes()
    current.write_bytes(original.replace(b"SELECT 2", b"SELECT 3"))
    assert any(p.key.endswith(current.name) for p in verify(store, scope).problems)
    current.write_bytes(original)
    later = datetime.now(UTC) + timedelta(minutes=5)
    collect_garbage(
        store, scope, grace_seconds=60, now=later, retention=RetentionPolicy(keep_versions=1)
    )
    assert current.exists()
    assert not first.exists()  # superseded and named by no retained version
    assert cat.load_view(f"{ns}.v").metadata.current_version_id == 2
