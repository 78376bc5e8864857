"""The ASGI application factory: ``create_app(settings)``.

Stateless: any number of processes built from the same settings can share one
store; per-process state is limited to read caches, keyed by immutable ids.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arco import __version__
from arco.api import problems
from arco.api.auth import TokenVerifier
from arco.api.blob import router as blob_router
from arco.api.ratelimit import RateLimiter
from arco.api.routes_browser import router as browser_router
from arco.api.routes_catalog import router as catalog_router
from arco.api.routes_flow import router as flow_router
from arco.api.routes_query import router as query_router
from arco.api.routes_tier2 import router as tier2_router
from arco.api.schemas import HealthOut, VersionOut
from arco.api.services import ServiceCache
from arco.api.settings import Settings
from arco.core.errors import ArcoError, ObjectNotFoundError
from arco.core.storage import HmacSigner, ObjectStore, open_store
from arco.core.storage.signing import url_signing_secret
from arco.web import install as install_web_ui

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _StreamedBodyLimit:
    """Enforce ``max_body_bytes`` on bodies sent without ``Content-Length`` (chunked).

    ``envelope`` refuses a declared length that is too large; a chunked body has
    none, so it is read here, at most ``limit`` + 1 bytes, then replayed to the app.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(k == b"content-length" for k, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                response = problems.problem(
                    413,
                    "payload-too-large",
                    f"request body is larger than {self.limit} bytes",
                    request=Request(scope),
                )
                await response(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


def create_app(settings: Settings | None = None, *, store: ObjectStore | None = None) -> FastAPI:
    """Build the Arco API for ``settings`` (defaults from the environment)."""
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="Arco",
        version=__version__,
        summary="File-native lakehouse catalog: REST API",
        description="Every /api/v1 route needs a bearer JWT; errors are problem+json.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store or open_store(settings.store_url)
    app.state.verifier = TokenVerifier(
        secret=settings.jwt_secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        jwks=settings.jwks,
        leeway=settings.leeway_seconds,
    )
    app.state.limiter = RateLimiter(settings.rate_limits)
    # Signs the blob route's URLs (local and memory stores cannot presign).
    app.state.url_signer = HmacSigner(url_signing_secret(settings.url_secret, settings.jwt_secret))
    app.state.services = ServiceCache(app.state.store, max_staleness=settings.max_staleness)
    registry = CollectorRegistry()
    requests_total = Counter(
        "arco_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "arco_http_request_seconds", "HTTP request latency", ["route"], registry=registry
    )
    app.state.metrics_registry = registry
    problems.install(app)
    # Added before ``envelope`` so it runs inside it (request id, metrics).
    app.add_middleware(_StreamedBodyLimit, limit=settings.max_body_bytes)

    @app.middleware("http")
    async def envelope(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get("x-request-id")
        rid = given if given and _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        request.state.request_id = rid
        start = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            response: Response = problems.problem(
                413,
                "payload-too-large",
                f"request body is larger than {settings.max_body_bytes} bytes",
                request=request,
            )
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        requests_total.labels(request.method, path, str(response.status_code)).inc()
        latency.labels(path).observe(time.perf_counter() - start)
        response.headers["X-Request-Id"] = rid
        return response

    @app.get("/healthz", response_model=HealthOut, tags=["ops"])
    def healthz() -> Any:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=HealthOut, tags=["ops"])
    def readyz(response: Response) -> Any:
        """Readiness: the store answers a read."""
        try:
            app.state.store.head("_arco_readiness_probe")
        except ObjectNotFoundError:
            return {"status": "ok"}
        except ArcoError as exc:
            response.status_code = 503
            return {"status": "unavailable", "detail": str(exc).splitlines()[0]}
        return {"status": "ok"}

    @app.get("/version", response_model=VersionOut, tags=["ops"])
    def version() -> Any:
        """Server version."""
        return {"name": "arco", "version": __version__, "api": "v1"}

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(catalog_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(tier2_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(query_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(flow_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(browser_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(blob_router)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # Errors are problem+json, not FastAPI's default {"detail": [...]} 422.
        fresh = app.openapi_schema is None
        document = generate_openapi()
        return problems.document_problems(document) if fresh else document

    app.openapi = openapi  # type: ignore[method-assign]
    # The web UI (dev sign-in route, static files at "/"). Keep this last: the mount
    # at "/" matches every GET outside the server's paths, shadowing later routes.
    install_web_ui(app, responses=problems.API_ERROR_RESPONSES)
    return app
