"""Project configuration (``arco.toml``) and scaffolding (``arco init``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from arco.core.config import find_config
from arco.core.errors import InvalidArgumentError
from arco.flow.definitions import DefinitionError, Definitions, load_definitions


@dataclass(frozen=True)
class Project:
    """Where a project lives and which module holds its assets."""

    root: Path
    module: str
    name: str


def find_project(start: Path | None = None, module: str | None = None) -> Project:
    """The project around ``start`` (``arco.toml`` upwards), or ``module`` in ``start``."""
    here = (start or Path.cwd()).resolve()
    if module:
        return Project(here, module, module)
    # The same arco.toml the store is resolved from (arco.core.config), found the same way.
    config = find_config(here)
    if config is None:
        raise InvalidArgumentError(
            "no arco.toml found here or above; pass --module MODULE or run 'arco init NAME'"
        )
    proj = config.section("project")
    mod = proj.get("module")
    if not isinstance(mod, str) or not mod:
        raise InvalidArgumentError(f'{config.path}: [project] module = "..." is required')
    return Project(config.root, mod, str(proj.get("name", mod)))


def load_project(project: Project) -> Definitions:
    """Import the project's module and validate its assets."""
    try:
        return load_definitions(project.module, path=project.root)
    except DefinitionError:
        raise
    except Exception as exc:
        raise DefinitionError(
            f"importing {project.module!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


_ASSETS = '''"""Example assets: edit freely. Run them with `arco run '*'`."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from arco import AssetContext, DailyPartitions, asset

DAYS = DailyPartitions(start="2024-01-01", end="2024-01-04")


@asset(description="Raw orders as they arrive from the shop", code_version="1")
def raw_orders() -> pa.Table:
    return pa.table(
        {
            "order_id": [1, 2, 3, 4, 5],
            "customer": ["ann", "bob", "ann", "cid", "bob"],
            "amount": [12.5, 7.0, 3.25, 40.0, 9.5],
        }
    )


@asset(description="Orders with a positive amount", code_version="1", retries=1)
def clean_orders(context: AssetContext, raw_orders: pa.Table) -> pa.Table:
    kept = raw_orders.filter(pc.greater(raw_orders["amount"], 0))
    context.log.info("kept %d of %d orders", kept.num_rows, raw_orders.num_rows)
    context.add_metadata(dropped=raw_orders.num_rows - kept.num_rows)
    return kept


@asset(description="Revenue per customer", code_version="1")
def customer_revenue(clean_orders: pa.Table) -> pa.Table:
    return clean_orders.group_by("customer").aggregate([("amount", "sum")])


@asset(partitions=DAYS, description="One summary per day", code_version="1")
def daily_summary(context: AssetContext, customer_revenue: pa.Table) -> dict[str, object]:
    return {"day": context.partition_key, "customers": customer_revenue.num_rows}
'''

_TEST = """from {module}.assets import clean_orders, raw_orders


def test_clean_orders_keeps_positive_amounts() -> None:
    class Ctx:
        class log:  # noqa: N801 - a stand-in logger
            @staticmethod
            def info(*args: object) -> None:
                pass

        @staticmethod
        def add_metadata(**kwargs: object) -> None:
            pass

    table = clean_orders.fn(Ctx(), raw_orders.fn())
    assert table.num_rows == 5
"""


def scaffold(target: Path, name: str) -> list[Path]:
    """Create a project folder with example assets, ``arco.toml`` and a test."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,62}", name):
        raise InvalidArgumentError(
            f"project name {name!r} must start with a letter and use letters, digits, '_' or '-'"
        )
    module = name.replace("-", "_").lower() + "_pipeline"
    if target.exists() and any(target.iterdir()):
        raise InvalidArgumentError(f"{target} already exists and is not empty")
    files = {
        target / "arco.toml": (
            f'[project]\nname = "{name}"\nmodule = "{module}"\n\n[store]\nurl = "file://./.arco"\n'
        ),
        target / module / "__init__.py": f'"""Assets of the {name} project."""\n',
        target / module / "assets.py": _ASSETS,
        target / "tests" / "test_assets.py": _TEST.format(module=module),
        target / ".gitignore": ".arco/\n__pycache__/\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(files)
