"""SQL over table data (issue #13): catalog tables by name, read by Arco, never by DuckDB."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arco.catalog.catalog import Catalog
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore, open_store
from arco.sql.engine import run_query
from arco.sql.errors import QueryError, QueryRejectedError, QueryTooLargeError
from arco.sql.limits import QueryLimits
from arco.sql.tabledata import TableDataError, TableFileMissingError, TableLocationError
from arco.sql.tables import SystemTables

SCOPE = Scope("acme", "main")
OTHER = Scope("globex", "main")
KEYS = Keys(SCOPE)


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _register(cat: Catalog, name: str, location: str | None, fmt: str = "parquet") -> None:
    ns, table = name.rsplit(".", 1)
    cat.create_namespace(ns, exist_ok=True)
    cat.create_table(ns, table, [{"name": "id", "type": "int64"}], format=fmt, location=location)


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return open_store(f"file://{tmp_path}/store")


@pytest.fixture
def cat(store: ObjectStore) -> Catalog:
    return Catalog(store, SCOPE)


def _orders(store: ObjectStore, cat: Catalog) -> None:
    folder = KEYS.root + "warehouse/sales/orders/"
    store.put(folder + "part-0.parquet", _parquet(pa.table({"id": [1, 2, 3], "r": list("aba")})))
    store.put(folder + "day=2/part-1.parquet", _parquet(pa.table({"id": [4], "r": ["c"]})))
    # Written by Spark/Hive next to the data: not table files.
    store.put(folder + "_SUCCESS", b"")
    store.put(folder + "_tmp/part-9.parquet", _parquet(pa.table({"id": [99], "r": ["x"]})))
    _register(cat, "sales.orders", folder)


def test_folder_of_parquet_files_by_qualified_name(store: ObjectStore, cat: Catalog) -> None:
    _orders(store, cat)
    system = SystemTables(store, SCOPE)
    result = run_query(system, "SELECT count(*) AS n, sum(id) AS s FROM sales.orders")
    assert result.rows == [[4, "10"]]
    # An alias, the bare table name as qualifier, and quoted names all resolve.
    rows = run_query(
        system, 'SELECT orders.r FROM "sales"."orders" WHERE orders.id > 2 ORDER BY 1'
    ).rows
    assert rows == [["a"], ["c"]]
    rows = run_query(system, "SELECT o.id FROM sales.orders AS o(id, r) WHERE o.r = 'b'").rows
    assert rows == [[2]]


def test_single_file_as_store_url_and_join_with_system_tables(
    store: ObjectStore, cat: Catalog
) -> None:
    key = KEYS.root + "warehouse/one/customers.parquet"
    store.put(key, _parquet(pa.table({"id": [7, 8], "name": ["ann", "bob"]})))
    # Registered as a URL of the store (what runs register), not a bare key.
    _register(cat, "crm.customers", f"{store.url.rstrip('/')}/{key}")
    rows = run_query(
        SystemTables(store, SCOPE),
        "SELECT c.name, t.format FROM crm.customers c JOIN system.tables t "
        "ON t.namespace = 'crm' AND t.name = 'customers' ORDER BY 1",
    ).rows
    assert rows == [["ann", "parquet"], ["bob", "parquet"]]


def test_as_of_version_resolves_tables_at_that_version(store: ObjectStore, cat: Catalog) -> None:
    _orders(store, cat)
    before = cat.snapshot().version
    store.put(KEYS.root + "warehouse/late.parquet", _parquet(pa.table({"id": [1]})))
    _register(cat, "sales.late", KEYS.root + "warehouse/late.parquet")
    system = SystemTables(store, SCOPE)
    assert run_query(system, "SELECT count(*) FROM sales.late").rows == [[1]]
    with pytest.raises(
        QueryError, match=f"namespace sales has no table late at catalog version {before}"
    ):
        run_query(system, "SELECT count(*) FROM sales.late", as_of_version=before)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("tenant=globex/workspace=main/warehouse/secret/", "outside this workspace"),
        ("tenant=acme/workspace=other/warehouse/secret/", "outside this workspace"),
        ("/etc/passwd", "absolute path"),
        ("tenant=acme/workspace=main/../../tenant=globex/workspace=main/warehouse/", "outside"),
        ("file:///etc/passwd", "outside this workspace's store"),
        ("s3://someone-elses-bucket/data.parquet", "outside this workspace's store"),
        ("tenant=acme/workspace=main/snapshots/catalog/", "Arco's own metadata"),
        ("tenant=acme/workspace=main/ledger/", "Arco's own metadata"),
    ],
)
def test_locations_outside_the_callers_data_are_refused_and_never_read(
    store: ObjectStore, cat: Catalog, location: str, message: str
) -> None:
    secret = OTHER.prefix + "warehouse/secret/data.parquet"
    store.put(secret, _parquet(pa.table({"id": [666]})))
    _register(cat, "x.stolen", location)
    reads: list[str] = []
    real_get = store.get

    def spy(key: str) -> tuple[bytes, str]:
        reads.append(key)
        return real_get(key)

    store.get = spy  # type: ignore[method-assign]
    with pytest.raises(TableLocationError, match=message):
        run_query(SystemTables(store, SCOPE), "SELECT * FROM x.stolen")
    assert not [k for k in reads if not k.startswith(SCOPE.prefix)]


def test_the_engine_still_opens_no_path(store: ObjectStore, cat: Catalog, tmp_path: Path) -> None:
    _orders(store, cat)
    path = tmp_path / "store" / KEYS.root / "warehouse/sales/orders/part-0.parquet"
    with pytest.raises((QueryRejectedError, QueryError)):
        run_query(SystemTables(store, SCOPE), f"SELECT * FROM read_parquet('{path}')")


def test_unreadable_format_and_missing_files(store: ObjectStore, cat: Catalog) -> None:
    _register(cat, "raw.events", KEYS.root + "warehouse/events.csv", fmt="csv")
    _register(cat, "raw.gone", KEYS.root + "warehouse/gone.parquet")
    _register(cat, "raw.empty", KEYS.root + "warehouse/empty/")
    _register(cat, "raw.nowhere", None)
    system = SystemTables(store, SCOPE)
    with pytest.raises(TableDataError, match="format 'csv'"):
        run_query(system, "SELECT * FROM raw.events")
    with pytest.raises(TableFileMissingError, match="does not exist"):
        run_query(system, "SELECT * FROM raw.gone")
    with pytest.raises(TableFileMissingError, match="no Parquet files"):
        run_query(system, "SELECT * FROM raw.empty")
    with pytest.raises(TableDataError, match="has no location"):
        run_query(system, "SELECT * FROM raw.nowhere")
    store.put(KEYS.root + "warehouse/gone.parquet", _parquet(pa.table({"id": [1]})))
    with pytest.raises(TableDataError, match="only Iceberg tables have snapshots"):
        run_query(system, "SELECT * FROM raw.gone AT (VERSION => 3)")


def test_a_file_that_is_not_parquet_is_a_query_error(store: ObjectStore, cat: Catalog) -> None:
    store.put(KEYS.root + "warehouse/bad.parquet", b"not parquet at all")
    _register(cat, "raw.bad", KEYS.root + "warehouse/bad.parquet")
    with pytest.raises(QueryError, match="not valid Parquet"):
        run_query(SystemTables(store, SCOPE), "SELECT * FROM raw.bad")


def test_data_over_the_byte_budget_is_too_large(store: ObjectStore, cat: Catalog) -> None:
    big = pa.table({"id": pa.array(range(200_000), pa.int64())})
    store.put(KEYS.root + "warehouse/big.parquet", _parquet(big))
    _register(cat, "raw.big", KEYS.root + "warehouse/big.parquet")
    system = SystemTables(store, SCOPE)
    with pytest.raises(QueryTooLargeError, match="data budget"):
        run_query(system, "SELECT count(*) FROM raw.big", limits=QueryLimits(max_data_bytes=10_000))
    assert run_query(system, "SELECT count(*) FROM raw.big").rows == [[200_000]]


def test_changed_files_are_read_again(store: ObjectStore, cat: Catalog) -> None:
    """The worker keeps table data by fingerprint: a new file must not serve old rows."""
    _orders(store, cat)
    system = SystemTables(store, SCOPE)
    assert run_query(system, "SELECT count(*) FROM sales.orders").rows == [[4]]
    folder = KEYS.root + "warehouse/sales/orders/"
    store.put(folder + "part-2.parquet", _parquet(pa.table({"id": [5], "r": ["d"]})))
    assert run_query(system, "SELECT count(*) FROM sales.orders").rows == [[5]]


def test_asset_table_written_by_a_run(tmp_path: Path) -> None:
    from arco import asset
    from arco.flow.definitions import Definitions
    from arco.flow.planner import plan
    from arco.flow.runner import Scheduler

    calls = {"n": 0}

    @asset(namespace="shop")
    def totals() -> pa.Table:
        calls["n"] += 1
        return pa.table({"day": ["mon", "tue"], "total": [10 * calls["n"], 20 * calls["n"]]})

    url = f"file://{tmp_path}/store"
    store = open_store(url)
    d = Definitions([totals])
    for _ in range(2):  # two materializations: the table is the newest one
        assert Scheduler(store, SCOPE, d, store_url=url).run(plan(d, "*")).state == "SUCCEEDED"
    rows = run_query(
        SystemTables(store, SCOPE), "SELECT count(*), sum(total) FROM shop.totals"
    ).rows
    assert rows == [[2, "60"]]
