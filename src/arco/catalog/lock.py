"""Lease lock with a fencing token, on any store that has compare-and-swap.

The lock object ``locks/{domain}.lock.json`` is never deleted; its ``token``
grows by one on every acquisition. A commit records the token it held in the
manifest and the pointer, and refuses to publish if the live lock no longer
carries that token, so a writer that paused past its lease can never publish.

A lease ends in one of three ways: it expires; its holder writes a released
record (after a commit that published nothing); or its holder publishes — a
pointer whose fencing token is at least the lease's token proves the lease's
one commit is done, so a successful commit needs no release write. A writer
that finds the lock exactly as it last left it takes the next token with a
single compare-and-swap, without reading it first.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arco.core.errors import (
    FencedError,
    LockUnavailableError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from arco.core.storage import Match, ObjectStore, PutMode

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
    acquired_at: float = 0.0
    #: True when the lock was found exactly as this holder last left it, so no
    #: other writer can have published since this holder's previous commit.
    uncontended: bool = False


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
        published_token: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.ttl = ttl
        self.wait_timeout = wait_timeout
        self.holder = holder or new_holder_id()
        # Reads the fencing token of the domain's head pointer (0 if none); a lease
        # whose token the head already carries has done its commit.
        self.published_token = published_token
        self._last: tuple[LockRecord, str] | None = None

    def read(self) -> tuple[LockRecord, str] | None:
        """The current lock record and its version, or None if never taken."""
        try:
            data, version = self.store.get(self.key)
        except ObjectNotFoundError:
            return None
        return LockRecord.from_bytes(data), version

    def _take(self, old_token: int, mode: PutMode, uncontended: bool = False) -> Lease:
        now = time.time()
        record = LockRecord(self.holder, old_token + 1, now, now + self.ttl)
        version = self.store.put(self.key, record.to_bytes(), mode)
        self._last = (record, version)
        return Lease(
            self.key, self.holder, record.token, version, record.expires_at, now, uncontended
        )

    def acquire(self) -> Lease:
        """Take the lock, waiting with backoff and jitter while another writer holds it.

        Callers in one process must not hold two leases of one ``LeaseLock`` at once
        (``DomainStore`` serialises its commits with a mutex).
        """
        if self._last is not None:
            last, last_version = self._last
            try:
                return self._take(last.token, Match(last_version), uncontended=True)
            except PreconditionFailedError:
                self._last = None
        deadline = time.monotonic() + self.wait_timeout
        delay = 0.001
        while True:
            now = time.time()
            current = self.read()
            if current is None:
                try:
                    return self._take(0, "create")
                except PreconditionFailedError:
                    continue
            old, old_version = current
            done = old.free(now) or (
                self.published_token is not None and self.published_token() >= old.token
            )
            if done:
                base = old.token
                if old.holder == "<corrupt>" and self.published_token is not None:
                    # An unreadable lock lost its token: continue above the head's.
                    base = max(base, self.published_token())
                try:
                    return self._take(base, Match(old_version))
                except PreconditionFailedError:
                    continue
            if time.monotonic() >= deadline:
                raise LockUnavailableError(
                    f"lock {self.key} is held by another writer; gave up after "
                    f"{self.wait_timeout:.1f}s"
                )
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)

    def check(self, lease: Lease, *, force: bool = False) -> None:
        """Raise :class:`FencedError` unless ``lease`` is still the live, unexpired lock.

        While more than half of the lease (and at least a second) remains, no other
        writer may take it over, so the read is skipped unless ``force``: this
        assumes clocks agree to within that margin (see ADR 002).
        """
        remaining = lease.expires_at - time.time()
        if not force and remaining > max(self.ttl / 2, 1.0):
            return
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

    def release(self, lease: Lease, *, published: bool = False) -> None:
        """End a lease. After a publish nothing is written: the head's token ends it.

        Otherwise mark the lock released, keeping its token; a no-op if someone
        already took over.
        """
        if published:
            return
        record = LockRecord(lease.holder, lease.token, time.time(), 0.0, released=True)
        try:
            version = self.store.put(self.key, record.to_bytes(), Match(lease.version))
            self._last = (record, version)
        except (PreconditionFailedError, ObjectNotFoundError):
            self._last = None
