"""One attempt, wherever it runs: resolve the asset, load its inputs, call it,
store its value and run its checks. Every executor ends in :func:`execute`, in the
scheduler's thread, a child process or a dask worker."""

from __future__ import annotations

import contextvars
import functools
import importlib
import logging
import os
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from arco.core.ids import new_ulid
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore, open_store
from arco.core.telemetry import attached, configure_tracing, span, tracing_enabled
from arco.flow.assets import AssetContext, AssetDef
from arco.flow.automation.checks import AssetCheckDef, Output, inline_results, run_checks
from arco.flow.executors.base import Job, Outcome

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

        # The value's object is named per execution, not by the job's
        # materialization id: dask re-runs a finished task whose result was lost
        # with its worker before the scheduler collected it, and that second
        # execution of the same job found its create-only key taken and failed
        # the attempt. The first execution's object is an orphan gc removes.
        stored = store_value(
            store, keys, job.asset_key, job.partition, new_ulid(), value, job.io, write
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
