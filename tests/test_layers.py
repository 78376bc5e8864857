"""The package DAG of docs/architecture.md (ADR 012), checked on the source.

Imports point downwards only, surfaces included: ``arco.api``, ``arco.cli``,
``arco.client`` and ``arco.web`` import each other only where the ADR allows (the
CLI serves the API; the API mounts the web UI). No two packages import each other,
and no module imports a private (``_name``) name of another package. Checked with
``ast``, so an import inside a function or under ``TYPE_CHECKING`` counts too.
``from arco import __version__`` is allowed everywhere: ``arco/__init__.py`` loads
nothing else until a name is used.
"""

from __future__ import annotations

import ast
from itertools import combinations
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
DOCS = Path(__file__).resolve().parents[1] / "docs"

_CORE = ("arco.core",)
_DOMAIN = (*_CORE, "arco.domain")
# Tier 1 and Tier 2 sit side by side on the domain protocol and never import each other.
_CATALOG = (*_DOMAIN, "arco.catalog")
_LEDGER = (*_DOMAIN, "arco.ledger")
_TIERS = (*_DOMAIN, "arco.catalog", "arco.ledger")
_READS = (*_TIERS, "arco.discovery", "arco.sql")
# One scope's collaborators (catalog, ledger, compactor, lineage, search, SQL).
_WORKSPACE = (*_READS, "arco.workspace")
_INTEGRATIONS = ("arco.iceberg", "arco.openlineage")
_BELOW_SURFACES = (
    *_WORKSPACE,
    "arco.governance",
    "arco.maintenance",
    *_INTEGRATIONS,
    "arco.flow",
)

#: package -> the packages of arco it may import (itself included).
ALLOWED: dict[str, tuple[str, ...]] = {
    "arco.core": _CORE,
    "arco.domain": _DOMAIN,
    "arco.catalog": _CATALOG,
    "arco.ledger": _LEDGER,
    "arco.governance": (*_LEDGER, "arco.governance"),
    "arco.discovery": (*_TIERS, "arco.discovery"),
    "arco.sql": (*_TIERS, "arco.sql"),
    "arco.maintenance": (*_TIERS, "arco.maintenance"),
    "arco.workspace": _WORKSPACE,
    # The Iceberg REST catalog: below the API server, which mounts it (ADR 014).
    "arco.iceberg": (*_CATALOG, "arco.iceberg"),
    "arco.openlineage": (*_WORKSPACE, "arco.openlineage"),
    # The automation daemon records its launches in the audit trail.
    "arco.flow": (*_WORKSPACE, "arco.governance", "arco.flow"),
    "arco.web": ("arco.web",),
    "arco.client": ("arco.client",),
    "arco.api": (*_BELOW_SURFACES, "arco.api", "arco.web"),
    "arco.cli": (*_BELOW_SURFACES, "arco.cli", "arco.api", "arco.demo"),
    "arco.demo": (*_WORKSPACE, "arco.flow", "arco.demo"),
}
_VERSION = "arco.__version__"


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
            # ``from arco import catalog`` imports the submodule arco.catalog (and
            # ``from arco import __version__`` only the lazily loading root).
            if base == "arco":
                out.extend((node.lineno, f"arco.{alias.name}") for alias in node.names)
            else:
                out.append((node.lineno, base))
    return out


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(source: str, module: str, layer: str, is_package: bool = False) -> list[str]:
    """Forbidden imports of ``module`` (in ``layer``) as readable strings."""
    allowed = ALLOWED[layer]
    bad = []
    for lineno, name in imported_modules(source, module, is_package):
        if not _within(name, "arco") or name == _VERSION:
            continue
        if name == "arco" or not any(_within(name, ok) for ok in allowed):
            bad.append(f"{module}:{lineno} imports {name} (layer {layer} may import {allowed})")
    return bad


def _layer_files(layer: str) -> list[Path]:
    folder = SRC.joinpath(*layer.split("."))
    if folder.is_dir():
        return sorted(folder.rglob("*.py"))
    module = folder.with_suffix(".py")
    return [module] if module.is_file() else []


def _package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _package_imports() -> dict[str, set[str]]:
    """Each package -> the other arco packages its modules import."""
    edges: dict[str, set[str]] = {}
    for path in sorted(SRC.joinpath("arco").rglob("*.py")):
        module = module_name(path)
        source = path.read_text(encoding="utf-8")
        mine = _package_of(module)
        for _, name in imported_modules(source, module, path.name == "__init__.py"):
            if _within(name, "arco") and name not in ("arco", _VERSION):
                other = _package_of(name)
                if other != mine and mine != "arco":
                    edges.setdefault(mine, set()).add(other)
    return edges


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_downwards(layer: str) -> None:
    files = _layer_files(layer)
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
    assert "arco.domain.store" in {module_name(p) for p in _layer_files("arco.domain")}


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
        ("def f():\n    from arco.flow import x\n", "arco.catalog.catalog", "arco.catalog", False),
        # Tier 1 and Tier 2 are siblings: neither imports the other.
        ("from arco.ledger.log import Ledger\n", "arco.catalog.catalog", "arco.catalog", False),
        ("from arco.catalog import Catalog\n", "arco.ledger.compactor", "arco.ledger", False),
        ("from arco.catalog import Catalog\n", "arco.domain.verify", "arco.domain", False),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import arco.api\n",
            "arco.domain.verify",
            "arco.domain",
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
        ("import arco.core.storage\n", "arco.domain.lock", "arco.domain", False),
        ("from arco.domain.lock import LeaseLock\n", "arco.catalog.catalog", "arco.catalog", False),
        ("from arco.ledger.log import Ledger\n", "arco.maintenance.gc", "arco.maintenance", False),
        ("from arco.catalog import Catalog\n", "arco.flow.planner", "arco.flow", False),
        ("import arcowhatever\n", "arco.core.ids", "arco.core", False),
    ],
)
def test_checker_allows_permitted_imports(
    source: str, module: str, layer: str, is_package: bool
) -> None:
    assert violations(source, module, layer, bool(is_package)) == []


def test_every_package_has_a_place_in_the_dag() -> None:
    packages = {
        _package_of(module_name(p))
        for p in SRC.joinpath("arco").rglob("*.py")
        if module_name(p) != "arco"
    }
    assert packages - set(ALLOWED) == set(), "add the new package to ALLOWED (and ADR 012)"


def test_no_two_packages_import_each_other() -> None:
    edges = _package_imports()
    cycles = [
        (a, b) for a, b in combinations(sorted(edges), 2) if b in edges[a] and a in edges.get(b, ())
    ]
    assert cycles == []


def test_no_private_names_cross_packages() -> None:
    problems = []
    for path in sorted(SRC.joinpath("arco").rglob("*.py")):
        module = module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            target = node.module
            if not _within(target, "arco") or _package_of(target) == _package_of(module):
                continue
            private = [a.name for a in node.names if a.name.startswith("_")]
            private = [n for n in private if n != "__version__"]
            hidden = [part for part in target.split(".") if part.startswith("_")]
            if private or hidden:
                problems.append(f"{module}:{node.lineno} imports {target} {private or ''}")
    assert problems == []


def test_the_architecture_document_exists_and_names_every_package() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    for package in ALLOWED:
        if package != "arco.demo":
            assert f"`{package}`" in text, package
