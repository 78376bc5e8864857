"""FastAPI dependencies: the verified principal, role checks, rate limits, services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from arco.api.auth import AuthenticationError, PermissionDeniedError, Principal
from arco.api.services import ScopeServices
from arco.core.actor import set_actor
from arco.core.errors import InvalidArgumentError

bearer = HTTPBearer(auto_error=False, description="JWT issued for one tenant and workspace")


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, from a verified bearer token (never from path, header or body).

    Async so a request does not hop to the thread pool just to check a token: HS256
    and cached tokens are pure CPU. Only a verifier that may fetch a JWKS over the
    network verifies an unseen token in the thread pool.
    """
    if credentials is None or not credentials.credentials:
        raise AuthenticationError("missing bearer token")
    if credentials.scheme.lower() != "bearer":
        raise AuthenticationError("authorization scheme must be Bearer")
    verifier = request.app.state.verifier
    token = credentials.credentials
    cached: Principal | None = verifier.cached(token)
    found: Principal
    if cached is not None:
        found = cached
    elif verifier.remote_keys:
        found = await run_in_threadpool(verifier.verify, token)
    else:
        found = verifier.verify(token)
    request.state.principal = found
    # Every commit and event this request makes records the token's subject as its
    # actor; the request runs in its own task (and the sync handler in a copy of its
    # context), so the name never leaks into another request.
    set_actor(found.sub)
    return found


Caller = Annotated[Principal, Depends(principal)]


def _role(role: str, rate: str | None = None):  # type: ignore[no-untyped-def]
    async def check(request: Request, who: Caller) -> ScopeServices:
        if not who.has(role):
            raise PermissionDeniedError(f"this operation needs the {role!r} role")
        if rate is not None:
            request.app.state.limiter.take(who.tenant, rate)
        services: ScopeServices = request.app.state.services.get(who.scope)
        return services

    return check


def _takes_query(dependant: Dependant, name: str) -> bool:
    """True if the route (or one of its dependencies) declares query parameter ``name``."""
    return any(p.alias == name for p in dependant.query_params) or any(
        _takes_query(sub, name) for sub in dependant.dependencies
    )


async def as_of_version_guard(request: Request) -> None:
    """Refuse ``as_of_version`` on a route that cannot read an earlier version (400).

    Time travel is answered by the routes that declare the parameter (the catalog
    reads, ``/query``); anywhere else the parameter would be silently ignored and
    the caller would take the latest state for the version it asked for. Async,
    so the check costs no thread-pool hop on every request.
    """
    if "as_of_version" not in request.query_params:
        return
    route = request.scope.get("route")
    if isinstance(route, APIRoute) and _takes_query(route.dependant, "as_of_version"):
        return
    raise InvalidArgumentError(
        f"as_of_version is not supported by {request.method} {request.url.path}: it "
        "reads the latest state only (time travel applies to catalog reads and /query)"
    )


Reader = Annotated[ScopeServices, Depends(_role("reader"))]
Writer = Annotated[ScopeServices, Depends(_role("writer", "write"))]
Ingest = Annotated[ScopeServices, Depends(_role("writer", "ingest"))]
Querier = Annotated[ScopeServices, Depends(_role("reader", "query"))]
