"""``arco verify``, ``arco gc``, ``arco repair`` and ``arco log``: integrity, garbage,
repair and history."""

from __future__ import annotations

from typing import Annotated

import typer

from arco.cli import output
from arco.cli.context import settings

CATALOG_DOMAIN = "catalog"
#: Domains ``arco log --domain`` knows.
LOG_DOMAINS = (CATALOG_DOMAIN, "lineage", "executions", "search")


def verify(ctx: typer.Context) -> None:
    """Check every manifest and state file of this scope; exit 1 on any problem."""
    from arco.domain.verify import record_verify
    from arco.domain.verify import verify as run_verify

    cfg = settings(ctx)
    report = run_verify(cfg.store(), cfg.scope())
    # arco_verify_ok and friends, pushed on exit when ARCO_PUSHGATEWAY_URL or
    # ARCO_METRICS_FILE is set (a CronJob's verify feeds the "verify failed" alert).
    record_verify(report)
    if cfg.json:
        output.emit_json(
            {
                "ok": report.ok,
                "problems": [{"key": p.key, "message": p.message} for p in report.problems],
                "manifests_checked": report.manifests_checked,
                "files_checked": report.files_checked,
                "domains": list(getattr(report, "domains", [])),
            }
        )
    else:
        for problem in report.problems:
            output.say(f"{problem.key}: {problem.message}")
        summary = (
            f"{report.manifests_checked} manifests and {report.files_checked} files "
            f"checked in {cfg.scope()}"
        )
        if report.ok:
            output.say(f"OK: {summary}; no problems found")
        else:
            count = len(report.problems)
            typer.echo(
                f"error: {count} problem{'s' if count != 1 else ''} found; {summary}", err=True
            )
    if not report.ok:
        raise typer.Exit(1)


def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be deleted.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            min=0,
            metavar="SECONDS",
            help="Leave unreferenced objects younger than this alone.",
        ),
    ] = 3600,
    keep_versions: Annotated[
        int | None,
        typer.Option(
            "--keep-versions",
            min=1,
            metavar="N",
            help="Expire history: keep each domain's newest N versions (and --keep-days).",
        ),
    ] = None,
    keep_days: Annotated[
        float | None,
        typer.Option(
            "--keep-days",
            min=0,
            metavar="DAYS",
            help="Expire history: keep versions committed in the last DAYS days.",
        ),
    ] = None,
    assets: Annotated[
        bool,
        typer.Option(
            "--assets",
            help="Also delete stored asset values no materialization references.",
        ),
    ] = False,
) -> None:
    """Delete objects no live manifest references and that are older than --grace.

    With --keep-versions and/or --keep-days, old versions are expired first (a
    version goes only when neither rule keeps it; the head always stays), so the
    files only they referenced are deleted too and time travel before them ends.
    """
    from datetime import timedelta

    from arco.domain.retention import RetentionPolicy
    from arco.maintenance.gc import collect_asset_outputs, collect_garbage

    cfg = settings(ctx)
    policy = (
        None
        if keep_versions is None and keep_days is None
        else RetentionPolicy(
            keep_versions=keep_versions,
            keep_for=None if keep_days is None else timedelta(days=keep_days),
        )
    )
    report = collect_garbage(
        cfg.store(), cfg.scope(), grace_seconds=grace, dry_run=dry_run, retention=policy
    )
    outputs = (
        collect_asset_outputs(cfg.store(), cfg.scope(), grace_seconds=grace, dry_run=dry_run)
        if assets
        else None
    )
    skipped = list(getattr(report, "skipped_domains", []))
    if cfg.json:
        output.emit_json(
            {
                "dry_run": dry_run,
                "deleted": list(report.deleted),
                "kept": report.kept,
                "bytes_freed": report.bytes_freed,
                "skipped_domains": skipped,
                "expired": [e.to_dict() for e in report.expired],
                "assets": None
                if outputs is None
                else {
                    "deleted": outputs.deleted,
                    "kept": outputs.kept,
                    "bytes_freed": outputs.bytes_freed,
                },
            }
        )
        return
    for e in report.expired:
        if e.expired:
            output.say(
                f"{'would expire' if dry_run else 'expired'} {e.domain} versions "
                f"{e.floor_before}-{e.floor_after - 1}; history now starts at "
                f"version {e.floor_after} (head {e.head})"
            )
        else:
            output.say(f"{e.domain}: nothing to expire (history starts at {e.floor_before})")
    verb = "Would delete" if dry_run else "Deleted"
    for key in report.deleted:
        output.say(f"{verb.lower()} {key}")
    output.say(
        f"{verb} {len(report.deleted)} unreferenced objects ({report.bytes_freed} bytes); "
        f"kept {report.kept}"
    )
    for domain in skipped:
        output.say(f"skipped domain {domain}: its manifest chain is incomplete (run arco verify)")
    if outputs is not None:
        for key in outputs.deleted:
            output.say(f"{verb.lower()} {key}")
        output.say(
            f"{verb} {len(outputs.deleted)} unreferenced asset values "
            f"({outputs.bytes_freed} bytes); kept {outputs.kept} that materializations reference"
        )


def repair(
    ctx: typer.Context,
    domain: Annotated[
        list[str] | None,
        typer.Option(
            "--domain",
            help="Domain to repair (repeatable). Default: every domain found in the scope.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be re-pointed.")
    ] = False,
) -> None:
    """Re-point a domain whose head pointer was lost to its newest valid manifest.

    Under the domain's lease, tries the manifests newest first and publishes a
    pointer to the first whose whole chain verifies. Deletes nothing. Exits 1 if
    a domain cannot be repaired.
    """
    from arco.core.keys import Keys, validate_domain
    from arco.domain.repair import repair_domain
    from arco.domain.verify import discover_domains

    cfg = settings(ctx)
    store, scope = cfg.store(), cfg.scope()
    names = [validate_domain(d) for d in domain] if domain else discover_domains(store, Keys(scope))
    reports = [repair_domain(store, scope, name, dry_run=dry_run) for name in names]
    if cfg.json:
        output.emit_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            if r.action == "ok":
                output.say(f"{r.domain}: OK at version {r.before}; nothing to repair")
            elif r.action == "repointed":
                verb = "would re-point" if dry_run else "re-pointed"
                before = "missing" if r.before is None else f"version {r.before}"
                output.say(
                    f"{r.domain}: {verb} the head from {before} to version {r.after} "
                    f"({r.manifest}); {len(r.rejected)} newer manifest(s) passed over"
                )
        for r in reports:
            if r.action == "unrepairable":
                typer.echo(
                    f"error: {r.domain}: no manifest has a chain that verifies; see `arco verify`",
                    err=True,
                )
            elif r.action == "diverged":
                typer.echo(
                    f"error: {r.domain}: the head (version {r.before}) is sound but another "
                    "history lies beside it (see `arco verify`); repair leaves the choice to "
                    "you: delete the manifests of the history to drop, or the pointer to "
                    "re-point to the newest history",
                    err=True,
                )
    if any(r.action in ("unrepairable", "diverged") for r in reports):
        raise typer.Exit(1)


def log(
    ctx: typer.Context,
    domain: Annotated[
        str,
        typer.Option(
            "--domain",
            help=f"Which domain's history to show: {', '.join(LOG_DOMAINS)}.",
        ),
    ] = CATALOG_DOMAIN,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="How many commits to show.")
    ] = 20,
) -> None:
    """Show the commit history of a domain, newest first."""
    from arco.core.errors import InvalidArgumentError

    cfg = settings(ctx)
    if domain == CATALOG_DOMAIN:
        entries = cfg.catalog().domain.history(limit)
    elif domain == "search":
        from arco.discovery.search import SearchState
        from arco.domain.store import DomainStore

        entries = DomainStore(cfg.store(), cfg.scope(), "search", SearchState).history(limit)
    elif domain in LOG_DOMAINS:
        from arco.ledger.compactor import tier2_store

        entries = tier2_store(cfg.store(), cfg.scope(), domain).history(limit)
    else:
        raise InvalidArgumentError(
            f"unknown domain {domain!r}; known domains: {', '.join(LOG_DOMAINS)}"
        )
    if cfg.json:
        output.emit_json(output.history_json(entries))
    else:
        output.history_table(domain, entries, limit)
