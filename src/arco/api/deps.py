"""FastAPI dependencies: the verified principal, role checks, rate limits, services
(and the server's flow project with each scope's runs reader)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from arco.api.auth import AuthenticationError, PermissionDeniedError, Principal
from arco.api.governance import RUN_LAUNCH_ROUTES
from arco.core.actor import set_actor
from arco.core.errors import InvalidArgumentError
from arco.core.storage.signing import mint_guard
from arco.core.telemetry import set_request
from arco.sql.tables import private_tables_visible
from arco.workspace import Workspace

if TYPE_CHECKING:
    from arco.flow.definitions import Definitions
    from arco.flow.runview import RunsReader

bearer = HTTPBearer(auto_error=False, description="JWT issued for one tenant and workspace")


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, from a verified bearer token (never from path, header or body)."""
    return await authenticate(request, credentials)


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """Verify the bearer ``credentials`` and bind the caller to this request.

    Shared by the ``principal`` dependency and the direct ingest route
    (:mod:`arco.api.direct`). Async so a request does not hop to the thread pool
    just to check a token: HS256 and cached tokens are pure CPU. Only a verifier
    that may fetch a JWKS over the network verifies an unseen token in the thread
    pool.
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
    # Log lines and audit records of this request name its tenant and workspace.
    set_request(tenant=found.tenant, workspace=found.workspace)
    private_tables_visible.set(found.has("admin"))
    return found


Caller = Annotated[Principal, Depends(principal)]


def _role(role: str, rate: str | None = None):  # type: ignore[no-untyped-def]
    async def check(request: Request, who: Caller) -> Workspace:
        return await authorize(request, who, role, rate)

    #: Read by the route-role table (docs/reference/roles.md and its test).
    check.arco_role = role  # type: ignore[attr-defined]
    #: Read by the test that holds the direct ingest route to the same checks.
    check.arco_rate = rate  # type: ignore[attr-defined]
    return check


async def authorize(request: Request, who: Principal, role: str, rate: str | None) -> Workspace:
    """The caller's workspace once ``who`` holds ``role`` and the request passes the
    tenant's rate limit (``rate``) and policy; shared with :mod:`arco.api.direct`."""
    if not who.has(role):
        raise PermissionDeniedError(f"this operation needs the {role!r} role")
    if rate is not None:
        request.app.state.limiter.take(who.tenant, rate)
    await govern(request, who, rate)
    services: Workspace = request.app.state.services.get(who.scope)
    return services


async def govern(request: Request, who: Principal, rate: str | None) -> None:
    """Tenant policy: a retired workspace, the tenant's quotas (see arco.api.governance).

    Reads the store at most once per policy cache TTL; run in the thread pool only then.
    """
    governance = request.app.state.governance
    route = request.scope.get("route")
    launch = (request.method, getattr(route, "path", "")) in RUN_LAUNCH_ROUTES

    def apply() -> Callable[[str], None]:
        governance.check_workspace(who)
        if rate == "ingest":
            governance.take_ingest(who.tenant)
        if rate in ("write", "ingest"):
            governance.check_storage(who.tenant)
        if launch:
            governance.check_runs(who)
        guard: Callable[[str], None] = governance.mint_guard(who.tenant)
        return guard

    # Cached policy answers at once; only a store read (or an allowance claim) needs
    # the thread pool, so a request whose policy is at hand costs no extra hop.
    if launch or not governance.ready(who, rate):
        guard = await run_in_threadpool(apply)
    else:
        guard = apply()
    # Set here, in the request's own context (a thread-pool call runs in a copy).
    mint_guard.set(guard)


async def admin_principal(request: Request, who: Caller) -> Principal:
    """The caller, who must hold the ``admin`` role (tenant administration)."""
    if not who.has("admin"):
        raise PermissionDeniedError("this operation needs the 'admin' role")
    await govern(request, who, None)
    return who


admin_principal.arco_role = "admin"  # type: ignore[attr-defined]


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


Reader = Annotated[Workspace, Depends(_role("reader"))]
Writer = Annotated[Workspace, Depends(_role("writer", "write"))]
Ingest = Annotated[Workspace, Depends(_role("writer", "ingest"))]
Querier = Annotated[Workspace, Depends(_role("reader", "query"))]
Admin = Annotated[Principal, Depends(admin_principal)]


# ------------------------------------------------------------------ the flow project

_project_mutex = threading.Lock()


def project_definitions(request: Request) -> Definitions:
    """The server's project definitions, loaded once (``NoProjectError`` if none)."""
    state = request.app.state
    found: Definitions | None = getattr(state, "flow_definitions", None)
    if found is not None:
        return found
    with _project_mutex:
        found = getattr(state, "flow_definitions", None)
        if found is None:
            # The flow package is imported on first use: the API starts faster.
            from arco.flow.project import load_server_definitions

            settings = state.settings
            start = Path(settings.project_dir) if settings.project_dir else None
            found = load_server_definitions(settings.project_module, start)
            state.flow_definitions = found
    return found


def runs_reader(request: Request, svc: Workspace) -> RunsReader:
    """The runs reader of the caller's scope (read caches live on with its workspace)."""
    from arco.flow.runview import RunsReader

    return RunsReader.of(svc)
