"""The CLI's writes in the audit trail, like the API's (``system.audit``, ``arco audit``).

A command that writes straight to the store (``arco table create``, ``arco
events append``, ``arco gc`` ...) records one ``audit.recorded`` event in the
scope it wrote to, once its outcome is known: the OS user (or ``ARCO_ACTOR``) as
actor, the command as action, its first argument as target, and ``ok``,
``rejected`` (a user error, exit 1 or 2) or ``error``. Read-only commands, dry
runs and the long-running processes (``serve``, ``dev``, ``worker``, ``daemon``,
``tick``: their own writes are ledger events with an actor) record nothing; the
``admin`` commands record themselves with their details. A record that cannot be
written (the store is read-only or gone) is reported on stderr and never changes
the command's exit status.
"""

from __future__ import annotations

import time
from typing import Any

import typer

#: (group, command) or (command,) -> written to the audit trail when run.
AUDITED: frozenset[tuple[str, ...]] = frozenset(
    {
        ("compact",),
        ("gc",),
        ("repair",),
        ("run",),
        ("check",),
        *(("namespace", c) for c in ("create", "drop")),
        *(
            ("table", c)
            for c in (
                "create",
                "drop",
                "rename",
                "add-column",
                "drop-column",
                "rename-column",
                "set",
            )
        ),
        *(("events", c) for c in ("append", "prune")),
        *(("lineage", c) for c in ("add", "remove")),
        *(("runs", c) for c in ("cancel", "rerun")),
        *(("schedule", c) for c in ("on", "off")),
        *(("sensor", c) for c in ("on", "off")),
        *(("backfill", c) for c in ("create", "pause", "resume", "cancel", "retry")),
    }
)


def command_words(args: list[str]) -> tuple[tuple[str, ...], str | None] | None:
    """The audited command ``args`` name and its target, or None if not audited.

    ``args`` are the words after the global options (the subcommand first).
    """
    if "--dry-run" in args:
        return None
    words = [a for a in args if not a.startswith("-")]
    for size in (2, 1):
        path = tuple(words[:size])
        if path in AUDITED:
            rest = words[size:]
            return path, (rest[0] if rest else None)
    return None


def outcome_of_exit(code: int) -> str:
    """The audit outcome of an exit status: ok, rejected (a user error) or error."""
    if code == 0:
        return "ok"
    return "rejected" if code in (1, 2) else "error"


def record(
    settings: Any, path: tuple[str, ...], target: str | None, code: int, started: float
) -> None:
    """Write the audit record of one finished command (best effort, one line if it fails)."""
    write_best_effort(
        settings,
        "cli " + " ".join(path),
        outcome_of_exit(code),
        started,
        target=target,
        role="operator",
        detail={"exit_code": str(code)},
        source="cli",
    )


def write_best_effort(
    settings: Any,
    action: str,
    outcome: str,
    started: float,
    *,
    target: str | None = None,
    role: str,
    detail: dict[str, str],
    source: str,
) -> None:
    """One audit record in the scope of ``settings``, as the current actor; a record
    that cannot be written is one line on stderr and never changes the command's
    outcome (the write it records is done)."""
    from arco.core.actor import current_actor
    from arco.core.ids import new_ulid
    from arco.governance.audit import AuditRecord, write_audit

    try:
        scope = settings.scope()
        write_audit(
            settings.store(),
            AuditRecord(
                action=action,
                outcome=outcome,
                actor=current_actor(),
                tenant=scope.tenant,
                workspace=scope.workspace,
                request_id=new_ulid(),
                target=target,
                roles=(role,),
                duration_ms=(time.perf_counter() - started) * 1000,
                detail=detail,
            ),
            source=source,
        )
    except Exception as exc:  # an audit failure must not turn a done write into an error
        typer.echo(f"warning: audit record not written: {' '.join(str(exc).split())}", err=True)
