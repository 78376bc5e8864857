"""Orchestration commands: ``plan``, ``run``, ``init``, ``worker``.

The ``runs`` group is :mod:`arco.cli.runs`, the ``assets`` group :mod:`arco.cli.assets`;
both use this module's options and its plan execution.
"""

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
    from arco.flow.status import PlanRequest
    from arco.flow.worker import RunWorker

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


#: Names this module defined before the ``runs`` and ``assets`` groups moved out,
#: by the module that now holds them (imported on first use: ``plan`` stays light).
_MOVED = {
    **dict.fromkeys(("runs_app", "runs_list", "runs_show", "runs_cancel", "runs_rerun"), "runs"),
    **dict.fromkeys(("assets_app", "assets_list", "assets_show"), "assets"),
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"arco.cli.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
