"""Assets used by the flow tests (importable, so process workers can load them)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa

from arco import AssetContext, DailyPartitions, StaticPartitions, asset

DAYS = DailyPartitions(start="2024-01-01", end="2024-01-04")
REGIONS = StaticPartitions(["eu", "us"])
STATE_DIR = Path(os.environ.get("ARCO_TEST_STATE", "/tmp/arco-flow-test"))


def _bump(name: str) -> int:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    path = STATE_DIR / name
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


@asset(namespace="shop", code_version="1")
def orders() -> pa.Table:
    return pa.table({"id": [1, 2, 3], "amount": [5.0, 7.5, 1.0]})


@asset(namespace="shop", retries=2, code_version="1")
def flaky(context: AssetContext, orders: pa.Table) -> pa.Table:
    if _bump("flaky") == 1:
        raise RuntimeError("first attempt always fails")
    context.log.info("second time lucky")
    return orders


@asset(namespace="shop")
def broken(orders: pa.Table) -> pa.Table:
    raise ValueError("this asset is broken")


@asset(namespace="shop")
def after_broken(broken: pa.Table) -> int:
    return broken.num_rows


@asset(namespace="shop", partitions=DAYS)
def daily(context: AssetContext, flaky: pa.Table) -> dict[str, object]:
    return {"day": context.partition_key, "rows": flaky.num_rows}


@asset(namespace="shop")
def report(daily: dict[str, dict[str, object]]) -> dict[str, int]:
    return {"days": len(daily)}


@asset(namespace="crash", retries=1)
def dies_once() -> int:
    if _bump("dies_once") == 1:
        os._exit(17)  # a killed worker
    return 1


@asset(namespace="slow")
def sleepy() -> int:
    time.sleep(30)
    return 1


@asset(namespace="slow")
def after_sleepy(sleepy: int) -> int:
    return sleepy
