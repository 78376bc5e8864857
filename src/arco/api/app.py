"""The ASGI application factory: ``create_app(settings)``.

Stateless: any number of processes built from the same settings can share one
store; per-process state is limited to read caches, keyed by immutable ids.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from random import getrandbits
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
from anyio.to_thread import current_default_thread_limiter
from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arco import __version__
from arco.api import direct as direct_routes
from arco.api import problems
from arco.api.auth import TokenVerifier
from arco.api.blob import router as blob_router
from arco.api.deps import as_of_version_guard
from arco.api.governance import Governance
from arco.api.ratelimit import RateLimiter
from arco.api.routes_admin import router as admin_router
from arco.api.routes_automation import router as automation_router
from arco.api.routes_browser import router as browser_router
from arco.api.routes_catalog import router as catalog_router
from arco.api.routes_dev import router as dev_router
from arco.api.routes_flow import router as flow_router
from arco.api.routes_openlineage import router as openlineage_router
from arco.api.routes_query import router as query_router
from arco.api.routes_tier2 import router as tier2_router
from arco.api.schemas import HealthOut, VersionOut
from arco.api.services import ServiceCache
from arco.api.settings import MAX_HEADER_BYTES, Settings
from arco.core import metrics as core_metrics
from arco.core.errors import ArcoError, ObjectNotFoundError
from arco.core.storage import (
    HmacSigner,
    ObjectStore,
    open_signer_store,
    open_store,
    parse_store_url,
)
from arco.core.storage.signing import url_signing_secret
from arco.core.telemetry import attached, configure_tracing, request_context, span
from arco.governance.audit import AuditRecord, AuditWriter, outcome_of
from arco.openlineage.emit import register_metrics as register_openlineage_metrics
from arco.web import install as install_web_ui

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: POST routes that only read: audited for admins only, like every GET.
_READ_POSTS = frozenset({"/api/v1/query", "/api/v1/plans"})
#: The ASGI state of the running request, for hooks that see no request object
#: (the Iceberg catalog's authenticate hook records its principal here).
_REQUEST_STATE: ContextVar[dict[str, Any] | None] = ContextVar("arco_request_state", default=None)


def audited(method: str, route: str, roles: tuple[str, ...]) -> bool:
    """Whether a request is audited: every write, and every request an admin makes.

    Writes are the methods that change something (POST, PUT, PATCH, DELETE) except
    the POSTs that only read (a query, a plan); signed-URL mints are POSTs.
    """
    if "admin" in roles:
        return True
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    return route not in _READ_POSTS


def _relative_location(location: bytes, host: bytes) -> bytes:
    """A ``Location`` built from the request's ``Host`` header, made relative.

    Starlette's trailing-slash redirect and StaticFiles' directory redirect build
    absolute URLs from ``Host``, which the client controls: a forged header would
    send the next request (with its credentials) to another site. A path-only
    Location resolves against the URL the client really used.
    """
    parts = urlsplit(location.decode("latin-1"))
    if not parts.netloc or parts.netloc.encode("latin-1").lower() != host.lower():
        return location
    path = parts.path or "/"
    if path.startswith("//"):
        path = "/" + path.lstrip("/")  # "//x" would be read as another host
    return urlunsplit(("", "", path, parts.query, parts.fragment)).encode("latin-1")


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


class _Prefixed:
    """Requests under ``prefix`` straight to the app mounted there, as a ``Mount`` would.

    The Iceberg catalog is mounted at ``/iceberg``; reaching it through the outer
    app's exception, exit-stack and routing layers cost more CPU than a cached
    table load does. The scope changes are Starlette's ``Mount``'s (``root_path``
    grows by the prefix, in place, so the envelope's metrics and audit see the
    same route as before); the ``Mount`` stays for everything else (``/iceberg``
    without a slash, the route table).
    """

    def __init__(self, app: ASGIApp, *, prefix: str, target: ASGIApp) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
                path = path[len(root) :]
            if path.startswith(self.prefix + "/"):
                scope["path_params"] = dict(scope.get("path_params", {}))
                scope["app_root_path"] = scope.get("app_root_path", root)
                scope["root_path"] = root + self.prefix
                scope["endpoint"] = self.target
                await self.target(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Envelope:
    """Request id, the declared-length body limit and metrics, as plain ASGI.

    Starlette's ``@app.middleware("http")`` wraps every response in a streaming
    task; as plain ASGI the envelope costs a few microseconds instead.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        requests: Counter,
        latency: Histogram,
        audit: AuditWriter | None = None,
        direct: dict[tuple[str, str], ASGIApp] | None = None,
        reads: list[direct_routes.DirectRead] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.requests = requests
        self.latency = latency
        self.audit = audit
        #: Hot routes answered without FastAPI's router (see arco.api.direct).
        self.direct = direct or {}
        #: Hot reads answered without FastAPI's dependency solver (arco.api.direct).
        self.reads = reads or []
        #: The labelled metric children by (method, route, status): ``labels()`` costs a
        #: locked lookup and a tuple of strings per call.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given: str | None = None
        length: str | None = None
        host = b""
        parent: str | None = None
        header_bytes = 0
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value)
            if name == b"x-request-id":
                given = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")
            elif name == b"host":
                host = value
            elif name == b"traceparent":
                parent = value.decode("latin-1")
        # 128 random bits like uuid4's, without its urandom system call and UUID object
        # (a request id names a request in logs; it is not a secret).
        rid = given if given and _REQUEST_ID_RE.match(given) else f"{getrandbits(128):032x}"
        # Request.state reads scope["state"]: problem responses pick the id up there.
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state_token = _REQUEST_STATE.set(state)
        try:
            with (
                request_context(rid),
                attached(parent),
                span("http.request", {"http.request.method": scope["method"]}) as sp,
            ):
                await self._handle(scope, receive, send, rid, host, header_bytes, length, sp)
        finally:
            _REQUEST_STATE.reset(state_token)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        rid: str,
        host: bytes,
        header_bytes: int,
        length: str | None,
        sp: Any,
    ) -> None:
        start = time.perf_counter()
        status = 500
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, _relative_location(v, host) if k.lower() == b"location" else v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"x-request-id"
                ]
                headers.append(rid_header)
                message = {**message, "headers": headers}
            await send(message)

        try:
            if header_bytes > MAX_HEADER_BYTES:
                response = problems.problem(
                    431,
                    "request-header-too-large",
                    f"request headers are larger than {MAX_HEADER_BYTES} bytes",
                    request=Request(scope),
                )
                await response(scope, receive, send_with_id)
            elif length is not None and (not length.isdigit() or int(length) > self.max_body):
                response = problems.problem(
                    413,
                    "payload-too-large",
                    f"request body is larger than {self.max_body} bytes",
                    request=Request(scope),
                )
                await response(scope, receive, send_with_id)
            else:
                app = direct_routes.take(self.direct, scope, self.reads)
                await (app or self.app)(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - start
            key = (scope["method"], path, status)
            children = self._children.get(key)
            if children is None:
                if len(self._children) >= 4096:  # methods are the client's to choose
                    self._children.clear()
                children = self._children[key] = (
                    self.requests.labels(scope["method"], path, str(status)),
                    self.latency.labels(path),
                )
            children[0].inc()
            children[1].observe(elapsed)
            sp.set_attribute("http.route", path)
            sp.set_attribute("http.response.status_code", status)
            who = scope["state"].get("principal")
            if who is not None and self.audit is not None:
                self._audit(scope, who, path, status, rid, elapsed)

    def _audit(
        self, scope: Scope, who: Any, route: str, status: int, rid: str, elapsed: float
    ) -> None:
        method = scope["method"]
        if not audited(method, route, who.roles):
            return
        assert self.audit is not None
        try:
            self.audit.record(
                AuditRecord(
                    action=f"{method} {route}",
                    outcome=outcome_of(status),
                    actor=who.sub,
                    tenant=who.tenant,
                    workspace=who.workspace,
                    request_id=rid,
                    # The path only: a query string may carry a signature.
                    target=_request_path(scope)[:4096],
                    status=status,
                    roles=tuple(who.roles),
                    duration_ms=elapsed * 1000,
                )
            )
        except Exception:  # auditing must never turn an answered request into a 500
            core_metrics.AUDIT_WRITE_ERRORS.inc()
            logging.getLogger("arco.audit").exception("could not queue an audit record")


def _request_path(scope: Scope) -> str:
    """The request's full path. Starlette keeps the mount prefix in ``path`` and also
    sets it as ``root_path`` inside a mount (``/iceberg``): joining both doubled it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path if path.startswith(root) else root + path


class _Deferred:
    """An ASGI app made on its first request (or when its routes are first asked for).

    The Iceberg catalog's app loads pyiceberg (~20 MiB resident, ~0.3 s): a server
    that is never asked an Iceberg question should not carry it (issue #12). It is
    made in the thread pool, so the event loop goes on answering meanwhile.
    """

    def __init__(self, make: Callable[[], ASGIApp]) -> None:
        self._make = make
        self._made: ASGIApp | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> ASGIApp:
        """The app, made now if it was not yet."""
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = self._make()
        return self._made

    @property
    def routes(self) -> list[Any]:
        """The app's routes (what a ``Mount`` lists and resolves URLs with)."""
        routes: list[Any] = getattr(self.app, "routes", [])
        return routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._made
        if app is None:
            app = await run_in_threadpool(lambda: self.app)
        await app(scope, receive, send)


def _iceberg_app(app: FastAPI, settings: Settings) -> ASGIApp:
    """The Iceberg REST catalog (ADR 014), sharing this server's auth, catalogs and
    store; made by its first request (see :class:`_Deferred`)."""
    return _Deferred(lambda: _make_iceberg_app(app, settings))


def _make_iceberg_app(app: FastAPI, settings: Settings) -> ASGIApp:
    from arco.iceberg.routes import IcebergHooks, create_iceberg_app

    def authenticate(token: str) -> Any:
        who = app.state.verifier.verify(token)
        state = _REQUEST_STATE.get()
        if state is not None:
            state["principal"] = who  # so the envelope audits Iceberg writes too
        return who

    def govern(who: Any, writes: bool) -> None:
        governance = app.state.governance
        governance.check_workspace(who)
        if writes:
            governance.check_storage(who.tenant)

    return create_iceberg_app(
        IcebergHooks(
            authenticate=authenticate,
            catalog_for=lambda scope: app.state.services.get(scope).catalog,
            store=app.state.store,
            store_url=settings.store_url,
            rate_limit=app.state.limiter.take,
            govern=govern,
        )
    )


#: At most this many request handlers run at once on a local store (CPU-bound).
LOCAL_REQUEST_THREADS = 4
#: ... and on an object store, where a cold read waits on the network.
REMOTE_REQUEST_THREADS = 32


def request_threads(settings: Settings) -> int:
    """How many request handlers run at once in the thread pool (ADR 028).

    On a local folder or in memory a request is CPU-bound and the GIL runs one
    thread at a time: each further thread adds hand-offs of the GIL, and a request
    that releases it (an Arrow call, a file read) then waits behind the others'
    running time to get it back. At 100,000 tables under 8 clients on 2 cores, the
    median search p95 of 3 runs was 33-63 ms with 2 threads (3 of 4 times under
    50 ms), 44-62 ms with 3, 56 ms with 4 and 65-87 ms with anyio's default of 40,
    at the same CPU per request. So: the cores, from 2 to
    :data:`LOCAL_REQUEST_THREADS`. An object store's cold reads wait on the network
    with the GIL released: :data:`REMOTE_REQUEST_THREADS`. ``ARCO_REQUEST_THREADS``
    (``Settings.request_threads``) overrides both.
    """
    if settings.request_threads is not None:
        return settings.request_threads
    if parse_store_url(settings.store_url).scheme in ("file", "memory"):
        return max(2, min(LOCAL_REQUEST_THREADS, os.cpu_count() or 2))
    return REMOTE_REQUEST_THREADS


def use_system_allocator() -> None:
    """Arrow allocates with the C library's malloc from here on, unless the user chose
    a pool (``ARROW_DEFAULT_MEMORY_POOL``), as the CLI does (ADR 015).

    Under concurrent requests the default pool (mimalloc/jemalloc) kept the freed
    buffers of decoded row groups: a 100,000-table server under 8 mixed clients grew
    to ~580 MiB with it, ~410 MiB with malloc, at the same latencies (issue #12).

    ``pa.set_memory_pool`` changes only the pool of pyarrow's own calls; importing
    :mod:`arco.api` before pyarrow loads also makes malloc the pool of Arrow's C++
    code. "system" there is this function's default too, so a process that loaded
    pyarrow first still gets the pyarrow half.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "system") == "system":
        pa.set_memory_pool(pa.system_memory_pool())
    if pa.default_memory_pool().backend_name == "system":
        fix_mmap_threshold()
        limit_malloc_arenas()


def warm_up() -> None:
    """Pay at start what the first request would: Arrow's Parquet reader, then freeze the heap.

    A new server's first read decoded its first Parquet file 3-5 ms slower than the
    next (the reader's module, the zstd codec and nested-type decoders load on
    first use): a tiny file of the same column kinds is decoded here instead.
    ``gc.freeze`` then moves the objects of the started app (FastAPI's routes and
    models, the imported modules) out of the collector's reach: a full collection
    triggered by a request's allocations walked all of them, ~2 ms that landed on
    whichever request was running (issue #12: the first read of a 100,000-table
    catalog, whose manifest allocates ~10,000 objects).
    """
    from arco.domain import tableset

    sample = pa.table(
        {
            "name": ["a"],
            "columns": [[{"id": 1, "type": "long"}]],
            "properties": pa.array([[("k", "v")]], pa.map_(pa.string(), pa.string())),
            "at": pa.array([0], pa.timestamp("ms", tz="UTC")),
        }
    )
    tableset.decode(tableset.encode(sample))
    gc.collect()
    gc.freeze()


#: Blocks from this size are mapped by malloc, and unmapped when freed.
MMAP_THRESHOLD = 64 << 10
#: ``mallopt``'s parameter number for it (glibc's ``M_MMAP_THRESHOLD``).
_M_MMAP_THRESHOLD = -3
#: The heaps (arenas) glibc may keep for the server's threads.
MALLOC_ARENAS = 2
#: ``mallopt``'s parameter number for it (glibc's ``M_ARENA_MAX``).
_M_ARENA_MAX = -8


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` (whether it was set).

    glibc raises the threshold (up to 32 MiB) each time a mapped block is freed;
    from then on the decoded row groups and set-operation buffers of concurrent
    requests come from the heaps of the worker threads and stay there when freed.
    At 100,000 tables under 8 search clients the server reached ~490 MiB that way,
    ~330 MiB with the threshold fixed, at the same CPU per request (issue #12).
    A threshold the user set (``MALLOC_MMAP_THRESHOLD_``) stays; on a C library
    without ``mallopt`` nothing changes.
    """
    return _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_")


def limit_malloc_arenas() -> bool:
    """Let glibc keep at most :data:`MALLOC_ARENAS` heaps (whether it was set).

    glibc gives each thread that meets a busy heap one of its own, up to 8 per
    core, and a heap keeps the free space of the buffers freed in it. The server's
    request threads run one at a time under the GIL, so more heaps buy no speed:
    at 100,000 tables under 8 mixed clients two heaps held the server ~10 MiB
    lower (279-283 against 288-292 MiB), at the same CPU per request (issue #12).
    Must run before the request threads start; ``MALLOC_ARENA_MAX`` set by the
    user stays.
    """
    return _mallopt(_M_ARENA_MAX, MALLOC_ARENAS, "MALLOC_ARENA_MAX")


def _mallopt(param: int, value: int, env_name: str) -> bool:
    """glibc's ``mallopt(param, value)`` unless the user set ``env_name``."""
    if os.environ.get(env_name) is not None or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(param, value))


#: The key ``/readyz`` reads (it never exists): the storage roles of deploy/terraform
#: grant the API a read of it, outside any tenant's keys.
READINESS_PROBE_KEY = "_arco_readiness_probe"


def _without_fastapi_tracing() -> dict[str, Any]:
    """FastAPI's own request spans off (FastAPI >= 0.16x traces natively).

    Arco's ``http.request`` span already is the request's span (continuing an
    incoming ``traceparent``, with method, route and status); FastAPI's three more
    per request (server, dependencies, endpoint) doubled the request's root and cost
    more than the request's own span. Older FastAPI has no such option.
    """
    import inspect

    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False}}
    return {}


def create_app(settings: Settings | None = None, *, store: ObjectStore | None = None) -> FastAPI:
    """Build the Arco API for ``settings`` (defaults from the environment)."""
    settings = settings or Settings.from_env()
    use_system_allocator()
    # Spans go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set (arco[otel]); else free.
    configure_tracing("arco-api")
    # Checked before anything else opens: a signer store that cannot presign this
    # store's keys is a configuration error for startup, not for the first request.
    presigner = (
        open_signer_store(settings.signer_store_url, settings.store_url)
        if settings.signer_store_url
        else None
    )
    audit = AuditWriter(store or open_store(settings.store_url), source="api")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Per event loop: the handlers of this server's requests, and nothing else.
        current_default_thread_limiter().total_tokens = request_threads(settings)
        warm_up()
        try:
            yield
        finally:
            # Collectable again: a process that starts many apps (tests) keeps none.
            gc.unfreeze()
        # Records queued by the last requests are written before the process exits.
        audit.close()

    app = FastAPI(
        lifespan=lifespan,
        **_without_fastapi_tracing(),
        title="Arco",
        version=__version__,
        summary="File-native lakehouse catalog: REST API",
        description="Every /api/v1 route needs a bearer JWT; errors are problem+json.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        # No route silently ignores ``as_of_version``: it reads that version or answers 400.
        dependencies=[Depends(as_of_version_guard)],
    )
    app.state.settings = settings
    app.state.store = audit.store
    # Presigns the browser's GET URLs: a read-only identity of its own when one is
    # configured (ADR 022), else the store's own credentials.
    app.state.presigner = presigner or app.state.store
    app.state.audit = audit
    app.state.governance = Governance(app.state.store)
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
    register_openlineage_metrics(registry)
    problems.install(app)
    iceberg = _iceberg_app(app, settings)
    # Innermost: inside the body limit and the envelope (request id, metrics, audit).
    app.add_middleware(_Prefixed, prefix="/iceberg", target=iceberg)
    # Added before ``envelope`` so it runs inside it (request id, metrics).
    app.add_middleware(_StreamedBodyLimit, limit=settings.max_body_bytes)

    app.add_middleware(
        _Envelope,
        max_body=settings.max_body_bytes,
        requests=requests_total,
        latency=latency,
        audit=audit,
        # Inside the envelope, like FastAPI's routes, and under the same streamed-body limit.
        direct={
            key: _StreamedBodyLimit(route, limit=settings.max_body_bytes)
            for key, route in direct_routes.direct_routes(openlineage_router.routes).items()
        },
        reads=direct_routes.read_routes([*catalog_router.routes, *tier2_router.routes]),
    )

    @app.get("/healthz", response_model=HealthOut, tags=["ops"])
    def healthz() -> Any:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=HealthOut, tags=["ops"])
    def readyz(response: Response) -> Any:
        """Readiness: the store answers a read."""
        try:
            app.state.store.head(READINESS_PROBE_KEY)
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
        body = generate_latest(registry) + generate_latest(core_metrics.REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # Requests under /iceberg/ reach it through ``_Prefixed``; the mount answers the rest.
    app.mount("/iceberg", iceberg)
    app.include_router(catalog_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(openlineage_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(tier2_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(query_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(flow_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(automation_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(browser_router, responses=problems.API_ERROR_RESPONSES)
    app.include_router(admin_router, responses=problems.API_ERROR_RESPONSES)
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
    app.include_router(dev_router, responses=problems.API_ERROR_RESPONSES)
    install_web_ui(app)
    return app
