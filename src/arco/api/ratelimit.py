"""Per-tenant token buckets (in-process; each server process limits on its own)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from arco.api.settings import RateLimit
from arco.core import metrics
from arco.core.errors import ArcoError


class RateLimitedError(ArcoError):
    """Too many requests for this tenant (HTTP 429 with Retry-After)."""

    code = "rate-limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by (tenant, kind)."""

    def __init__(self, limits: dict[str, RateLimit]) -> None:
        self.limits = limits
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, tenant: str, kind: str, cost: float = 1.0) -> None:
        """Take ``cost`` tokens or raise :class:`RateLimitedError`."""
        limit = self.limits.get(kind)
        if limit is None:
            return
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get((tenant, kind))
            if bucket is None:
                bucket = _Bucket(limit.burst, now)
                self._buckets[(tenant, kind)] = bucket
            bucket.tokens = min(limit.burst, bucket.tokens + (now - bucket.stamp) * limit.rate)
            bucket.stamp = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return
            wait = (cost - bucket.tokens) / limit.rate if limit.rate > 0 else 60.0
        metrics.RATE_LIMITED.labels(kind).inc()
        raise RateLimitedError(f"too many {kind} requests for tenant {tenant!r}", wait)
