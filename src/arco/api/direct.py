"""Direct routes: one hot endpoint served without FastAPI's router and dependency solver.

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
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from arco.api.deps import authenticate, authorize, bearer
from arco.api.routes_openlineage import accept_lineage, post_lineage

__all__ = ["DirectRoute", "direct_routes", "ingest_lineage", "take"]

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
    who = await authenticate(request, await bearer(request))
    svc = await authorize(request, who, "writer", "ingest")
    return await accept_lineage(request, svc)


def direct_routes(routes: Iterable[BaseRoute]) -> dict[tuple[str, str], DirectRoute]:
    """The direct routes, by ``(method, path)``, for the FastAPI routes among ``routes``."""
    found: dict[tuple[str, str], DirectRoute] = {}
    for route in routes:
        if isinstance(route, APIRoute) and route.endpoint is post_lineage:
            found[("POST", route.path)] = DirectRoute(route, ingest_lineage)
    return found


def take(direct: dict[tuple[str, str], ASGIApp], scope: Scope) -> ASGIApp | None:
    """The direct route for this request, or None to let FastAPI route it.

    Only the exact path without a query string or root path: anything else (e.g.
    ``as_of_version``, which FastAPI's global guard refuses) keeps FastAPI's answer.
    """
    if scope.get("query_string") or scope.get("root_path"):
        return None
    return direct.get((scope["method"], scope["path"]))
