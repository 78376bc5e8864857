"""The Iceberg REST catalog at ``/iceberg``, driven by a real client: pyiceberg's RestCatalog.

A real ``uvicorn`` server on a local-folder store; pyiceberg writes data files to
the warehouse folder directly and commits metadata through the server, whose
commits are Tier-1 catalog commits (the Arco door must see what Iceberg wrote).
"""

from __future__ import annotations

import json
import multiprocessing
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog as IcebergCatalog
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    ForbiddenError,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import DoubleType, LongType, NestedField, StringType
from typer.testing import CliRunner

from arco.catalog import Catalog
from arco.cli.main import app as cli_app
from arco.core.errors import NotFoundError
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.domain.retention import RetentionPolicy
from arco.domain.verify import verify
from arco.maintenance.gc import collect_garbage
from arco.sql.tables import SystemTables

from .conftest import LiveServer, run_server

TENANT, WORKSPACE = "acme", "lake"
SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "region", StringType()),
    NestedField(3, "amount", DoubleType()),
)
SPEC = PartitionSpec(
    PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="region")
)
#: pyiceberg retries a failed commit by itself; these tests need to see the 409.
NO_RETRY = {"commit.retry.num-retries": "0"}
ARROW = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("region", pa.string()),
        pa.field("amount", pa.float64()),
    ]
)


def rows(start: int, n: int) -> pa.Table:
    """``n`` rows with ids from ``start``, in two regions."""
    return pa.Table.from_pylist(
        [
            {"id": i, "region": "eu" if i % 2 else "us", "amount": i * 1.5}
            for i in range(start, start + n)
        ],
        schema=ARROW,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server on a local folder for this module."""
    workdir = tmp_path_factory.mktemp("iceberg")
    with run_server(f"file://{workdir / 'store'}", workdir) as live:
        yield live


def rest_catalog(
    server: LiveServer, tenant: str = TENANT, workspace: str = WORKSPACE, **extra: str
) -> IcebergCatalog:
    """pyiceberg's RestCatalog against ``server`` with a writer token."""
    token = server.tokens(tenant, workspace, ["writer"])
    return load_catalog(
        "arco",
        type="rest",
        uri=f"{server.base_url}/iceberg",
        token=token,
        warehouse=workspace,
        **extra,
    )


def arco_catalog(server: LiveServer, tenant: str = TENANT) -> Catalog:
    """The same catalog through the Arco door (reading the store directly)."""
    return Catalog(open_store(server.store_url), Scope(tenant, WORKSPACE))


def fresh_ns(cat: IcebergCatalog) -> str:
    name = f"ns_{uuid.uuid4().hex[:8]}"
    cat.create_namespace(name, {"owner": "tests"})
    return name


def _sorted(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: r["id"])


def test_pyiceberg_round_trip_through_both_doors(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    cat.create_namespace((ns, "emea"))
    assert (ns,) in cat.list_namespaces()
    assert cat.list_namespaces(ns) == [(ns, "emea")]
    assert cat.load_namespace_properties(ns) == {"owner": "tests"}

    table = cat.create_table(f"{ns}.orders", schema=SCHEMA, partition_spec=SPEC)
    table.append(rows(0, 10))
    table.append(rows(10, 5))
    scanned = cat.load_table(f"{ns}.orders").scan().to_arrow()
    assert _sorted(scanned) == _sorted(pa.concat_tables([rows(0, 10), rows(10, 5)]))
    assert len(cat.load_table(f"{ns}.orders").metadata.snapshots) == 2

    with cat.load_table(f"{ns}.orders").update_schema() as update:
        update.add_column("note", StringType(), doc="free text")
    assert cat.load_table(f"{ns}.orders").schema().find_field("note").doc == "free text"

    # The Arco door: format, metadata location and columns from the Iceberg schema.
    arco = arco_catalog(server)
    seen = arco.get_table(ns, "orders")
    assert seen.format == "iceberg"
    assert seen.metadata_location == cat.load_table(f"{ns}.orders").metadata_location
    assert [(c.name, c.data_type, c.nullable, c.column_id) for c in seen.columns] == [
        ("id", "int64", False, 1),
        ("region", "string", True, 2),
        ("amount", "float64", True, 3),
        ("note", "string", True, 4),
    ]
    columns = SystemTables(arco.store, arco.scope).table("columns").to_pylist()
    mine = [c for c in columns if c["namespace"] == ns and c["table_name"] == "orders"]
    assert [c["name"] for c in sorted(mine, key=lambda c: c["ordinal"])] == [
        "id",
        "region",
        "amount",
        "note",
    ]

    shown = CliRunner().invoke(
        cli_app,
        [
            *("--store", server.store_url, "--tenant", TENANT, "--workspace", WORKSPACE),
            *("table", "show", f"{ns}.orders"),
        ],
        env={"ARCO_STORE": None, "ARCO_TENANT": None, "ARCO_WORKSPACE": None},
    )
    assert shown.exit_code == 0, shown.output
    assert "iceberg" in shown.stdout
    assert seen.metadata_location.rsplit("/", 1)[1][:20] in shown.stdout.replace("\n", "")

    cat.rename_table(f"{ns}.orders", f"{ns}.emea.orders")
    assert cat.list_tables(f"{ns}.emea") == [(ns, "emea", "orders")]
    assert cat.list_tables(ns) == []
    moved = cat.load_table(f"{ns}.emea.orders")
    assert moved.scan().to_arrow().num_rows == 15
    folder = Path(moved.location().removeprefix("file://"))
    assert any(folder.rglob("*.parquet"))

    cat.purge_table(f"{ns}.emea.orders")
    assert not cat.table_exists(f"{ns}.emea.orders")
    assert not any(p.is_file() for p in folder.rglob("*"))
    with pytest.raises(NotFoundError):
        arco_catalog(server).get_table(f"{ns}.emea", "orders")


def test_drop_without_purge_keeps_files_and_register_brings_the_table_back(
    server: LiveServer,
) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    table = cat.create_table(f"{ns}.events", schema=SCHEMA)
    table.append(rows(0, 4))
    location = cat.load_table(f"{ns}.events").metadata_location
    cat.drop_table(f"{ns}.events")
    assert not cat.table_exists(f"{ns}.events")
    again = cat.register_table(f"{ns}.events_back", location)
    assert again.scan().to_arrow().num_rows == 4
    with pytest.raises(TableAlreadyExistsError):
        cat.register_table(f"{ns}.events_back", location)


def test_spec_error_cases(server: LiveServer) -> None:
    cat = rest_catalog(server)
    with pytest.raises(NoSuchNamespaceError):
        cat.create_table("missing_ns.t", schema=SCHEMA)
    with pytest.raises(NoSuchNamespaceError):
        cat.list_tables("missing_ns")
    with pytest.raises(NoSuchTableError):
        cat.load_table("missing_ns.t")
    ns = fresh_ns(cat)
    with pytest.raises(NamespaceAlreadyExistsError):
        cat.create_namespace(ns)
    # No client-side retry: the conflict must reach the caller.
    cat.create_table(f"{ns}.t", schema=SCHEMA, properties=NO_RETRY)
    with pytest.raises(TableAlreadyExistsError):
        cat.create_table(f"{ns}.t", schema=SCHEMA)
    with pytest.raises(NamespaceNotEmptyError):
        cat.drop_namespace(ns)
    with pytest.raises(NoSuchTableError):
        cat.load_table(f"{ns}.nope")

    # A stale requirement: two handles on the same snapshot; the second commit fails.
    first, second = cat.load_table(f"{ns}.t"), cat.load_table(f"{ns}.t")
    first.append(rows(0, 2))
    with pytest.raises(CommitFailedException):
        second.append(rows(2, 2))
    assert cat.load_table(f"{ns}.t").scan().to_arrow().num_rows == 2

    # The raw ErrorModel and status codes.
    headers = {"Authorization": f"Bearer {server.tokens(TENANT, WORKSPACE, ['writer'])}"}
    base = f"{server.base_url}/iceberg/v1/{WORKSPACE}"
    answer = httpx.get(f"{base}/namespaces/missing_ns/tables/t", headers=headers)
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "NoSuchNamespaceException"
    assert answer.json()["error"]["code"] == 404
    stale = {
        "requirements": [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 1}],
        "updates": [],
    }
    answer = httpx.post(f"{base}/namespaces/{ns}/tables/t", headers=headers, json=stale)
    assert answer.status_code == 409
    assert answer.json()["error"]["type"] == "CommitFailedException"
    answer = httpx.post(f"{base}/namespaces", headers=headers, content=b"{not json")
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "BadRequestException"
    answer = httpx.get(f"{base}/namespaces")
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "NotAuthorizedException"
    assert httpx.head(f"{base}/namespaces/{ns}", headers=headers).status_code == 204
    assert httpx.head(f"{base}/namespaces/{ns}/tables/nope", headers=headers).status_code == 404


def test_namespace_properties_and_paging(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    for i in range(5):
        cat.create_namespace((ns, f"child{i}"))
    summary = cat.update_namespace_properties(ns, removals={"owner", "absent"}, updates={"a": "1"})
    assert (summary.updated, summary.removed, summary.missing) == (["a"], ["owner"], ["absent"])
    assert cat.load_namespace_properties(ns) == {"a": "1"}
    headers = {"Authorization": f"Bearer {server.tokens(TENANT, WORKSPACE, ['reader'])}"}
    url = f"{server.base_url}/iceberg/v1/{WORKSPACE}/namespaces"
    seen: list[list[str]] = []
    token: str | None = ""
    while token is not None:
        params: dict[str, Any] = {"parent": ns, "pageSize": 2}
        if token:
            params["pageToken"] = token
        page = httpx.get(url, headers=headers, params=params).json()
        assert len(page["namespaces"]) <= 2
        seen += page["namespaces"]
        token = page.get("next-page-token")
    assert seen == [[ns, f"child{i}"] for i in range(5)]
    # A reader may not write.
    answer = httpx.post(url, headers=headers, json={"namespace": [f"{ns}_x"]})
    assert answer.status_code == 403
    assert answer.json()["error"]["type"] == "ForbiddenException"


def test_tenant_isolation_and_locations_outside_the_warehouse(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    table = cat.create_table(f"{ns}.secret", schema=SCHEMA)
    table.append(rows(0, 3))
    location = cat.load_table(f"{ns}.secret").metadata_location

    other = rest_catalog(server, tenant="intruder")
    other.create_namespace(ns)
    assert other.list_tables(ns) == []
    with pytest.raises(NoSuchTableError):
        other.load_table(f"{ns}.secret")
    # Registering (or creating at) a location of another tenant is refused.
    with pytest.raises(ForbiddenError):
        other.register_table(f"{ns}.stolen", location)
    with pytest.raises(ForbiddenError):
        other.create_table(
            f"{ns}.squat", schema=SCHEMA, location=location.rsplit("/metadata/", 1)[0]
        )
    with pytest.raises(ForbiddenError):
        other.create_table(f"{ns}.escape", schema=SCHEMA, location="file:///etc")
    # The path prefix and the warehouse must name the token's own workspace.
    headers = {"Authorization": f"Bearer {server.tokens('intruder', WORKSPACE, ['writer'])}"}
    answer = httpx.get(f"{server.base_url}/iceberg/v1/other/namespaces", headers=headers)
    assert answer.status_code == 403
    answer = httpx.get(
        f"{server.base_url}/iceberg/v1/config", headers=headers, params={"warehouse": "other"}
    )
    assert answer.status_code == 403
    config = httpx.get(f"{server.base_url}/iceberg/v1/config", headers=headers).json()
    assert config["overrides"]["prefix"] == WORKSPACE
    assert cat.load_table(f"{ns}.secret").scan().to_arrow().num_rows == 3


def _commit(server: LiveServer, path: str, body: Any, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.tokens(TENANT, WORKSPACE, ['writer'])}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.post(
        f"{server.base_url}/iceberg/v1/{WORKSPACE}/{path}", headers=headers, json=body
    )


def test_multi_table_transaction_is_one_catalog_commit(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    a = cat.create_table(f"{ns}.a", schema=SCHEMA)
    cat.create_table(f"{ns}.b", schema=SCHEMA)
    arco = arco_catalog(server)

    def change(name: str, uuid_: str, value: str) -> dict[str, Any]:
        return {
            "identifier": {"namespace": [ns], "name": name},
            "requirements": [{"type": "assert-table-uuid", "uuid": uuid_}],
            "updates": [{"action": "set-properties", "updates": {"k": value}}],
        }

    b_uuid = str(cat.load_table(f"{ns}.b").metadata.table_uuid)
    a_uuid = str(a.metadata.table_uuid)
    before = arco.version
    bad = _commit(
        server,
        "transactions/commit",
        {"table-changes": [change("a", a_uuid, "1"), change("b", a_uuid, "1")]},
    )
    assert bad.status_code == 409
    assert bad.json()["error"]["type"] == "CommitFailedException"
    assert arco.version == before
    assert "k" not in cat.load_table(f"{ns}.a").properties

    good = _commit(
        server,
        "transactions/commit",
        {"table-changes": [change("a", a_uuid, "2"), change("b", b_uuid, "2")]},
    )
    assert good.status_code == 204, good.text
    assert arco.version == before + 1
    assert cat.load_table(f"{ns}.a").properties["k"] == "2"
    assert cat.load_table(f"{ns}.b").properties["k"] == "2"
    # Iceberg table properties show through the Arco door as the table's properties.
    assert arco.get_table(ns, "b").properties["k"] == "2"


def test_commit_with_idempotency_key_is_applied_once(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    cat.create_table(f"{ns}.t", schema=SCHEMA)
    arco = arco_catalog(server)
    body = {"updates": [{"action": "set-properties", "updates": {"once": "yes"}}]}
    key = uuid.uuid4().hex
    first = _commit(server, f"namespaces/{ns}/tables/t", body, key)
    version = arco.version
    second = _commit(server, f"namespaces/{ns}/tables/t", body, key)
    assert first.status_code == second.status_code == 200
    assert first.json()["metadata-location"] == second.json()["metadata-location"]
    assert arco.version == version
    other = _commit(server, f"namespaces/{ns}/tables/t", {"updates": []}, key)
    assert other.status_code == 409


def _appender(uri: str, token: str, ident: str, start: int, barrier: Any, out: Any) -> None:
    """A separate process: load, wait for the other, append, retry once on conflict."""
    cat = load_catalog("arco", type="rest", uri=uri, token=token, warehouse=WORKSPACE)
    table = cat.load_table(ident)
    barrier.wait(timeout=60)
    failures = 0
    while True:
        try:
            table.append(rows(start, 3))
            break
        except CommitFailedException:
            failures += 1
            table = cat.load_table(ident)
    out.put(failures)


def test_two_processes_append_concurrently_and_both_land(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    cat.create_table(f"{ns}.shared", schema=SCHEMA, partition_spec=SPEC, properties=NO_RETRY)
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    token = server.tokens(TENANT, WORKSPACE, ["writer"])
    uri = f"{server.base_url}/iceberg"
    procs = [
        ctx.Process(target=_appender, args=(uri, token, f"{ns}.shared", s, barrier, out))
        for s in (0, 100)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    failures = sorted(out.get(timeout=5) for _ in procs)
    # Both loaded the same snapshot before either committed: exactly one lost.
    assert failures == [0, 1]
    table = cat.load_table(f"{ns}.shared")
    assert len(table.metadata.snapshots) == 2
    assert _sorted(table.scan().to_arrow()) == _sorted(pa.concat_tables([rows(0, 3), rows(100, 3)]))


def test_stage_create_commits_through_the_table_endpoint(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    with cat.create_table_transaction(f"{ns}.staged", schema=SCHEMA) as tx:
        tx.append(rows(0, 2))
        # Nothing is visible before the transaction commits.
        assert not cat.table_exists(f"{ns}.staged")
    table = cat.load_table(f"{ns}.staged")
    assert table.scan().to_arrow().num_rows == 2
    assert arco_catalog(server).get_table(ns, "staged").format == "iceberg"


def test_metrics_reports_are_accepted(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    cat.create_table(f"{ns}.m", schema=SCHEMA)
    report = {"report-type": "scan-report", "table-name": f"{ns}.m", "snapshot-id": 1}
    assert _commit(server, f"namespaces/{ns}/tables/m/metrics", report).status_code == 204
    assert _commit(server, f"namespaces/{ns}/tables/nope/metrics", report).status_code == 404
    assert (
        json.loads(_commit(server, f"namespaces/{ns}/tables/m/metrics", []).text)["error"]["code"]
        == 400
    )


def test_verify_hashes_metadata_files_and_gc_collects_unnamed_ones(server: LiveServer) -> None:
    tenant = "gcco"  # a scope of its own: this test expires its whole history
    cat = rest_catalog(server, tenant=tenant)
    ns = fresh_ns(cat)
    table = cat.create_table(f"{ns}.t", schema=SCHEMA)
    for start in (0, 10, 20):
        table = cat.load_table(f"{ns}.t")
        table.append(rows(start, 2))
    current = Path(cat.load_table(f"{ns}.t").metadata_location.removeprefix("file://"))
    folder = current.parent
    written = sorted(folder.glob("*.metadata.json"))
    assert len(written) == 4  # the create and three appends
    store, scope = open_store(server.store_url), Scope(tenant, WORKSPACE)

    report = verify(store, scope)
    assert report.ok, report.problems
    # A metadata file altered after its commit is found, by key.
    victim, original = written[1], written[1].read_bytes()
    assert b'"format-version":2' in original
    victim.write_bytes(original.replace(b'"format-version":2', b'"format-version":1'))
    found = [p for p in verify(store, scope).problems if p.key.endswith(victim.name)]
    assert len(found) == 1
    assert "SHA-256" in found[0].message
    victim.write_bytes(original)
    assert verify(store, scope).ok

    # An orphan (a metadata file no commit published) goes; every named one stays.
    orphan = folder / f"00009-{uuid.uuid4()}.metadata.json"
    orphan.write_bytes(current.read_bytes())
    later = datetime.now(UTC) + timedelta(minutes=5)
    gc = collect_garbage(store, scope, grace_seconds=60, now=later)
    assert any(k.endswith(orphan.name) for k in gc.deleted)
    assert sorted(folder.glob("*.metadata.json")) == written

    # Once history keeps only the head, the superseded metadata files go too.
    gc = collect_garbage(
        store, scope, grace_seconds=60, now=later, retention=RetentionPolicy(keep_versions=1)
    )
    assert sorted(folder.glob("*.metadata.json")) == [current]
    assert {Path(k).name for k in gc.deleted} >= {p.name for p in written[:-1]}
    assert verify(store, scope).ok
    assert cat.load_table(f"{ns}.t").scan().to_arrow().num_rows == 6


def arco_cli(server: LiveServer, *args: str) -> Any:
    """Run ``arco`` against the server's store as the tests' scope."""
    return CliRunner().invoke(
        cli_app,
        [*("--store", server.store_url, "--tenant", TENANT, "--workspace", WORKSPACE), *args],
        env={"ARCO_STORE": None, "ARCO_TENANT": None, "ARCO_WORKSPACE": None},
    )


def test_schema_changes_through_the_arco_door_reach_iceberg(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    table = cat.create_table(f"{ns}.orders", schema=SCHEMA, partition_spec=SPEC)
    table.append(rows(0, 4))
    before = cat.load_table(f"{ns}.orders").metadata_location

    added = arco_cli(server, "table", "add-column", f"{ns}.orders", "channel:string")
    assert added.exit_code == 0, added.output

    # pyiceberg sees the new column (a fresh field id above last-column-id) ...
    loaded = cat.load_table(f"{ns}.orders")
    assert loaded.metadata_location != before
    field = loaded.schema().find_field("channel")
    assert field.field_id == 4
    assert not field.required
    assert loaded.metadata.last_column_id == 4
    # ... and appends data with it; old rows read the new column as null.
    wide = rows(100, 2).append_column("channel", pa.array(["web", "shop"], pa.string()))
    loaded.append(wide)
    got = {
        r["id"]: r["channel"] for r in cat.load_table(f"{ns}.orders").scan().to_arrow().to_pylist()
    }
    assert got == {0: None, 1: None, 2: None, 3: None, 100: "web", 101: "shop"}

    # The Arco door names the metadata file the Iceberg door serves; verify hashes it.
    arco = arco_catalog(server)
    seen = arco.get_table(ns, "orders")
    assert seen.metadata_location == cat.load_table(f"{ns}.orders").metadata_location
    assert [c.name for c in seen.columns] == ["id", "region", "amount", "channel"]
    assert verify(arco.store, arco.scope).ok

    # A rename and a description through the Arco door; a drop of a column.
    assert (
        arco_cli(server, "table", "rename-column", f"{ns}.orders", "amount", "total").exit_code == 0
    )
    assert (
        arco_cli(server, "table", "set", f"{ns}.orders", "--description", "all orders").exit_code
        == 0
    )
    assert arco_cli(server, "table", "drop-column", f"{ns}.orders", "channel").exit_code == 0
    loaded = cat.load_table(f"{ns}.orders")
    assert [f.name for f in loaded.schema().fields] == ["id", "region", "total"]
    assert loaded.schema().find_field("total").field_id == 3
    assert loaded.properties["comment"] == "all orders"
    assert sorted(r["total"] for r in loaded.scan().to_arrow().to_pylist())[:2] == [0.0, 1.5]

    # The API's table PATCH (the server process) is the same door.
    token = server.tokens(TENANT, WORKSPACE, ["writer"])
    patched = httpx.patch(
        f"{server.base_url}/api/v1/namespaces/{ns}/tables/orders",
        json={"add_columns": [{"name": "note", "type": "string", "description": "why"}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert patched.status_code == 200, patched.text
    loaded = cat.load_table(f"{ns}.orders")
    assert loaded.schema().find_field("note").doc == "why"
    assert loaded.schema().find_field("note").field_id == 5  # 4 (channel) stays retired
    refused = httpx.patch(
        f"{server.base_url}/api/v1/namespaces/{ns}/tables/orders",
        json={"add_columns": [{"name": "tiny", "type": "uint16"}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 400, refused.text
    assert "Iceberg has no type uint16" in refused.text

    # The other way round: a rename through pyiceberg shows in `arco table show`.
    with loaded.update_schema() as update:
        update.rename_column("region", "area")
    shown = arco_cli(server, "--json", "table", "show", f"{ns}.orders")
    assert shown.exit_code == 0, shown.output
    described = json.loads(shown.stdout)
    assert [c["name"] for c in described["columns"]] == ["id", "area", "total", "note"]
    assert described["description"] == "all orders"


def test_arco_door_refuses_changes_iceberg_cannot_express(server: LiveServer) -> None:
    cat = rest_catalog(server)
    ns = fresh_ns(cat)
    cat.create_table(f"{ns}.orders", schema=SCHEMA, partition_spec=SPEC)
    before = cat.load_table(f"{ns}.orders").metadata_location
    arco = arco_catalog(server)
    version = arco.version
    for args, words in [
        (("add-column", f"{ns}.orders", "small:int8"), "Iceberg has no type int8"),
        (("add-column", f"{ns}.orders", "n:int64:not-null"), "not-null"),
        (("drop-column", f"{ns}.orders", "region"), "partition spec"),
    ]:
        out = arco_cli(server, "table", *args)
        assert out.exit_code != 0, args
        assert words in out.output, out.output
    # Refused means nothing written: same catalog version, same metadata file.
    assert arco.version == version
    assert cat.load_table(f"{ns}.orders").metadata_location == before
    with pytest.raises(Exception, match="cannot move Iceberg table"):
        arco.update_table(ns, "orders", location="file:///elsewhere")
