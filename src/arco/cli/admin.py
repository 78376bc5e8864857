"""``arco audit`` and ``arco admin ...``: the audit trail and tenant administration.

These commands act with the store's credentials (an operator's), so unlike the
admin API they may see every tenant. Each ``arco admin`` change is itself
recorded in the audit trail of the scope given by ``--tenant``/``--workspace``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from arco.cli import output
from arco.cli.context import CliUsageError, Settings, settings

app = typer.Typer(
    name="admin",
    help="Tenant administration: tenants, workspaces, quotas, usage (store credentials).",
    no_args_is_help=True,
)


def _audit(cfg: Settings, action: str, target: str, outcome: str = "ok", **detail: str) -> None:
    """Record an admin command in the audit trail of the current scope."""
    from arco.core.actor import current_actor
    from arco.governance.audit import AuditRecord, write_audit

    scope = cfg.scope()
    write_audit(
        cfg.store(),
        AuditRecord(
            action=action,
            outcome=outcome,
            actor=current_actor(),
            tenant=scope.tenant,
            workspace=scope.workspace,
            request_id=uuid.uuid4().hex,
            target=target,
            roles=("operator",),
            detail={k: str(v) for k, v in detail.items()},
        ),
        source="cli",
    )


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if value[:-1].isdigit() and value[-1:] in units:
        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CliUsageError(
            f"--since {value!r} is neither a duration (30m, 2h, 7d) nor ISO 8601"
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def audit(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only records newer than this: 30m, 2h, 7d or ISO 8601."),
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this actor's records.")] = None,
    outcome: Annotated[
        str | None,
        typer.Option("--outcome", help="Only this outcome: ok, denied, rejected, error."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many (newest).")] = 100,
) -> None:
    """Show the audit trail of this scope: who wrote what, with which outcome.

    Reads ``system.audit`` (folded by ``arco compact``) plus records still waiting
    in the ledger, so the newest writes show at once.
    """
    from arco.governance.audit import read_audit

    cfg = settings(ctx)
    rows = read_audit(cfg.store(), cfg.scope(), since=_parse_since(since))
    if actor is not None:
        rows = [r for r in rows if r["actor"] == actor]
    if outcome is not None:
        rows = [r for r in rows if r["outcome"] == outcome]
    rows = rows[-limit:]
    if cfg.json:
        output.emit_json([{**r, "recorded_at": r["recorded_at"].isoformat()} for r in rows])
        return
    if not rows:
        output.say("No audit records.")
        return
    from rich.table import Table

    table = Table("time", "actor", "action", "outcome", "status", "request id")
    for r in rows:
        table.add_row(
            output.when(r["recorded_at"]),
            r["actor"],
            r["action"],
            r["outcome"],
            "" if r["status"] is None else str(r["status"]),
            r["request_id"] or "",
        )
    output.console().print(table)


@app.command("tenants")
def tenants_(ctx: typer.Context) -> None:
    """List every tenant that holds data in the store (one delimited listing)."""
    from arco.governance import tenants

    cfg = settings(ctx)
    names = tenants.list_tenants(cfg.store())
    if cfg.json:
        output.emit_json(names)
    else:
        for name in names:
            output.say(name)


@app.command("workspaces")
def workspaces(ctx: typer.Context) -> None:
    """List the workspaces of --tenant: registered ones and unregistered ones holding data."""
    from arco.governance import tenants

    cfg = settings(ctx)
    found = tenants.list_workspaces(cfg.store(), cfg.scope().tenant)
    if cfg.json:
        output.emit_json([w.to_dict() for w in found])
        return
    for w in found:
        note = "" if w.registered else " (unregistered)"
        output.say(f"{w.workspace}\t{w.status}{note}\t{w.description}")


@app.command("create-workspace")
def create_workspace(
    ctx: typer.Context,
    workspace: Annotated[str, typer.Argument(help="The new workspace id.")],
    description: Annotated[str, typer.Option("--description", "-d")] = "",
) -> None:
    """Register a new workspace of --tenant."""
    from arco.governance import tenants

    cfg = settings(ctx)
    record = tenants.create_workspace(
        cfg.store(), cfg.scope().tenant, workspace, description=description
    )
    _audit(cfg, "admin create-workspace", f"{record.tenant}/{record.workspace}")
    if cfg.json:
        output.emit_json(record.to_dict())
    else:
        output.say(f"Created workspace {record.tenant}/{record.workspace}")


def _status(ctx: typer.Context, workspace: str, status: str) -> None:
    from arco.governance import tenants

    cfg = settings(ctx)
    record = tenants.set_workspace_status(cfg.store(), cfg.scope().tenant, workspace, status)
    verb = "retire" if status == "retired" else "activate"
    _audit(cfg, f"admin {verb}-workspace", f"{record.tenant}/{record.workspace}")
    if cfg.json:
        output.emit_json(record.to_dict())
    else:
        output.say(f"Workspace {record.tenant}/{record.workspace} is {record.status}")


@app.command("retire-workspace")
def retire_workspace(
    ctx: typer.Context, workspace: Annotated[str, typer.Argument(help="Workspace id.")]
) -> None:
    """Retire a workspace of --tenant: the API refuses its requests (data is kept)."""
    _status(ctx, workspace, "retired")


@app.command("activate-workspace")
def activate_workspace(
    ctx: typer.Context, workspace: Annotated[str, typer.Argument(help="Workspace id.")]
) -> None:
    """Reactivate a retired workspace of --tenant."""
    _status(ctx, workspace, "active")


@app.command("quotas")
def quotas(
    ctx: typer.Context,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="NAME=N",
            help="Set a quota (N, or 'none' to remove): ingest_per_minute, "
            "signed_urls_per_minute, storage_bytes, concurrent_runs. Repeat for more.",
        ),
    ] = None,
) -> None:
    """Show (or with --set, change) the quotas of --tenant."""
    from arco.governance import tenants

    cfg = settings(ctx)
    tenant = cfg.scope().tenant
    if set_:
        changes: dict[str, Any] = {}
        for item in set_:
            name, sep, value = item.partition("=")
            if not sep:
                raise CliUsageError(f"--set {item!r} must be NAME=N")
            if value.strip().lower() in ("none", "null", ""):
                changes[name.strip()] = None
            elif value.strip().isdigit():
                changes[name.strip()] = int(value)
            else:
                raise CliUsageError(f"--set {item!r}: the value must be a whole number or 'none'")
        doc = tenants.set_quotas(cfg.store(), tenant, changes)
        _audit(cfg, "admin quotas", tenant, changes=json.dumps(changes, sort_keys=True))
    else:
        doc = tenants.get_quotas(cfg.store(), tenant)
    if cfg.json:
        output.emit_json(doc.to_dict())
        return
    for quota, limit in doc.quotas.to_dict().items():
        output.say(f"{quota}\t{'unlimited' if limit is None else limit}")


@app.command("usage")
def usage(
    ctx: typer.Context,
    measure: Annotated[
        bool, typer.Option("--measure", help="List the tenant's objects and record the total.")
    ] = False,
) -> None:
    """Show the storage (last measured, or measured now) and unfinished runs of --tenant."""
    from arco.governance import tenants

    cfg = settings(ctx)
    store, tenant = cfg.store(), cfg.scope().tenant
    measured = (
        tenants.measure_storage(store, tenant) if measure else tenants.storage_usage(store, tenant)
    )
    names = [w.workspace for w in tenants.list_workspaces(store, tenant)]
    runs = tenants.active_runs(store, tenant, names)
    body = {
        "tenant": tenant,
        "storage": None if measured is None else measured.__dict__,
        "active_runs": runs,
    }
    if cfg.json:
        output.emit_json(body)
        return
    if measured is None:
        output.say(f"{tenant}: storage never measured (arco admin usage --measure)")
    else:
        output.say(
            f"{tenant}: {measured.bytes} bytes in {measured.objects} objects "
            f"(measured {measured.measured_at})"
        )
    output.say(f"{tenant}: {runs} unfinished runs")


@app.command("prune-usage")
def prune_usage(
    ctx: typer.Context,
    keep_minutes: Annotated[int, typer.Option("--keep-minutes", min=1)] = 60,
) -> None:
    """Delete the per-minute quota counters of --tenant older than --keep-minutes."""
    from arco.governance import tenants

    cfg = settings(ctx)
    removed = tenants.prune_usage(cfg.store(), cfg.scope().tenant, keep_minutes=keep_minutes)
    if cfg.json:
        output.emit_json({"removed": removed})
    else:
        output.say(f"Removed {output.plural(removed, 'counter')}")


@app.command("locks")
def locks(ctx: typer.Context) -> None:
    """Show the lease lock of every domain of this scope: holder, token, time left."""
    import time

    from arco.core.errors import ArcoError
    from arco.core.keys import Keys
    from arco.domain.lock import LeaseLock
    from arco.domain.manifest import Pointer
    from arco.domain.verify import discover_domains

    cfg = settings(ctx)
    store, keys = cfg.store(), Keys(cfg.scope())
    now = time.time()
    rows = []
    for domain in discover_domains(store, keys):
        found = LeaseLock(store, keys.lock(domain)).read()
        if found is None:
            continue
        record, _ = found
        try:
            data, _ = store.get(keys.pointer(domain))
            published = Pointer.from_bytes(data).fencing_token
        except ArcoError:
            published = 0
        if record.released:
            state = "released"
        elif published >= record.token:
            state = "published"  # its commit is the head: the lease ended with it
        elif record.expires_at <= now:
            state = "expired"  # the holder died; the next writer takes over
        else:
            state = "held"
        rows.append(
            {
                "domain": domain,
                "state": state,
                "holder": record.holder,
                "token": record.token,
                "expires_in": round(record.expires_at - now, 1),
            }
        )
    if cfg.json:
        output.emit_json(rows)
        return
    for r in rows:
        output.say(
            f"{r['domain']}\t{r['state']}\ttoken {r['token']}\t{r['holder']}\t"
            f"expires in {r['expires_in']}s"
        )
