"""A generated 50-asset, diamond-rich graph for the end-to-end flow tests.

The assets are made in a loop and bound as attributes of this module under
their function's ``__qualname__``, so worker processes (forkserver children,
dask workers) find them the way ``executors.attempt._resolve`` does: import the module,
then look the qualname up.

Every asset computes ``total = base + sum(upstream totals)`` (mod a prime), so a
test can check every stored value against :func:`expected_total`. Four assets
behave specially; they keep their state in ``<store folder>/../state`` (derived
from ``context.store_url``, not from an environment variable: children of the
forkserver and dask workers keep the environment they started with):

- ``n08_crash`` kills its worker process (``os._exit``) on the first attempt;
- ``n12_flaky`` raises on the first attempt, succeeds on the retry;
- ``n20_gate`` blocks while a ``hold`` file exists, after writing ``gate_started``,
  until a ``release`` file appears, then writes ``gate_done`` (cancellation tests);
- ``n30_broken`` raises until a ``fixed`` file exists (re-run from failure).
"""

from __future__ import annotations

import inspect
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from arco import AssetContext, DailyPartitions, asset
from arco.flow.assets import AssetDef, RetryPolicy

DAYS = DailyPartitions(start="2024-03-01", end="2024-03-04")
DAY_KEYS = DAYS.keys()
MOD = 1_000_003

CRASH_INDEX, FLAKY_INDEX, GATE_INDEX, BROKEN_INDEX = 8, 12, 20, 30
CRASH = "n08_crash"
FLAKY = "n12_flaky"
GATE = "n20_gate"
BROKEN = "n30_broken"
BROKEN_DOWNSTREAM = ("n45_after_broken", "n46_gather_broken", "n47_after_gather")


@dataclass(frozen=True)
class Spec:
    """One generated asset."""

    index: int
    name: str
    namespace: str
    ins: tuple[str, ...]  # upstream names whose values are passed in
    deps: tuple[str, ...]  # ordering-only upstream names
    partitioned: bool
    io: str  # "parquet" or "json"

    @property
    def key(self) -> str:
        return f"{self.namespace}.{self.name}"


def _specs() -> list[Spec]:
    rng = random.Random(20240301)
    specs: list[Spec] = []
    by_name: dict[str, Spec] = {}
    pool: list[str] = []  # ordinary assets that later ones may depend on

    def add(
        i: int,
        name: str,
        ins: list[str],
        *,
        deps: tuple[str, ...] = (),
        partitioned: bool = False,
        into_pool: bool = True,
    ) -> None:
        spec = Spec(
            index=i,
            name=name,
            namespace="big.mart" if i >= 40 else "big",
            ins=tuple(ins),
            deps=deps,
            partitioned=partitioned,
            io="parquet" if i % 3 != 2 else "json",
        )
        specs.append(spec)
        by_name[name] = spec
        if into_pool:
            pool.append(name)

    # Five sources; two of them daily-partitioned.
    for i in range(5):
        add(i, f"n{i:02d}", [], partitioned=i in (2, 4))
    for i in range(5, 45):
        if i == CRASH_INDEX:
            name = CRASH
        elif i == FLAKY_INDEX:
            name = FLAKY
        elif i == GATE_INDEX:
            name = GATE
        elif i == BROKEN_INDEX:
            name = BROKEN
        else:
            name = f"n{i:02d}"
        # Favour recent assets so paths are long and meet again (diamonds).
        recent = pool[-8:]
        fan_in = 3 if i % 5 == 0 else 2
        ins = rng.sample(recent, min(fan_in, len(recent)))
        if i % 6 == 0 and len(pool) > 10:
            older = [p for p in pool[:-8] if p not in ins]
            ins.append(rng.choice(older))
        deps: tuple[str, ...] = ()
        if i % 7 == 0:
            others = [p for p in pool if p not in ins]
            deps = (rng.choice(others),)
        add(i, name, sorted(ins), deps=deps, partitioned=i % 4 == 1, into_pool=name != BROKEN)
    # The broken asset's downstream: partitioned, then gathered, then ordering-only.
    day_up = next(p for p in reversed(pool) if by_name[p].partitioned)
    add(45, BROKEN_DOWNSTREAM[0], [BROKEN, day_up], partitioned=True, into_pool=False)
    add(46, BROKEN_DOWNSTREAM[1], [BROKEN_DOWNSTREAM[0], pool[-1]], into_pool=False)
    add(47, BROKEN_DOWNSTREAM[2], [pool[-2]], deps=(BROKEN_DOWNSTREAM[1],), into_pool=False)
    # Two sinks that join many branches.
    add(48, "n48_sink", sorted(rng.sample(pool[-12:], 3)))
    add(49, "n49_top", ["n48_sink", pool[-3], "n44"])
    return specs


SPECS = _specs()
BY_NAME = {s.name: s for s in SPECS}
KEY = {s.name: s.key for s in SPECS}


def state_dir(store_url: str | None) -> Path:
    """``<store folder>/../state`` for a ``file://`` store."""
    assert store_url is not None
    assert store_url.startswith("file://")
    return Path(store_url[len("file://") :]).parent / "state"


def bump(folder: Path, name: str) -> int:
    """Count calls of ``name`` in ``folder`` (one process at a time per name)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


def _total_of(value: Any) -> int:
    if isinstance(value, pa.Table):
        return int(value["total"][0].as_py())
    return int(value["total"])


def _base(spec: Spec, partition: str | None) -> int:
    return spec.index + (0 if partition is None else 100 * (DAY_KEYS.index(partition) + 1))


def _compute(spec: Spec, context: AssetContext, inputs: dict[str, Any]) -> Any:
    folder = state_dir(context.store_url)
    bump(folder, f"calls.{spec.name}.{context.partition_key}")
    if spec.name == CRASH and bump(folder, CRASH) == 1:
        os._exit(17)  # the worker process dies mid-task
    if spec.name == FLAKY and bump(folder, FLAKY) == 1:
        raise RuntimeError("flaky: the first attempt fails")
    if spec.name == BROKEN and not (folder / "fixed").exists():
        raise ValueError("broken until fixed")
    if spec.name == GATE and (folder / "hold").exists():
        (folder / "gate_started").write_text(context.run_id)
        deadline = time.monotonic() + 60
        while not (folder / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (folder / "gate_done").write_text(context.run_id)
    total = _base(spec, context.partition_key)
    for up in spec.ins:
        value = inputs[f"u_{up}"]
        upstream = BY_NAME[up]
        if upstream.partitioned and not spec.partitioned:
            # All partitions of the upstream: a dict keyed by partition.
            if not isinstance(value, dict) or sorted(value) != DAY_KEYS:
                raise TypeError(f"{spec.name}: expected every day of {up}, got {value!r}")
            total += sum(_total_of(v) for v in value.values())
        else:
            total += _total_of(value)
    total %= MOD
    context.add_metadata(total=total)
    if spec.io == "json":
        return {"total": total, "partition": context.partition_key}
    columns: dict[str, Any] = {"asset": [spec.name], "total": pa.array([total], pa.int64())}
    if spec.partitioned:
        columns["day"] = [context.partition_key]
    columns[f"extra_{spec.index % 4}"] = pa.array([spec.index / 2], pa.float64())
    return pa.table(columns)


def expected_columns(spec: Spec) -> list[str]:
    """Column names of a Parquet asset's table."""
    cols = ["asset", "total"]
    if spec.partitioned:
        cols.append("day")
    return [*cols, f"extra_{spec.index % 4}"]


def expected_total(name: str, partition: str | None = None) -> int:
    """What the asset ``name`` (partition ``partition``) computes."""
    spec = BY_NAME[name]
    total = _base(spec, partition)
    for up in spec.ins:
        upstream = BY_NAME[up]
        if not upstream.partitioned:
            total += expected_total(up)
        elif spec.partitioned:
            total += expected_total(up, partition)
        else:
            total += sum(expected_total(up, d) for d in DAY_KEYS)
    return total % MOD


def _make(spec: Spec) -> AssetDef:
    def fn(context: AssetContext, **inputs: Any) -> Any:
        return _compute(spec, context, inputs)

    fn.__name__ = spec.name
    fn.__qualname__ = spec.name
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("context", kind, annotation=AssetContext)]
    params += [inspect.Parameter(f"u_{up}", kind) for up in spec.ins]
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    retries: int | RetryPolicy = 0
    if spec.name in (CRASH, FLAKY):
        retries = RetryPolicy(max_retries=2, backoff_seconds=0.05)
    decorate: Callable[[Callable[..., Any]], AssetDef] = asset(
        name=spec.name,
        namespace=spec.namespace,
        partitions=DAYS if spec.partitioned else None,
        code_version="1",
        retries=retries,
        io="parquet" if spec.io == "parquet" else "json",
        ins={f"u_{up}": KEY[up] for up in spec.ins},
        deps=[KEY[d] for d in spec.deps],
        description=f"generated asset #{spec.index}",
    )
    return decorate(fn)


ASSETS: list[AssetDef] = []
for _spec in SPECS:
    _def = _make(_spec)
    globals()[_spec.name] = _def
    ASSETS.append(_def)
del _spec, _def


@asset(namespace="probe", io="json")
def env_probe() -> dict[str, str | None]:
    """What a worker sees of ``ARCO_E2E_PROBE`` (not part of :data:`ASSETS`)."""
    return {"value": os.environ.get("ARCO_E2E_PROBE")}
