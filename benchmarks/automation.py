"""Automation benchmark: ticks over 1,000 schedules and 100 sensors, and a
365-partition backfill, with Dagster's schedule/sensor tick evaluation measured
in the same run.

    .venv/bin/python benchmarks/automation.py                 # Arco and Dagster
    .venv/bin/python benchmarks/automation.py --skip-dagster  # Arco only
    .venv/bin/python benchmarks/automation.py --json out.json

Arco (this interpreter, a local-folder store):

- ``first_sight_ms``: the first tick that sees 1,000 new schedules and 100 new
  sensors (each schedule's next tick computed; each sensor evaluated once);
- ``idle_tick_ms``: a tick with nothing due (one GET of the state document);
- ``due_tick_ms``: a tick where all 1,000 schedules and all 100 sensors are due;
  every schedule function returns ``SkipReason`` and every sensor ``None``, so the
  figure is Arco's own overhead: decide (CAS), run the functions, write one
  ``schedule.ticked``/``sensor.evaluated`` event each (ledger batches), record,
  clear (CAS);
- ``backfill_create_ms`` + ``backfill_queue_ms``: a 365-partition backfill of a
  daily asset (one partition per run, no run limit) planned, then queued by one tick.

Dagster (``benchmarks/.venv-dagster``, a child process, as ``benchmarks/flow.py``
drives it): the same 1,000 schedules and 100 sensors as ``@schedule``/``@sensor``
definitions returning ``SkipReason``; one daemon-like tick evaluates each through
``evaluate_tick`` with a context bound to a SQLite ``DagsterInstance`` and records
its tick with ``instance.create_tick`` — what the scheduler and sensor daemons do
per instigator, without the gRPC hop to a code server (which favours Dagster).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DAGSTER_PY = HERE / ".venv-dagster" / "bin" / "python"
N_SCHEDULES = 1000
N_SENSORS = 100
RESULT = "RESULT "


def _crons() -> list[str]:
    # Varied expressions (distinct minutes and hours, some every few minutes), all
    # due at 00:00 UTC so one tick finds every schedule due.
    out = []
    for i in range(N_SCHEDULES):
        if i % 4 == 0:
            out.append(f"*/{[5, 10, 15, 20, 30][i % 5]} * * * *")
        else:
            out.append(f"0 {','.join(sorted({'0', str(i % 24)}, key=int))} * * *")
    return out


def _best(samples: list[float]) -> float:
    return min(samples) * 1000


# --------------------------------------------------------------------- arco
def arco(repeat: int) -> dict[str, Any]:
    """Arco's figures (best of ``repeat`` fresh stores each)."""
    sys.path.insert(0, str(ROOT / "src"))
    from arco import asset
    from arco.core import Scope
    from arco.core.storage import open_store
    from arco.flow.automation import SkipReason, sensor
    from arco.flow.automation.backfills import create_backfill
    from arco.flow.automation.config import build
    from arco.flow.automation.schedules import ScheduleDef
    from arco.flow.definitions import Definitions
    from arco.flow.partitions import DailyPartitions

    @asset(namespace="b")
    def target() -> int:
        return 1

    @asset(namespace="b", partitions=DailyPartitions(start="2023-01-01", end="2026-01-01"))
    def daily() -> int:
        return 1

    def skip(context: Any) -> SkipReason:
        return SkipReason("benchmark")

    schedules = [
        ScheduleDef(name=f"s{i}", cron=c, selection="b.target", fn=skip)
        for i, c in enumerate(_crons())
    ]
    sensors = [
        sensor(name=f"n{i}", interval_seconds=30, selection="b.target")(lambda ctx: None)
        for i in range(N_SENSORS)
    ]
    defs = Definitions([target, daily, *schedules, *sensors])
    scope = Scope("bench", "main")
    t0 = datetime(2024, 5, 1, 23, 58, 30, tzinfo=UTC)
    due = datetime(2024, 5, 2, 0, 0, 5, tzinfo=UTC)
    figures: dict[str, list[float]] = {}

    def timed(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        got = fn(*args, **kwargs)
        figures.setdefault(name, []).append(time.perf_counter() - start)
        return got

    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"file://{tmp}/store")
            auto = build(store, scope, defs, holder="bench")
            timed("first_sight_ms", auto.tick, t0)
            timed("idle_tick_ms", auto.tick, t0 + timedelta(seconds=10))
            report = timed("due_tick_ms", auto.tick, due)
            assert report.skipped == N_SCHEDULES, report.to_dict()
            assert len(report.sensors_evaluated) == N_SENSORS
            timed("idle_after_ms", auto.tick, due + timedelta(seconds=1))

            bf = timed(
                "backfill_create_ms",
                create_backfill,
                store,
                scope,
                defs,
                "b.daily",
                "2024-01-01",
                "2024-12-30",
                max_runs=1000,
            )
            assert len(bf.chunks) == 365
            auto.schedules, auto.sensors = {}, {}
            queued = timed("backfill_queue_ms", auto.tick, due + timedelta(seconds=2))
            assert len(queued.launched) == 365, queued.to_dict()
    out: dict[str, Any] = {k: round(_best(v), 1) for k, v in figures.items()}
    out["backfill_total_ms"] = round(out["backfill_create_ms"] + out["backfill_queue_ms"], 1)
    out["schedules"], out["sensors"], out["repeat"] = N_SCHEDULES, N_SENSORS, repeat
    return out


# ------------------------------------------------------------------ dagster
def dagster(repeat: int) -> dict[str, Any]:
    """Dagster's figures; runs inside the Dagster venv."""
    home = tempfile.mkdtemp(prefix="dagster-auto-")
    Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = home
    import dagster as dg
    from dagster._core.scheduler.instigation import InstigatorType, TickData, TickStatus

    @dg.asset
    def target() -> int:
        return 1

    job = dg.define_asset_job("target_job", selection=[target])

    def make_schedule(i: int, cron: str) -> Any:
        @dg.schedule(name=f"s{i}", cron_schedule=cron, job=job)
        def _s(context: Any) -> Any:
            return dg.SkipReason("benchmark")

        return _s

    def make_sensor(i: int) -> Any:
        @dg.sensor(name=f"n{i}", job=job, minimum_interval_seconds=30)
        def _n(context: Any) -> Any:
            return dg.SkipReason("benchmark")

        return _n

    start = time.perf_counter()
    schedules = [make_schedule(i, c) for i, c in enumerate(_crons())]
    sensors = [make_sensor(i) for i in range(N_SENSORS)]
    defs = dg.Definitions(assets=[target], jobs=[job], schedules=schedules, sensors=sensors)
    defs.get_repository_def()
    load_s = time.perf_counter() - start
    due = datetime(2024, 5, 2, 0, 0, tzinfo=UTC)
    samples: list[float] = []
    for _ in range(repeat):
        instance = dg.DagsterInstance.local_temp(tempdir=tempfile.mkdtemp(dir=home))
        start = time.perf_counter()
        for s in schedules:
            ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=due)
            data = s.evaluate_tick(ctx)
            instance.create_tick(
                TickData(
                    instigator_origin_id=s.name,
                    instigator_name=s.name,
                    instigator_type=InstigatorType.SCHEDULE,
                    status=TickStatus.SKIPPED,
                    timestamp=due.timestamp(),
                    skip_reason=data.skip_message,
                    selector_id=s.name,
                )
            )
        for n in sensors:
            ctx = dg.build_sensor_context(instance=instance, cursor=None)
            data = n.evaluate_tick(ctx)
            instance.create_tick(
                TickData(
                    instigator_origin_id=n.name,
                    instigator_name=n.name,
                    instigator_type=InstigatorType.SENSOR,
                    status=TickStatus.SKIPPED,
                    timestamp=due.timestamp(),
                    skip_reason=data.skip_message,
                    cursor=data.cursor,
                    selector_id=n.name,
                )
            )
        samples.append(time.perf_counter() - start)
    return {
        "version": dg.__version__,
        "load_defs_s": round(load_s, 2),
        "due_tick_ms": round(_best(samples), 1),
        "repeat": repeat,
    }


# --------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-dagster", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", choices=["dagster"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "dagster":
        print(RESULT + json.dumps(dagster(args.repeat)), flush=True)
        return 0
    load_before = os.getloadavg()
    result: dict[str, Any] = {"arco": arco(args.repeat)}
    if not args.skip_dagster:
        if not DAGSTER_PY.exists():
            result["dagster"] = {"error": f"{DAGSTER_PY} missing (see benchmarks/flow.py)"}
        else:
            proc = subprocess.run(
                [str(DAGSTER_PY), __file__, "--worker", "dagster", "--repeat", str(args.repeat)],
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
            )
            found = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT)]
            result["dagster"] = (
                json.loads(found[-1][len(RESULT) :])
                if found
                else {"error": (proc.stderr or proc.stdout)[-2000:]}
            )
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    result["cpus"] = os.cpu_count()
    a = result["arco"]
    print(f"Arco ({a['schedules']} schedules, {a['sensors']} sensors; best of {a['repeat']}):")
    for key in (
        "first_sight_ms",
        "idle_tick_ms",
        "due_tick_ms",
        "idle_after_ms",
        "backfill_create_ms",
        "backfill_queue_ms",
        "backfill_total_ms",
    ):
        print(f"  {key:<20} {a[key]:>9.1f}")
    d = result.get("dagster")
    if d:
        if "error" in d:
            print(f"Dagster: {d['error']}")
        else:
            tick, defs_s = d["due_tick_ms"], d["load_defs_s"]
            print(f"Dagster {d['version']}: due tick {tick:.1f} ms (defs {defs_s} s)")
    print(f"load average before/after: {load_before} / {result['load_average']['after']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
