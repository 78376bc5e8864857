"""Entry point of the ``arco`` command (``arco.cli.main:main``).

Global options come before the subcommand: ``arco --json --tenant acme table list``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from arco.cli import (
    compact,
    dev,
    events,
    flow,
    info,
    lineage,
    maintenance,
    namespace,
    search,
    server,
    sql,
    table,
)
from arco.cli.context import DEFAULT_SCOPE_PART, ArcoGroup, Settings

#: Said in ``arco --help``; the same order as :func:`arco.core.config.resolve_store`
#: (repeated, not imported, so ``--help`` stays light).
STORE_HELP = (
    "Which store every command uses: --store URL, else $ARCO_STORE, else store.url of "
    "the nearest arco.toml (this folder or a parent; a relative path there is relative "
    "to that arco.toml), else ./.arco. 'arco info' shows the store in use and why."
)

app = typer.Typer(
    name="arco",
    cls=ArcoGroup,
    help="Arco: a file-native lakehouse catalog.\n\n" + STORE_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(namespace.app, name="namespace")
app.add_typer(table.app, name="table")
app.add_typer(events.app, name="events")
app.add_typer(lineage.app, name="lineage")
app.command("compact")(compact.compact)
app.command("search")(search.search)
app.command("verify")(maintenance.verify)
app.command("gc")(maintenance.gc)
app.command("repair")(maintenance.repair)
app.command("log")(maintenance.log)
app.command("info")(info.info)
app.command("serve")(server.serve)
app.command("token")(server.token)
flow.register(app)
sql.register(app)
app.command("dev")(dev.dev)


@app.callback()
def root(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help=(
                "Store URL: file://PATH, memory://NAME, s3://BUCKET/PREFIX, gs://, az://. "
                "Default: $ARCO_STORE, else store.url of the nearest arco.toml, else ./.arco."
            ),
        ),
    ] = None,
    tenant: Annotated[
        str, typer.Option("--tenant", envvar="ARCO_TENANT", help="Tenant id.")
    ] = DEFAULT_SCOPE_PART,
    workspace: Annotated[
        str, typer.Option("--workspace", envvar="ARCO_WORKSPACE", help="Workspace id.")
    ] = DEFAULT_SCOPE_PART,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Arco: a file-native lakehouse catalog."""
    ctx.obj = Settings(store_option=store, tenant=tenant, workspace=workspace, json=as_json)


def main() -> None:
    """Run the ``arco`` command line.

    The process ends with ``os._exit`` after flushing output: at interpreter
    teardown pyarrow's thread pools can abort the process (apache/arrow#34314),
    which would turn a successful command into exit code -6.
    """
    import os
    import sys

    # The system allocator, unless the user chose one: pyarrow's default pool
    # (mimalloc/jemalloc) reserves ~10 MB up front that a short command never uses.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    code: int = 0
    try:
        app(prog_name="arco")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
