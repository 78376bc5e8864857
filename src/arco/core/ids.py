"""Identifiers, canonical JSON and hashing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from ulid import ULID


def new_ulid() -> str:
    """A new ULID string: sortable by creation time, unique without coordination."""
    return str(ULID())


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
