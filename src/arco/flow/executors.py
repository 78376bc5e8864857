"""Executors run one task attempt somewhere: in this process, in a child process,
or on a ``dask.distributed`` cluster. The scheduler only sees :class:`Handle`s."""

from __future__ import annotations

import contextvars
import functools
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from arco.core.ids import new_ulid
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore, open_store
from arco.core.telemetry import attached, configure_tracing, span, tracing_enabled
from arco.flow.assets import AssetContext, AssetDef
from arco.flow.automation.checks import AssetCheckDef, Output, inline_results, run_checks


@dataclass(frozen=True)
class Job:
    """Everything needed to run one attempt, picklable."""

    run_id: str
    task_id: str
    asset_key: str
    partition: str | None
    attempt: int
    module: str
    qualname: str
    inputs: tuple[tuple[str, tuple[tuple[str | None, str | None], ...]], ...]
    io: str
    store_url: str
    tenant: str
    workspace: str
    timeout: float | None
    #: The asset's checks, as (module, name of the @asset_check object): run on the
    #: value right after it is stored, in the same process.
    checks: tuple[tuple[str, str], ...] = ()
    materialization_id: str = field(default_factory=new_ulid)
    #: The scheduler's trace context (W3C ``traceparent``): the attempt's span joins
    #: the run's trace in whichever process or dask worker runs it.
    traceparent: str | None = None


@dataclass
class Outcome:
    """The result of an attempt."""

    ok: bool
    location: str | None = None
    kind: str = "none"
    row_count: int | None = None
    byte_size: int | None = None
    schema: list[dict[str, str]] | None = None
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    #: Asset check results (declared and inline), as ``checks.result_dict`` rows.
    checks: list[dict[str, Any]] = field(default_factory=list)


_REGISTRY: dict[tuple[str, str], AssetDef] = {}


def register(asset: AssetDef) -> None:
    """Let in-process executors find assets defined outside importable modules."""
    _REGISTRY[(asset.fn.__module__, asset.fn.__qualname__)] = asset


_CHECKS: dict[tuple[str, str], AssetCheckDef] = {}


def register_check(check: AssetCheckDef) -> tuple[str, str]:
    """Let executors find a check; returns the (module, name) a :class:`Job` carries."""
    ref = (check.fn.__module__, check.fn.__qualname__)
    _CHECKS[ref] = check
    return ref


_STORES: dict[str, ObjectStore] = {}


@functools.lru_cache(maxsize=64)
def _keys(tenant: str, workspace: str) -> Keys:
    """Key layout of a scope (validating a scope on every attempt showed up in profiles)."""
    return Keys(Scope(tenant, workspace))


def _store(url: str) -> ObjectStore:
    """The store at ``url``, opened once per process: every attempt of a run uses the
    same store, and opening one (client, folders) cost more than a small value's PUT.
    A bare ``memory://`` is a fresh store on every open, so it is never shared."""
    store = _STORES.get(url)
    if store is None:
        store = open_store(url)
        if url.rstrip("/") != "memory:":
            _STORES[url] = store
    return store


def _resolve(module: str, qualname: str) -> Any:
    found = _REGISTRY.get((module, qualname))
    if found is not None:
        return found.fn
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj.fn if isinstance(obj, AssetDef) else obj


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def execute(job: Job, *, writes: list[Future[None]] | None = None) -> Outcome:
    """Run one attempt: load inputs, call the asset, store its value.

    With ``writes``, the value is written by a background writer thread and the
    write's future is appended there: the attempt is over only when it is done.
    The attempt is a ``task`` span in the run's trace (``job.traceparent``).
    """
    if job.traceparent and not tracing_enabled():
        # A worker process or dask worker: trace if its environment says where to.
        configure_tracing("arco-worker")
    attrs = {
        "arco.run_id": job.run_id,
        "arco.task_id": job.task_id,
        "arco.asset": job.asset_key,
        "arco.partition": job.partition,
        "arco.attempt": job.attempt,
    }
    with attached(job.traceparent), span("task", attrs) as sp:
        outcome = _execute(job, writes=writes)
        sp.set_attribute("arco.ok", outcome.ok)
        return outcome


def _execute(job: Job, *, writes: list[Future[None]] | None) -> Outcome:
    from arco.flow.io import load_value, store_value

    start = time.perf_counter()
    lines: list[str] = []
    # A logger of this attempt alone, made directly rather than through
    # ``logging.getLogger``: registered loggers are never freed, and ``setLevel`` on
    # one clears the level cache of every registered logger, which made each
    # attempt cost more than the last (quadratic over a large run). Nothing else
    # holds this one, so it goes away with the attempt, and concurrent attempts of
    # the same asset never see each other's lines.
    logger = logging.Logger(f"arco.asset.{job.asset_key}", logging.DEBUG)
    logger.propagate = False
    logger.addHandler(_ListHandler(lines))
    try:
        store = _store(job.store_url)
        fn = _resolve(job.module, job.qualname)
        kwargs: dict[str, Any] = {}
        for param, sources in job.inputs:
            keys = _keys(job.tenant, job.workspace)
            values = {part: load_value(store, loc, keys) for part, loc in sources}
            kwargs[param] = values[sources[0][0]] if len(sources) == 1 else values
        ctx = AssetContext(
            run_id=job.run_id,
            task_id=job.task_id,
            asset_key=job.asset_key,
            attempt=job.attempt,
            partition_key=job.partition,
            log=logger,
            store_url=job.store_url,
            tenant=job.tenant,
            workspace=job.workspace,
        )
        asset_def = _REGISTRY.get((job.module, job.qualname))
        takes_context = asset_def.takes_context if asset_def else _takes_context(job)
        value = fn(ctx, **kwargs) if takes_context else fn(**kwargs)
        check_results: list[dict[str, Any]] = []
        if isinstance(value, Output):
            check_results = inline_results(value)
            value = value.value
        keys = _keys(job.tenant, job.workspace)
        write = None
        # An in-memory PUT costs less than handing it to a writer thread.
        if writes is not None and not store.url.startswith("memory:"):

            def write(key: str, data: bytes) -> None:
                writes.append(_write_behind(store, key, data))

        stored = store_value(
            store, keys, job.asset_key, job.partition, job.materialization_id, value, job.io, write
        )
        return Outcome(
            ok=True,
            location=stored.location,
            kind=stored.kind,
            row_count=stored.row_count,
            byte_size=stored.byte_size,
            schema=stored.schema,
            logs=lines,
            metadata=dict(ctx.metadata),
            duration=time.perf_counter() - start,
            checks=check_results + _run_checks(job, value, ctx),
        )
    except Exception as exc:
        tb = traceback.format_exc(limit=8)
        first = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        return Outcome(
            ok=False,
            error=first + "\n" + tb[-4000:],
            logs=lines,
            duration=time.perf_counter() - start,
        )


def _run_checks(job: Job, value: Any, ctx: AssetContext) -> list[dict[str, Any]]:
    """The asset's declared checks on the value just stored (each failure is a result)."""
    if not job.checks:
        return []
    found = []
    for module, name in job.checks:
        obj: Any = _CHECKS.get((module, name))
        if obj is None:
            obj = getattr(importlib.import_module(module), name, None)
        if isinstance(obj, AssetCheckDef):
            found.append(obj)
    return run_checks(found, value, ctx)


def _takes_context(job: Job) -> bool:
    obj: Any = importlib.import_module(job.module)
    for part in job.qualname.split("."):
        obj = getattr(obj, part, None)
    return bool(isinstance(obj, AssetDef) and obj.takes_context)


class Handle(ABC):
    """A running attempt."""

    #: The attempt's code has already run to its end (in the caller's thread); only
    #: storing its value may remain, so there is nothing left to time out.
    code_finished = False

    @abstractmethod
    def poll(self) -> Outcome | None:
        """The outcome if finished, else None."""

    @abstractmethod
    def kill(self) -> None:
        """Stop the attempt (best effort)."""


class Executor(ABC):
    """Starts attempts."""

    name = "abstract"
    #: ``start`` runs the attempt to its end in the caller's thread before returning
    #: (the scheduler then writes the attempt's RUNNING event with its outcome).
    synchronous = False

    @abstractmethod
    def start(self, job: Job) -> Handle:
        """Start ``job``; must not block for long."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release resources."""


class _Done(Handle):
    code_finished = True

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def poll(self) -> Outcome | None:
        return self.outcome

    def kill(self) -> None:
        return None


# Storing a small value on a local folder is a handful of file-system calls that
# took longer than a trivial asset itself (about 1 ms here). The inline executor
# hands those writes to a few threads (the calls release the GIL) and runs the next
# ready task meanwhile; an attempt counts as finished only once its write is
# durable, so nothing records or reads a value before it exists.
_WRITE_BEHIND_MAX_BYTES = 4 << 20  # larger values are written in the attempt itself
_WRITE_BEHIND_SLOTS = threading.BoundedSemaphore(16)  # bounds memory held by queued writes
_WRITE_BEHIND_LOCK = threading.Lock()
_WRITE_BEHIND_POOL: ThreadPoolExecutor | None = None


def _write_behind(store: ObjectStore, key: str, data: bytes) -> Future[None]:
    if len(data) > _WRITE_BEHIND_MAX_BYTES:
        done: Future[None] = Future()
        try:
            store.put(key, data, "create")
            done.set_result(None)
        except Exception as exc:
            done.set_exception(exc)
        return done
    global _WRITE_BEHIND_POOL
    with _WRITE_BEHIND_LOCK:
        if _WRITE_BEHIND_POOL is None:
            # Local file-system calls are CPU work in the kernel: more threads than
            # cores only fight over the GIL (measured: 8 threads slower than 2 here).
            workers = min(4, os.cpu_count() or 2)
            _WRITE_BEHIND_POOL = ThreadPoolExecutor(workers, thread_name_prefix="arco-write")
        pool = _WRITE_BEHIND_POOL
    _WRITE_BEHIND_SLOTS.acquire()

    def put() -> None:
        try:
            store.put(key, data, "create")
        finally:
            _WRITE_BEHIND_SLOTS.release()

    def traced_put() -> None:
        # Usually ends after the attempt's span: a span of its own under it, which
        # the write's storage call is counted on.
        with span("value.write", {"arco.key": key, "arco.bytes": len(data)}):
            put()

    try:
        if tracing_enabled():
            # The write belongs to the attempt's span (and trace), not to the pool thread.
            return pool.submit(contextvars.copy_context().run, traced_put)
        return pool.submit(put)
    except BaseException:
        _WRITE_BEHIND_SLOTS.release()
        raise


class _Writing(Handle):
    """An inline attempt whose code has run and whose value is being written."""

    code_finished = True

    def __init__(self, outcome: Outcome, writes: list[Future[None]]) -> None:
        self.outcome = outcome
        self.writes = writes
        self.result: Outcome | None = None

    def poll(self) -> Outcome | None:
        if self.result is None and all(w.done() for w in self.writes):
            self.result = self.outcome
            for w in self.writes:
                exc = w.exception()
                if exc is not None:
                    first = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                    self.result = Outcome(
                        ok=False,
                        error=f"storing the value failed: {first}",
                        logs=self.outcome.logs,
                        duration=self.outcome.duration,
                    )
                    break
        return self.result

    def kill(self) -> None:
        return None  # the write finishes on its own; nothing will reference it


class InlineExecutor(Executor):
    """Runs each attempt in the scheduler's own thread (no isolation).

    The asset's code runs inside :meth:`start`; storing its value may finish a
    little later on a writer thread (the handle reports the outcome then).

    An asset with a ``timeout`` runs on a thread of its own that :meth:`start`
    waits for at most that long. Past it the attempt fails with ``TimeoutError``;
    a thread cannot be killed, so it is abandoned and may run on (and even store
    a value, which nothing records) until the process exits. Use the process
    executor where a runaway attempt must really be stopped.
    """

    name = "inline"
    synchronous = True

    def start(self, job: Job) -> Handle:
        """Run the attempt now; its value's write may still be under way."""
        if job.timeout is not None:
            outcome, writes = _with_deadline(job, job.timeout)
        else:
            writes = []
            outcome = execute(job, writes=writes)
        return _Writing(outcome, writes) if writes else _Done(outcome)


def _with_deadline(job: Job, timeout: float) -> tuple[Outcome, list[Future[None]]]:
    """``execute(job)`` on its own thread, waited for at most ``timeout`` seconds."""
    finished = threading.Event()
    outcomes: list[Outcome] = []
    # The thread's own list: writes of an abandoned attempt are never waited for.
    writes: list[Future[None]] = []
    # The asset sees the caller's context variables, as if it ran in its thread.
    context = contextvars.copy_context()

    def attempt() -> None:
        try:
            outcomes.append(context.run(execute, job, writes=writes))
        finally:
            finished.set()

    began = time.perf_counter()
    thread = threading.Thread(target=attempt, name=f"arco-inline {job.task_id}", daemon=True)
    thread.start()
    if not finished.wait(timeout):
        return (
            Outcome(
                ok=False,
                error=(
                    f"TimeoutError: exceeded {timeout}s (the inline executor cannot stop "
                    "the attempt: its thread was abandoned and may still be running)"
                ),
                duration=time.perf_counter() - began,
            ),
            [],
        )
    if not outcomes:  # execute() catches Exception; SystemExit and the like end here
        return Outcome(ok=False, error="the attempt's thread ended without an outcome"), []
    return outcomes[0], writes


def _child(job: Job, conn: Any, env: dict[str, str] | None = None) -> None:
    if env is not None:
        # Fork-server children inherit the server's environment, frozen when it
        # started; give them the scheduler's environment as it is now.
        os.environ.clear()
        os.environ.update(env)
    conn.send(execute(job))
    conn.close()


class _ProcessHandle(Handle):
    def __init__(self, proc: Any, conn: Any) -> None:
        self.proc = proc
        self.conn = conn
        self.result: Outcome | None = None

    def _receive(self) -> Outcome | None:
        try:
            if not self.conn.poll():
                return None
            outcome: Outcome = self.conn.recv()
            return outcome
        except (EOFError, OSError):
            return None

    def poll(self) -> Outcome | None:
        if self.result is not None:
            return self.result
        alive = self.proc.is_alive()
        outcome = self._receive()
        if outcome is None and not alive:
            outcome = self._receive() or Outcome(
                ok=False,
                error=f"WorkerCrashed: worker process exited with code {self.proc.exitcode}",
            )
        if outcome is not None:
            self.result = outcome
            self.proc.join(timeout=5)
            self.conn.close()
        return outcome

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)


def _main_imports() -> list[str]:
    """Modules that ``__main__`` imported.

    multiprocessing re-runs the main script in every child; with these modules
    preloaded in the fork server that re-run finds them imported (the stdlib's
    own ``__main__`` preload does not work before Python 3.13).
    """
    main = sys.modules.get("__main__")
    names: set[str] = set()
    for value in list(vars(main).values()) if main is not None else []:
        try:
            name = value.__name__ if isinstance(value, ModuleType) else value.__module__
        except Exception:
            continue
        if not isinstance(name, str) or name.startswith("__"):
            continue
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__spec__", None) is not None:
            names.add(name)
    return sorted(names)


class ProcessExecutor(Executor):
    """One child process per attempt: isolation, timeouts and kill on cancel.

    Uses ``forkserver`` where available: a plain ``fork`` of a process whose
    object-store runtime threads are running can deadlock the child, while the
    fork server is a clean process (with Arco preloaded) that forks cheaply. A
    killed or crashed child is reported as a failed attempt.
    """

    name = "process"

    def __init__(self, method: str | None = None) -> None:
        methods = multiprocessing.get_all_start_methods()
        chosen = method or ("forkserver" if "forkserver" in methods else "spawn")
        self.ctx = multiprocessing.get_context(chosen)
        if chosen == "forkserver":
            preload = ["arco.flow.executors", "arco.flow.io", "pyarrow.parquet"]
            self.ctx.set_forkserver_preload(preload + _main_imports())

    def start(self, job: Job) -> Handle:
        """Fork a worker for ``job``."""
        parent, child = self.ctx.Pipe(duplex=False)
        args = (job, child, dict(os.environ))
        proc = self.ctx.Process(target=_child, args=args, daemon=True)  # type: ignore[attr-defined]
        proc.start()
        child.close()
        return _ProcessHandle(proc, parent)


def _executing(dask_worker: Any) -> tuple[int, list[str]]:
    """The process id of a dask worker and the keys it is running (called on the worker)."""
    return os.getpid(), [str(ts.key) for ts in dask_worker.state.executing]


class _DaskHandle(Handle):
    def __init__(self, future: Any, executor: DaskExecutor) -> None:
        self.future: Any = future
        self.executor = executor
        self.result: Outcome | None = None

    def poll(self) -> Outcome | None:
        if self.result is not None:
            return self.result
        if not self.future.done():
            return None
        try:
            self.result = self.future.result()
        except Exception as exc:
            # KilledWorker when the worker died mid-task (the local cluster
            # does not re-run it: allowed_failures=0), CancelledError, ...
            self.result = Outcome(ok=False, error=f"WorkerCrashed: {type(exc).__name__}: {exc}")
        # Drop the future so dask forgets the result: were it kept, a worker
        # dying later would make dask silently re-run this attempt.
        self.future.release()
        return self.result

    def kill(self) -> None:
        if self.result is None:
            self.executor._stop(self.future)


class DaskExecutor(Executor):
    """Submits attempts to ``dask.distributed`` (a LocalCluster if no address).

    The local cluster (worker processes on 127.0.0.1, one thread each) fails a
    task whose worker dies instead of re-running it, so a crash is a failed
    attempt that the scheduler retries; ``kill`` kills the worker process that
    runs the attempt (its nanny starts a new one). On a cluster at ``address``
    dask's own settings apply: by default it re-runs a task after a worker
    death (the attempt count does not see it), and a killed attempt that already
    started runs to its end with its result discarded.
    """

    name = "dask"

    def __init__(self, address: str | None = None, *, n_workers: int = 2) -> None:
        try:
            import importlib

            distributed: Any = importlib.import_module("dask.distributed")
        except ImportError as exc:  # pragma: no cover - depends on the extra
            from arco.core.errors import InvalidArgumentError

            raise InvalidArgumentError(
                "the dask executor needs the 'dask' extra: pip install 'arco[dask]'"
            ) from exc
        self._cluster: Any = None
        if address is None:
            dask = importlib.import_module("dask")
            # Saturation 1.0: a worker holds only the task it runs. With dask's default
            # (1.1, i.e. two tasks per one-thread worker) a crashing task also failed the
            # innocent task queued behind it on the same worker (allowed_failures=0).
            with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
                self._cluster = distributed.LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    host="127.0.0.1",
                    scheduler_kwargs={"allowed_failures": 0},
                )
            address = self._cluster.scheduler_address
        self.client = distributed.Client(address)

    def start(self, job: Job) -> Handle:
        """Submit ``job`` (retries are the scheduler's job, not dask's)."""
        return _DaskHandle(self.client.submit(execute, job, pure=False, retries=0), self)

    def _stop(self, future: Any) -> None:
        """Cancel ``future``; on our local cluster also kill the worker running it
        (its nanny starts a fresh one, as after a crash)."""
        if self._cluster is not None:
            key = str(future.key)
            try:
                for pid, keys in self.client.run(_executing).values():
                    if key in keys:
                        os.kill(pid, signal.SIGKILL)
            except Exception:  # best effort: the attempt is cancelled either way
                logging.getLogger(__name__).warning("could not stop dask task %s", key)
        future.cancel()

    def close(self) -> None:
        """Close the client (and the local cluster we started)."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(name: str, *, dask_address: str | None = None) -> Executor:
    """An executor by name: ``inline``, ``process`` or ``dask``."""
    if name == "inline":
        return InlineExecutor()
    if name == "process":
        return ProcessExecutor()
    if name == "dask":
        return DaskExecutor(dask_address)
    from arco.core.errors import InvalidArgumentError

    raise InvalidArgumentError(f"executor {name!r} must be inline, process or dask")
