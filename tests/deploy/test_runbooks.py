"""Every runbook's commands, run as written against a real store in the situation
the runbook is for (issue #16): a local folder, and for the runbooks about the
store's contents also S3 (the session's SeaweedFS server, see tests/conftest.py).

A ``console`` block's ``$`` lines are commands; the lines under one are output it
must print (``...`` matches anything); a command ending in ``# exit N`` must exit
with N. A block opened with ```` ```console file ```` or ```` ```console s3 ````
runs only on that kind of store (the runbook's steps that differ by store).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from arco.catalog.catalog import Catalog
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.domain.lock import LeaseLock
from arco.ledger.log import Ledger
from conftest import SeaweedServer, require_or_skip  # tests/conftest.py

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks"
SCOPE = Scope("default", "default")
SECRET = "runbook-tests-secret-0123456789-abcdefghij"
NEW_SECRET = "runbook-tests-new-secret-0123456789-abcdef"


def blocks(name: str, backend: str = "file") -> list[tuple[str, list[str], int]]:
    """(command, expected output lines, expected exit) of every console block that
    runs on ``backend``."""
    text = (RUNBOOKS / name).read_text()
    out: list[tuple[str, list[str], int]] = []
    for only, block in re.findall(r"```console([^\n]*)\n(.*?)```", text, re.S):
        if only.strip() not in ("", backend):
            continue
        for line in block.splitlines():
            if line.startswith("$ "):
                command, _, note = line[2:].partition("  # exit ")
                out.append((command.strip(), [], int(note) if note else 0))
            elif line.strip() and out:
                out[-1][1].append(line)
    return out


def run_runbook(name: str, env: dict[str, str], cwd: Path, backend: str = "file") -> list[str]:
    """Run the runbook's commands for ``backend`` in order; returns their outputs."""
    arco_bin = str(Path(sys.executable).parent)
    full = {
        **os.environ,
        **env,
        "PATH": f"{arco_bin}:{os.environ.get('PATH', '')}",
        "COLUMNS": "200",
    }
    outputs = []
    steps = blocks(name, backend)
    assert steps, f"{name} has no console commands"
    for command, expected, code in steps:
        done = subprocess.run(
            ["bash", "-c", command],
            env=full,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        both = done.stdout + done.stderr
        assert done.returncode == code, f"{name}: $ {command}\n{both}"
        lines = both.splitlines()
        for want in expected:
            pattern = want.replace("[", "[[]").replace("...", "*")
            assert any(fnmatch.fnmatchcase(got, pattern) for got in lines), (
                f"{name}: $ {command}: no line like {want!r} in\n{both}"
            )
        outputs.append(both)
    return outputs


STORES = ["file", pytest.param("s3", marks=pytest.mark.s3)]


def aws_cli() -> str:
    """The AWS CLI, which the S3 steps of the runbooks use (Debian's awscli in CI)."""
    found = shutil.which("aws")
    if found is None:
        require_or_skip("the AWS CLI is not installed (apt-get install awscli)")
    return str(found)


@pytest.fixture(scope="session")
def versioned_bucket(seaweed: SeaweedServer) -> str:
    """A bucket with versioning on, as deploy/terraform/s3 makes it."""
    bucket = "runbooks"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_PAGER": "",
    }
    for args in (
        ["s3api", "create-bucket", "--bucket", bucket],
        [
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            bucket,
            "--versioning-configuration",
            "Status=Enabled",
        ],
    ):
        done = subprocess.run(
            [aws_cli(), "--endpoint-url", seaweed.endpoint, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return bucket


@pytest.fixture(params=STORES)
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The store a runbook runs against, and the environment its commands see."""
    env = {"ARCO_JWT_SECRET": SECRET}
    if request.param == "file":
        folder = tmp_path / "store"
        url = f"file://{folder}"
        env.update(STORE_DIR=str(folder))
    else:
        server: SeaweedServer = request.getfixturevalue("seaweed")
        prefix = uuid.uuid4().hex
        bucket = server.bucket
        if request.node.get_closest_marker("versioned"):
            bucket = request.getfixturevalue("versioned_bucket")
        url = server.url(prefix).replace(f"s3://{server.bucket}/", f"s3://{bucket}/", 1)
        env.update(
            BUCKET=bucket,
            PREFIX=f"{prefix}/",
            S3_ENDPOINT=server.endpoint,
            AWS_ACCESS_KEY_ID=server.access_key,
            AWS_SECRET_ACCESS_KEY=server.secret_key,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_PAGER="",  # AWS CLI v2 pages through less by default
        )
    env["ARCO_STORE"] = url
    return {"backend": request.param, "url": url, "store": open_store(url), "env": env}


def test_stuck_lease(store_env: dict[str, Any], tmp_path: Path) -> None:
    store = store_env["store"]
    Catalog(store, SCOPE).create_namespace("sales")
    # A writer took the lease and died mid-commit: it never renews nor publishes.
    LeaseLock(store, Keys(SCOPE).lock("catalog"), ttl=0.2, holder="crashed").acquire()
    time.sleep(0.3)
    run_runbook("stuck-lease.md", store_env["env"], tmp_path, store_env["backend"])
    assert "runbook_check" in [n.name for n in Catalog(store, SCOPE).list_namespaces().items]


def test_compaction_lag(store_env: dict[str, Any], tmp_path: Path) -> None:
    ledger = Ledger(store_env["store"], SCOPE)
    for i in range(3):
        ledger.append(
            "executions",
            "run.created",
            {"run_id": f"r{i}", "seq": 0, "selection": "*"},
        )
    run_runbook("compaction-lag.md", store_env["env"], tmp_path, store_env["backend"])


@pytest.mark.versioned
def test_failed_verify(store_env: dict[str, Any], tmp_path: Path) -> None:
    store, backend = store_env["store"], store_env["backend"]
    Catalog(store, SCOPE).create_namespace("sales")
    key = next(m.key for m in store.list(SCOPE.prefix + "snapshots/"))
    good, _ = store.get(key)
    env = {**store_env["env"], "KEY": key}
    if backend == "file":
        folder = Path(env["STORE_DIR"])
        backup = tmp_path / "backup"
        (backup / key).parent.mkdir(parents=True)
        (backup / key).write_bytes((folder / key).read_bytes())
        (folder / key).write_bytes(b"damaged")
        env["BACKUP"] = str(backup)
    else:
        aws_cli()
        # Someone outside Arco's roles overwrote it; the bucket keeps the old version.
        store.put(key, b"damaged", "overwrite")
    outputs = run_runbook("failed-verify.md", env, tmp_path, backend)
    assert key in outputs[0]  # verify names the object
    assert store.get(key)[0] == good


def test_lost_pointer(store_env: dict[str, Any], tmp_path: Path) -> None:
    store = store_env["store"]
    catalog = Catalog(store, SCOPE)
    catalog.create_namespace("sales")
    catalog.create_namespace("hr")
    store.delete(Keys(SCOPE).pointer("catalog"))
    run_runbook("lost-pointer.md", store_env["env"], tmp_path, store_env["backend"])
    names = {n.name for n in Catalog(store, SCOPE).list_namespaces().items}
    assert names == {"sales", "hr"}


@pytest.mark.parametrize("store_env", ["file"], indirect=True)  # no store involved
def test_key_rotation(store_env: dict[str, Any], tmp_path: Path) -> None:
    from arco.api.auth import AuthenticationError, TokenVerifier

    env = {**store_env["env"], "NEW_SECRET": NEW_SECRET}
    outputs = run_runbook("key-rotation.md", env, tmp_path)
    token = outputs[0].strip().splitlines()[-1]
    new = TokenVerifier(secret=NEW_SECRET, issuer="arco", audience="arco")
    assert new.verify(token).has("writer")
    with pytest.raises(AuthenticationError):
        TokenVerifier(secret=SECRET, issuer="arco", audience="arco").verify(token)


def test_restore(store_env: dict[str, Any], tmp_path: Path) -> None:
    store = store_env["store"]
    catalog = Catalog(store, SCOPE)
    catalog.create_namespace("sales")
    catalog.create_table("sales", "orders", [{"name": "id", "type": "int64"}])
    catalog.drop_table("sales", "orders")
    outputs = run_runbook("restore.md", store_env["env"], tmp_path, store_env["backend"])
    assert "orders" in outputs[1]  # the old version still shows the dropped table
    assert Catalog(store, SCOPE).get_table("sales", "orders").name == "orders"


@pytest.mark.parametrize("store_env", ["file"], indirect=True)  # no store involved
def test_scaling_the_api(store_env: dict[str, Any], tmp_path: Path) -> None:
    run_runbook("scaling-the-api.md", store_env["env"], tmp_path)


def test_every_runbook_is_exercised() -> None:
    tested = {
        name.removeprefix("test_").replace("_", "-") + ".md"
        for name in globals()
        if name.startswith("test_") and name != "test_every_runbook_is_exercised"
    }
    assert {p.name for p in RUNBOOKS.glob("*.md")} == tested
