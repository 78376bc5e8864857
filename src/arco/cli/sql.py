"""``arco sql``: read-only SQL over the current scope's tables and its ``system.*`` tables."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arco.cli import output
from arco.cli.context import fail, one_line, settings

if TYPE_CHECKING:
    from arco.sql.engine import QueryResult

HELP = (
    "Run one read-only SELECT over the catalog's tables (by qualified name, e.g. "
    "sales.orders: parquet, iceberg and asset tables; an Iceberg snapshot with "
    "AT (VERSION => id)) and the system tables: system.namespaces, system.tables, "
    "system.columns, system.lineage_edges, system.runs, system.tasks, "
    "system.materializations, system.logs, system.events, system.quarantine."
)


def sql(
    ctx: typer.Context,
    query: Annotated[
        str,
        typer.Argument(
            metavar="QUERY",
            help="One SELECT statement, e.g. 'SELECT count(*) FROM sales.orders'.",
        ),
    ],
    as_of: Annotated[
        int | None,
        typer.Option("--as-of", metavar="N", min=0, help="Read the catalog as of version N."),
    ] = None,
    max_rows: Annotated[
        int,
        typer.Option(
            "--max-rows", metavar="N", min=1, help="Fail (or cut, with --truncate) above N rows."
        ),
    ] = 10_000,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=0.001,
            max=3600,
            help="Stop the query after SECONDS.",
        ),
    ] = 10.0,
    truncate: Annotated[
        bool, typer.Option("--truncate", help="Cut the result at --max-rows instead of failing.")
    ] = False,
) -> None:
    """Run one read-only SELECT over catalog and system tables (Tier-2 ones: latest state)."""
    from arco.core.errors import ArcoError
    from arco.sql.engine import run_query
    from arco.sql.limits import QueryLimits

    cfg = settings(ctx)
    try:
        system = cfg.open_workspace().system
        limits = QueryLimits(max_rows=max_rows, max_seconds=timeout, truncate=truncate)
        result = run_query(system, query, as_of_version=as_of, limits=limits)
    except ArcoError as exc:
        fail(one_line(exc), 1)
    if cfg.json:
        output.emit_json(result.to_dict())
    else:
        _print(result)


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _print(result: QueryResult) -> None:
    from rich.table import Table as RichTable
    from rich.text import Text

    out = output.console()
    table = RichTable(show_lines=False)
    for name, dtype in result.columns:
        header = Text(name, style="bold")
        header.append(f"\n{dtype.lower()}", style="dim")
        table.add_column(header, overflow="fold")
    for row in result.rows:
        table.add_row(*(Text("NULL", style="dim") if v is None else Text(_cell(v)) for v in row))
    out.print(table)
    footer = f"{output.plural(result.row_count, 'row')} in {result.elapsed_ms:.1f} ms"
    if result.truncated:
        footer += " (truncated; raise --max-rows or add a LIMIT)"
    out.print(Text(footer, style="dim"))


def register(app: typer.Typer) -> None:
    """Add the ``sql`` command to ``app``."""
    app.command("sql", help=HELP)(sql)
