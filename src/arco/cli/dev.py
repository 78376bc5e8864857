"""``arco dev``: API, compaction loop and the demo project in one process."""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from arco.cli.context import settings
from arco.cli.output import say


def dev(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8484,
    interval: Annotated[float, typer.Option(help="Seconds between compactions.")] = 2.0,
    run_demo: Annotated[bool, typer.Option("--run/--no-run", help="Run the project once.")] = True,
    exit_after: Annotated[
        float | None, typer.Option(hidden=True, help="Stop after N seconds (tests).")
    ] = None,
) -> None:
    """Start the API, a compaction loop and (in an empty folder) the scaffolded demo."""
    import uvicorn

    from arco.api.app import create_app
    from arco.api.auth import mint_token
    from arco.api.settings import Settings
    from arco.catalog.compactor import Compactor
    from arco.catalog.search import SearchIndex

    started = time.monotonic()
    opts = settings(ctx)
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
        )
    )
    token = mint_token(
        secret, tenant=opts.tenant, workspace=opts.workspace, roles=["admin"], ttl_seconds=86400
    )
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)
    if not thread.is_alive():
        raise typer.Exit(1)
    say(f"arco dev ready in {time.monotonic() - started:.2f}s at http://{host}:{port}")
    say(f"store: {store_url}  scope: {opts.tenant}/{opts.workspace}")
    say(f"dev token (admin, 24h): {token}")
    if scaffolded:
        say("scaffolded a demo project in ./demo")
    stop = threading.Event()

    def compaction_loop() -> None:
        compactor = Compactor(opts.store(), opts.scope())
        search = SearchIndex(opts.store(), opts.scope())
        while not stop.wait(interval):
            try:
                compactor.compact_all()
                search.refresh()
            except Exception as exc:
                say(f"compaction error: {exc}")

    threading.Thread(target=compaction_loop, daemon=True).start()
    if run_demo and Path("arco.toml").exists():
        from arco.cli.flow import _execute, _plan

        defs, the_plan = _plan(ctx, "*", None, None, None, None, True)
        if the_plan.tasks:
            _execute(ctx, defs, the_plan, "inline", None, 4, None, None)
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
