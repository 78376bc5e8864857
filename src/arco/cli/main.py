"""Entry point of the ``arco`` command (``arco.cli.main:main``).

Global options come before the subcommand: ``arco --json --tenant acme table list``.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from arco.cli.context import DEFAULT_SCOPE_PART, ArcoGroup, Settings

#: Said in ``arco --help``; the same order as :func:`arco.core.config.resolve_store`
#: (repeated, not imported, so ``--help`` stays light).
STORE_HELP = (
    "Which store every command uses: --store URL, else $ARCO_STORE, else store.url of "
    "the nearest arco.toml (this folder or a parent; a relative path there is relative "
    "to that arco.toml), else ./.arco. 'arco info' shows the store in use and why."
)


#: Registers a subcommand's module on the root app; the second argument is the
#: word after the subcommand on the command line (``show`` of ``arco table show``).
Register = Callable[[typer.Typer, str | None], None]


def _group(module: str, name: str) -> Register:
    def register(app: typer.Typer, command: str | None) -> None:
        group = importlib.import_module(f"arco.cli.{module}").app
        app.add_typer(group if command is None else only_command(group, command), name=name)

    return register


def _commands(module: str, *names: str) -> Register:
    def register(app: typer.Typer, _command: str | None) -> None:
        mod = importlib.import_module(f"arco.cli.{module}")
        for name in names:
            app.command(name)(getattr(mod, name))

    return register


def _registered_by(module: str) -> Register:
    def register(app: typer.Typer, _command: str | None) -> None:
        importlib.import_module(f"arco.cli.{module}").register(app)

    return register


def only_command(group: typer.Typer, command: str) -> typer.Typer:
    """``group`` with only its command named ``command``, or ``group`` itself if it has none.

    Typer turns every command of a group into a Click command (reading each
    function's signature and evaluating its annotations) before it dispatches:
    ``arco table show`` paid for the eight other ``table`` commands. A word that
    names no command (a typo, ``--help``) gets the whole group, so its help and
    its "No such command" error stay the same.
    """
    chosen = [c for c in group.registered_commands if c.name == command]
    if not chosen or group.registered_groups:
        return group
    one = copy.copy(group)
    one.registered_commands = chosen
    return one


#: Every subcommand, in ``--help`` order, with what registers it. A command
#: imports only its own module: ``arco table show`` need not load the flow
#: engine, the SQL worker or the compactor (a third of its start-up before).
#: ``tests/cli`` checks this table against the commands the modules define.
SUBCOMMANDS: tuple[tuple[tuple[str, ...], Register], ...] = (
    (("namespace",), _group("namespace", "namespace")),
    (("table",), _group("table", "table")),
    (("events",), _group("events", "events")),
    (("lineage",), _group("lineage", "lineage")),
    (("compact",), _commands("compact", "compact")),
    (("search",), _commands("search", "search")),
    (("verify", "gc", "repair", "log"), _commands("maintenance", "verify", "gc", "repair", "log")),
    (("info",), _commands("info", "info")),
    (("serve", "token"), _commands("server", "serve", "token")),
    (("plan", "run", "init", "worker"), _registered_by("flow")),
    (("runs",), _group("runs", "runs")),
    (("assets",), _group("assets", "assets")),
    (("tick", "daemon", "schedule", "sensor", "backfill", "check"), _registered_by("automation")),
    (("sql",), _registered_by("sql")),
    (("dev",), _commands("dev", "dev")),
    (("admin",), _group("admin", "admin")),
    (("audit",), _commands("admin", "audit")),
)

#: Global options that take a value (``--store URL``), to find the subcommand in argv.
_VALUE_OPTIONS = frozenset({"--store", "--tenant", "--workspace", "--log-format"})


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
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            metavar="text|json",
            help="Log lines as text (default) or one JSON object per line. "
            "Default: $ARCO_LOG_FORMAT, else text.",
        ),
    ] = None,
) -> None:
    """Arco: a file-native lakehouse catalog."""
    import os

    from arco.core.logs import configure_logging
    from arco.core.telemetry import configure_tracing

    # Logging is configured only when asked for: a command's output stays as it was.
    if log_format is not None or os.environ.get("ARCO_LOG_FORMAT"):
        try:
            chosen = configure_logging(log_format)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--log-format") from None
        # Processes this command starts (uvicorn's workers, run workers) log alike.
        os.environ["ARCO_LOG_FORMAT"] = chosen
    # Spans go to $OTEL_EXPORTER_OTLP_ENDPOINT when set (arco[otel]); else nothing.
    configure_tracing("arco-cli")
    ctx.obj = Settings(store_option=store, tenant=tenant, workspace=workspace, json=as_json)


def build_app(only: str | None = None, command: str | None = None) -> typer.Typer:
    """The ``arco`` Typer app: every subcommand, or only the one named ``only``.

    ``command``, with ``only``: the word after it, so that of a group only that
    command is built (:func:`only_command`).
    """
    app = typer.Typer(
        name="arco",
        cls=ArcoGroup,
        help="Arco: a file-native lakehouse catalog.\n\n" + STORE_HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    for names, register in SUBCOMMANDS:
        if only is None or only in names:
            register(app, command if only is not None else None)
    return app


def _subcommand_at(argv: Sequence[str]) -> int | None:
    """Where in ``argv`` the subcommand is, if it is one of :data:`SUBCOMMANDS`."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUE_OPTIONS:
            i += 2
            continue
        if arg.startswith("-"):
            if arg == "--json" or (arg.startswith("--") and arg.split("=", 1)[0] in _VALUE_OPTIONS):
                i += 1
                continue
            return None
        return i if any(arg in names for names, _ in SUBCOMMANDS) else None
    return None


def subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names, if it is one of :data:`SUBCOMMANDS`, else None.

    None for ``arco --help``, an unknown word or a malformed option: the full app
    then parses ``argv`` and says what is wrong.
    """
    at = _subcommand_at(argv)
    return None if at is None else argv[at]


def command_words(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """The subcommand ``argv`` names and the word right after it (None if none, or an option)."""
    at = _subcommand_at(argv)
    if at is None:
        return None, None
    after = argv[at + 1] if at + 1 < len(argv) else None
    return argv[at], (None if after is None or after.startswith("-") else after)


def __getattr__(name: str) -> Any:
    # ``from arco.cli.main import app`` (tests, plugins) gets the full app, built once.
    if name == "app":
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        build_app(*command_words(sys.argv[1:]))(prog_name="arco")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    _export_telemetry()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _export_telemetry() -> None:
    """Hand on what a short-lived command measured: its metrics (to a Pushgateway or a
    textfile, when configured) and its spans (the batch exporter flushes on shutdown)."""
    import sys

    from arco.core.metrics import export_from_env
    from arco.core.telemetry import shutdown_tracing

    export_from_env(f"arco_{(subcommand(sys.argv[1:]) or 'cli').replace('-', '_')}")
    shutdown_tracing()


if __name__ == "__main__":
    main()
