"""Automation commands: ``tick``, ``daemon``, ``schedule``, ``sensor``, ``backfill``, ``check``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from arco.cli.context import CliUsageError, settings
from arco.cli.output import emit_json, say

if TYPE_CHECKING:
    from arco.flow.automation.tick import Automation

schedule_app = typer.Typer(help="List schedules and turn them on or off.", no_args_is_help=True)
sensor_app = typer.Typer(help="List sensors and turn them on or off.", no_args_is_help=True)
backfill_app = typer.Typer(
    help="Backfill a selection over a partition range.", no_args_is_help=True
)

ModuleOpt = Annotated[
    str | None, typer.Option("--module", help="Module or package with the definitions.")
]


def _now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CliUsageError(f"--now {value!r} is not an ISO time (2024-05-02T02:00:00Z)") from exc
    if when.tzinfo is None:
        raise CliUsageError(f"--now {value!r} needs a time zone (Z or +02:00)")
    return when.astimezone(UTC)


def automation_for(ctx: typer.Context, module: str | None) -> Automation:
    """The automation of the project (``module``, else ``arco.toml``) in the global scope."""
    from arco.flow.automation.config import build, load_config
    from arco.flow.project import find_project, load_project

    opts = settings(ctx)
    project = find_project(module=module)
    defs = load_project(project)
    return build(
        opts.store(), opts.scope(), defs, load_config(project.root), workspace=opts.open_workspace()
    )


def tick_cmd(
    ctx: typer.Context,
    module: ModuleOpt = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Evaluate as of this ISO time (tests, replays).")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="Also verify the scope's manifest chains (exit 1 on a problem)."
        ),
    ] = False,
) -> None:
    """Evaluate schedules, sensors, backfills, freshness and alerts once, then exit
    (for a platform cron: no process stays running)."""
    auto = automation_for(ctx, module)
    report = auto.tick(_now(now))
    problems = _verify(ctx) if verify else None
    if settings(ctx).json:
        out = report.to_dict()
        if problems is not None:
            out["verify"] = {"ok": not problems, "problems": problems}
        emit_json(out)
        if problems:
            raise typer.Exit(1)
        return
    for problem in problems or ():
        say(f"verify   {problem}")
    if problems is not None and not problems:
        say("verify   OK")
    if report.idle and not problems:
        say("nothing due")
    for item in report.launched:
        say(f"launched {item['run_id']}  {item['run_key']}")
    for item in report.failed:
        say(f"failed   {item['run_key']}: {item['reason']}")
    if report.missed:
        say(f"{report.missed} missed tick(s) recorded")
    for err in report.errors:
        say(f"error    {err}")
    if report.errors or report.failed or problems:
        raise typer.Exit(1)


def _verify(ctx: typer.Context) -> list[str]:
    """Verify this scope as a scheduled job: metrics and logs, and the problems found."""
    from arco.domain.verify import scheduled_verify

    opts = settings(ctx)
    started = time.perf_counter()
    reports = scheduled_verify(opts.store(), [opts.scope()])
    problems = [f"{p.key}: {p.message}" for r in reports.values() for p in r.problems]
    _audit_verify(opts, problems, started)
    return problems


def _audit_verify(opts: Any, problems: list[str], started: float) -> None:
    """The scheduled verify in the audit trail (best effort: a note on stderr if not)."""
    from arco.cli.audit_trail import write_best_effort

    write_best_effort(
        opts,
        "automation verify",
        "error" if problems else "ok",
        started,
        role="automation",
        detail={"problems": str(len(problems))},
        source="automation",
    )


def daemon_cmd(
    ctx: typer.Context,
    module: ModuleOpt = None,
    interval: Annotated[
        float, typer.Option(min=0.5, max=3600.0, help="Seconds between ticks.")
    ] = 15.0,
    verify_every: Annotated[
        float,
        typer.Option(
            "--verify-every",
            min=0.0,
            help="Also run `arco verify` every this many seconds (0: never).",
        ),
    ] = 0.0,
) -> None:
    """Run schedules, sensors, backfills, freshness and alerts until interrupted
    (several daemons may run at once)."""
    auto = automation_for(ctx, module)
    check = (lambda: _verify(ctx)) if verify_every > 0 else None
    say(
        f"automation daemon {auto.holder}: {len(auto.schedules)} schedule(s), "
        f"{len(auto.sensors)} sensor(s); every {interval:g} s"
    )
    try:
        run_daemon(auto, interval, verify=check, verify_every=verify_every)
    except KeyboardInterrupt:
        say("stopped")


def run_daemon(
    auto: Automation,
    interval: float,
    stop: threading.Event | None = None,
    *,
    verify: Callable[[], list[str]] | None = None,
    verify_every: float = 0.0,
) -> None:
    """Tick every ``interval`` seconds until ``stop`` is set (or forever); a tick
    that fails (a flaky store) is reported and the next one retries. With ``verify``,
    the integrity check also runs every ``verify_every`` seconds (its result is a
    metric and an alert, docs/operations.md). Shared by ``arco daemon`` and ``arco dev``."""
    stop = stop or threading.Event()
    verified_at: float | None = None
    while not stop.is_set():
        started = time.monotonic()
        if verify is not None and (verified_at is None or started - verified_at >= verify_every):
            verified_at = started
            try:
                problems = verify()
                say(f"verify   {len(problems)} problem(s)" if problems else "verify   OK")
                for problem in problems:
                    say(f"verify   {problem}")
            except Exception as exc:  # reported like a failed tick; the next round retries
                say(f"verify failed: {type(exc).__name__}: {exc}")
        try:
            report = auto.tick()
            for item in report.launched:
                say(f"launched {item['run_id']}  {item['run_key']}")
            for err in report.errors:
                say(f"error    {err}")
        except Exception as exc:  # a flaky store: the next tick retries
            say(f"tick failed: {type(exc).__name__}: {exc}")
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


@schedule_app.command("list")
def schedule_list(ctx: typer.Context, module: ModuleOpt = None) -> None:
    """Schedules with their next tick, last tick and on/off state."""
    auto = automation_for(ctx, module)
    state, _ = auto.states.load()
    rows = []
    for name, sched in sorted(auto.schedules.items()):
        entry = state.schedules.get(name, {})
        rows.append(
            {
                **sched.describe(),
                "enabled": auto.schedule_enabled(state, sched),
                "next_tick": entry.get("next_at"),
                "last_tick": entry.get("last_tick"),
            }
        )
    if settings(ctx).json:
        emit_json({"schedules": rows})
        return
    for r in rows:
        on = "on " if r["enabled"] else "off"
        say(f"{on} {r['name']:<24} {r['cron']:<16} {r['timezone']:<18} next {r['next_tick']}")


def _toggle(ctx: typer.Context, module: str | None, name: str, on: bool, kind: str) -> None:
    from arco.core.errors import NotFoundError

    auto = automation_for(ctx, module)
    if kind == "schedule":
        auto.set_schedule_enabled(name, on)
    else:
        if name not in auto.sensors:
            raise NotFoundError(f"no sensor named {name!r}")

        def change(state: Any) -> None:
            entry = state.sensors.setdefault(name, {})
            entry["enabled"] = on
            entry["next_at"] = None

        auto.states.update(change)
    say(f"{kind} {name} turned {'on' if on else 'off'}")


@schedule_app.command("on")
def schedule_on(ctx: typer.Context, name: str, module: ModuleOpt = None) -> None:
    """Turn a schedule on (from now: the time it was off is not caught up)."""
    _toggle(ctx, module, name, True, "schedule")


@schedule_app.command("off")
def schedule_off(ctx: typer.Context, name: str, module: ModuleOpt = None) -> None:
    """Turn a schedule off."""
    _toggle(ctx, module, name, False, "schedule")


@sensor_app.command("list")
def sensor_list(ctx: typer.Context, module: ModuleOpt = None) -> None:
    """Sensors with their cursor, next evaluation and last error."""
    auto = automation_for(ctx, module)
    state, _ = auto.states.load()
    rows = []
    for name, sensor in sorted(auto.sensors.items()):
        entry = state.sensors.get(name, {})
        rows.append(
            {
                **sensor.describe(),
                "enabled": auto.sensor_enabled(state, sensor),
                "cursor": entry.get("cursor"),
                "next_evaluation": entry.get("next_at"),
                "evaluations": entry.get("evaluation", 0),
                "failures": entry.get("failures", 0),
                "last_error": entry.get("last_error"),
            }
        )
    if settings(ctx).json:
        emit_json({"sensors": rows})
        return
    for r in rows:
        err = f"  error: {str(r['last_error']).splitlines()[0]}" if r["last_error"] else ""
        say(f"{'on ' if r['enabled'] else 'off'} {r['name']:<24} cursor {r['cursor']!r}{err}")


@sensor_app.command("on")
def sensor_on(ctx: typer.Context, name: str, module: ModuleOpt = None) -> None:
    """Turn a sensor on."""
    _toggle(ctx, module, name, True, "sensor")


@sensor_app.command("off")
def sensor_off(ctx: typer.Context, name: str, module: ModuleOpt = None) -> None:
    """Turn a sensor off."""
    _toggle(ctx, module, name, False, "sensor")


@backfill_app.command("create")
def backfill_create(
    ctx: typer.Context,
    selection: str,
    start: Annotated[str, typer.Option("--from", help="First partition.")],
    end: Annotated[str, typer.Option("--to", help="Last partition (inclusive).")],
    chunk_size: Annotated[int, typer.Option(min=1, max=10_000, help="Partitions per run.")] = 1,
    max_runs: Annotated[int, typer.Option(min=1, max=1000, help="Runs at once.")] = 4,
    module: ModuleOpt = None,
) -> None:
    """Create a backfill; the daemon (or `arco tick`) launches its chunks."""
    from arco.flow.automation.backfills import create_backfill
    from arco.flow.project import find_project, load_project

    opts = settings(ctx)
    defs = load_project(find_project(module=module))
    bf = create_backfill(
        opts.store(),
        opts.scope(),
        defs,
        selection,
        start,
        end,
        chunk_size=chunk_size,
        max_runs=max_runs,
    )
    if opts.json:
        emit_json(
            {
                "backfill_id": bf.backfill_id,
                "partitions": len(bf.partitions),
                "chunks": len(bf.chunks),
            }
        )
        return
    say(f"backfill {bf.backfill_id}: {len(bf.partitions)} partition(s) in {len(bf.chunks)} run(s)")


@backfill_app.command("show")
def backfill_show(ctx: typer.Context, backfill_id: str) -> None:
    """A backfill's state and the status of every partition per asset."""
    from arco.flow.automation.backfills import progress

    opts = settings(ctx)
    shown = progress(opts.store(), opts.scope(), backfill_id)
    if opts.json:
        emit_json(shown)
        return
    say(
        f"backfill {backfill_id}  {shown['state']}  {shown['selection']}  "
        f"{shown['chunks_launched']}/{shown['chunks']} chunk(s) launched"
    )
    marks = {"materialized": "#", "failed": "x", "in progress": ">", "missing": "."}
    for asset, cells in shown["assets"].items():
        bar = "".join(marks[s] for s in cells.values())
        say(f"  {asset:<32} {bar}")
    say("  " + ", ".join(f"{k}: {v}" for k, v in sorted(shown["counts"].items())))


def _backfill_action(ctx: typer.Context, backfill_id: str, action: str) -> None:
    from arco.flow.automation.backfills import change_backfill

    opts = settings(ctx)
    entry = change_backfill(opts.store(), opts.scope(), backfill_id, action)
    say(f"backfill {backfill_id}: {entry['state']}")


@backfill_app.command("pause")
def backfill_pause(ctx: typer.Context, backfill_id: str) -> None:
    """Launch no more chunks until resumed."""
    _backfill_action(ctx, backfill_id, "pause")


@backfill_app.command("resume")
def backfill_resume(ctx: typer.Context, backfill_id: str) -> None:
    """Resume a paused backfill."""
    _backfill_action(ctx, backfill_id, "resume")


@backfill_app.command("cancel")
def backfill_cancel(ctx: typer.Context, backfill_id: str) -> None:
    """Cancel a backfill and ask its unfinished runs to stop."""
    _backfill_action(ctx, backfill_id, "cancel")


@backfill_app.command("retry")
def backfill_retry(ctx: typer.Context, backfill_id: str) -> None:
    """Run the failed chunks again (a new attempt each)."""
    _backfill_action(ctx, backfill_id, "retry")


def check_cmd(
    ctx: typer.Context,
    asset: Annotated[str, typer.Argument(help="Asset key (namespace.name).")],
    partition: Annotated[
        str | None, typer.Option("--partition", help="Partition (default: the newest).")
    ] = None,
    module: ModuleOpt = None,
) -> None:
    """Run an asset's checks on its newest stored value without materializing it;
    exits 1 if a check with severity error failed."""
    from arco.flow.automation.check_run import check_asset
    from arco.flow.project import find_project, load_project

    opts = settings(ctx)
    defs = load_project(find_project(module=module))
    results = check_asset(
        opts.store(), opts.scope(), defs, asset, partition=partition, store_url=opts.store_url
    )
    failed = [r for r in results if not r["passed"] and r["severity"] == "error"]
    if opts.json:
        emit_json({"results": results})
    else:
        for r in results:
            mark = "PASS" if r["passed"] else ("FAIL" if r["severity"] == "error" else "WARN")
            where = f"[{r['partition']}]" if r["partition"] is not None else ""
            err = f"  {str(r['error']).splitlines()[0]}" if r["error"] else ""
            say(f"{mark:<4} {asset}{where} {r['check']}{err}")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the automation commands to the root app."""
    app.command("tick")(tick_cmd)
    app.command("check")(check_cmd)
    app.command("daemon")(daemon_cmd)
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(sensor_app, name="sensor")
    app.add_typer(backfill_app, name="backfill")
