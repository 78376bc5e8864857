"""FastAPI dependencies: the verified principal, role checks, rate limits, services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from arco.api.auth import AuthenticationError, PermissionDeniedError, Principal
from arco.api.services import ScopeServices

bearer = HTTPBearer(auto_error=False, description="JWT issued for one tenant and workspace")


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, from a verified bearer token (never from path, header or body)."""
    if credentials is None or not credentials.credentials:
        raise AuthenticationError("missing bearer token")
    if credentials.scheme.lower() != "bearer":
        raise AuthenticationError("authorization scheme must be Bearer")
    verifier = request.app.state.verifier
    found: Principal = verifier.verify(credentials.credentials)
    request.state.principal = found
    return found


Caller = Annotated[Principal, Depends(principal)]


def _role(role: str, rate: str | None = None):  # type: ignore[no-untyped-def]
    def check(request: Request, who: Caller) -> ScopeServices:
        if not who.has(role):
            raise PermissionDeniedError(f"this operation needs the {role!r} role")
        if rate is not None:
            request.app.state.limiter.take(who.tenant, rate)
        services: ScopeServices = request.app.state.services.get(who.scope)
        return services

    return check


Reader = Annotated[ScopeServices, Depends(_role("reader"))]
Writer = Annotated[ScopeServices, Depends(_role("writer", "write"))]
Ingest = Annotated[ScopeServices, Depends(_role("writer", "ingest"))]
Querier = Annotated[ScopeServices, Depends(_role("reader", "query"))]
