"""Layering (DESIGN.md section 2): imports point downwards only.

core imports nothing of arco but itself; catalog imports core and catalog; flow
(when it exists) imports core, catalog and flow. Checked on the source with ``ast``,
so an import hidden inside a function or under ``TYPE_CHECKING`` counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: layer package -> packages of arco it may import (itself included)
ALLOWED: dict[str, tuple[str, ...]] = {
    "arco.core": ("arco.core",),
    "arco.catalog": ("arco.core", "arco.catalog"),
    "arco.flow": ("arco.core", "arco.catalog", "arco.flow"),
    # The Iceberg REST catalog: below the API server, which mounts it (ADR 012).
    "arco.iceberg": ("arco.core", "arco.catalog", "arco.iceberg"),
}


def module_name(path: Path, src: Path = SRC) -> str:
    """Dotted module name of a file under ``src`` (``__init__`` names its package)."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every module ``source`` imports, as absolute dotted names with line numbers."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
            else:
                base = node.module or ""
            out.append((node.lineno, base))
            # ``from arco import catalog`` imports the submodule arco.catalog.
            if base == "arco":
                out.extend((node.lineno, f"arco.{alias.name}") for alias in node.names)
    return out


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(source: str, module: str, layer: str, is_package: bool = False) -> list[str]:
    """Forbidden imports of ``module`` (in ``layer``) as readable strings."""
    allowed = ALLOWED[layer]
    bad = []
    for lineno, name in imported_modules(source, module, is_package):
        if not _within(name, "arco"):
            continue
        if name == "arco" or not any(_within(name, ok) for ok in allowed):
            bad.append(f"{module}:{lineno} imports {name} (layer {layer} may import {allowed})")
    return bad


def _layer_files(layer: str) -> list[Path]:
    folder = SRC.joinpath(*layer.split("."))
    return sorted(folder.rglob("*.py")) if folder.is_dir() else []


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_downwards(layer: str) -> None:
    files = _layer_files(layer)
    if layer != "arco.flow":
        assert files, f"no sources found for {layer} under {SRC}"
    problems: list[str] = []
    for path in files:
        problems += violations(
            path.read_text(encoding="utf-8"),
            module_name(path),
            layer,
            is_package=path.name == "__init__.py",
        )
    assert problems == []


def test_layer_files_cover_every_module() -> None:
    # A sanity check on the walk itself: the storage backends live in a sub-package.
    names = {module_name(p) for p in _layer_files("arco.core")}
    assert "arco.core.storage.faults" in names
    assert "arco.core.storage" in names
    assert "arco.catalog.domain" in {module_name(p) for p in _layer_files("arco.catalog")}


@pytest.mark.parametrize(
    ("source", "module", "layer", "is_package"),
    [
        ("from arco.catalog import Catalog\n", "arco.core.keys", "arco.core", False),
        ("import arco.cli.main\n", "arco.core.scope", "arco.core", False),
        ("from ..catalog import domain\n", "arco.core.keys", "arco.core", False),
        ("from ...catalog import domain\n", "arco.core.storage.base", "arco.core", False),
        ("from ... import catalog\n", "arco.core.storage", "arco.core", True),
        ("from arco import catalog\n", "arco.core.ids", "arco.core", False),
        ("import arco\n", "arco.core.ids", "arco.core", False),
        ("def f():\n    from arco.flow import x\n", "arco.catalog.gc", "arco.catalog", False),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import arco.api\n",
            "arco.catalog.verify",
            "arco.catalog",
            False,
        ),
        ("from arco.cli import main\n", "arco.flow.planner", "arco.flow", False),
    ],
)
def test_checker_flags_forbidden_imports(
    source: str, module: str, layer: str, is_package: bool
) -> None:
    assert violations(source, module, layer, is_package)


@pytest.mark.parametrize(
    ("source", "module", "layer", "is_package"),
    [
        ("from arco.core.errors import ArcoError\nimport json\n", "arco.core.keys", "arco.core", 0),
        ("from .errors import ArcoError\n", "arco.core.keys", "arco.core", False),
        ("from .base import ObjectStore\n", "arco.core.storage", "arco.core", True),
        ("from .. import scope\n", "arco.core.storage", "arco.core", True),
        ("from ..errors import StorageError\n", "arco.core.storage.base", "arco.core", False),
        ("import arco.core.storage\n", "arco.catalog.gc", "arco.catalog", False),
        ("from arco.catalog.lock import LeaseLock\n", "arco.catalog.gc", "arco.catalog", False),
        ("from arco.catalog import Catalog\n", "arco.flow.planner", "arco.flow", False),
        ("import arcowhatever\n", "arco.core.ids", "arco.core", False),
    ],
)
def test_checker_allows_permitted_imports(
    source: str, module: str, layer: str, is_package: bool
) -> None:
    assert violations(source, module, layer, bool(is_package)) == []
