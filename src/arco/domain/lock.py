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

A domain lock (one with a ``published_token``) is written as a volatile
compare-and-swap (:class:`~arco.core.storage.Match`): its content need not survive
a crash of the machine, since an unreadable lock counts as free and its next token
continues above the head pointer's, and every holder died with the machine. A
local folder then skips the data flush that is most of a CAS's cost on ext4. Run
leases, which have no head to continue from, are written like any other object.

While a commit runs, a keeper thread renews its lease every third of the TTL
(:meth:`LeaseLock.kept_alive`), so the TTL bounds how long a *dead* writer
blocks the domain, not how long a live commit may take. The thread outlives
the commit (one per lock, ended after a while without leases): starting and
joining a thread per commit cost two thread hand-offs on every commit.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter  # not time.perf_counter: tests stand a skewed clock in for time
from typing import Any

from arco.core import metrics
from arco.core.errors import (
    FencedError,
    LockUnavailableError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
)
from arco.core.storage import Match, ObjectStore, PutMode

_PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}"

#: Default lease TTL of every domain lock: how long a crashed writer blocks its
#: domain. Live writers renew every third of it, so it does not bound commit time.
DEFAULT_LOCK_TTL = 15.0
#: Default time a writer waits for a lease held by another live writer.
DEFAULT_LOCK_WAIT = 60.0
#: Leases shorter than this are not renewed: sub-second TTLs exist to model a
#: stalled writer in tests, and renewing them would cost a write every few ms.
MIN_RENEWED_TTL = 1.0
#: A lock's keeper thread ends after this many seconds without a lease to renew.
KEEPER_IDLE_EXIT = 30.0


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
    #: Set when a renewal found the lock taken over: the lease may not publish.
    lost: bool = False
    #: True while :meth:`LeaseLock.kept_alive` keeps it: only then may the keeper renew.
    kept: bool = False


class LeaseLock:
    """Acquire, check and release the lease lock of one domain."""

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        *,
        ttl: float = DEFAULT_LOCK_TTL,
        wait_timeout: float = DEFAULT_LOCK_WAIT,
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
        # Only a lock whose token the head carries may lose its record (see above).
        self._volatile = published_token is not None
        self._last: tuple[LockRecord, str] | None = None
        # Serialises a renewal (keeper thread) with check and release (commit thread).
        self._renewing = threading.Lock()
        self._keeper: _Keeper | None = None

    def read(self) -> tuple[LockRecord, str] | None:
        """The current lock record and its version, or None if never taken."""
        try:
            data, version = self.store.get(self.key)
        except ObjectNotFoundError:
            return None
        return LockRecord.from_bytes(data), version

    def _match(self, version: str) -> Match:
        return Match(version, volatile=self._volatile)

    def _take(self, old_token: int, mode: PutMode, uncontended: bool = False) -> Lease:
        now = time.time()
        record = LockRecord(self.holder, old_token + 1, now, now + self.ttl)
        version = self.store.put(self.key, record.to_bytes(), mode)
        self._last = (record, version)
        return Lease(
            self.key, self.holder, record.token, version, record.expires_at, now, uncontended
        )

    @property
    def kind(self) -> str:
        """The metric label of this lock: ``domain`` (commit locks) or ``run`` (run leases)."""
        return "run" if "/control/runs/" in self.key else "domain"

    def acquire(self) -> Lease:
        """Take the lock, waiting with backoff and jitter while another writer holds it.

        Callers in one process must not hold two leases of one ``LeaseLock`` at once
        (``DomainStore`` serialises its commits with a mutex). The wait is measured in
        ``arco_lease_wait_seconds``; giving up counts in ``arco_lease_timeouts``.
        """
        start = perf_counter()
        try:
            return self._acquire()
        except LockUnavailableError:
            metrics.LEASE_TIMEOUTS.labels(self.kind).inc()
            raise
        finally:
            metrics.LEASE_WAIT_SECONDS.labels(self.kind).observe(perf_counter() - start)

    def _acquire(self) -> Lease:
        if self._last is not None:
            last, last_version = self._last
            try:
                return self._take(last.token, self._match(last_version), uncontended=True)
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
                if not old.released and old.expires_at <= now:
                    # Its holder stopped renewing (crashed, or stalled past its TTL).
                    metrics.LEASE_TAKEOVERS.labels(self.kind).inc()
                base = old.token
                if old.holder == "<corrupt>" and self.published_token is not None:
                    # An unreadable lock lost its token: continue above the head's.
                    base = max(base, self.published_token())
                try:
                    return self._take(base, self._match(old_version))
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
        if lease.lost:
            raise FencedError(
                f"lock {self.key} was taken over while held (token {lease.token}); "
                "this writer may not publish"
            )
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
        already took over. Best effort: if storage fails, the lease simply runs out
        (as after a crash), and the error that ended the commit is not masked.
        """
        if published:
            return
        record = LockRecord(lease.holder, lease.token, time.time(), 0.0, released=True)
        with self._renewing:
            try:
                version = self.store.put(self.key, record.to_bytes(), self._match(lease.version))
                self._last = (record, version)
            except StorageError:  # incl. a lost CAS or a vanished lock
                self._last = None

    def renew(self, lease: Lease) -> bool:
        """Push ``lease``'s expiry to now + TTL; False (and ``lease.lost``) if it was taken.

        A compare-and-swap from the version this holder last wrote, so it can never
        extend a lease another writer has taken over. Other storage errors propagate
        and leave the lease as it was (the keeper tries again).
        """
        with self._renewing:
            return self._renew_locked(lease)

    def _renew_kept(self, lease: Lease) -> bool:
        """Renew for the keeper: nothing once :meth:`kept_alive` has let ``lease`` go."""
        with self._renewing:
            if not lease.kept:
                return False
            return self._renew_locked(lease)

    def _renew_locked(self, lease: Lease) -> bool:
        if lease.lost:
            return False
        now = time.time()
        record = LockRecord(lease.holder, lease.token, lease.acquired_at, now + self.ttl)
        try:
            version = self.store.put(self.key, record.to_bytes(), self._match(lease.version))
        except (PreconditionFailedError, ObjectNotFoundError):
            lease.lost = True
            self._last = None
            return False
        lease.version = version
        lease.expires_at = record.expires_at
        self._last = (record, version)
        return True

    @contextmanager
    def kept_alive(self, lease: Lease) -> Iterator[Lease]:
        """Renew ``lease`` every third of the TTL in a keeper thread while the block runs.

        A writer that stalls as a whole (its process paused, or storage unreachable)
        stops renewing too, so its lease still expires and the next writer fences it.
        """
        if self.ttl < MIN_RENEWED_TTL:
            yield lease
            return
        keeper = self._keeper
        if keeper is None:
            keeper = self._keeper = _Keeper(self)
        lease.kept = True
        keeper.keep(lease)
        try:
            yield lease
        finally:
            # Under the renewal mutex: a renewal in flight finishes first, and none
            # starts after this block (as joining a per-commit thread guaranteed).
            with self._renewing:
                lease.kept = False
            keeper.drop(lease)


#: Every keeper of this process, so a forked child can forget their threads.
_KEEPERS: weakref.WeakSet[_Keeper] = weakref.WeakSet()


class _Keeper:
    """The thread that renews one lock's kept lease every third of its TTL.

    It lives across commits and ends after :data:`KEEPER_IDLE_EXIT` seconds
    without a lease. While idle it looks every third of the TTL, so a lease kept
    later is always due after the thread's next look and ``keep`` needs no wake-up.
    """

    def __init__(self, lock: LeaseLock) -> None:
        self.lock = lock
        self.interval = lock.ttl / 3
        self._reset()
        _KEEPERS.add(self)

    def _reset(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.lease: Lease | None = None
        self.due = 0.0
        #: When the thread looks next on its own (``time.monotonic``).
        self.wake_at = 0.0
        self.thread: threading.Thread | None = None

    def keep(self, lease: Lease) -> None:
        """Renew ``lease`` from one interval from now until :meth:`drop`."""
        due = time.monotonic() + self.interval
        with self.cond:
            self.lease, self.due = lease, due
            if self.thread is None:
                self.wake_at = due
                self.thread = threading.Thread(
                    target=self._run, name=f"lease-keeper {self.lock.key}", daemon=True
                )
                self.thread.start()
            elif due < self.wake_at:
                self.cond.notify()

    def drop(self, lease: Lease) -> None:
        """Stop renewing ``lease``."""
        with self.cond:
            if self.lease is lease:
                self.lease = None

    def _run(self) -> None:
        idle_since: float | None = None
        with self.cond:
            while True:
                now = time.monotonic()
                lease = self.lease
                if lease is not None and self.due <= now:
                    idle_since = None
                    self.due = now + self.interval
                    self.cond.release()
                    try:
                        kept = self.lock._renew_kept(lease)
                    except StorageError:
                        kept = True  # transient: the next beat tries again before expiry
                    finally:
                        self.cond.acquire()
                    if not kept and self.lease is lease:
                        self.lease = None
                    continue
                if lease is None:
                    if idle_since is None:
                        idle_since = now
                    elif now - idle_since >= KEEPER_IDLE_EXIT:
                        self.thread = None
                        return
                    self.wake_at = now + self.interval
                else:
                    idle_since = None
                    self.wake_at = self.due
                self.cond.wait(self.wake_at - now)


def _forget_keepers_after_fork() -> None:
    # The child has none of the parent's threads, and a keeper's mutex may have
    # been held by one of them at the fork.
    for keeper in list(_KEEPERS):
        keeper._reset()


os.register_at_fork(after_in_child=_forget_keepers_after_fork)
