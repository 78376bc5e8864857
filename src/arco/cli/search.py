"""``arco search``: find namespaces, tables and columns by name, description, properties."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from arco.cli import output
from arco.cli.context import settings


class Kind(StrEnum):
    """What ``--kind`` can restrict hits to."""

    table = "table"
    column = "column"
    namespace = "namespace"


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(metavar="QUERY", help="Words or a name prefix.")],
    kind: Annotated[Kind | None, typer.Option("--kind", "-k", help="Only this kind.")] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", metavar="NS", help="Only in NS and namespaces below it."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, help="Hits per page.")
    ] = 20,
    page_token: Annotated[
        str | None,
        typer.Option("--page-token", metavar="T", help="Token printed with the previous page."),
    ] = None,
) -> None:
    """Search the catalog; exact names rank first, then name prefixes, words, descriptions."""
    cfg = settings(ctx)
    index = cfg.open_workspace().search
    results = index.search(
        query,
        kind=kind.value if kind is not None else None,
        namespace=namespace,
        limit=limit,
        page_token=page_token,
    )
    if cfg.json:
        output.emit_json(output.search_json(results))
    else:
        output.search_table(query, results)
