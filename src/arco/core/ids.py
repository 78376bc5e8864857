"""Identifiers, canonical JSON and hashing."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from arco.core.errors import InvalidArgumentError

#: Free-form JSON values (event payloads, metadata) may nest at most this deep.
MAX_JSON_DEPTH = 64
#: Idempotency keys are 1 to this many printable characters.
MAX_IDEMPOTENCY_KEY = 255


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Every pair of Crockford base32 digits, by the 10 bits it encodes.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_SHIFTS = tuple(range(120, -1, -10))
_ulid_lock = threading.Lock()
#: The millisecond and randomness of this process's last ULID.
_ulid_last = [0, 0]


def ulid_text(ms: int, randomness: int) -> str:
    """The 26-character ULID of a millisecond timestamp and 80 random bits."""
    # 130 bits (2 of zero padding + 128), 10 bits at a time.
    value = (ms << 80) | randomness
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def new_ulid() -> str:
    """A new ULID string: sortable by creation time, unique without coordination.

    Monotonic within a process, as python-ulid's generator: a ULID of the same
    millisecond as the previous one is that one plus one (so is one made while the
    clock reads earlier than the previous one's). A fraction of the cost of
    ``str(ULID())``; every ledger event and audit record takes one.
    """
    with _ulid_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _ulid_last[0]:
            ms = _ulid_last[0]
            randomness = _ulid_last[1] + 1
            if randomness >> 80:
                raise ValueError("ULID randomness within one millisecond exhausted")
        else:
            randomness = int.from_bytes(os.urandom(10), "big")
        _ulid_last[0], _ulid_last[1] = ms, randomness
    return ulid_text(ms, randomness)


def _forget_sequence_after_fork() -> None:
    # A forked child (dask's and multiprocessing's workers, a forkserver's
    # children) inherits the parent's last ULID: counting up from it, parent and
    # children would make the same "unique" ids within one millisecond. A child
    # starts its own sequence from fresh randomness instead, with a fresh lock in
    # case another thread held it at the fork.
    global _ulid_lock
    _ulid_lock = threading.Lock()
    _ulid_last[0] = _ulid_last[1] = 0


os.register_at_fork(after_in_child=_forget_sequence_after_fork)


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def utc_now_ms() -> datetime:
    """The current UTC time truncated to milliseconds: what a Parquet
    ``timestamp[ms]`` column stores, so cached and re-read records are equal."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def to_millis(ts: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return int(ts.timestamp() * 1000)


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` deterministically: sorted keys, compact, UTF-8.

    Hashes of requests, events and plans are taken over these bytes, so the same
    logical value hashes the same in every process.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "surrogatepass")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def json_depth_over(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels deep.

    Iterative, so a value too deep for recursion is still measured; ``{}`` is one level.
    """
    # Level by level: one pass per depth, children gathered by C-level extends (the
    # tuple form of isinstance is twice as fast as a union on 3.11; compactions check
    # every event's payload).
    level: list[Any] = [value]
    depth = 0
    while True:
        containers = [item for item in level if isinstance(item, (dict, list, tuple))]
        if not containers:
            return False
        depth += 1
        if depth > limit:
            return True
        level = []
        for item in containers:
            level.extend(item.values() if isinstance(item, dict) else item)


def check_json_depth(value: Any, what: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`InvalidArgumentError` if ``value`` nests deeper than ``limit`` levels.

    Deeper values cannot be serialised back (pydantic stops at 255 levels, ``json``
    at the recursion limit), so they are refused where they enter.
    """
    if json_depth_over(value, limit):
        raise InvalidArgumentError(f"{what} is nested deeper than {limit} levels")


def check_idempotency_key(key: Any) -> str:
    """``key`` if it is 1 to 255 printable characters, else :class:`InvalidArgumentError`.

    Control characters would be stored and echoed back (headers, logs, JSON) and two
    keys differing only in invisible characters would look the same.
    """
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidArgumentError(
            "idempotency key (idempotency_key, Idempotency-Key) must be 1 to "
            f"{MAX_IDEMPOTENCY_KEY} characters"
        )
    if not key.isprintable():
        raise InvalidArgumentError(
            "idempotency key (idempotency_key, Idempotency-Key) must not contain control or other "
            "non-printable characters"
        )
    return key
