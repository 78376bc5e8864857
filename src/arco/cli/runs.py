"""Run commands: ``runs list``, ``runs show``, ``runs cancel``, ``runs rerun``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from arco.cli.context import settings
from arco.cli.flow import ModuleOpt, _execute, check_executor
from arco.cli.output import console, emit_json, say

app = typer.Typer(help="Inspect, cancel and re-run runs.", no_args_is_help=True)
#: The name ``arco.cli.flow`` gave this group.
runs_app = app


def _runs_state(ctx: typer.Context) -> Any:
    from arco.ledger.compactor import tier2_store

    opts = settings(ctx)
    opts.open_workspace().compactor.compact("executions")
    domain = tier2_store(opts.store(), opts.scope(), "executions")
    return domain, domain.read()


@app.command("list")
def runs_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    include_external: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Also list external runs reported through OpenLineage (dbt, Airflow, Spark...).",
        ),
    ] = False,
) -> None:
    """Runs, newest first, with their state."""
    _, snap = _runs_state(ctx)
    rows = sorted(snap.state.rows("runs"), key=lambda r: r["run_id"], reverse=True)[:limit]
    out = [
        {
            "run_id": r["run_id"],
            "source": "arco",
            "state": r["state"],
            "selection": r["selection"],
            "parent_run_id": r["parent_run_id"],
            "created_at": r["created_at"].isoformat() if r["created_at"] else None,
            "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
        }
        for r in rows
    ]
    if include_external:
        out = sorted(out + _external_runs(ctx), key=lambda r: r["created_at"] or "", reverse=True)[
            :limit
        ]
    if settings(ctx).json:
        emit_json(out)
        return
    from rich.table import Table

    table = Table("run", "state", "selection", "created", "finished")
    if include_external:
        table.add_column("source")
    for r in out:
        cells = [
            r["run_id"],
            r["state"],
            r["selection"] or "",
            r["created_at"] or "",
            r["finished_at"] or "",
        ]
        table.add_row(*cells, *([r["source"]] if include_external else []))
    console().print(table)


def _external_runs(ctx: typer.Context) -> list[dict[str, Any]]:
    """OpenLineage runs (folded into the lineage domain) in the shape of ``runs list``."""
    from arco.ledger.compactor import tier2_store

    opts = settings(ctx)
    opts.open_workspace().compactor.compact("lineage")
    snap = tier2_store(opts.store(), opts.scope(), "lineage").read()
    return [
        {
            "run_id": r["run_id"],
            "source": "openlineage",
            "state": r["state"],
            "selection": f"{r['job_namespace']}/{r['job_name']}",
            "parent_run_id": r["parent_run_id"],
            "created_at": r["started_at"].isoformat() if r["started_at"] else None,
            "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
            "error": r["error_message"],
        }
        for r in snap.state.rows("external_runs")
    ]


@app.command("show")
def runs_show(ctx: typer.Context, run_id: str) -> None:
    """One run: per-task state, duration, attempts, errors and log lines."""
    from arco.core.errors import NotFoundError

    domain, snap = _runs_state(ctx)
    run = snap.state.table("runs").get((run_id,))
    if run is None:
        raise NotFoundError(f"run {run_id} does not exist")
    tasks = sorted(
        (r for r in snap.state.rows("tasks") if r["run_id"] == run_id), key=lambda r: r["task_id"]
    )
    logs = [r for r in domain.load_table(snap, "logs").to_pylist() if r["run_id"] == run_id]
    data = {
        "run_id": run_id,
        "state": run["state"],
        "selection": run["selection"],
        "parent_run_id": run["parent_run_id"],
        "tasks": [
            {
                "task_id": t["task_id"],
                "state": t["state"],
                "attempt": t["attempt"],
                "duration_seconds": (t["finished_at"] - t["started_at"]).total_seconds()
                if t["finished_at"] and t["started_at"]
                else None,
                "error": t["error"],
            }
            for t in tasks
        ],
        "logs": [{"task_id": r["task_id"], "line": r["line"]} for r in logs],
    }
    if settings(ctx).json:
        emit_json(data)
        return
    from rich.table import Table

    say(f"run {run_id}: {run['state']}")
    table = Table("task", "state", "attempts", "seconds", "error")
    for t in data["tasks"]:
        secs = t["duration_seconds"]
        table.add_row(
            t["task_id"],
            t["state"],
            str(t["attempt"]),
            f"{secs:.2f}" if secs is not None else "",
            (t["error"] or "").splitlines()[0] if t["error"] else "",
        )
    console().print(table)
    for entry in data["logs"]:
        say(f"  {entry['task_id']}: {entry['line']}")


@app.command("cancel")
def runs_cancel(ctx: typer.Context, run_id: str) -> None:
    """Ask the scheduler running RUN_ID to cancel it."""
    from arco.core.keys import validate_ulid
    from arco.flow.queue import request_cancel

    opts = settings(ctx)
    state = request_cancel(opts.store(), opts.scope(), validate_ulid(run_id))
    if opts.json:
        emit_json({"run_id": run_id, "state": state, "cancelled": state == "CANCELLED"})
    elif state == "CANCELLED":
        say(f"run {run_id} cancelled before it started")
    else:
        say(f"cancellation requested for run {run_id}")


@app.command("rerun")
def runs_rerun(
    ctx: typer.Context,
    run_id: str,
    from_failure: Annotated[
        bool, typer.Option("--from-failure", help="Only failed and not-run tasks.")
    ] = False,
    module: ModuleOpt = None,
    executor: Annotated[str, typer.Option(help="inline, process or dask.")] = "process",
    max_concurrency: Annotated[int, typer.Option(min=1, max=1024)] = 4,
) -> None:
    """Re-run a run (with --from-failure: only what did not succeed, reusing outputs)."""
    check_executor(executor)
    from arco.core.errors import NotFoundError
    from arco.flow.planner import rerun_plan
    from arco.flow.project import load_definitions_for

    _, snap = _runs_state(ctx)
    run = snap.state.table("runs").get((run_id,))
    if run is None:
        raise NotFoundError(f"run {run_id} does not exist")
    parent_tasks = {r["task_id"]: r for r in snap.state.rows("tasks") if r["run_id"] == run_id}
    defs = load_definitions_for(module)
    keep = (
        {t for t, r in parent_tasks.items() if r["state"] != "SUCCEEDED"}
        if from_failure
        else set(parent_tasks)
    )
    if not keep:
        if settings(ctx).json:
            emit_json({"run_id": None, "parent_run_id": run_id, "state": None, "tasks": {}})
        else:
            say(f"run {run_id} has nothing to re-run")
        return
    the_plan = rerun_plan(
        defs,
        [(r["asset"], r["partition"]) for t, r in parent_tasks.items() if t in keep],
        run["selection"] or "*",
    )
    raise typer.Exit(_execute(ctx, defs, the_plan, executor, None, max_concurrency, run_id, None))
