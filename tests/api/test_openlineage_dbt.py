"""A real dbt project, run by ``dbt-ol`` with dbt-duckdb, reporting to ``arco serve``.

dbt needs its own virtual environment (dbt-duckdb pins a DuckDB that conflicts
with Arco's); the fixture builds it once and caches it under
``~/.cache/arco-tests/`` (``ARCO_TEST_CACHE`` overrides). When it cannot be built
(no package registry), the test is skipped, or failed under ``ARCO_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arco.cli.main import app
from conftest import require_or_skip  # tests/conftest.py (pytest puts tests/ on sys.path)

from .conftest import LiveServer

#: Pinned as shared/RECIPES.md says: unpinned pip picks a dbt 2.x that downloads a binary.
DBT_REQUIREMENTS = ("dbt-core>=1.9,<1.11", "dbt-duckdb>=1.9,<1.11", "openlineage-dbt")


@pytest.fixture(scope="session")
def dbt_venv() -> Path:
    """A cached virtual environment with dbt-core, dbt-duckdb and openlineage-dbt."""
    cache = Path(os.environ.get("ARCO_TEST_CACHE", Path.home() / ".cache" / "arco-tests"))
    tag = hashlib.sha256("\n".join(DBT_REQUIREMENTS).encode()).hexdigest()[:12]
    venv = cache / f"dbt-{tag}"
    ready = venv / ".ready"
    if ready.is_file():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    python = shutil.which("python3.11") or sys.executable
    try:
        subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", *DBT_REQUIREMENTS],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        out = getattr(exc, "stderr", b"") or b""
        require_or_skip(f"could not build the dbt environment: {exc} {out[-1000:]!r}")
    ready.write_text("\n".join(DBT_REQUIREMENTS))
    return venv


def _project(root: Path) -> None:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        textwrap.dedent(
            """\
            name: shop
            version: "1.0"
            config-version: 2
            profile: shop
            model-paths: ["models"]
            models:
              shop:
                +materialized: table
            """
        )
    )
    (root / "profiles.yml").write_text(
        textwrap.dedent(
            f"""\
            shop:
              target: dev
              outputs:
                dev:
                  type: duckdb
                  path: {root / "shop.duckdb"}
                  threads: 1
            """
        )
    )
    (root / "models" / "stg_customers.sql").write_text(
        "select 1 as id, 'ada' as name union all select 2 as id, 'grace' as name\n"
    )
    (root / "models" / "customers.sql").write_text(
        "select id, upper(name) as name_upper from {{ ref('stg_customers') }}\n"
    )


def _arco(server: LiveServer, tenant: str, *args: str) -> str:
    env = {"ARCO_STORE": server.store_url, "ARCO_TENANT": tenant, "ARCO_WORKSPACE": "main"}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def test_dbt_ol_run_reports_models_runs_and_column_lineage(
    dbt_venv: Path, live_server: LiveServer, tmp_path: Path
) -> None:
    tenant = f"dbt{uuid.uuid4().hex[:8]}"
    token = live_server.tokens(tenant=tenant, workspace="main", roles=["writer"])
    project = tmp_path / "shop"
    _project(project)
    env = {
        "PATH": f"{dbt_venv / 'bin'}:{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "OPENLINEAGE_URL": live_server.base_url,
        "OPENLINEAGE_API_KEY": token,
        "OPENLINEAGE_NAMESPACE": "dbt-shop",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    done = subprocess.run(
        [str(dbt_venv / "bin" / "dbt-ol"), "run", "--profiles-dir", "."],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    _arco(live_server, tenant, "compact")
    shown = _arco(live_server, tenant, "lineage", "show", "shop.main.customers", "--upstream")
    assert "<- shop.main.stg_customers" in shown, shown

    runs = json.loads(_arco(live_server, tenant, "--json", "runs", "list", "--all"))
    external = [r for r in runs if r["source"] == "openlineage"]
    states = {r["selection"].split("/", 1)[1]: r["state"] for r in external}
    model_jobs = [j for j in states if j.endswith(("stg_customers", "customers"))]
    assert len(model_jobs) >= 2, states
    assert all(states[j] == "COMPLETE" for j in model_jobs), states
    assert any(r["parent_run_id"] for r in external)  # models are children of the dbt run

    columns = _arco(
        live_server, tenant, "lineage", "show", "shop.main.customers", "--column", "name_upper"
    )
    assert "<- shop.main.stg_customers.name" in columns, columns
