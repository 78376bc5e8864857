"""What schedules and sensors ask for: run requests, skips, and deterministic run ids."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ulid import ULID

from arco.core.errors import InvalidArgumentError
from arco.core.ids import check_idempotency_key


@dataclass(frozen=True)
class RunRequest:
    """A run to launch: a selection (default: the schedule's or sensor's target), the
    partitions to run, and a run key that names it (two requests with one key are
    one run, whoever makes them and however often)."""

    selection: str | None = None
    partitions: Sequence[str] = ()
    run_key: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.partitions, str):
            object.__setattr__(self, "partitions", (self.partitions,))
        else:
            object.__setattr__(self, "partitions", tuple(self.partitions))
        if self.run_key is not None:
            check_idempotency_key(self.run_key)
            if len(self.run_key) > 160:
                raise InvalidArgumentError("a run key is at most 160 characters")


@dataclass(frozen=True)
class SkipReason:
    """Nothing to run this time, and why (recorded with the tick or evaluation)."""

    reason: str = ""


def run_id_for(run_key: str, at: datetime) -> str:
    """A ULID that is a pure function of a run key and a time: the millisecond of
    ``at`` and 80 bits of the key's SHA-256. Every daemon deciding the same tick
    names the same run before launching it."""
    millis = int(at.timestamp() * 1000)
    digest = hashlib.sha256(run_key.encode()).digest()[:10]
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + digest))
