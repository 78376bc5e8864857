"""The Iceberg REST spec's view endpoints (``/v1/{prefix}/.../views``).

Registered on the Iceberg app by :func:`arco.iceberg.routes.create_iceberg_app`
with its request handler, so views share the tables' auth (tenant and workspace
from the token, the prefix checked against it), roles, rate limits and errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from arco.core.errors import InvalidArgumentError
from arco.iceberg.routes import _identifier, _levels, _ok, _table_result
from arco.iceberg.service import IcebergCatalog
from arco.iceberg.views import IcebergViews

#: The view endpoints, as the config response advertises them.
VIEW_ENDPOINTS = [
    "GET /v1/{prefix}/namespaces/{namespace}/views",
    "POST /v1/{prefix}/namespaces/{namespace}/views",
    "GET /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "POST /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "POST /v1/{prefix}/namespaces/{namespace}/register-view",
    "POST /v1/{prefix}/views/rename",
]

Work = Callable[[IcebergCatalog, Any], Response]
Handle = Callable[..., Awaitable[Response]]


def add_view_routes(app: FastAPI, handle: Handle) -> None:
    """Register the view endpoints on ``app``; ``handle(request, role, prefix, work,
    body=...)`` authenticates, parses and runs ``work`` as the table routes do."""

    def result(loaded: Any) -> Response:
        return _table_result(loaded.metadata_location, loaded.raw, {})

    @app.get("/v1/{prefix}/namespaces/{namespace}/views")
    async def list_views(
        request: Request,
        prefix: str,
        namespace: str,
        pageToken: str | None = None,  # noqa: N803 - the spec's parameter name
        pageSize: int | None = None,  # noqa: N803
    ) -> Response:
        """The views of a namespace."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            levels = _levels(namespace)
            names, token = IcebergViews(svc).list_views(levels, pageToken, pageSize)
            return _ok(
                {
                    "identifiers": [{"namespace": levels, "name": n} for n in names],
                    "next-page-token": token,
                }
            )

        return await handle(request, "reader", prefix, work)

    @app.post("/v1/{prefix}/namespaces/{namespace}/views")
    async def create_view(request: Request, prefix: str, namespace: str) -> Response:
        """Create a view (``CreateViewRequest``)."""

        def work(svc: IcebergCatalog, body: Any) -> Response:
            if not isinstance(body, dict):
                raise InvalidArgumentError("request body must be a JSON object")
            return result(IcebergViews(svc).create_view(_levels(namespace), body))

        return await handle(request, "writer", prefix, work, body=True)

    @app.post("/v1/{prefix}/namespaces/{namespace}/register-view")
    async def register_view(request: Request, prefix: str, namespace: str) -> Response:
        """Register an existing view metadata file (inside this workspace's warehouse)."""

        def work(svc: IcebergCatalog, body: Any) -> Response:
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise InvalidArgumentError("request needs a view name")
            location = body.get("metadata-location")
            if not isinstance(location, str):
                raise InvalidArgumentError("request needs a metadata-location")
            views = IcebergViews(svc)
            return result(views.register_view(_levels(namespace), body["name"], location))

        return await handle(request, "writer", prefix, work, body=True)

    @app.get("/v1/{prefix}/namespaces/{namespace}/views/{view}")
    async def load_view(request: Request, prefix: str, namespace: str, view: str) -> Response:
        """A view's current metadata."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            return result(IcebergViews(svc).load_view(_levels(namespace), view))

        return await handle(request, "reader", prefix, work)

    @app.head("/v1/{prefix}/namespaces/{namespace}/views/{view}")
    async def view_exists(request: Request, prefix: str, namespace: str, view: str) -> Response:
        """204 if the view exists, else 404."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            IcebergViews(svc).load_view(_levels(namespace), view)
            return Response(status_code=204)

        return await handle(request, "reader", prefix, work)

    @app.post("/v1/{prefix}/namespaces/{namespace}/views/{view}")
    async def replace_view(request: Request, prefix: str, namespace: str, view: str) -> Response:
        """Commit requirements + updates to a view (one Tier-1 catalog commit)."""

        def work(svc: IcebergCatalog, body: Any) -> Response:
            return result(IcebergViews(svc).replace_view(_levels(namespace), view, body))

        return await handle(request, "writer", prefix, work, body=True)

    @app.delete("/v1/{prefix}/namespaces/{namespace}/views/{view}")
    async def drop_view(request: Request, prefix: str, namespace: str, view: str) -> Response:
        """Drop a view."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            IcebergViews(svc).drop_view(_levels(namespace), view)
            return Response(status_code=204)

        return await handle(request, "writer", prefix, work)

    @app.post("/v1/{prefix}/views/rename")
    async def rename_view(request: Request, prefix: str) -> Response:
        """Rename or move a view."""

        def work(svc: IcebergCatalog, body: Any) -> Response:
            views = IcebergViews(svc)
            views.rename_view(_identifier(body, "source"), _identifier(body, "destination"))
            return Response(status_code=204)

        return await handle(request, "writer", prefix, work, body=True)
