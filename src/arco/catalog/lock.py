"""Lease lock with a fencing token, on any store that has compare-and-swap.

The lock object ``locks/{domain}.lock.json`` is never deleted; its ``token``
grows by one on every acquisition. A commit records the token it held in the
manifest and the pointer, and refuses to publish if the live lock no longer
carries that token, so a writer that paused past its lease can never publish.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from arco.core.errors import (
    FencedError,
    LockUnavailableError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from arco.core.storage import Match, ObjectStore

_PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}"


def new_holder_id() -> str:
    """An id naming one writer: host, process and a random suffix."""
    return f"{_PROCESS_ID}:{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class LockRecord:
    """The lock object's content."""

    holder: str
    token: int
    acquired_at: float
    expires_at: float
    released: bool = False

    def to_bytes(self) -> bytes:
        """JSON encoding (the token makes every write's bytes differ: no ETag ABA)."""
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LockRecord:
        """Decode; a corrupt lock counts as expired so writers are never wedged."""
        try:
            raw: dict[str, Any] = json.loads(data)
            return cls(
                holder=str(raw["holder"]),
                token=int(raw["token"]),
                acquired_at=float(raw["acquired_at"]),
                expires_at=float(raw["expires_at"]),
                released=bool(raw.get("released", False)),
            )
        except (ValueError, KeyError, TypeError):
            return cls(holder="<corrupt>", token=0, acquired_at=0.0, expires_at=0.0, released=True)

    def free(self, now: float) -> bool:
        """True if another writer may take the lock."""
        return self.released or self.expires_at <= now


@dataclass
class Lease:
    """A held lease: the fencing token and the lock version we last wrote."""

    key: str
    holder: str
    token: int
    version: str
    expires_at: float


class LeaseLock:
    """Acquire, check and release the lease lock of one domain."""

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        *,
        ttl: float = 15.0,
        wait_timeout: float = 30.0,
        holder: str | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.ttl = ttl
        self.wait_timeout = wait_timeout
        self.holder = holder or new_holder_id()

    def read(self) -> tuple[LockRecord, str] | None:
        """The current lock record and its version, or None if never taken."""
        try:
            data, version = self.store.get(self.key)
        except ObjectNotFoundError:
            return None
        return LockRecord.from_bytes(data), version

    def acquire(self) -> Lease:
        """Take the lock, waiting with backoff and jitter while another writer holds it."""
        deadline = time.monotonic() + self.wait_timeout
        delay = 0.001
        while True:
            now = time.time()
            current = self.read()
            if current is None:
                record = LockRecord(self.holder, 1, now, now + self.ttl)
                try:
                    version = self.store.put(self.key, record.to_bytes(), "create")
                    return Lease(self.key, self.holder, 1, version, record.expires_at)
                except PreconditionFailedError:
                    continue
            else:
                old, old_version = current
                if old.free(now):
                    record = LockRecord(self.holder, old.token + 1, now, now + self.ttl)
                    try:
                        version = self.store.put(self.key, record.to_bytes(), Match(old_version))
                        return Lease(
                            self.key, self.holder, record.token, version, record.expires_at
                        )
                    except PreconditionFailedError:
                        pass
            if time.monotonic() >= deadline:
                raise LockUnavailableError(
                    f"lock {self.key} is held by another writer; gave up after "
                    f"{self.wait_timeout:.1f}s"
                )
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)

    def check(self, lease: Lease) -> None:
        """Raise :class:`FencedError` unless ``lease`` is still the live, unexpired lock."""
        current = self.read()
        if current is None:
            raise FencedError(f"lock {self.key} vanished while held (token {lease.token})")
        record, _ = current
        if record.token != lease.token or record.holder != lease.holder or record.released:
            raise FencedError(
                f"lock {self.key} was taken over (held token {lease.token}, live token "
                f"{record.token}); this writer may not publish"
            )
        if record.expires_at <= time.time():
            raise FencedError(f"lease on {self.key} (token {lease.token}) expired before publish")

    def release(self, lease: Lease) -> None:
        """Mark the lock released, keeping its token; a no-op if someone already took over."""
        record = LockRecord(lease.holder, lease.token, time.time(), 0.0, released=True)
        with contextlib.suppress(PreconditionFailedError, ObjectNotFoundError):
            self.store.put(self.key, record.to_bytes(), Match(lease.version))
