"""The query workers seen from the server: processes, the request protocol, deadlines.

Each query runs in a worker process (:mod:`arco.sql.worker`) whose address space
is capped at its idle size plus ``ENGINE_MEMORY_BUDGET``. :func:`_pool` hands out at
most ``ENGINE_WORKERS`` of them per process, started on demand and reused: a worker
keeps the tables it was last sent (a table is sent again only when the snapshot
behind it changed), so a query costs one round trip, not a process start.

A request is length-prefixed frames: a JSON header (the SQL, the time left, the
result limits, the tables), then the Arrow IPC streams of the system tables and
the stored bytes of the table data files it needs. The worker interrupts the
query at its deadline; a query that does not stop (one uninterruptible step) is
killed with its worker ``_KILL_GRACE_SECONDS`` later.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import pyarrow as pa

from arco.core.errors import ArcoError
from arco.core.storage import ObjectStore
from arco.sql import worker as _sqlworker
from arco.sql.errors import QueryError, QueryRejectedError, QueryTimeoutError, QueryTooLargeError
from arco.sql.limits import (
    ENGINE_MEMORY_BUDGET,
    ENGINE_MEMORY_LIMIT,
    ENGINE_THREADS,
    ENGINE_WORKERS,
    MiB,
    QueryLimits,
)
from arco.sql.tabledata import TableData, read_files
from arco.sql.tables import SYSTEM_TABLE_NAMES

#: How long after its deadline a query that did not stop is killed with its worker.
_KILL_GRACE_SECONDS = 1.0
_WORKER_START_SECONDS = 30.0


class _Worker:
    """One query worker process and the tables it holds from earlier requests."""

    def __init__(self) -> None:
        # malloc for Arrow too: jemalloc/mimalloc reserve address space in big steps,
        # which an address-space cap turns into spurious allocation failures.
        env = {**os.environ, "MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-I",  # no script directory on sys.path: catalog/gc.py would shadow gc
                _sqlworker.__file__,
                str(ENGINE_MEMORY_BUDGET),
                str(ENGINE_THREADS),
                ENGINE_MEMORY_LIMIT,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out = self.proc.stdout.fileno()
        #: name -> the exact system table object the worker holds (identity: tables are
        #: immutable), or the fingerprint (a str) of the table data it holds
        self.held: dict[str, pa.Table | str] = {}
        ready = self.read(time.monotonic() + _WORKER_START_SECONDS, 4096)
        if ready is None or not json.loads(ready).get("ready"):
            self.kill()
            raise QueryError("the query engine did not start")

    def send(self, header: dict[str, Any], frames: list[bytes]) -> None:
        """Write one request (a JSON header and its table frames)."""
        for frame in (json.dumps(header).encode(), *frames):
            self._in.write(len(frame).to_bytes(8, "big"))
            self._in.write(frame)
        self._in.flush()

    def read(self, deadline: float, max_size: int) -> bytes | None:
        """One frame; None if the worker died, sent over ``max_size`` or missed ``deadline``."""
        head = self._read_exact(8, deadline)
        if head is None:
            return None
        size = int.from_bytes(head, "big")
        if size > max_size:
            return None
        return self._read_exact(size, deadline)

    def _read_exact(self, size: int, deadline: float) -> bytes | None:
        chunks: list[bytes] = []
        missing = size
        while missing:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._out], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._out, min(missing, 1 << 20))
            if not chunk:
                return None  # the worker exited
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def kill(self) -> None:
        """Stop the process now and reap it."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class _Pool:
    """At most ``ENGINE_WORKERS`` query workers, started on demand and reused."""

    def __init__(self, size: int) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def run(
        self,
        sql: str,
        tables: dict[str, pa.Table],
        limits: QueryLimits,
        deadline: float,
        data: Sequence[TableData] = (),
        store: ObjectStore | None = None,
    ) -> tuple[list[str], list[str], pa.Table, bool]:
        """Run ``sql`` on a worker; the query's own deadline is ``deadline`` (monotonic)."""
        if not self._slots.acquire(timeout=max(deadline - time.monotonic(), 0)):
            raise QueryTimeoutError(
                f"the query waited {limits.max_seconds:g} s for a free query engine and was "
                "not run; the server is busy"
            )
        worker: _Worker | None = None
        try:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None or worker.proc.poll() is not None:
                worker = _Worker()
            result = self._ask(worker, sql, tables, limits, deadline, data, store)
            with self._lock:
                self._idle.append(worker)
            worker = None
            return result
        finally:
            if worker is not None:
                worker.kill()
            self._slots.release()

    def _ask(
        self,
        worker: _Worker,
        sql: str,
        tables: dict[str, pa.Table],
        limits: QueryLimits,
        deadline: float,
        data: Sequence[TableData] = (),
        store: ObjectStore | None = None,
    ) -> tuple[list[str], list[str], pa.Table, bool]:
        frames: list[bytes] = []
        items: list[dict[str, Any]] = []
        for name, table in tables.items():
            send = worker.held.get(name) is not table
            items.append({"name": name, "send": send})
            if send:
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, table.schema) as writer:
                    writer.write_table(table)
                frames.append(sink.getvalue().to_pybytes())
                worker.held.pop(name, None)
        read = 0
        for source in data:
            # Table data is sent as the files' bytes: the worker decodes them inside its
            # memory cap, so the server holds at most the stored (compressed) bytes.
            send = worker.held.get(source.name) != source.fingerprint
            item: dict[str, Any] = {"name": source.name, "send": send, "kind": "parquet"}
            items.append(item)
            if not send:
                continue
            worker.held.pop(source.name, None)
            assert store is not None
            item["files"] = len(source.files)
            item["schema"] = source.schema is not None
            for blob in read_files(store, source):
                read += len(blob)
                if read > limits.max_data_bytes:
                    raise _data_too_large(limits, data)
                frames.append(blob)
            if source.schema is not None:
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, source.schema) as writer:
                    pass
                frames.append(sink.getvalue().to_pybytes())
        header = {
            "sql": sql,
            "remaining": max(deadline - time.monotonic(), 0.001),
            "max_rows": limits.max_rows,
            "max_bytes": limits.max_bytes,
            "truncate": limits.truncate,
            "tables": items,
        }
        try:
            worker.send(header, frames)
        except OSError:
            raise QueryError("the query engine stopped unexpectedly; try again") from None
        del frames
        for name, table in tables.items():
            worker.held[name] = table
        # The worker drops table data a request does not use (it counts against its
        # memory cap); so does this mirror of what it holds.
        for name in [n for n, v in worker.held.items() if isinstance(v, str)]:
            worker.held.pop(name)
        for source in data:
            worker.held[source.name] = source.fingerprint
        # The worker interrupts itself at the deadline; the grace covers its answer.
        # A value DuckDB computes in one step cannot be interrupted: then the process goes.
        hard = deadline + _KILL_GRACE_SECONDS
        raw = worker.read(hard, 1 << 20)
        if raw is None:
            self._lost(worker, limits, hard)
        answer = json.loads(raw)
        if not answer["ok"]:
            for source in data:
                # The worker may not have built it: send it again next time.
                worker.held.pop(source.name, None)
            kind, message = answer["kind"], answer["message"]
            if kind == "fatal":
                worker.kill()
            raise _worker_error(kind, message, limits)
        # Arrow framing adds a little to the values the worker counted.
        result = worker.read(hard, 2 * limits.max_bytes + MiB)
        if result is None:
            self._lost(worker, limits, hard)
        arrow = pa.ipc.open_stream(result).read_all()
        return answer["names"], answer["types"], arrow, bool(answer["truncated"])

    @staticmethod
    def _lost(worker: _Worker, limits: QueryLimits, hard: float) -> NoReturn:
        timed_out = time.monotonic() >= hard
        worker.proc.poll()
        worker.kill()
        if timed_out:
            raise QueryTimeoutError(_timeout_message(limits))
        raise QueryTooLargeError(
            "the query engine stopped: the query needs more than its memory budget of "
            f"{ENGINE_MEMORY_BUDGET // MiB} MiB"
        )

    def close(self) -> None:
        """Stop the idle workers (at interpreter exit)."""
        with self._lock:
            idle, self._idle = self._idle, []
        if os.getpid() != self._pid:
            return  # a forked child: the processes belong to the parent
        for worker in idle:
            worker.kill()


def _timeout_message(limits: QueryLimits) -> str:
    return f"the query ran longer than its time limit of {limits.max_seconds:g} s and was stopped"


def _worker_error(kind: str, message: str, limits: QueryLimits) -> ArcoError:
    if kind == "timeout":
        return QueryTimeoutError(_timeout_message(limits))
    if kind == "too-large":
        return QueryTooLargeError(message)
    if kind == "rejected":
        return QueryRejectedError(message)
    if kind == "unknown-table":
        return QueryError(
            message
            + "; name a catalog table as namespace.table, or a system table: "
            + ", ".join(f"system.{n}" for n in SYSTEM_TABLE_NAMES)
        )
    return QueryError(message)


def _data_too_large(limits: QueryLimits, data: Sequence[TableData]) -> QueryTooLargeError:
    total = sum(d.size for d in data)
    names = ", ".join(f"{d.name} ({d.size} bytes in {len(d.files)} files)" for d in data)
    return QueryTooLargeError(
        f"the tables this query reads hold {total} bytes of data files, more than its "
        f"data budget of {limits.max_data_bytes} bytes: {names}; query a smaller table or "
        "raise the budget (ARCO_QUERY_DATA_MB)"
    )


_POOLS: dict[int, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool() -> _Pool:
    with _POOLS_LOCK:
        pool = _POOLS.get(os.getpid())
        if pool is None:
            _POOLS.clear()  # after fork: the parent's workers are not ours to use
            pool = _POOLS[os.getpid()] = _Pool(ENGINE_WORKERS)
        return pool


@atexit.register
def _close_pools() -> None:
    for pool in list(_POOLS.values()):
        pool.close()
