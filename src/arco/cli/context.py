"""Global CLI settings, user-error handling and small argument parsers.

Nothing heavy is imported at module level: ``import arco.cli.main`` must stay fast,
so the catalog (and pyarrow with it) is only loaded by commands that need it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from arco.catalog import Catalog
    from arco.core.config import StoreChoice
    from arco.core.scope import Scope
    from arco.core.storage import ObjectStore
    from arco.workspace import Workspace

DEFAULT_SCOPE_PART = "default"


class CliUsageError(Exception):
    """A user mistake in how a command was called (exit status 2, one line on stderr)."""


@dataclass
class Settings:
    """The global options, stored in ``ctx.obj`` by the root callback."""

    #: ``--store`` as given (None: resolve from ARCO_STORE, arco.toml or ./.arco).
    store_option: str | None = None
    tenant: str = DEFAULT_SCOPE_PART
    workspace: str = DEFAULT_SCOPE_PART
    json: bool = False
    _choice: StoreChoice | None = field(default=None, repr=False)
    _store: ObjectStore | None = field(default=None, repr=False)
    _open: Workspace | None = field(default=None, repr=False)

    def store_choice(self) -> StoreChoice:
        """The store this command uses and where its URL came from (resolved once).

        Resolved on first use, not when options are parsed, so commands that need
        no store (``init``, ``token``, ``--help``) work beside a broken arco.toml.
        """
        if self._choice is None:
            from arco.core.config import resolve_store

            self._choice = resolve_store(self.store_option)
        return self._choice

    @property
    def store_url(self) -> str:
        """The resolved store URL (``file://`` paths absolute)."""
        return self.store_choice().url

    def scope(self) -> Scope:
        """The validated (tenant, workspace) scope."""
        from arco.core.scope import Scope

        return Scope(self.tenant, self.workspace)

    def store(self) -> ObjectStore:
        """The object store named by ``--store`` (opened once)."""
        if self._store is None:
            import arco.iceberg  # noqa: F401 - registers the Iceberg format hook (ADR 014)
            from arco.core.errors import StorageError
            from arco.core.storage import open_store

            try:
                self._store = open_store(self.store_url)
            except (OSError, StorageError) as exc:  # e.g. file:// onto a file, unwritable dir
                reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
                raise StorageError(f"cannot open store {self.store_url}: {reason}") from exc
        return self._store

    def open_workspace(self) -> Workspace:
        """This command's :class:`~arco.workspace.Workspace`: the scope on the store (once)."""
        if self._open is None:
            from arco.workspace import Workspace

            self._open = Workspace(self.store(), self.scope())
        return self._open

    def catalog(self) -> Catalog:
        """The catalog of this scope on this store (opened once)."""
        return self.open_workspace().catalog


def settings(ctx: typer.Context) -> Settings:
    """The :class:`Settings` of the running command (defaults if no callback ran)."""
    obj = ctx.find_object(Settings)
    return obj if obj is not None else Settings()


def one_line(exc: BaseException) -> str:
    """An exception's message squeezed onto one line."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


#: Commands that print no JSON (servers that run until stopped): they take no
#: ``--json`` of their own and refuse the global one.
NO_JSON_COMMANDS = frozenset({"serve", "dev"})

JSON_HELP = "Print machine-readable JSON (the same as the global arco --json)."


def _json_flag(ctx: Any, _param: Any, value: Any) -> Any:
    if value:
        obj = ctx.find_object(Settings)
        if obj is not None:
            obj.json = True
    return value


def _opts(param: Any) -> list[str]:
    return list(getattr(param, "opts", ()))


def add_json_options(group: Any, proto: Any) -> None:
    """Give every command under ``group`` a ``--json`` that works after the command name.

    ``arco table list NS --json`` then means ``arco --json table list NS``. Each
    option is a copy of the root's ``--json`` (``proto``) that sets the global
    flag instead of passing a value, added to the command tree once, so a new
    command gets it too and no command declares its own.
    """
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):
            add_json_options(command, proto)
            continue
        if name in NO_JSON_COMMANDS or any("--json" in _opts(p) for p in command.params):
            continue
        option = copy.copy(proto)
        option.expose_value = False
        option.callback = _json_flag
        option.help = JSON_HELP
        command.params.append(option)


def refuse_json(ctx: typer.Context, command: str) -> None:
    """Raise a usage error if the global ``--json`` was given to a command that prints no JSON."""
    if settings(ctx).json:
        raise CliUsageError(f"arco {command} prints no JSON; drop --json")


class ArcoGroup(TyperGroup):
    """Root command group that turns user errors into one ``error:`` line.

    :class:`~arco.core.errors.ArcoError`, validation ``ValueError`` and ``OSError``
    (unreadable or unwritable local store) exit with 1,
    :class:`CliUsageError` with 2; Click's own usage errors keep their default (2).
    It also gives every subcommand its own ``--json`` (:func:`add_json_options`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        proto = next((p for p in self.params if "--json" in _opts(p)), None)
        if proto is not None:
            add_json_options(self, proto)

    def invoke(self, ctx: Any) -> Any:
        """Run the command, mapping user errors to exit codes without a traceback.

        A command that writes to the store is recorded in the audit trail once its
        outcome is known (:mod:`arco.cli.audit_trail`).
        """
        import time

        from arco.cli.audit_trail import command_words, record

        audited = command_words([*getattr(ctx, "_protected_args", ()), *ctx.args])
        started, code = time.perf_counter(), 1
        try:
            result = self._invoke_mapped(ctx)
            code = 0
            return result
        except typer.Exit as exc:
            code = exc.exit_code
            raise
        except typer.TyperException as exc:
            # Typer's Click errors (vendored since Typer 0.26, so not ``click``'s own
            # classes): a usage error carries exit code 2, any other 1.
            code = getattr(exc, "exit_code", 1)
            raise
        finally:
            # A usage error (exit 2) is refused before anything is written: no record,
            # and no store is created for it.
            if audited is not None and code != 2 and isinstance(ctx.obj, Settings):
                record(ctx.obj, audited[0], audited[1], code, started)

    def _invoke_mapped(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise  # Typer's own usage errors, exits and aborts keep their handling
        except CliUsageError as exc:
            fail(one_line(exc), 2)
        except Exception as exc:
            from arco.core.errors import ArcoError

            if isinstance(exc, BrokenPipeError):
                raise  # Typer quiets a closed pipe itself
            if isinstance(exc, ArcoError | ValueError | OSError):
                fail(one_line(exc), 1)
            raise


def parse_properties(items: Sequence[str] | None) -> dict[str, str]:
    """Parse repeated ``K=V`` options (the value may itself contain ``=``)."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliUsageError(f"property {item!r} must look like KEY=VALUE")
        out[key.strip()] = value
    return out
