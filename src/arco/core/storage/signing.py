"""HMAC-signed URLs for stores that cannot presign (local folder, memory).

The URL carries the key, an expiry and an HMAC over both; Arco's blob route
recomputes it. The signature is method-agnostic so one URL serves GET and HEAD
(DuckDB-WASM sends HEAD before reading).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import quote


def _mac(secret: bytes, key: str, expires: int) -> str:
    msg = f"v1\n{key}\n{expires}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class HmacSigner:
    """Signs keys into URLs under ``{base_url}/blob/{key}``."""

    secret: bytes
    base_url: str

    def sign(self, key: str, ttl_seconds: int, *, now: float | None = None) -> str:
        """A URL for ``key`` valid for ``ttl_seconds``."""
        expires = int((time.time() if now is None else now) + ttl_seconds)
        sig = _mac(self.secret, key, expires)
        return f"{self.base_url.rstrip('/')}/blob/{quote(key)}?expires={expires}&sig={sig}"

    def verify(self, key: str, expires: int, sig: str, *, now: float | None = None) -> bool:
        """True when ``sig`` is this signer's signature of ``key`` and it has not expired."""
        if expires < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(_mac(self.secret, key, expires), sig)
