"""``arco table ...``: create, list, show, change and drop tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from arco.cli import output
from arco.cli.context import CliUsageError, parse_properties, settings

if TYPE_CHECKING:
    from arco.catalog import Table

app = typer.Typer(
    name="table",
    help="Create, list, show, change and drop tables.",
    no_args_is_help=True,
)

QualifiedArg = Annotated[
    str, typer.Argument(metavar="NS.TABLE", help="Qualified table name, e.g. raw.orders.")
]
PropertyOption = Annotated[
    list[str] | None,
    typer.Option("--property", "-p", metavar="K=V", help="A property; repeat for more."),
]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", "-d", help="Free-text description.")
]
COLUMN_HELP = (
    "A column NAME:TYPE or NAME:TYPE:not-null, e.g. amount:decimal(12,2) or "
    "ts:timestamp\\[us, UTC]:not-null."
)


def _split(qualified: str) -> tuple[str, str]:
    from arco.catalog import split_qualified

    return split_qualified(qualified)


def _print_table(table: Table, as_json: bool, message: str) -> None:
    if as_json:
        output.emit_json(table.to_dict())
    else:
        output.say(message)


@app.command("create")
def create(
    ctx: typer.Context,
    qualified: QualifiedArg,
    column: Annotated[
        list[str] | None,
        typer.Option("--column", "-c", metavar="NAME:TYPE[:not-null]", help=COLUMN_HELP),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="One of delta, iceberg, parquet, csv, json."),
    ] = "parquet",
    location: Annotated[
        str | None, typer.Option("--location", help="Storage URI of the table's data.")
    ] = None,
    description: DescriptionOption = None,
    prop: PropertyOption = None,
) -> None:
    """Register a table with its columns."""
    from arco.catalog import parse_column_spec

    cfg = settings(ctx)
    namespace, name = _split(qualified)
    props = parse_properties(prop)
    specs = [parse_column_spec(text) for text in column or ()]
    table = cfg.catalog().create_table(
        namespace,
        name,
        specs,
        format=fmt,
        location=location,
        description=description,
        properties=props,
    )
    if cfg.json:
        output.emit_json(table.to_dict())
    else:
        output.say(f"Created table {table.qualified_name} ({len(table.columns)} columns)")
        output.table_details(table)


@app.command("list")
def list_(
    ctx: typer.Context,
    namespace: Annotated[
        str | None, typer.Argument(metavar="[NS]", help="Only tables in this namespace.")
    ] = None,
) -> None:
    """List tables, sorted by namespace and name."""
    cfg = settings(ctx)
    # Streamed: a cold catalog reads the listing group by group (ADR 015).
    batches = cfg.catalog().iter_table_batches(namespace)
    if cfg.json:
        output.emit_json_texts(map(output.tables_json_texts, batches))
    else:
        output.tables_stream(map(output.table_list_rows, batches))


@app.command("show")
def show(ctx: typer.Context, qualified: QualifiedArg) -> None:
    """Show a table: attributes, columns (name, type, nullable, description), properties."""
    cfg = settings(ctx)
    table = cfg.catalog().get_table(*_split(qualified))
    if cfg.json:
        output.emit_json(table.to_dict())
    else:
        output.table_details(table)


@app.command("drop")
def drop(ctx: typer.Context, qualified: QualifiedArg) -> None:
    """Remove a table and its columns from the catalog."""
    cfg = settings(ctx)
    namespace, name = _split(qualified)
    cfg.catalog().drop_table(namespace, name)
    if cfg.json:
        output.emit_json({"dropped": "table", "name": f"{namespace}.{name}"})
    else:
        output.say(f"Dropped table {namespace}.{name}")


@app.command("rename")
def rename(
    ctx: typer.Context,
    qualified: QualifiedArg,
    new: Annotated[
        str,
        typer.Argument(metavar="NEW", help="New name, or NS.NAME to move it to another namespace."),
    ],
) -> None:
    """Rename a table, or move it with NEW given as NS.NAME."""
    cfg = settings(ctx)
    namespace, name = _split(qualified)
    if "." in new:
        new_namespace, new_name = _split(new)
    else:
        new_namespace, new_name = namespace, new
    table = cfg.catalog().rename_table(namespace, name, new_name, new_namespace=new_namespace)
    _print_table(table, cfg.json, f"Renamed table {namespace}.{name} to {table.qualified_name}")


@app.command("add-column")
def add_column(
    ctx: typer.Context,
    qualified: QualifiedArg,
    spec: Annotated[str, typer.Argument(metavar="NAME:TYPE[:not-null]", help=COLUMN_HELP)],
) -> None:
    """Add a column at the end of a table."""
    from arco.catalog import parse_column_spec

    cfg = settings(ctx)
    namespace, name = _split(qualified)
    column = parse_column_spec(spec)
    table = cfg.catalog().update_table(namespace, name, add_columns=[column])
    added = table.columns[-1]
    _print_table(
        table,
        cfg.json,
        f"Added column {added.name} {added.data_type}"
        f"{'' if added.nullable else ' not null'} to {table.qualified_name}",
    )


@app.command("drop-column")
def drop_column(
    ctx: typer.Context,
    qualified: QualifiedArg,
    column: Annotated[str, typer.Argument(metavar="NAME", help="Column to drop.")],
) -> None:
    """Drop a column from a table."""
    cfg = settings(ctx)
    namespace, name = _split(qualified)
    table = cfg.catalog().update_table(namespace, name, drop_columns=[column])
    _print_table(table, cfg.json, f"Dropped column {column} from {table.qualified_name}")


@app.command("rename-column")
def rename_column(
    ctx: typer.Context,
    qualified: QualifiedArg,
    old: Annotated[str, typer.Argument(metavar="OLD", help="Current column name.")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="New column name.")],
) -> None:
    """Rename a column of a table."""
    cfg = settings(ctx)
    namespace, name = _split(qualified)
    table = cfg.catalog().update_table(namespace, name, rename_columns={old: new})
    _print_table(table, cfg.json, f"Renamed column {old} to {new} in {table.qualified_name}")


@app.command("set")
def set_(
    ctx: typer.Context,
    qualified: QualifiedArg,
    description: DescriptionOption = None,
    prop: PropertyOption = None,
    unset: Annotated[
        list[str] | None,
        typer.Option("--unset-property", "-u", metavar="K", help="Remove a property; repeatable."),
    ] = None,
) -> None:
    """Change a table's description (an empty one clears it) or properties."""
    cfg = settings(ctx)
    namespace, name = _split(qualified)
    props = parse_properties(prop)
    if description is None and not props and not unset:
        raise CliUsageError("nothing to change; give --description, --property or --unset-property")
    catalog = cfg.catalog()
    if description is None:
        table = catalog.update_table(
            namespace, name, set_properties=props, remove_properties=unset or []
        )
    else:
        table = catalog.update_table(
            namespace,
            name,
            description=description or None,  # --description "" clears it
            set_properties=props,
            remove_properties=unset or [],
        )
    _print_table(table, cfg.json, f"Updated table {table.qualified_name}")
