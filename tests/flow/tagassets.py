"""Assets of the per-tag concurrency test: four touch the "db", four do not.

Each records its own start and end (wall clock, in the process that ran it) in
``$ARCO_TEST_STATE/intervals``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from arco import asset

STATE_DIR = Path(os.environ.get("ARCO_TEST_STATE", "/tmp/arco-tag-test"))
HOLD = 0.4


def _hold(name: str) -> int:
    start = time.time()
    time.sleep(HOLD)
    end = time.time()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (STATE_DIR / "intervals").open("a") as out:
        out.write(f"{name} {start:.6f} {end:.6f}\n")
    return 1


@asset(namespace="tagged", tags={"db": "warehouse"})
def db_a() -> int:
    return _hold("db_a")


@asset(namespace="tagged", tags={"db": "warehouse"})
def db_b() -> int:
    return _hold("db_b")


@asset(namespace="tagged", tags={"db": "replica"})
def db_c() -> int:
    return _hold("db_c")


@asset(namespace="tagged", tags={"db": "warehouse"})
def db_d() -> int:
    return _hold("db_d")


@asset(namespace="tagged")
def free_a() -> int:
    return _hold("free_a")


@asset(namespace="tagged")
def free_b() -> int:
    return _hold("free_b")


@asset(namespace="tagged")
def free_c() -> int:
    return _hold("free_c")


@asset(namespace="tagged")
def free_d() -> int:
    return _hold("free_d")
