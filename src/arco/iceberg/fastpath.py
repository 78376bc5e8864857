"""A direct route for the Iceberg catalog's most frequent request: loading a table.

Engines load a table before every scan and before every commit. The server's own
work for it is small (the token from the verified-token cache, one pointer GET,
the metadata file from the cache keyed by its immutable name), and FastAPI's
routing and parameter resolution cost several times that per request. This
middleware, inside the Iceberg app's error middleware, matches
``GET /v1/{prefix}/namespaces/{namespace}/tables/{table}`` with one regular
expression and calls the very handler that FastAPI route calls — same auth,
same scope check, same pointer read, same ``ErrorModel`` errors — and records
the FastAPI route in the ASGI scope, so metrics and audit name it as before.
Every other request goes through FastAPI unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

#: Starlette's ``{name}`` path parameter is ``[^/]+`` on the decoded path; the same here.
LOAD_TABLE = re.compile(r"/v1/([^/]+)/namespaces/([^/]+)/tables/([^/]+)")

#: ``(request, prefix, namespace, table) -> response``: the load-table route's handler.
LoadHandler = Callable[[Request, str, str, str], Awaitable[Response]]


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point (Starlette's rule)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :]
    return path


class DirectTableLoads:
    """ASGI middleware: ``GET`` of a table straight to its handler, the rest to ``app``."""

    def __init__(self, app: ASGIApp, *, handler: LoadHandler, route: BaseRoute) -> None:
        self.app = app
        self.handler = handler
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = LOAD_TABLE.fullmatch(route_path(scope))
            if match is not None:
                prefix, namespace, table = match.groups()
                # What Starlette's router records for a matched route: the envelope
                # labels metrics and audit records with ``scope["route"].path``.
                scope["route"] = self.route
                scope["endpoint"] = getattr(self.route, "endpoint", None)
                scope["path_params"] = {"prefix": prefix, "namespace": namespace, "table": table}
                response = await self.handler(Request(scope, receive), prefix, namespace, table)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
