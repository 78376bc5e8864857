"""Fixtures of the automation tests: a file store, the test definitions, a clock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from arco.core import Scope
from arco.core.storage import ObjectStore, open_store
from arco.flow.definitions import Definitions, load_definitions

HERE = Path(__file__).resolve().parent
SCOPE = Scope("acme", "main")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("ARCO_TEST_STATE", str(state))
    return state


@pytest.fixture
def defs(monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> Iterator[Definitions]:
    monkeypatch.syspath_prepend(str(HERE))
    sys.modules.pop("autoassets", None)
    yield load_definitions("autoassets", path=HERE)
    sys.modules.pop("autoassets", None)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"file://{tmp_path}/store"


@pytest.fixture
def store(store_url: str) -> ObjectStore:
    return open_store(store_url)
