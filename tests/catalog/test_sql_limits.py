"""Query limits that DuckDB's own settings do not enforce (issue #10, item 1).

DuckDB's ``memory_limit`` covers its buffer manager only, and its interrupt is
checked between vectors: one scalar value computed in one step escapes both.
These tests run such queries and check that the memory of the whole process
tree stays bounded, that the deadline holds, and that the engine recovers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from arco.core import Scope
from arco.core.storage import open_store
from arco.sql import limits, pool
from arco.sql.engine import run_query
from arco.sql.errors import QueryTimeoutError, QueryTooLargeError
from arco.sql.limits import QueryLimits
from arco.sql.tables import SystemTables
from conftest import require_or_skip  # tests/conftest.py: fails under ARCO_REQUIRE_ALL=1

GiB = 1024**3
#: One uninterruptible step of a few seconds that needs little memory (~8 s on 2 cores).
UNINTERRUPTIBLE = "SELECT length(regexp_replace(repeat('ab', 10000000), 'a', 'b', 'g')) AS n"


def rss_of_tree(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants, from /proc."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(
                int(line.split()[1]) * 1024 for line in status.splitlines() if line[:6] == "VmRSS:"
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration):
            continue
    return total


@contextmanager
def rss_watch(pid: int, *, interval: float = 0.01) -> Iterator[dict[str, int]]:
    """Sample the tree's RSS in a thread; yields a dict whose ``peak`` is kept up to date."""
    seen = {"peak": rss_of_tree(pid)}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen["peak"] = max(seen["peak"], rss_of_tree(pid))
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(5)


pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


@pytest.fixture
def system() -> SystemTables:
    return SystemTables(open_store("memory://limits-" + os.urandom(4).hex()), Scope("acme", "lim"))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT len(generate_series(1, 500000000)) AS n",  # a 4 GB list in one step
        "SELECT length(repeat('x', 2000000000)) AS n",  # a 2 GB string in one step
        "SELECT len(list_resize([1], 300000000)) AS n",
    ],
)
def test_a_huge_value_fails_within_the_memory_budget(system: SystemTables, sql: str) -> None:
    run_query(system, "SELECT 1")  # a worker is running: its idle size is in the baseline
    before = rss_of_tree(os.getpid())
    started = time.monotonic()
    with rss_watch(os.getpid()) as seen, pytest.raises(QueryTooLargeError, match="memory budget"):
        run_query(system, sql, limits=QueryLimits(max_seconds=10))
    assert time.monotonic() - started < 10
    assert seen["peak"] - before < limits.ENGINE_MEMORY_BUDGET + 256 * 1024**2
    assert run_query(system, "SELECT 42 AS answer").rows == [[42]]


def test_an_uninterruptible_step_is_stopped_at_the_deadline(system: SystemTables) -> None:
    run_query(system, "SELECT 1")
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match=r"\b1 s\b"):
        run_query(system, UNINTERRUPTIBLE, limits=QueryLimits(max_seconds=1))
    assert time.monotonic() - started < 1 + pool._KILL_GRACE_SECONDS + 1.5
    # The next query gets a fresh worker.
    assert run_query(system, "SELECT 2 AS two").rows == [[2]]


def test_a_killed_query_does_not_disturb_one_running_beside_it(system: SystemTables) -> None:
    if limits.ENGINE_WORKERS < 2:
        # A machine that cannot run two workers hides this case: fail under ARCO_REQUIRE_ALL.
        require_or_skip(f"needs two query workers (this machine allows {limits.ENGINE_WORKERS})")
    results: dict[str, object] = {}

    def slow() -> None:
        try:
            run_query(system, UNINTERRUPTIBLE, limits=QueryLimits(max_seconds=0.5))
        except QueryTimeoutError as exc:
            results["slow"] = exc

    def steady() -> None:
        rows = []
        for i in range(20):
            rows.append(run_query(system, f"SELECT {i} AS i").rows[0][0])
            time.sleep(0.05)
        results["steady"] = rows

    threads = [threading.Thread(target=slow), threading.Thread(target=steady)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert isinstance(results["slow"], QueryTimeoutError)
    assert results["steady"] == list(range(20))


@pytest.mark.parametrize(
    "sql",
    [
        # NULL-typed values have no Arrow buffers, but each would be a Python object.
        "SELECT list_resize([NULL], 5000000) AS l",
        "SELECT [list_resize([NULL], 1000)] AS l FROM range(5000)",
        "SELECT {'a': list_resize([NULL], 5000000)} AS s",
    ],
)
def test_values_without_buffers_count_against_the_byte_limit(
    system: SystemTables, sql: str
) -> None:
    with pytest.raises(QueryTooLargeError, match="limit of 10485760 bytes"):
        run_query(system, sql)
    small = run_query(system, "SELECT list_resize([NULL], 3) AS l")
    assert small.rows == [[[None, None, None]]]


def test_value_weight_counts_every_nesting_level() -> None:
    import pyarrow as pa

    from arco.sql.worker import VALUE_BYTES, value_weight

    nulls = pa.array([[None] * 1000], pa.list_(pa.null()))
    assert nulls.nbytes < 100
    assert value_weight(nulls) >= 1000 * VALUE_BYTES
    sliced = pa.array([[1] * 10, [2] * 1000], pa.list_(pa.int64())).slice(0, 1)
    assert value_weight(sliced) < 1000  # only the values in the slice count
    strings = pa.array(["x" * 100_000])
    assert value_weight(strings) >= 100_000
