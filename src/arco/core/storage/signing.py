"""HMAC-signed URLs for stores that cannot presign (local folder, memory).

The URL carries the key, an expiry and an HMAC over both; Arco's blob route
recomputes it. The signature is method-agnostic so one URL serves GET and HEAD
(DuckDB-WASM sends HEAD before reading). The key itself starts with the scope
prefix (``tenant=.../workspace=.../``), so a signature is bound to one scope.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import quote

from arco.core import metrics

#: Label of the URL-signing key derived from the JWT secret: a distinct key, so a
#: signed URL can never be replayed as (or help forge) a token, and vice versa.
_DERIVE_LABEL = b"arco/blob-url-signing/v1"


#: Called before each URL is minted, in the context of the request minting it: the API
#: installs its per-tenant signed-URL quota here (it raises to refuse the mint).
mint_guard: ContextVar[Callable[[str], None] | None] = ContextVar("arco_mint_guard", default=None)


def note_mint(kind: str) -> None:
    """Account for one signed URL about to be minted (``hmac`` or ``presigned``).

    Runs the request's :data:`mint_guard` (which may refuse) and counts the URL in
    ``arco_signed_urls``. Every signer calls it, so no path mints uncounted.
    """
    guard = mint_guard.get()
    if guard is not None:
        guard(kind)
    metrics.SIGNED_URLS.labels(kind).inc()


def _mac(secret: bytes, key: str, expires: int) -> str:
    msg = f"v1\n{key}\n{expires}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def url_signing_secret(configured: str | None, jwt_secret: str | None) -> bytes:
    """The secret blob URLs are signed with.

    ``configured`` (``ARCO_URL_SECRET``) wins; else a key derived from the JWT secret
    with HMAC-SHA256 under a label of its own (one HKDF-Expand step), so every server
    process sharing the JWT secret verifies the others' URLs; else a random key for
    this process only (URLs then work only against the process that minted them).
    """
    if configured:
        return configured.encode()
    if jwt_secret:
        return hmac.new(jwt_secret.encode(), _DERIVE_LABEL + b"\x01", hashlib.sha256).digest()
    return secrets.token_bytes(32)


def expiry_of(ttl_seconds: float, now: float) -> int:
    """The Unix second a URL signed at ``now`` expires: rounded up, so a URL is good
    for at least ``ttl_seconds``, never a fraction less."""
    return math.ceil(now + ttl_seconds)


@dataclass(frozen=True)
class HmacSigner:
    """Signs keys into URLs under ``{base_url}/blob/{key}``."""

    secret: bytes
    #: Default base URL; the API passes each request's own base instead.
    base_url: str = ""

    def sign(
        self,
        key: str,
        ttl_seconds: int,
        *,
        now: float | None = None,
        base_url: str | None = None,
    ) -> str:
        """A URL for ``key`` valid for ``ttl_seconds`` (under ``base_url`` if given)."""
        note_mint("hmac")
        expires = expiry_of(ttl_seconds, time.time() if now is None else now)
        sig = _mac(self.secret, key, expires)
        base = (self.base_url if base_url is None else base_url).rstrip("/")
        return f"{base}/blob/{quote(key)}?expires={expires}&sig={sig}"

    def verify(self, key: str, expires: int, sig: str, *, now: float | None = None) -> bool:
        """True when ``sig`` is this signer's signature of ``key`` and it has not expired."""
        if expires < (time.time() if now is None else now):
            return False
        # Bytes, not str: compare_digest refuses non-ASCII strings, and a URL may carry any.
        return hmac.compare_digest(_mac(self.secret, key, expires).encode(), sig.encode())
