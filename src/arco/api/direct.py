"""Direct routes: hot endpoints served without FastAPI's router and dependency solver.

``POST /api/v1/lineage`` with one event per request is what openlineage-python's
``HttpTransport`` sends by default. For such a small request, FastAPI's route
matching (every route of the routers included before it is tried in turn) and its
generic dependency solver cost about a third of the server's CPU, more than
validating and writing the event.

A direct route runs the very functions the FastAPI route's dependencies run
(:data:`arco.api.deps.bearer`, :func:`arco.api.deps.authenticate`,
:func:`arco.api.deps.authorize`) and the same body
(:func:`arco.api.routes_openlineage.accept_lineage`), inside the same envelope
(request id, header and body limits, metrics, tracing span, audit record: see
:class:`arco.api.app._Envelope`). Errors are answered by the application's own
exception handlers, so they are the same problem+json answers. A request the
direct route does not take (any query string, a root path) goes through FastAPI
as before; the FastAPI route stays the one documented in the OpenAPI document.

The hot catalog and search reads (:data:`READS`: get a namespace, get a table,
list a namespace's tables, search, a lineage walk) are served by :class:`DirectRead` the same way:
the route's own parameter validation (FastAPI's ``request_params_to_args`` on the
route's own fields), the dependency's role and rate checks, the route's own
endpoint in the thread pool. A request whose parameters do not validate, that
names ``as_of_version`` where the route does not read it, or whose path another
route could also match, goes through FastAPI, so every error is FastAPI's own.
``tests/api/test_direct_reads.py`` asks each case both ways.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from arco.api import routes_catalog, routes_tier2
from arco.api.deps import authenticate, authorize, bearer
from arco.api.routes_openlineage import accept_lineage, post_lineage
from arco.workspace import Workspace

__all__ = ["READS", "DirectRead", "DirectRoute", "direct_routes", "read_routes", "take"]

#: The hot reads :class:`DirectRead` serves (each returns its ``Response`` itself).
READS = (
    routes_catalog.get_namespace,
    routes_catalog.get_table,
    routes_catalog.list_tables,
    routes_tier2.search,
    routes_tier2.traverse,
)

Handler = Callable[[Request], Awaitable[Response]]


class DirectRoute:
    """An ASGI app answering one FastAPI route's requests with ``handler``.

    ``scope["route"]`` is the FastAPI route, so metrics, traces and audit records
    name the same route as when FastAPI serves the request.
    """

    def __init__(self, route: APIRoute, handler: Handler) -> None:
        self.route = route
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route
        scope["endpoint"] = self.route.endpoint
        request = Request(scope, receive)
        try:
            response = await self.handler(request)
        except Exception as exc:
            handler = _exception_handler(scope["app"], exc)
            if handler is None:
                raise  # answered by ServerErrorMiddleware, as on the FastAPI path
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)


def _exception_handler(app: Any, exc: Exception) -> Callable[..., Any] | None:
    """The handler Starlette's ExceptionMiddleware would pick for ``exc`` (nearest class
    in its MRO); the catch-all ``Exception`` handler is the outer middleware's."""
    handlers: dict[Any, Callable[..., Any]] = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        found = handlers.get(cls)
        if found is not None:
            return found
    return None


async def ingest_lineage(request: Request) -> Response:
    """``POST /api/v1/lineage``: the dependencies of the FastAPI route, then its body.

    ``tests/api/test_direct_route.py`` holds the FastAPI route to exactly these
    dependencies, so a dependency added there cannot be missed here.
    """
    return await accept_lineage(request, await _service(request, "writer", "ingest"))


async def _service(request: Request, role: str, rate: str | None) -> Workspace:
    """What the route's role dependency gives it: the verified caller's workspace,
    once the caller holds ``role`` and passes the ``rate`` limit and the policy."""
    who = await authenticate(request, await bearer(request))
    return await authorize(request, who, role, rate)


def direct_routes(routes: Iterable[BaseRoute]) -> dict[tuple[str, str], DirectRoute]:
    """The direct routes, by ``(method, path)``, for the FastAPI routes among ``routes``."""
    found: dict[tuple[str, str], DirectRoute] = {}
    for route in routes:
        if isinstance(route, APIRoute) and route.endpoint is post_lineage:
            found[("POST", route.path)] = DirectRoute(route, ingest_lineage)
    return found


def take(
    direct: dict[tuple[str, str], ASGIApp], scope: Scope, reads: Sequence[DirectRead] = ()
) -> ASGIApp | None:
    """The direct route for this request, or None to let FastAPI route it.

    Exact paths (``direct``) only without a query string or root path: anything
    else (e.g. ``as_of_version``, which FastAPI's global guard refuses) keeps
    FastAPI's answer. A GET may be one of the ``reads``.
    """
    if scope.get("root_path"):
        return None
    if scope["method"] == "GET":
        for read in reads:
            if read.takes(scope):
                return read
        return None
    if scope.get("query_string"):
        return None
    return direct.get((scope["method"], scope["path"]))


class DirectRead:
    """A hot GET answered by its FastAPI route's endpoint without the dependency solver.

    The route must take path and query parameters and one role dependency
    (``arco.api.deps.Reader`` or ``Querier``) and nothing else; anything else is
    refused when the app is made, so a parameter added later cannot be skipped.
    """

    def __init__(self, route: APIRoute) -> None:
        dependant = route.dependant
        subs = dependant.dependencies
        role = getattr(subs[0].call, "arco_role", None) if len(subs) == 1 else None
        if (
            role is None
            or subs[0].name is None
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or route.methods != {"GET"}
        ):
            raise TypeError(f"{route.path}: not a read DirectRead can serve")
        self.route = route
        self.role: str = role
        self.rate: str | None = getattr(subs[0].call, "arco_rate", None)
        self.service = subs[0].name
        self.declared = frozenset(f.alias for f in dependant.query_params)
        #: The earlier GET routes and mounts a path of this route could also match.
        self._rivals: list[BaseRoute] | None = None
        self._direct = DirectRoute(route, self._answer)

    def takes(self, scope: Scope) -> bool:
        """Whether this route serves ``scope``: the one FastAPI would pick, with
        parameters that validate (``scope`` then holds them, as FastAPI's router
        would hold the path parameters)."""
        match, child = self.route.matches(scope)
        if match is not Match.FULL:
            return False
        rivals = self._rivals
        if rivals is None:
            rivals = self._rivals = _rivals(self.route, scope["app"].router.routes)
        if any(r.matches(scope)[0] is Match.FULL for r in rivals):
            return False  # FastAPI would pick that one
        query = QueryParams(scope["query_string"])
        if "as_of_version" in query and "as_of_version" not in self.declared:
            return False  # the global guard's 400
        dependant = self.route.dependant
        values, errors = request_params_to_args(dependant.path_params, child["path_params"])
        more, more_errors = request_params_to_args(dependant.query_params, query)
        if errors or more_errors:
            return False  # FastAPI's 422, after its own auth checks, in its order
        scope.update(child)
        scope[_VALUES] = {**values, **more}
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._direct(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        values: dict[str, Any] = request.scope.pop(_VALUES)
        values[self.service] = await _service(request, self.role, self.rate)
        response: Response = await run_in_threadpool(self.route.endpoint, **values)
        return response


#: The scope key of a direct read's validated parameters (from ``takes`` to the call).
_VALUES = "arco.direct.values"


def _rivals(route: APIRoute, routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The GET routes and mounts before ``route`` whose path could also be one of its.

    Paths are compared segment by segment: two templates can meet when they have as
    many segments and each pair is equal or holds a parameter. A mount can meet any
    path below its own; the web UI's mount at "/" comes after every API route.
    """
    mine = route.path.strip("/").split("/")
    out: list[BaseRoute] = []
    for other in _flat(routes):
        if other is route:
            break
        if isinstance(other, Mount):
            if route.path.startswith(other.path.rstrip("/") + "/"):
                out.append(other)
            continue
        path = getattr(other, "path", None)
        methods = getattr(other, "methods", None)
        if path is None or (methods is not None and "GET" not in methods):
            continue  # never FastAPI's pick for a GET
        theirs = path.strip("/").split("/")
        if len(theirs) == len(mine) and all(
            a == b or "{" in a or "{" in b for a, b in zip(mine, theirs, strict=True)
        ):
            out.append(other)
        elif any(":path}" in seg for seg in theirs):
            out.append(other)  # a path parameter spans segments: keep it, to be safe
    return out


def _flat(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """Routes in the order FastAPI tries them, with included routers opened."""
    out: list[BaseRoute] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            out.extend(_flat(inner.routes))
        else:
            out.append(route)
    return out


def read_routes(routes: Iterable[BaseRoute]) -> list[DirectRead]:
    """The :class:`DirectRead` of each of :data:`READS` among ``routes``."""
    return [
        DirectRead(route)
        for route in routes
        if isinstance(route, APIRoute) and route.endpoint in READS
    ]
