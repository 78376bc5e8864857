"""Bearer JWT authentication.

HS256 with a shared secret for local use, RS256 with a JWKS (file or URL) for
production. ``iss``, ``aud``, ``exp`` and ``nbf`` are checked; ``alg: none`` and
any algorithm not configured are refused. The scope of every storage access
comes from the verified claims only.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt

from arco.core.errors import ArcoError, PermissionDeniedError
from arco.core.scope import Scope

__all__ = [
    "ROLES",
    "AuthenticationError",
    "PermissionDeniedError",
    "Principal",
    "TokenVerifier",
    "mint_token",
    "principal_from_claims",
]

ROLES = ("reader", "writer", "admin")
_ROLE_RANK = {"reader": 0, "writer": 1, "admin": 2}
_VERIFIED_CACHE_SIZE = 4096


class AuthenticationError(ArcoError):
    """Missing, malformed, expired or otherwise invalid credentials (HTTP 401)."""

    code = "unauthenticated"


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    sub: str
    tenant: str
    workspace: str
    roles: tuple[str, ...]

    @cached_property
    def scope(self) -> Scope:
        """The storage scope the caller may touch (validated once: verified principals
        are cached with their token and serve every request of it)."""
        return Scope(self.tenant, self.workspace)

    def has(self, role: str) -> bool:
        """True if any of the caller's roles is at least ``role``."""
        need = _ROLE_RANK[role]
        return any(_ROLE_RANK.get(r, -1) >= need for r in self.roles)


class TokenVerifier:
    """Verifies bearer tokens against the configured keys."""

    def __init__(
        self,
        *,
        secret: str | None,
        issuer: str,
        audience: str,
        jwks: str | None = None,
        leeway: float = 30.0,
    ) -> None:
        if not secret and not jwks:
            raise ValueError("configure ARCO_JWT_SECRET (HS256) or ARCO_JWKS (RS256)")
        self.secret = secret
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._jwks_source = jwks
        self._jwk_client: jwt.PyJWKClient | None = None
        self._jwk_set: jwt.PyJWKSet | None = None
        # Verified tokens by their exact text: a client sends the same token on every
        # request, and re-verifying its signature cost more than serving a small read.
        self._verified: OrderedDict[str, tuple[Principal, float, float]] = OrderedDict()
        self._verified_lock = threading.Lock()
        #: Whether verifying may fetch keys over the network (then not on the event loop).
        self.remote_keys = bool(jwks and jwks.startswith(("http://", "https://")))
        if jwks and jwks.startswith(("http://", "https://")):
            self._jwk_client = jwt.PyJWKClient(jwks, cache_keys=True, lifespan=300)
        elif jwks:
            self._jwk_set = jwt.PyJWKSet.from_dict(json.loads(Path(jwks).read_text()))

    def _key_for(self, token: str, header: dict[str, Any]) -> tuple[Any, list[str]]:
        alg = header.get("alg")
        if alg == "HS256" and self.secret:
            return self.secret, ["HS256"]
        if alg == "RS256" and (self._jwk_client or self._jwk_set):
            if self._jwk_client is not None:
                return self._jwk_client.get_signing_key_from_jwt(token).key, ["RS256"]
            assert self._jwk_set is not None
            kid = header.get("kid")
            for key in self._jwk_set.keys:
                if kid is None or key.key_id == kid:
                    return key.key, ["RS256"]
            raise AuthenticationError("token key id is not in the JWKS")
        raise AuthenticationError(f"token algorithm {alg!r} is not accepted")

    def cached(self, token: str, *, now: float | None = None) -> Principal | None:
        """The principal of ``token`` if it was verified before and is still in its window.

        The time window (``nbf``..``exp`` with leeway) is re-checked on every call, so a
        cached token expires exactly when a freshly verified one would.
        """
        with self._verified_lock:
            found = self._verified.get(token)
        if found is None:
            return None
        who, not_before, expires = found
        at = time.time() if now is None else now
        if not_before - self.leeway <= at < expires + self.leeway:
            return who
        with self._verified_lock:
            self._verified.pop(token, None)
        return None

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; :class:`AuthenticationError` otherwise."""
        found = self.cached(token)
        if found is not None:
            return found
        try:
            header = jwt.get_unverified_header(token)
            key, algorithms = self._key_for(token, header)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except AuthenticationError:
            raise
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthenticationError("token is not valid yet (nbf)") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationError("token audience is not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationError("token issuer is not accepted") from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise AuthenticationError(f"invalid token: {exc}") from exc
        who = principal_from_claims(claims)
        expires, not_before = claims.get("exp"), claims.get("nbf", 0)
        if isinstance(expires, int | float) and isinstance(not_before, int | float):
            with self._verified_lock:
                self._verified[token] = (who, float(not_before), float(expires))
                while len(self._verified) > _VERIFIED_CACHE_SIZE:
                    self._verified.popitem(last=False)
        return who


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Validate the Arco claims of a verified token."""
    tenant, workspace = claims.get("tenant"), claims.get("workspace")
    roles = claims.get("roles")
    if not isinstance(tenant, str) or not isinstance(workspace, str):
        raise AuthenticationError("token lacks tenant or workspace claims")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthenticationError("token 'roles' claim must be a list of strings")
    try:
        Scope(tenant, workspace)
    except ArcoError as exc:
        raise AuthenticationError(f"token scope is invalid: {exc}") from exc
    known = tuple(r for r in roles if r in _ROLE_RANK)
    return Principal(str(claims["sub"]), tenant, workspace, known)


def mint_token(
    secret: str,
    *,
    tenant: str,
    workspace: str,
    roles: list[str],
    ttl_seconds: float = 3600,
    sub: str | None = None,
    issuer: str = "arco",
    audience: str = "arco",
) -> str:
    """An HS256 token for local use (``arco token``)."""
    Scope(tenant, workspace)
    for role in roles:
        if role not in _ROLE_RANK:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    now = int(time.time())
    claims = {
        "sub": sub or f"local:{uuid.uuid4().hex[:8]}",
        "tenant": tenant,
        "workspace": workspace,
        "roles": roles,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm="HS256")
