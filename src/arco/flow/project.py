"""Project configuration (``arco.toml``), loading a project's definitions, and
scaffolding (``arco init``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from arco.core.config import find_config
from arco.core.errors import InvalidArgumentError, NotFoundError
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


class NoProjectError(NotFoundError):
    """A server was started without an asset project."""

    code = "no-project"


def load_definitions_for(module: str | None = None, start: Path | None = None) -> Definitions:
    """The definitions of ``module``, else of the ``arco.toml`` project around ``start``."""
    return load_project(find_project(start, module=module))


def load_server_definitions(module: str | None = None, start: Path | None = None) -> Definitions:
    """Like :func:`load_definitions_for`, for a server: a missing project is a
    :class:`NoProjectError` that says how to start the server with one."""
    try:
        project = find_project(start, module=module)
    except InvalidArgumentError as exc:
        raise NoProjectError(
            "this server has no asset project: start it with 'arco serve --module M', "
            f"from a folder with arco.toml, or with 'arco dev' ({exc})"
        ) from exc
    return load_project(project)


_ASSETS = '''"""Example assets: edit freely. Run them with `arco run '*'`.

One story with the demo catalog (`python -m arco.demo`): the shop's orders and customers
land in `raw`; `analytics` derives the revenue per day and every customer's lifetime
value from them. A run writes the assets, registers their tables in the catalog and
records lineage (raw.orders -> analytics.daily_revenue), so the catalog, the lineage
graph and the runs in the web UI all tell it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from arco import AssetContext, DailyPartitions, asset

DAYS = DailyPartitions(start="2024-01-01", end="2024-01-04")
TS = pa.timestamp("us", tz="UTC")


def _at(day: int, hour: int) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


@asset(
    namespace="raw", description="Orders exported hourly from the shop database", code_version="1"
)
def orders() -> pa.Table:
    return pa.table(
        {
            "order_id": ["o-1", "o-2", "o-3", "o-4", "o-5", "o-6"],
            "customer_id": ["ann", "bob", "ann", "cid", "bob", "ann"],
            "ordered_at": pa.array(
                [_at(1, 9), _at(1, 14), _at(2, 10), _at(2, 18), _at(3, 8), _at(3, 20)], TS
            ),
            "total": [12.5, 7.0, 3.25, 40.0, 0.0, 9.5],
        }
    )


@asset(namespace="raw", description="Customer master data from the CRM", code_version="1")
def customers() -> pa.Table:
    return pa.table(
        {
            "customer_id": ["ann", "bob", "cid"],
            "email": ["ann@example.com", "bob@example.com", "cid@example.com"],
            "signed_up_at": pa.array([_at(1, 8), _at(1, 12), _at(2, 17)], TS),
        }
    )


@asset(
    namespace="analytics",
    description="Lifetime value per customer (paid orders only)",
    code_version="1",
    ins={"orders": "raw.orders", "customers": "raw.customers"},
)
def customer_lifetime_value(orders: pa.Table, customers: pa.Table) -> pa.Table:
    paid = orders.filter(pc.greater(orders["total"], 0))
    per_customer = paid.group_by("customer_id").aggregate(
        [("total", "sum"), ("ordered_at", "min"), ("ordered_at", "max")]
    )
    joined = customers.join(per_customer, "customer_id").sort_by("customer_id")
    return pa.table(
        {
            "customer_id": joined["customer_id"],
            "first_order_at": joined["ordered_at_min"],
            "last_order_at": joined["ordered_at_max"],
            "lifetime_value": joined["total_sum"],
        }
    )


@asset(
    namespace="analytics",
    partitions=DAYS,
    description="Revenue per day, in EUR",
    code_version="1",
    retries=1,
    ins={"orders": "raw.orders"},
)
def daily_revenue(context: AssetContext, orders: pa.Table) -> pa.Table:
    day = date.fromisoformat(str(context.partition_key))
    start = pa.scalar(datetime(day.year, day.month, day.day, tzinfo=UTC), TS)
    end = pa.scalar(datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1), TS)
    on_day = orders.filter(
        pc.and_(pc.greater_equal(orders["ordered_at"], start), pc.less(orders["ordered_at"], end))
    )
    revenue = pc.sum(on_day["total"]).as_py() or 0.0
    context.log.info("%s: %d orders, %.2f EUR", day, on_day.num_rows, revenue)
    context.add_metadata(orders=on_day.num_rows)
    return pa.table(
        {
            "day": pa.array([day], pa.date32()),
            "orders": pa.array([on_day.num_rows], pa.int64()),
            "revenue": [revenue],
        }
    )
'''

_TEST = """from {module}.assets import customer_lifetime_value, customers, orders


def test_lifetime_value_counts_paid_orders_only() -> None:
    table = customer_lifetime_value.fn(orders.fn(), customers.fn())
    values = dict(zip(table["customer_id"].to_pylist(), table["lifetime_value"].to_pylist()))
    assert values == {{"ann": 25.25, "bob": 7.0, "cid": 40.0}}
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
