"""Which store a command uses: --store > ARCO_STORE > nearest arco.toml > ./.arco.

The bug (#10 item 8): ``[store] url`` of ``arco.toml`` was ignored and the store
was ``./.arco`` of whatever folder a command ran in, so ``arco assets list`` from a
project's subfolder created a second, empty store and showed every asset as never
materialized.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from arco.api.settings import Settings as ApiSettings
from arco.cli.main import app
from arco.core.config import absolute_store_url, resolve_store

runner = CliRunner()
CLEAN = dict.fromkeys(("ARCO_STORE", "ARCO_TENANT", "ARCO_WORKSPACE", "ARCO_PROJECT_DIR"))

ASSETS = """
from arco import asset


@asset(namespace="raw", code_version="1")
def numbers() -> dict[str, int]:
    return {"n": 3}


@asset(namespace="raw", code_version="1")
def doubled(numbers: dict[str, int]) -> dict[str, int]:
    return {"n": numbers["n"] * 2}
"""


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env={**CLEAN, **(env or {})})


def js(*args: str, env: dict[str, str] | None = None) -> Any:
    result = cli("--json", *args, env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project whose arco.toml names a store in a folder of its own, with a subfolder."""
    root = tmp_path / "proj"
    module = f"storeproj_{uuid.uuid4().hex[:8]}"
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(ASSETS)
    (root / "arco.toml").write_text(
        f'[project]\nname = "p"\nmodule = "{module}"\n\n[store]\nurl = "file://./data/store"\n'
    )
    (root / "notebooks" / "deep").mkdir(parents=True)
    for var in CLEAN:
        monkeypatch.delenv(var, raising=False)
    yield root
    for name in [m for m in sys.modules if m.startswith(module)]:
        del sys.modules[name]


def test_runs_and_asset_listings_agree_from_any_folder_of_the_project(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "notebooks")
    result = cli("run", "*", "--executor", "inline")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    for folder in (project, project / "notebooks", project / "notebooks" / "deep"):
        monkeypatch.chdir(folder)
        assets = js("assets", "list")
        assert {a["key"]: bool(a["last_materialized"]) for a in assets} == {
            "raw.numbers": True,
            "raw.doubled": True,
        }, folder
        assert not any(a["stale"] for a in assets)
        runs = js("runs", "list")
        assert [r["state"] for r in runs] == ["SUCCEEDED"]
    # The one store is the one arco.toml names, relative to arco.toml's folder.
    assert (project / "data" / "store" / "tenant=default").is_dir()
    assert not list(project.rglob(".arco"))


def test_info_says_which_store_and_why(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "notebooks" / "deep")
    info = js("info")
    assert info["store"] == {
        "url": f"file://{project / 'data' / 'store'}",
        "origin": "arco.toml",
        "config": str(project / "arco.toml"),
    }
    assert info["project"]["root"] == str(project)
    text = cli("info").stdout
    assert str(project / "data" / "store") in text
    assert str(project / "arco.toml") in text
    assert "store" in cli("--help").stdout
    assert "ARCO_STORE" in cli("--help").stdout


def test_arco_store_beats_arco_toml_and_the_option_beats_both(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "notebooks")
    env_store, flag_store = tmp_path / "from-env", tmp_path / "from-flag"
    env = {"ARCO_STORE": f"file://{env_store}"}
    assert js("info", env=env)["store"]["origin"] == "ARCO_STORE"
    assert cli("namespace", "create", "by_env", env=env).exit_code == 0
    assert (
        cli("--store", f"file://{flag_store}", "namespace", "create", "by_flag", env=env).exit_code
        == 0
    )
    assert cli("namespace", "create", "by_toml").exit_code == 0
    names = lambda *a, **k: [n["name"] for n in js(*a, "namespace", "list", **k)]  # noqa: E731
    assert names(env=env) == ["by_env"]
    assert names("--store", f"file://{flag_store}", env=env) == ["by_flag"]
    assert names() == ["by_toml"]
    assert (project / "data" / "store").is_dir()
    # Relative paths given by the option or the variable are relative to the current folder.
    rel = js("--store", "file://../elsewhere", "info")["store"]
    assert rel == {"url": f"file://{project / 'elsewhere'}", "origin": "--store", "config": None}
    rel_env = js("info", env={"ARCO_STORE": "here-store"})["store"]["url"]
    assert rel_env == f"file://{project / 'notebooks' / 'here-store'}"


def test_make_dev_form_keeps_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cd demo && arco --store file://../.arco dev`` uses the repository's ./.arco."""
    demo = tmp_path / "repo" / "demo"
    demo.mkdir(parents=True)
    (demo / "arco.toml").write_text(
        '[project]\nmodule = "demo_pipeline"\n\n[store]\nurl = "file://./.arco"\n'
    )
    monkeypatch.chdir(demo)
    assert (
        js("--store", "file://../.arco", "info")["store"]["url"]
        == f"file://{tmp_path / 'repo' / '.arco'}"
    )
    assert js("info")["store"]["url"] == f"file://{demo / '.arco'}"


def test_without_arco_toml_the_store_is_dot_arco_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    info = js("info")
    assert info["store"]["origin"] == "default"
    assert info["store"]["url"] == f"file://{tmp_path / '.arco'}"
    assert info["project"] is None


def test_arco_toml_without_a_store_means_dot_arco_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "arco.toml").write_text('[project]\nmodule = "m"\n')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert js("info")["store"]["url"] == f"file://{tmp_path / '.arco'}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[store\nurl=", "invalid TOML"),
        ('store = "x"\n', "[store] must be a table"),
        ("[store]\nurl = 3\n", "url must be"),
    ],
)
def test_a_broken_arco_toml_is_one_error_line_and_does_not_block_other_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    (tmp_path / "arco.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = cli("namespace", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert cli("--help").exit_code == 0
    # An explicit store needs no arco.toml.
    assert cli("--store", f"file://{tmp_path / 's'}", "namespace", "list").exit_code == 0


def test_resolution_rules_as_a_library(tmp_path: Path) -> None:
    assert (
        absolute_store_url("s3://bucket/prefix?region=x", tmp_path) == "s3://bucket/prefix?region=x"
    )
    assert absolute_store_url("memory://name", tmp_path) == "memory://name"
    assert absolute_store_url("file:///abs/x", tmp_path) == "file:///abs/x"
    assert absolute_store_url("file://", tmp_path) == "file://"  # the factory reports it
    assert absolute_store_url("rel/x", tmp_path) == f"file://{tmp_path / 'rel' / 'x'}"
    (tmp_path / "arco.toml").write_text('[store]\nurl = "s3://b/p"\n')
    choice = resolve_store(env={}, start=tmp_path)
    assert (choice.url, choice.origin) == ("s3://b/p", "arco.toml")


def test_the_api_server_resolves_the_store_the_same_way(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the server's working folder is not the project
    monkeypatch.setenv("ARCO_PROJECT_DIR", str(project / "notebooks"))
    assert ApiSettings.from_env().store_url == f"file://{project / 'data' / 'store'}"
    monkeypatch.setenv("ARCO_STORE", "file://./srv")
    assert ApiSettings.from_env().store_url == f"file://{tmp_path / 'srv'}"
    assert ApiSettings.from_env(store_url="memory://x").store_url == "memory://x"


def test_a_real_process_from_a_subfolder_uses_the_project_store(project: Path) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k not in CLEAN}
    proc = subprocess.run(
        [sys.executable, "-m", "arco.cli.main", "namespace", "create", "raw"],
        cwd=project / "notebooks" / "deep",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (project / "data" / "store" / "tenant=default" / "workspace=default").is_dir()
    assert not (project / "notebooks" / "deep" / ".arco").exists()
