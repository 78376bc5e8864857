"""Assets of the run-worker tests (importable by worker processes).

Every execution appends a line to ``$ARCO_TEST_STATE/<asset>`` so a test can count
how often each asset really ran, whichever process ran it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa

from arco import AssetContext, asset

STATE_DIR = Path(os.environ.get("ARCO_TEST_STATE", "/tmp/arco-worker-test"))
SLOW = float(os.environ.get("ARCO_TEST_SLOW", "1.5"))


def record(name: str, what: str = "start") -> None:
    """Append one line (``start``/``end`` with the time) to the asset's state file."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (STATE_DIR / name).open("a") as out:
        out.write(f"{what} {time.time():.6f} {os.getpid()}\n")


@asset(namespace="w", code_version="1")
def first() -> pa.Table:
    record("first")
    return pa.table({"n": [1, 2, 3]})


@asset(namespace="w", code_version="1")
def second(context: AssetContext, first: pa.Table) -> pa.Table:
    record("second")
    context.log.info("second sleeps %.1fs", SLOW)
    time.sleep(SLOW)
    record("second", "end")
    return first


@asset(namespace="w", code_version="1")
def third(second: pa.Table) -> pa.Table:
    record("third")
    time.sleep(SLOW / 3)
    return second


@asset(namespace="w", code_version="1")
def fourth(third: pa.Table) -> int:
    record("fourth")
    return third.num_rows


@asset(namespace="w", code_version="1")
def fails(first: pa.Table) -> int:
    record("fails")
    if not (STATE_DIR / "fixed").exists():
        raise RuntimeError("fails until the 'fixed' file exists")
    return first.num_rows


@asset(namespace="w", code_version="1")
def after_fails(fails: int) -> int:
    record("after_fails")
    return fails + 1


@asset(namespace="w", code_version="1")
def rendezvous() -> int:
    """Waits (up to 30 s) until a second execution has started: runs only in parallel."""
    record("rendezvous")
    deadline = time.monotonic() + 30
    path = STATE_DIR / "rendezvous"
    while time.monotonic() < deadline:
        if path.read_text().count("start") >= 2:
            return 1
        time.sleep(0.02)
    raise RuntimeError("no second run started alongside this one")
