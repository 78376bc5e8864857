"""Executors run one task attempt somewhere: in this process, in a child process,
or on a ``dask.distributed`` cluster. The scheduler only sees :class:`Handle`s.

One module per backend (``inline``, ``process``, ``dask``); ``base`` holds what
they share and ``attempt`` the attempt itself (:func:`execute`), which every
backend ends in. Importing this package never imports ``dask``: that happens only
when a :class:`DaskExecutor` is made (the ``arco[dask]`` extra).
"""

from __future__ import annotations

from arco.core.errors import InvalidArgumentError
from arco.flow.executors.attempt import execute, register, register_check
from arco.flow.executors.base import Executor, Handle, Job, Outcome
from arco.flow.executors.dask import DaskExecutor
from arco.flow.executors.inline import InlineExecutor
from arco.flow.executors.process import ProcessExecutor

__all__ = [
    "DaskExecutor",
    "Executor",
    "Handle",
    "InlineExecutor",
    "Job",
    "Outcome",
    "ProcessExecutor",
    "execute",
    "make_executor",
    "register",
    "register_check",
]


def make_executor(name: str, *, dask_address: str | None = None) -> Executor:
    """An executor by name: ``inline``, ``process`` or ``dask``."""
    if name == "inline":
        return InlineExecutor()
    if name == "process":
        return ProcessExecutor()
    if name == "dask":
        return DaskExecutor(dask_address)
    raise InvalidArgumentError(f"executor {name!r} must be inline, process or dask")
