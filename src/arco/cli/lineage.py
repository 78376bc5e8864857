"""``arco lineage ...``: declare, withdraw, list and traverse lineage edges."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from arco.cli import output
from arco.cli.context import CliUsageError, settings

if TYPE_CHECKING:
    from arco.cli.context import Settings
    from arco.discovery.lineage import Direction, LineageGraph

app = typer.Typer(
    name="lineage",
    help="Declare, withdraw, list and traverse lineage edges.",
    no_args_is_help=True,
)

#: The library's ``DEFAULT_DEPTH`` and ``MAX_DEPTH`` (kept here so --help stays light).
DEFAULT_DEPTH = 5
MAX_DEPTH = 50


class Format(StrEnum):
    """Output formats of ``arco lineage show``."""

    text = "text"
    json = "json"
    dot = "dot"
    mermaid = "mermaid"


SourceArg = Annotated[
    str, typer.Argument(metavar="SRC", help="Upstream node (ns.table or an asset key).")
]
TargetArg = Annotated[
    str, typer.Argument(metavar="TGT", help="Downstream node (ns.table or an asset key).")
]
TypeOption = Annotated[
    str, typer.Option("--type", "-t", metavar="TYPE", help="Edge type, e.g. derives or copies.")
]


def _graph(cfg: Settings) -> LineageGraph:
    return cfg.open_workspace().lineage


@app.command("add")
def add(
    ctx: typer.Context,
    source: SourceArg,
    target: TargetArg,
    edge_type: TypeOption = "derives",
    column: Annotated[
        list[str] | None,
        typer.Option("--column", "-c", metavar="C", help="A column the edge carries; repeatable."),
    ] = None,
) -> None:
    """Declare the edge SRC -> TGT (idempotent; --column adds to its columns)."""
    cfg = settings(ctx)
    edge = _graph(cfg).add_edge(source, target, edge_type=edge_type, columns=column or ())
    if cfg.json:
        output.emit_json(edge.to_dict())
        return
    message = f"Declared edge {edge.source} -> {edge.target} ({edge.edge_type})"
    if edge.columns:
        message += f" with columns {', '.join(edge.columns)}"
    output.say(message)


@app.command("remove")
def remove(
    ctx: typer.Context, source: SourceArg, target: TargetArg, edge_type: TypeOption = "derives"
) -> None:
    """Withdraw the declared edge SRC -> TGT (observations of it are kept)."""
    cfg = settings(ctx)
    _graph(cfg).remove_edge(source, target, edge_type=edge_type)
    if cfg.json:
        output.emit_json(
            {"removed": "edge", "source": source, "target": target, "edge_type": edge_type}
        )
    else:
        output.say(f"Removed edge {source} -> {target} ({edge_type})")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List every edge, declared or observed, sorted by source, target and type."""
    cfg = settings(ctx)
    edges = _graph(cfg).edges()
    if cfg.json:
        output.emit_json([e.to_dict() for e in edges])
    else:
        output.edges_table(edges)


@app.command("show")
def show(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(metavar="NODE", help="Where to start.")],
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Only what NODE is derived from.")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Only what is derived from NODE.")
    ] = False,
    depth: Annotated[
        int,
        typer.Option("--depth", "-d", min=1, max=MAX_DEPTH, metavar="N", help="Hops to follow."),
    ] = DEFAULT_DEPTH,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format", "-f", help="Output format (default text, or json with the global --json)."
        ),
    ] = None,
    column: Annotated[
        str | None,
        typer.Option(
            "--column",
            "-c",
            metavar="C",
            help="Follow column C of table NODE through column edges (upstream unless "
            "--downstream).",
        ),
    ] = None,
) -> None:
    """Walk the lineage graph from NODE, both ways unless --upstream or --downstream."""
    from arco.discovery.lineage import render

    cfg = settings(ctx)
    if column is not None:
        _show_column(cfg, node, column, upstream, downstream, depth, fmt)
        return
    if upstream and downstream:
        raise CliUsageError("give --upstream or --downstream, not both (neither means both)")
    if cfg.json and fmt not in (None, Format.json):
        raise CliUsageError(f"--json conflicts with --format {fmt}")
    chosen = fmt or (Format.json if cfg.json else Format.text)
    direction: Direction = "upstream" if upstream else "downstream" if downstream else "both"
    traversal = _graph(cfg).traverse(node, direction=direction, depth=depth)
    if chosen is Format.json:
        output.emit_json(traversal.to_dict())
    else:
        output.say(render(traversal, chosen.value))


def _show_column(
    cfg: Settings,
    node: str,
    column: str,
    upstream: bool,
    downstream: bool,
    depth: int,
    fmt: Format | None,
) -> None:
    """``show --column``: a walk over column edges (upstream by default: where C comes from)."""
    from arco.discovery.columns import ColumnLineage, render_columns

    if upstream and downstream:
        raise CliUsageError("give --upstream or --downstream, not both")
    if fmt not in (None, Format.text, Format.json):
        raise CliUsageError("--column supports --format text or json")
    direction: Direction = "downstream" if downstream else "upstream"
    traversal = ColumnLineage(_graph(cfg)).traverse(node, column, direction=direction, depth=depth)
    if cfg.json or fmt is Format.json:
        output.emit_json(traversal.to_dict())
    else:
        output.say(render_columns(traversal))
