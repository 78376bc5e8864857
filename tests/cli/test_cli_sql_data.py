"""``arco sql`` over a catalog table's data (issue #13): answers, and one-line errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from arco.catalog.catalog import Catalog
from arco.cli import main
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import open_store

runner = CliRunner()
SCOPE = Scope("default", "default")


def _cli(store: str, *args: str) -> tuple[int, str, str]:
    env: dict[str, str | None] = {"ARCO_STORE": None, "ARCO_TENANT": None, "ARCO_WORKSPACE": None}
    result = runner.invoke(
        main.app,
        ["--store", store, "--tenant", "default", "--workspace", "default", *args],
        env=env,
    )
    return result.exit_code, result.stdout, result.stderr


def test_arco_sql_counts_a_parquet_table_and_refuses_foreign_locations(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    store = open_store(url)
    key = Keys(SCOPE).warehouse_prefix() + "ns/t.parquet"
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(42))}), sink)
    store.put(key, sink.getvalue())
    cat = Catalog(store, SCOPE)
    cat.create_namespace("ns")
    cat.create_table("ns", "t", [{"name": "id", "type": "int64"}], location=key)
    cat.create_table("ns", "away", [{"name": "id", "type": "int64"}], location="/etc/hosts")

    code, out, err = _cli(url, "--json", "sql", "select count(*) from ns.t")
    assert (code, err) == (0, "")
    assert json.loads(out)["rows"] == [[42]]
    code, out, err = _cli(url, "sql", "select count(*) AS n from ns.t")
    assert code == 0
    assert "42" in out

    code, out, err = _cli(url, "sql", "select * from ns.away")
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "absolute path" in err
