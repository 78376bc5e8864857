"""Orchestration commands: ``plan``, ``run``, ``runs``, ``assets``, ``init``, ``worker``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arco.cli.context import CliUsageError, settings
from arco.cli.output import console, emit_json, say

if TYPE_CHECKING:
    from arco.flow.definitions import Definitions
    from arco.flow.planner import Plan
    from arco.flow.runview import RunsReader, RunsView
    from arco.flow.status import AssetStatus, PlanRequest
    from arco.flow.worker import RunWorker

runs_app = typer.Typer(help="Inspect, cancel and re-run runs.", no_args_is_help=True)
assets_app = typer.Typer(help="List assets and their state.", no_args_is_help=True)

ModuleOpt = Annotated[
    str | None, typer.Option("--module", help="Module or package with the assets (else arco.toml).")
]
TagLimitOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--tag-limit",
        metavar="TAG=N",
        help="At most N running tasks whose assets carry TAG (repeatable), e.g. db=1.",
    ),
]


def parse_tag_limits(items: list[str] | None) -> dict[str, int]:
    """``["db=1", "gpu=2"]`` -> ``{"db": 1, "gpu": 2}`` (usage error otherwise)."""
    out: dict[str, int] = {}
    for item in items or ():
        tag, sep, value = item.partition("=")
        if not sep or not tag.strip() or not value.strip().isdigit() or int(value) < 1:
            raise CliUsageError(f"--tag-limit {item!r} must look like TAG=N with N >= 1")
        out[tag.strip()] = int(value)
    return out


EXECUTORS = ("inline", "process", "dask")


def check_executor(executor: str, dask_address: str | None = None) -> None:
    """Refuse an unknown executor, or a dask address for another executor, before
    anything is planned (a worker would otherwise fail every run it takes)."""
    if executor not in EXECUTORS:
        raise CliUsageError(f"--executor {executor!r} must be one of {', '.join(EXECUTORS)}")
    if dask_address is not None and executor != "dask":
        raise CliUsageError("--dask-address applies only to --executor dask")


def make_plan(
    ctx: typer.Context, module: str | None, asked: PlanRequest
) -> tuple[Definitions, Plan]:
    """The project's definitions and the plan of ``asked``; the checks of the request
    come first (a usage error), then ``executions`` is compacted and planned from."""
    from arco.core.errors import InvalidArgumentError
    from arco.flow.project import load_definitions_for
    from arco.flow.runview import RunsReader
    from arco.flow.status import plan_request

    try:
        asked.validate()
    except InvalidArgumentError as exc:
        raise CliUsageError(str(exc)) from exc
    opts = settings(ctx)
    defs = load_definitions_for(module)
    ws = opts.open_workspace()
    return defs, plan_request(defs, asked, RunsReader.of(ws), compactor=ws.compactor)


def _asked(
    selection: str,
    partition: list[str] | None,
    start: str | None,
    end: str | None,
    stale_only: bool,
) -> PlanRequest:
    from arco.flow.status import PlanRequest

    return PlanRequest(selection, tuple(partition or ()), start, end, stale_only)


def plan_cmd(
    ctx: typer.Context,
    selection: Annotated[str, typer.Argument(help="Keys, +key, key+, group:G, tag:K=V, '*'.")],
    module: ModuleOpt = None,
    partition: Annotated[
        list[str] | None, typer.Option("--partition", help="Partition key.")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First partition.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last partition.")] = None,
    stale_only: Annotated[bool, typer.Option("--stale-only", help="Only stale work.")] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Say why each item is in or out.")
    ] = False,
) -> None:
    """Show the deterministic plan for SELECTION (with --json: the plan and its fingerprint)."""
    _, the_plan = make_plan(ctx, module, _asked(selection, partition, start, end, stale_only))
    if settings(ctx).json:
        emit_json(the_plan.to_dict())
        return
    from rich.table import Table

    say(f"plan {the_plan.fingerprint}  ({len(the_plan.tasks)} tasks)")
    if explain:
        table = Table("asset", "partition", "in plan", "why")
        for e in the_plan.explanations:
            table.add_row(e.asset, e.partition or "", "yes" if e.included else "no", e.reason)
    else:
        table = Table("task", "depends on", "why")
        for t in the_plan.tasks:
            table.add_row(t.task_id, ", ".join(t.deps), t.reason)
    console().print(table)


def run_cmd(
    ctx: typer.Context,
    selection: Annotated[str, typer.Argument(help="Keys, +key, key+, group:G, tag:K=V, '*'.")],
    module: ModuleOpt = None,
    partition: Annotated[
        list[str] | None, typer.Option("--partition", help="Partition key.")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First partition.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last partition.")] = None,
    executor: Annotated[str, typer.Option(help="inline, process or dask.")] = "process",
    dask_address: Annotated[str | None, typer.Option(help="dask scheduler address.")] = None,
    max_concurrency: Annotated[int, typer.Option(min=1, max=1024)] = 4,
    stale_only: Annotated[bool, typer.Option("--stale-only", help="Only stale work.")] = False,
    tag_limit: TagLimitOpt = None,
) -> None:
    """Materialize SELECTION; exits 1 if the run fails."""
    check_executor(executor, dask_address)
    limits = parse_tag_limits(tag_limit)
    asked = _asked(selection, partition, start, end, stale_only)
    defs, the_plan = make_plan(ctx, module, asked)
    code = _execute(
        ctx, defs, the_plan, executor, dask_address, max_concurrency, None, None, limits
    )
    raise typer.Exit(code)


def _execute(
    ctx: typer.Context,
    defs: Any,
    the_plan: Any,
    executor: str,
    dask_address: str | None,
    max_concurrency: int,
    parent: str | None,
    reuse: Any,
    tag_limits: dict[str, int] | None = None,
) -> int:
    from rich.live import Live

    from arco.flow.executors import make_executor
    from arco.flow.runner import RunOptions, Scheduler

    opts = settings(ctx)
    counts: dict[str, int] = {}
    failures: list[str] = []
    started = time.monotonic()

    def render() -> str:
        parts = " ".join(f"{k.lower()}={v}" for k, v in sorted(counts.items()) if v)
        return f"[{time.monotonic() - started:6.1f}s] {parts}"

    states: dict[str, str] = {}
    live = (
        Live(
            render(), console=console().__class__(stderr=True), refresh_per_second=8, transient=True
        )
        if not opts.json
        else None
    )

    def on_change(run_id: str, tr: Any) -> None:
        old = states.get(tr.task.task_id)
        if old:
            counts[old] -= 1
        states[tr.task.task_id] = tr.state
        counts[tr.state] = counts.get(tr.state, 0) + 1
        if tr.state == "FAILED" and tr.error:
            failures.append(f"{tr.task.task_id}: {tr.error.splitlines()[0]}")
        if live is not None:
            live.update(render())

    from arco.openlineage.emit import emitter_for_cli

    lineage_out = emitter_for_cli(opts.scope(), defs)
    runner = make_executor(executor, dask_address=dask_address)
    try:
        scheduler = Scheduler(
            opts.store(),
            opts.scope(),
            defs,
            store_url=opts.store_url,
            executor=runner,
            options=RunOptions(max_concurrency=max_concurrency, tag_concurrency=tag_limits or {}),
            on_change=on_change,
            on_events=lineage_out[1] if lineage_out else None,
            workspace=opts.open_workspace(),
        )
        if live is not None:
            with live:
                result = scheduler.run(the_plan, parent_run_id=parent, reuse=reuse)
        else:
            result = scheduler.run(the_plan, parent_run_id=parent, reuse=reuse)
    finally:
        runner.close()
        if lineage_out:
            # Bounded: an endpoint that is down delays the exit, never the run's result.
            lineage_out[0].close(timeout=lineage_out[0].close_timeout)
    if opts.json:
        emit_json(
            {
                "run_id": result.run_id,
                "state": result.state,
                "elapsed_seconds": round(result.elapsed, 3),
                "tasks": {t: r.state for t, r in result.tasks.items()},
            }
        )
    else:
        summary = render().split("] ")[-1]
        say(f"run {result.run_id} {result.state} in {result.elapsed:.2f}s  {summary}")
        for line in failures:
            say(f"  failed {line}")
    return 0 if result.state == "SUCCEEDED" else 1


def _runs_state(ctx: typer.Context) -> Any:
    from arco.ledger.compactor import tier2_store

    opts = settings(ctx)
    opts.open_workspace().compactor.compact("executions")
    domain = tier2_store(opts.store(), opts.scope(), "executions")
    return domain, domain.read()


@runs_app.command("list")
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


@runs_app.command("show")
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


@runs_app.command("cancel")
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


@runs_app.command("rerun")
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


@assets_app.command("list")
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


@assets_app.command("show")
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


def worker_cmd(
    ctx: typer.Context,
    module: ModuleOpt = None,
    once: Annotated[
        bool, typer.Option("--once", help="Run what is queued now, then exit.")
    ] = False,
    executor: Annotated[str, typer.Option(help="inline, process or dask.")] = "process",
    dask_address: Annotated[str | None, typer.Option(help="dask scheduler address.")] = None,
    max_concurrency: Annotated[int, typer.Option(min=1, max=1024)] = 4,
    runs: Annotated[
        int,
        typer.Option(
            "--runs", min=1, max=256, help="Runs executed at once (each with its own lease)."
        ),
    ] = 1,
    tag_limit: TagLimitOpt = None,
    lease_ttl: Annotated[
        float, typer.Option(min=1.0, max=3600.0, help="Seconds a run's lease lasts unrenewed.")
    ] = 15.0,
    poll_interval: Annotated[
        float, typer.Option(min=0.05, max=600.0, help="Seconds between queue polls.")
    ] = 1.0,
) -> None:
    """Execute runs queued through the API (one lease per run; resumes runs of dead workers)."""

    from arco.flow.executors import make_executor
    from arco.flow.project import load_definitions_for
    from arco.flow.worker import RunWorker, WorkerOptions

    opts = settings(ctx)
    check_executor(executor, dask_address)
    limits = parse_tag_limits(tag_limit)
    defs = load_definitions_for(module)
    from arco.openlineage.emit import emitter_for_worker

    # Runs queued through the API emit OpenLineage like `arco run` when configured.
    lineage_out = emitter_for_worker(opts.scope(), lambda: defs)
    worker = RunWorker(
        opts.store(),
        opts.scope(),
        defs,
        store_url=opts.store_url,
        executor=lambda: make_executor(executor, dask_address=dask_address),
        workspace=opts.open_workspace(),
        options=WorkerOptions(
            lease_ttl=lease_ttl,
            poll_interval=poll_interval,
            max_concurrency=max_concurrency,
            tag_concurrency=limits,
            max_runs=runs,
        ),
        on_events=lineage_out[1] if lineage_out else None,
    )
    try:
        _work(ctx, worker, once, poll_interval, runs)
    finally:
        if lineage_out:
            lineage_out[0].close(timeout=lineage_out[0].close_timeout)


def _work(
    ctx: typer.Context, worker: RunWorker, once: bool, poll_interval: float, runs: int
) -> None:
    """The worker's loop: one pass (``--once``) or until interrupted."""
    import threading

    opts = settings(ctx)
    if once:
        handled = worker.poll_once()
        results = {r.run_id: r.state for r in worker.results}
        if opts.json:
            emit_json({"runs": [{"run_id": r, "state": results.get(r)} for r in handled]})
        else:
            for run_id in handled:
                say(f"run {run_id} {results.get(run_id) or 'handed over'}")
        failed = any(state != "SUCCEEDED" for state in results.values())
        raise typer.Exit(1 if failed else 0)
    # A status line, not a result: on stderr under --json so stdout stays JSON-only.
    typer.echo(
        f"run worker polling {opts.tenant}/{opts.workspace} every {poll_interval:g}s, "
        f"up to {runs} run{'s' if runs != 1 else ''} at once",
        err=opts.json,
    )
    stop = threading.Event()
    try:
        worker.serve(stop)
    except KeyboardInterrupt:
        stop.set()


def init_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Project (and folder) name.")],
) -> None:
    """Scaffold a project: a package with example assets, arco.toml and a test."""
    from arco.flow.project import scaffold

    files = scaffold(Path(name), name)
    if settings(ctx).json:
        emit_json(
            {"project": name, "path": str(Path(name).resolve()), "files": list(map(str, files))}
        )
        return
    say(f"created {name}/ with {len(files)} files; next: cd {name} && arco run '*'")


def register(app: typer.Typer) -> None:
    """Add the orchestration commands to the root app."""
    app.command("plan")(plan_cmd)
    app.command("run")(run_cmd)
    app.command("init")(init_cmd)
    app.command("worker")(worker_cmd)
    app.add_typer(runs_app, name="runs")
    app.add_typer(assets_app, name="assets")
