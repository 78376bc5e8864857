"""The process executor: one child process per attempt."""

from __future__ import annotations

import multiprocessing
import os
import sys
from types import ModuleType
from typing import Any

from arco.flow.executors.attempt import execute
from arco.flow.executors.base import Executor, Handle, Job, Outcome


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
