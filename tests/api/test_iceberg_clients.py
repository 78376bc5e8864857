"""Real Iceberg clients against ``/iceberg``: DuckDB's iceberg extension, and both
clients on the SeaweedFS S3 fixture.

DuckDB 1.5.5 with its iceberg, httpfs and avro extensions (PyPI wheels, loaded by
path: no network) runs in a virtual environment of its own, built once and cached
in ``~/.cache/arco-test/duckdb155`` (the project itself uses DuckDB 2.x). When it
cannot be built the DuckDB tests skip, or fail under ``ARCO_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog as IcebergCatalog
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import SignError
from pyiceberg.types import StringType

from arco.catalog import Catalog
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.domain.verify import verify
from conftest import SeaweedServer, require_or_skip

from .conftest import LiveServer, run_server
from .test_iceberg_rest import SCHEMA, SPEC, WORKSPACE, rows

CLIENT = Path(__file__).with_name("iceberg_duckdb_client.py")
DUCKDB_ENV = Path(os.environ.get("ARCO_DUCKDB155_ENV", "~/.cache/arco-test/duckdb155"))
PACKAGES = [
    "duckdb==1.5.5",
    "duckdb-extension-iceberg==1.5.5",
    "duckdb-extension-httpfs==1.5.5",
    "duckdb-extension-avro==1.5.5",
]


def duckdb155_python() -> str:
    """The interpreter of the cached DuckDB 1.5.5 environment (built on first use)."""
    env = DUCKDB_ENV.expanduser()
    python = env / "bin" / "python"
    marker = env / ".arco-ready"
    if marker.exists() and python.exists():
        return str(python)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PACKAGES],
            check=True,
            timeout=600,
            capture_output=True,
        )
        subprocess.run(
            [str(python), "-c", "import duckdb, duckdb_extension_iceberg"], check=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as exc:
        require_or_skip(f"cannot build the DuckDB 1.5.5 client environment in {env}: {exc}")
    marker.write_text("ok\n")
    return str(python)


@pytest.fixture(scope="module")
def duckdb155() -> str:
    """Path of the DuckDB 1.5.5 client's interpreter."""
    return duckdb155_python()


def duckdb_query(
    python: str, server: LiveServer, sql: str, s3: dict[str, str] | None = None
) -> dict[str, Any]:
    """ATTACH the server's Iceberg endpoint in DuckDB 1.5.5 and run ``sql``."""
    token = server.tokens("acme", WORKSPACE, ["reader"])
    args = [python, str(CLIENT), f"{server.base_url}/iceberg", token, WORKSPACE, sql]
    if s3 is not None:
        args.append(json.dumps(s3))
    done = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def rest(server: LiveServer, tenant: str = "acme", **extra: str) -> IcebergCatalog:
    """pyiceberg's RestCatalog on ``server``."""
    return load_catalog(
        "arco",
        type="rest",
        uri=f"{server.base_url}/iceberg",
        token=server.tokens(tenant, WORKSPACE, ["writer"]),
        warehouse=WORKSPACE,
        **extra,
    )


def sign(
    server: LiveServer,
    tenant: str,
    method: str,
    url: str,
    headers: dict[str, list[str]] | None = None,
    token: str | None = None,
) -> httpx.Response:
    """Ask the server's S3 signer to sign a request, as ``tenant``'s writer."""
    return httpx.post(
        f"{server.base_url}/iceberg/v1/aws/s3/sign",
        json={"method": method, "region": "us-east-1", "uri": url, "headers": headers or {}},
        headers={
            "Authorization": f"Bearer {token or server.tokens(tenant, WORKSPACE, ['writer'])}"
        },
    )


def write_orders(cat: IcebergCatalog) -> tuple[str, list[tuple[Any, ...]]]:
    """A partitioned table with two appends and an added column; its expected rows."""
    ns = f"ns_{uuid.uuid4().hex[:8]}"
    cat.create_namespace(ns)
    table = cat.create_table(f"{ns}.orders", schema=SCHEMA, partition_spec=SPEC)
    table.append(rows(0, 6))
    with cat.load_table(f"{ns}.orders").update_schema() as update:
        update.add_column("note", StringType())
    later = rows(6, 4).append_column("note", pa.array(["x"] * 4, pa.string()))
    cat.load_table(f"{ns}.orders").append(later)
    expected = sorted(
        (r["id"], r["region"], r["amount"], r.get("note"))
        for r in cat.load_table(f"{ns}.orders").scan().to_arrow().to_pylist()
    )
    assert len(expected) == 10
    return ns, expected


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server on a local folder."""
    workdir = tmp_path_factory.mktemp("iceberg-clients")
    with run_server(f"file://{workdir / 'store'}", workdir) as live:
        yield live


def test_duckdb_attach_reads_what_pyiceberg_wrote(file_server: LiveServer, duckdb155: str) -> None:
    ns, expected = write_orders(rest(file_server))
    sql = f"SELECT id, region, amount, note FROM lake.{ns}.orders ORDER BY id"
    got = duckdb_query(duckdb155, file_server, sql)
    assert [tuple(r) for r in got["rows"]] == expected
    listed = duckdb_query(
        duckdb155,
        file_server,
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{ns}'",
    )
    assert listed["rows"] == [["orders"]]


@pytest.mark.s3
def test_pyiceberg_and_duckdb_on_s3(seaweed: SeaweedServer, tmp_path: Path, duckdb155: str) -> None:
    store_url = seaweed.fresh_url()
    with run_server(store_url, tmp_path) as server:
        # The client brings its own S3 keys; endpoint, region and path style come
        # from the server's config (GET /v1/config defaults and each table's config).
        cat = rest(
            server,
            **{
                "s3.access-key-id": seaweed.access_key,
                "s3.secret-access-key": seaweed.secret_key,
            },
        )
        ns, expected = write_orders(cat)
        location = cat.load_table(f"{ns}.orders").location()
        assert location.startswith(f"s3://{seaweed.bucket}/")
        assert "/tenant=acme/workspace=lake/warehouse/" in location

        s3 = {
            "key_id": seaweed.access_key,
            "secret": seaweed.secret_key,
            "region": "us-east-1",
            "endpoint": seaweed.endpoint.removeprefix("http://"),
        }
        sql = f"SELECT id, region, amount, note FROM lake.{ns}.orders ORDER BY id"
        got = duckdb_query(duckdb155, server, sql, s3)
        assert [tuple(r) for r in got["rows"]] == expected

        scope = Scope("acme", WORKSPACE)
        store = open_store(store_url)
        assert Catalog(store, scope).get_table(ns, "orders").format == "iceberg"
        assert verify(store, scope).ok

        cat.purge_table(f"{ns}.orders")
        key_prefix = location.split(f"s3://{seaweed.bucket}/", 1)[1]
        prefix_in_store = key_prefix.split("/", 1)[1]  # drop the store's own prefix
        assert list(store.list(prefix_in_store)) == []


@pytest.fixture
def one_io_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyiceberg with one I/O worker thread.

    pyiceberg 0.12's fsspec FileIO occasionally sends a request *unsigned* when
    several of its worker threads open S3 files at once (seen here: a HEAD that
    never reached the signer came back 403 from the store, 2 runs in 7 under
    load). That is a client-side race, not the signer's; with one I/O thread every
    request is signed. A refused signature still fails these tests.
    """
    from pyiceberg.utils.concurrent import ExecutorFactory

    monkeypatch.setenv("PYICEBERG_MAX_WORKERS", "1")
    monkeypatch.setattr(ExecutorFactory, "_instance", None)


@pytest.mark.s3
@pytest.mark.usefixtures("one_io_thread")
def test_pyiceberg_with_only_a_token_reads_and_writes_s3_through_remote_signing(
    seaweed: SeaweedServer, tmp_path: Path
) -> None:
    store_url = seaweed.fresh_url()
    with run_server(store_url, tmp_path) as server:
        # No S3 keys at all: the fsspec FileIO asks the catalog to sign each request.
        cat = rest(server, **{"py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"})
        ns, expected = write_orders(cat)
        table = cat.load_table(f"{ns}.orders")
        assert table.io.properties["s3.signer"] == "S3V4RestSigner"
        got = sorted(
            (r["id"], r["region"], r["amount"], r.get("note"))
            for r in table.scan().to_arrow().to_pylist()
        )
        assert got == expected

        # A reader token may sign reads, not writes.
        reader = load_catalog(
            "arco",
            type="rest",
            uri=f"{server.base_url}/iceberg",
            token=server.tokens("acme", WORKSPACE, ["reader"]),
            warehouse=WORKSPACE,
            **{"py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"},
        )
        assert reader.load_table(f"{ns}.orders").scan().to_arrow().num_rows == 10
        with pytest.raises(SignError, match="Failed to sign request 403"):
            reader.load_table(f"{ns}.orders").append(
                rows(50, 1).append_column("note", pa.array(["r"], pa.string()))
            )

        # The store itself refuses unsigned requests: the signatures above were real.
        metadata_url = table.metadata_location.replace(
            f"s3://{seaweed.bucket}/", f"{seaweed.endpoint}/{seaweed.bucket}/"
        )
        assert httpx.get(metadata_url).status_code == 403
        signed = sign(server, "acme", "GET", metadata_url)
        assert signed.status_code == 200, signed.text
        headers = {k: v[0] for k, v in signed.json()["headers"].items()}
        fetched = httpx.get(signed.json()["uri"], headers=headers)
        assert fetched.status_code == 200
        assert json.loads(fetched.content)["location"] == table.location()

        # As an attacker with a valid token of tenant "acme".
        other = rest(server, tenant="evil", **{"py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"})
        other_ns, _ = write_orders(other)
        theirs = other.load_table(f"{other_ns}.orders").metadata_location.replace(
            f"s3://{seaweed.bucket}/", f"{seaweed.endpoint}/{seaweed.bucket}/"
        )
        folder = metadata_url.rsplit("/metadata/", 1)[0]
        store_root = metadata_url.split("/tenant=", 1)[0]
        bucket_url = f"{seaweed.endpoint}/{seaweed.bucket}"
        attacks = [
            ("GET", theirs),  # another tenant's file
            ("GET", f"{bucket_url}?list-type=2&prefix="),  # the whole bucket
            ("GET", f"{bucket_url}?list-type=2"),
            (
                "GET",
                f"{bucket_url}?list-type=2&prefix={quote(store_root.split(bucket_url + '/')[1])}/",
            ),
            ("DELETE", f"{bucket_url}/"),
            ("GET", f"{folder}/../../../../catalog/_pointer"),
            ("GET", f"{folder}/%2e%2e/%2e%2e/x"),
            ("GET", f"{folder}%2F..%2F..%2Fother"),
            ("GET", f"{folder}/data/..%5C..%5Cx"),
            ("GET", f"{store_root}/tenant=acme/workspace=lake/catalog/_pointer"),
            ("GET", f"{folder}/x?acl"),
            ("POST", f"{bucket_url}?delete"),
            ("POST", f"{folder}/x"),
            ("PUT", f"{folder}/x?policy"),
            ("GET", theirs.replace("127.0.0.1", "localhost")),
            ("GET", metadata_url.replace(f"/{seaweed.bucket}/", "/other-bucket/")),
        ]
        for method, url in attacks:
            refused = sign(server, "acme", method, url)
            assert refused.status_code == 403, (method, url, refused.text)
        copy = sign(
            server, "acme", "PUT", f"{folder}/data/x.parquet", {"x-amz-copy-source": [theirs]}
        )
        assert copy.status_code == 403, copy.text
        assert sign(server, "acme", "GET", metadata_url, token="not-a-token").status_code == 401
