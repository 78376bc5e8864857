"""``arco namespace ...``: create, list, show and drop namespaces."""

from __future__ import annotations

from typing import Annotated

import typer

from arco.cli import output
from arco.cli.context import parse_properties, settings

app = typer.Typer(
    name="namespace",
    help="Create, list, show and drop namespaces.",
    no_args_is_help=True,
)

PropertyOption = Annotated[
    list[str] | None,
    typer.Option("--property", "-p", metavar="K=V", help="A property; repeat for more."),
]


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Namespace name; dotted names nest (a.b).")],
    description: Annotated[
        str | None, typer.Option("--description", "-d", help="Free-text description.")
    ] = None,
    prop: PropertyOption = None,
) -> None:
    """Create a namespace (a nested one needs its parent to exist)."""
    cfg = settings(ctx)
    props = parse_properties(prop)
    ns = cfg.catalog().create_namespace(name, description, props)
    if cfg.json:
        output.emit_json(ns.to_dict())
    else:
        output.say(f"Created namespace {ns.name}")


@app.command("list")
def list_(
    ctx: typer.Context,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="Only namespaces whose name starts so.")
    ] = None,
) -> None:
    """List namespaces, sorted by name."""
    cfg = settings(ctx)
    items = cfg.catalog().list_namespaces(prefix).items
    if cfg.json:
        output.emit_json([ns.to_dict() for ns in items])
    else:
        output.namespaces_table(items)


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Namespace name.")],
) -> None:
    """Show one namespace and its properties."""
    cfg = settings(ctx)
    view = cfg.catalog().view()
    ns = view.get_namespace(name)
    if cfg.json:
        output.emit_json(ns.to_dict())
    else:
        output.namespace_details(ns, len(view.list_tables(name).items))


@app.command("drop")
def drop(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Namespace name.")],
    cascade: Annotated[
        bool,
        typer.Option("--cascade", help="Also drop its tables and nested namespaces."),
    ] = False,
) -> None:
    """Drop a namespace; a non-empty one only with --cascade."""
    cfg = settings(ctx)
    cfg.catalog().drop_namespace(name, cascade=cascade)
    if cfg.json:
        output.emit_json({"dropped": "namespace", "name": name, "cascade": cascade})
    else:
        output.say(f"Dropped namespace {name}" + (" (cascade)" if cascade else ""))
