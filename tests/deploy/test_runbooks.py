"""Every runbook's commands, run as written against a real store in the situation
the runbook is for (issue #16). A ``console`` block's ``$`` lines are commands;
the lines under one are output it must print (``...`` matches anything); a
command ending in ``# exit N`` must exit with N.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from arco.catalog.catalog import Catalog
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import open_store
from arco.domain.lock import LeaseLock
from arco.ledger.log import Ledger

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks"
SCOPE = Scope("default", "default")
SECRET = "runbook-tests-secret-0123456789-abcdefghij"
NEW_SECRET = "runbook-tests-new-secret-0123456789-abcdef"


def blocks(name: str) -> list[tuple[str, list[str], int]]:
    """(command, expected output lines, expected exit) of every console block."""
    text = (RUNBOOKS / name).read_text()
    out: list[tuple[str, list[str], int]] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                command, _, note = line[2:].partition("  # exit ")
                out.append((command.strip(), [], int(note) if note else 0))
            elif line.strip() and out:
                out[-1][1].append(line)
    return out


def run_runbook(name: str, env: dict[str, str], cwd: Path) -> list[str]:
    """Run the runbook's commands in order; returns their outputs."""
    arco_bin = str(Path(sys.executable).parent)
    full = {
        **os.environ,
        **env,
        "PATH": f"{arco_bin}:{os.environ.get('PATH', '')}",
        "COLUMNS": "200",
    }
    outputs = []
    steps = blocks(name)
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


@pytest.fixture
def store_env(tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "store"
    url = f"file://{folder}"
    return {
        "url": url,
        "folder": folder,
        "store": open_store(url),
        "env": {"ARCO_STORE": url, "STORE_DIR": str(folder), "ARCO_JWT_SECRET": SECRET},
    }


def test_stuck_lease(store_env: dict[str, Any], tmp_path: Path) -> None:
    store = store_env["store"]
    Catalog(store, SCOPE).create_namespace("sales")
    # A writer took the lease and died mid-commit: it never renews nor publishes.
    LeaseLock(store, Keys(SCOPE).lock("catalog"), ttl=0.2, holder="crashed").acquire()
    time.sleep(0.3)
    run_runbook("stuck-lease.md", store_env["env"], tmp_path)
    assert "runbook_check" in [n.name for n in Catalog(store, SCOPE).list_namespaces().items]


def test_compaction_lag(store_env: dict[str, Any], tmp_path: Path) -> None:
    ledger = Ledger(store_env["store"], SCOPE)
    for i in range(3):
        ledger.append(
            "executions",
            "run.created",
            {"run_id": f"r{i}", "seq": 0, "selection": "*"},
        )
    run_runbook("compaction-lag.md", store_env["env"], tmp_path)


def test_failed_verify(store_env: dict[str, Any], tmp_path: Path) -> None:
    store, folder = store_env["store"], store_env["folder"]
    Catalog(store, SCOPE).create_namespace("sales")
    key = next(m.key for m in store.list(SCOPE.prefix + "snapshots/"))
    backup = tmp_path / "backup"
    (backup / key).parent.mkdir(parents=True)
    (backup / key).write_bytes((folder / key).read_bytes())
    (folder / key).write_bytes(b"damaged")
    env = {**store_env["env"], "BACKUP": str(backup), "KEY": key}
    outputs = run_runbook("failed-verify.md", env, tmp_path)
    assert key in outputs[0]  # verify names the object


def test_lost_pointer(store_env: dict[str, Any], tmp_path: Path) -> None:
    store = store_env["store"]
    catalog = Catalog(store, SCOPE)
    catalog.create_namespace("sales")
    catalog.create_namespace("hr")
    store.delete(Keys(SCOPE).pointer("catalog"))
    run_runbook("lost-pointer.md", store_env["env"], tmp_path)
    names = {n.name for n in Catalog(store, SCOPE).list_namespaces().items}
    assert names == {"sales", "hr"}


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
    outputs = run_runbook("restore.md", store_env["env"], tmp_path)
    assert "orders" in outputs[1]  # the old version still shows the dropped table
    assert Catalog(store, SCOPE).get_table("sales", "orders").name == "orders"


def test_scaling_the_api(store_env: dict[str, Any], tmp_path: Path) -> None:
    run_runbook("scaling-the-api.md", store_env["env"], tmp_path)


def test_every_runbook_is_exercised() -> None:
    tested = {
        name.removeprefix("test_").replace("_", "-") + ".md"
        for name in globals()
        if name.startswith("test_") and name != "test_every_runbook_is_exercised"
    }
    assert {p.name for p in RUNBOOKS.glob("*.md")} == tested
