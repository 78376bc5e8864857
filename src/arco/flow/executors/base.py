"""What every executor shares: the picklable :class:`Job` of one attempt, its
:class:`Outcome`, and the :class:`Executor` / :class:`Handle` interfaces the
scheduler drives."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from arco.core.ids import new_ulid


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
