"""The dask executor: attempts run on a ``dask.distributed`` cluster.

``dask`` is the optional ``arco[dask]`` extra: it is imported when a
:class:`DaskExecutor` is made, never when this module is.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import signal
from typing import Any

from arco.core.errors import ObjectNotFoundError, PreconditionFailedError, StorageError
from arco.core.storage import ObjectStore
from arco.flow.executors.attempt import _keys, _store, execute
from arco.flow.executors.base import Executor, Handle, Job, Outcome


def execute_once(job: Job) -> Outcome:
    """:func:`execute` ``job`` at most once, however often dask runs this.

    dask runs a finished task again when its result dies with its worker before the
    scheduler collects it (a worker crash moments later is enough). The asset would
    run twice for one attempt. Before returning, the first execution records its
    outcome under the attempt's key; a later execution of the same job returns that
    record instead of running the asset again.
    """
    store = _store(job.store_url)
    keys = _keys(job.tenant, job.workspace)
    key = keys.attempt_outcome(job.asset_key, job.run_id, job.task_id, job.attempt)
    recorded = _recorded(store, key)
    if recorded is not None:
        return recorded
    outcome = execute(job)
    data = json.dumps(dataclasses.asdict(outcome), default=str).encode()
    try:
        store.put(key, data, "create")
    except PreconditionFailedError:
        # Another execution of this job finished first: one outcome for the attempt.
        return _recorded(store, key) or outcome
    except StorageError:
        # Without the record, a re-run would run the asset again; the outcome stands.
        logging.getLogger(__name__).warning("could not record the outcome of %s", job.task_id)
    return outcome


def _recorded(store: ObjectStore, key: str) -> Outcome | None:
    try:
        data, _ = store.get(key)
    except ObjectNotFoundError:
        return None
    return Outcome(**json.loads(data))


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
        return _DaskHandle(self.client.submit(execute_once, job, pure=False, retries=0), self)

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
