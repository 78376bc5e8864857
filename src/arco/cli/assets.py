"""Asset commands: ``assets list``, ``assets show``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from arco.cli.context import settings
from arco.cli.flow import ModuleOpt
from arco.cli.output import console, emit_json, say

if TYPE_CHECKING:
    from arco.flow.definitions import Definitions
    from arco.flow.runview import RunsReader, RunsView
    from arco.flow.status import AssetStatus

app = typer.Typer(help="List assets and their state.", no_args_is_help=True)
#: The name ``arco.cli.flow`` gave this group.
assets_app = app


def _statuses(
    ctx: typer.Context, module: str | None
) -> tuple[Definitions, RunsReader, RunsView, dict[str, AssetStatus]]:
    """The project's definitions, a runs view (compacted and pending events) and
    every asset's status as of that view."""
    from arco.flow.project import load_definitions_for
    from arco.flow.runview import RunsReader
    from arco.flow.status import asset_statuses

    opts = settings(ctx)
    defs = load_definitions_for(module)
    reader = RunsReader.of(opts.open_workspace())
    view = reader.view()
    return defs, reader, view, asset_statuses(defs, reader.latest(view))


def _when(status: AssetStatus) -> str | None:
    return status.last["recorded_at"].isoformat() if status.last is not None else None


@app.command("list")
def assets_list(ctx: typer.Context, module: ModuleOpt = None) -> None:
    """Assets with their last materialization and staleness."""
    defs, _, _, statuses = _statuses(ctx, module)
    out: list[dict[str, Any]] = []
    for key, st in statuses.items():
        a = defs[key]
        out.append(
            {
                "key": key,
                "group": a.group,
                "partitioned": a.partitions is not None,
                "code_version": a.code_version,
                "last_materialized": _when(st),
                "stale": st.stale,
                "why": st.stale_reasons,
                "freshness": st.freshness["state"] if st.freshness is not None else None,
            }
        )
    if settings(ctx).json:
        emit_json(out)
        return
    from rich.table import Table

    table = Table("asset", "group", "last materialized", "status")
    for r in out:
        status = "stale: " + ", ".join(r["why"]) if r["stale"] else "up to date"
        if r["freshness"] == "overdue":
            status = f"OVERDUE; {status}"
        table.add_row(r["key"], r["group"], r["last_materialized"] or "never", status)
    console().print(table)


@app.command("show")
def assets_show(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="Asset key (namespace.name).")],
    module: ModuleOpt = None,
) -> None:
    """One asset: its dependencies, last materialization, staleness, freshness and
    the latest result of each of its checks (per partition)."""
    from arco.core.errors import NotFoundError
    from arco.flow.automation.views import check_results

    defs, reader, view, statuses = _statuses(ctx, module)
    if key not in defs.assets:
        raise NotFoundError(f"no asset named {key!r} in the project")
    a = defs[key]
    opts = settings(ctx)
    st = statuses[key]
    why = st.stale_reasons
    checks = check_results(reader, view, asset=key, latest=True)
    fresh = st.freshness
    declared = [c.describe() for c in defs.checks.get(key, [])]
    out: dict[str, Any] = {
        "key": key,
        "group": a.group,
        "description": a.description,
        "deps": sorted({u.key for u in defs.upstreams[key]}),
        "partitioned": a.partitions is not None,
        "materialized_partitions": st.materialized_partitions,
        "last_materialized": _when(st),
        "last_run_id": st.last["run_id"] if st.last is not None else None,
        "stale": bool(why),
        "why": why,
        "freshness": fresh,
        "declared_checks": declared,
        "checks": checks,
    }
    if opts.json:
        emit_json(out)
        return
    say(f"{key}  (group {a.group})" + (f": {a.description}" if a.description else ""))
    say(f"  deps: {', '.join(out['deps']) or '-'}")
    say(f"  last materialized: {out['last_materialized'] or 'never'}")
    say("  status: " + ("stale: " + ", ".join(why) if why else "up to date"))
    if fresh is not None:
        say(f"  freshness: {fresh['state'].upper()} (deadline {fresh['deadline']})")
    if not declared and not checks:
        say("  checks: none")
        return
    say("  checks:")
    for c in checks:
        mark = "PASS" if c["passed"] else ("FAIL" if c["severity"] == "error" else "WARN")
        where = f"[{c['partition']}]" if c["partition"] is not None else ""
        err = f"  {str(c['error']).splitlines()[0]}" if c["error"] else ""
        say(f"    {mark:<4} {c['check']}{where}  {c['evaluated_at']}{err}")
    seen = {c["check"] for c in checks}
    for d in declared:
        if d["name"] not in seen:
            say(f"    ---- {d['name']}  never evaluated")
