"""``arco dev``: API, web UI, compaction loop, run worker, automation daemon and the
demo project in one process. Heavy parts (the run worker, the project's definitions,
executors, the automation daemon) start after "ready" is printed, so the server
answers first."""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from arco.cli import STARTED
from arco.cli.context import refuse_json, settings
from arco.cli.output import say

if TYPE_CHECKING:
    from arco.flow.worker import RunWorker


def dev(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8484,
    interval: Annotated[float, typer.Option(help="Seconds between compactions.")] = 2.0,
    run_demo: Annotated[
        bool, typer.Option("--run/--no-run", help="Queue a run of what is stale at start.")
    ] = True,
    module: Annotated[
        str | None, typer.Option("--module", help="Asset module (else arco.toml here).")
    ] = None,
    executor: Annotated[
        str, typer.Option(help="Executor of the run worker: inline, process or dask.")
    ] = "process",
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run queued runs in this process.")
    ] = True,
    automation: Annotated[
        bool,
        typer.Option(
            "--automation/--no-automation",
            help="Tick schedules, sensors, backfills, freshness and alerts in this process.",
        ),
    ] = True,
    tick_interval: Annotated[
        float, typer.Option(min=0.5, max=3600.0, help="Seconds between automation ticks.")
    ] = 15.0,
    exit_after: Annotated[
        float | None, typer.Option(hidden=True, help="Stop after N seconds (tests).")
    ] = None,
) -> None:
    """Start the API, the web UI, a compaction loop, a run worker, the automation
    daemon and (in an empty folder) the scaffolded demo project."""
    import uvicorn

    from arco.api.app import create_app
    from arco.api.auth import mint_token
    from arco.api.settings import MAX_REQUEST_HEAD_BYTES, Settings
    from arco.cli.flow import check_executor

    started = time.monotonic()
    refuse_json(ctx, "dev")
    check_executor(executor)
    opts = settings(ctx)
    if opts.store_option or os.environ.get("ARCO_STORE"):
        opts.store_choice()  # a given relative path means the folder the command ran in
    cwd = Path.cwd()
    scaffolded = False
    if not (cwd / "arco.toml").exists() and not any(
        p for p in cwd.iterdir() if not p.name.startswith(".")
    ):
        from arco.flow.project import scaffold

        scaffold(cwd / "demo", "demo")
        os.chdir(cwd / "demo")
        scaffolded = True
    secret = os.environ.get("ARCO_JWT_SECRET") or secrets.token_urlsafe(32)
    os.environ["ARCO_JWT_SECRET"] = secret
    store_url = opts.store_url
    app = create_app(
        Settings.from_env(
            store_url=store_url,
            jwt_secret=secret,
            dev_mode=True,
            dev_tenant=opts.tenant,
            dev_workspace=opts.workspace,
            project_module=module,
            project_dir=str(Path.cwd()),
        )
    )
    token = mint_token(
        secret, tenant=opts.tenant, workspace=opts.workspace, roles=["admin"], ttl_seconds=86400
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)
    if not thread.is_alive():
        raise typer.Exit(1)
    say(
        f"arco dev ready in {time.monotonic() - STARTED:.2f}s "
        f"(server up {time.monotonic() - started:.2f}s after the command began) "
        f"at http://{host}:{port}"
    )
    say(
        f"store: {store_url} (from {opts.store_choice().describe()})  "
        f"scope: {opts.tenant}/{opts.workspace}"
    )
    say(f"dev token (admin, 24h): {token}")
    if scaffolded:
        say("scaffolded a demo project in ./demo")
    stop = threading.Event()

    def compaction_loop() -> None:
        ws = opts.open_workspace()
        while not stop.wait(interval):
            try:
                ws.compactor.compact_all()
                ws.search.refresh()
            except Exception as exc:
                say(f"compaction error: {exc}")

    threading.Thread(target=compaction_loop, daemon=True).start()
    from arco.core.config import find_config

    # The project above this folder too, as `arco run` and `arco assets list` find it.
    has_project = module is not None or find_config() is not None
    if worker and has_project:
        threading.Thread(
            target=_worker_loop, args=(ctx, module, executor, stop), daemon=True
        ).start()
    if automation and has_project:
        threading.Thread(
            target=_automation_loop, args=(ctx, module, tick_interval, stop), daemon=True
        ).start()
    if run_demo and has_project:
        from arco.cli.flow import make_plan
        from arco.flow.queue import enqueue
        from arco.flow.status import PlanRequest

        _, the_plan = make_plan(ctx, module, PlanRequest("*", stale_only=True))
        if the_plan.tasks:
            queued = enqueue(opts.store(), opts.scope(), the_plan)
            say(f"queued run {queued.run_id} of {len(the_plan.tasks)} stale tasks")
    try:
        while thread.is_alive():
            if exit_after is not None and time.monotonic() - started > exit_after:
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.should_exit = True
        thread.join(timeout=5)


def _worker_loop(
    ctx: typer.Context, module: str | None, executor: str, stop: threading.Event
) -> None:
    """The run worker of ``arco dev``: executes runs queued through the API or the UI."""
    # Import the flow machinery a moment after "ready": the server's first answers
    # need not share the interpreter with ~0.1 s of imports.
    if stop.wait(0.3):
        return
    from arco.flow.executors import make_executor
    from arco.flow.project import load_definitions_for
    from arco.flow.worker import RunWorker, WorkerOptions
    from arco.openlineage.emit import emitter_for_worker

    opts = settings(ctx)
    runner = RunWorker(
        opts.store(),
        opts.scope(),
        # Loaded when the first run arrives: an idle dev server never imports the project.
        lambda: load_definitions_for(module),
        store_url=opts.store_url,
        executor=lambda: make_executor(executor),
        options=WorkerOptions(poll_interval=0.5),
        workspace=opts.open_workspace(),
    )
    # Runs queued through the API or the UI emit OpenLineage when configured.
    lineage_out = emitter_for_worker(opts.scope(), runner.definitions)
    runner.on_events = lineage_out[1] if lineage_out else None
    try:
        _poll(runner, stop)
    finally:
        if lineage_out:
            lineage_out[0].close(timeout=lineage_out[0].close_timeout)


def _automation_loop(
    ctx: typer.Context, module: str | None, interval: float, stop: threading.Event
) -> None:
    """The automation daemon of ``arco dev`` (the same loop as ``arco daemon``)."""
    if stop.wait(0.5):  # after "ready", like the worker
        return
    from arco.cli.automation import automation_for, run_daemon

    try:
        auto = automation_for(ctx, module)
    except Exception as exc:  # a broken project: serve anyway, say why nothing ticks
        say(f"automation not started: {type(exc).__name__}: {exc}")
        return
    say(
        f"automation: {len(auto.schedules)} schedule(s), {len(auto.sensors)} sensor(s); "
        f"ticks every {interval:g} s"
    )
    run_daemon(auto, interval, stop)


def _poll(runner: RunWorker, stop: threading.Event) -> None:
    """Run what is queued until ``stop`` is set."""
    while not stop.is_set():
        try:
            handled = runner.poll_once()
        except Exception as exc:  # keep serving: the next poll may succeed
            say(f"run worker error: {exc}")
            handled = []
        for result in runner.results:
            say(f"run {result.run_id} {result.state} in {result.elapsed:.2f}s")
        runner.results.clear()
        if not handled:
            stop.wait(runner.options.poll_interval)
