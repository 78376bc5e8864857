"""The Iceberg REST Catalog API (apache/iceberg ``rest-catalog-open-api.yaml``) as an ASGI app.

Mounted under ``/iceberg`` by the API server. The caller's tenant and workspace
come from the verified bearer token only: the path's ``{prefix}`` and the
``warehouse`` parameter must name the token's workspace or the request is
refused. Errors are the spec's ``ErrorModel`` (see :mod:`arco.iceberg.errors`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI, Request
from starlette.responses import Response

from arco.catalog.catalog import Catalog
from arco.core.errors import ArcoError, InvalidArgumentError
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore, parse_store_url
from arco.iceberg.errors import error_response, response_for
from arco.iceberg.fastpath import DirectTableLoads
from arco.iceberg.signer import SignRequest, authorize, folder_test, signer_for

log = logging.getLogger("arco.iceberg")
SEPARATOR = "\x1f"
#: Where S3V4RestSigner posts (relative to the catalog URI; pyiceberg's and Java's default).
SIGN_ENDPOINT = "v1/aws/s3/sign"
ENDPOINTS = [
    "GET /v1/{prefix}/namespaces",
    "POST /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "DELETE /v1/{prefix}/namespaces/{namespace}",
    "POST /v1/{prefix}/namespaces/{namespace}/properties",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "POST /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/register",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
    "POST /v1/{prefix}/tables/rename",
    "POST /v1/{prefix}/transactions/commit",
]


class Caller(Protocol):
    """The verified principal (``arco.api.auth.Principal``)."""

    @property
    def scope(self) -> Scope:
        """The caller's storage scope."""
        ...

    @property
    def tenant(self) -> str:
        """The caller's tenant."""
        ...

    def has(self, role: str) -> bool:
        """True if the caller holds at least ``role``."""
        ...


@dataclass
class IcebergHooks:
    """What the Iceberg app borrows from the API server that mounts it."""

    #: Verify a bearer token; raises an ArcoError with code ``unauthenticated``.
    authenticate: Callable[[str], Caller]
    #: The (cached) catalog of a scope, shared with the rest of the server.
    catalog_for: Callable[[Scope], Catalog]
    store: ObjectStore
    #: The store URL the server was started with (client I/O settings come from it).
    store_url: str
    #: Take a rate-limit token (``tenant``, ``kind``) or raise.
    rate_limit: Callable[[str, str], None] | None = None
    #: Tenant policy (``caller``, ``writes``): a retired workspace, the storage quota.
    #: Raises an ArcoError (``workspace-retired`` 403, ``quota-exceeded`` 429).
    govern: Callable[[Caller, bool], None] | None = None


class _ForbiddenError(ArcoError):
    code = "forbidden"


class _UnauthenticatedError(ArcoError):
    code = "unauthenticated"


def client_io_config(store_url: str) -> dict[str, str]:
    """FileIO properties a client needs to reach the warehouse (no credentials)."""
    try:
        cfg = parse_store_url(store_url)
    except ArcoError:
        return {}
    if cfg.scheme != "s3":
        return {}
    out: dict[str, str] = {"s3.region": str(cfg.config.get("region", "us-east-1"))}
    if cfg.config.get("endpoint"):
        out["s3.endpoint"] = str(cfg.config["endpoint"])
    if cfg.config.get("virtual_hosted_style_request") is False or cfg.config.get("endpoint"):
        out["s3.path-style-access"] = "true"
    return out


def _levels(text: str) -> list[str]:
    if not text:
        raise InvalidArgumentError("namespace must not be empty")
    return text.split(SEPARATOR)


def _json(body: bytes) -> Any:
    if not body:
        raise InvalidArgumentError("request body must be a JSON object")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"request body is not valid JSON: {exc}") from exc


def _identifier(body: Any, key: str) -> tuple[list[str], str]:
    """A rename request's ``source`` or ``destination``: ``{namespace: [...], name}``."""
    raw = body.get(key) if isinstance(body, dict) else None
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("name"), str)
        or not isinstance(raw.get("namespace"), list)
    ):
        raise InvalidArgumentError(f"{key} must be {{namespace: [...], name: ...}}")
    return [str(p) for p in raw["namespace"]], raw["name"]


def _ok(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status_code=status, media_type="application/json")


def _table_result(location: str | None, raw: bytes, config: dict[str, str]) -> Response:
    # The metadata file's bytes go out as they are stored: no parse and re-encode.
    body = b"".join(
        [
            b'{"metadata-location":',
            json.dumps(location).encode(),
            b',"metadata":',
            raw,
            b',"config":',
            json.dumps(config).encode(),
            b"}",
        ]
    )
    return Response(body, media_type="application/json")


def create_iceberg_app(hooks: IcebergHooks) -> FastAPI:
    """The Iceberg REST app (mount it at ``/iceberg``)."""
    from arco.iceberg.metadata import Warehouse
    from arco.iceberg.service import IcebergCatalog, MetadataCache
    from arco.iceberg.view_routes import VIEW_ENDPOINTS

    app = FastAPI(
        title="Arco Iceberg REST catalog",
        summary="The Iceberg REST Catalog API over Arco's catalog",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    io_config = client_io_config(hooks.store_url)
    signer = signer_for(hooks.store_url)
    if signer is not None:
        # Remote signing (ADR 014): clients that support it need only their token.
        io_config.update(
            {
                "s3.remote-signing-enabled": "true",
                "s3.signer": "S3V4RestSigner",
                "s3.signer.endpoint": SIGN_ENDPOINT,
            }
        )
    folders: dict[Scope, tuple[int, Callable[[str], bool]]] = {}
    # The catalog's blocking work (a pointer GET per request, commits) runs on a pool
    # of its own: handing a request to it costs about half of anyio's shared
    # to_thread (no capacity limiter, no cancel-shielded checkpoints), which was a
    # fifth of the event loop's time per table load; and commits waiting on the
    # lease no longer hold threads the rest of the API needs.
    pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="arco-iceberg")

    async def in_thread(fn: Callable[[], Response]) -> Response:
        # The request's context (request id, audit state) goes with it, as with anyio.
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(pool, ctx.run, fn)

    # No per-table config while no credentials are vended: DuckDB turns a table's
    # s3.* config into a secret of its own, and one without keys hides the client's.
    table_config: dict[str, str] = {}
    cache = MetadataCache()
    services: dict[Scope, IcebergCatalog] = {}
    lock = threading.Lock()

    def service(scope: Scope) -> IcebergCatalog:
        catalog = hooks.catalog_for(scope)
        with lock:
            found = services.get(scope)
            if found is None or found.catalog is not catalog:
                found = IcebergCatalog(
                    catalog, hooks.store, Warehouse(hooks.store.url, Keys(scope)), cache
                )
                services[scope] = found
                while len(services) > 256:
                    services.pop(next(iter(services)))
            return found

    def caller(request: Request, role: str, prefix: str | None) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _UnauthenticatedError("missing bearer token")
        who = hooks.authenticate(token.strip())
        if not who.has(role):
            raise _ForbiddenError(f"this operation needs the {role!r} role")
        if prefix is not None and prefix != who.scope.workspace:
            raise _ForbiddenError(
                f"prefix {prefix!r} is not the token's workspace {who.scope.workspace!r}"
            )
        if role != "reader" and hooks.rate_limit is not None:
            hooks.rate_limit(who.tenant, "write")
        if hooks.govern is not None:
            # The same tenant policy as /api/v1: a retired workspace is closed to
            # both doors, and a tenant over its storage quota writes through neither.
            hooks.govern(who, role != "reader")
        return who

    async def handle(
        request: Request,
        role: str,
        prefix: str | None,
        work: Callable[[IcebergCatalog, Any], Response],
        *,
        body: bool = False,
    ) -> Response:
        try:
            raw = await request.body() if body else b""

            def run() -> Response:
                who = caller(request, role, prefix)
                payload = _json(raw) if body else None
                return work(service(who.scope), payload)

            return await in_thread(run)
        except Exception as exc:
            return _error(exc)

    def _error(exc: BaseException) -> Response:
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            return error_response(400, "BadRequestException", f"invalid request: {exc}")
        return response_for(exc)

    def table_folders(svc: IcebergCatalog, fresh: bool) -> Callable[[str], bool]:
        """Whether a store key lies in an Iceberg table folder of the service's scope."""
        snap = svc.catalog.snapshot(0.0 if fresh else 1.0)
        scope = svc.catalog.scope
        hit = folders.get(scope)
        if hit is not None and hit[0] == snap.version:
            return hit[1]
        keys = []
        for row in snap.state.tables.values():
            if row["format"] != "iceberg" or not row.get("location"):
                continue
            try:
                keys.append(svc.warehouse.key_of(row["location"]).rstrip("/") + "/")
            except ArcoError:
                continue
        test = folder_test(keys)
        folders[scope] = (snap.version, test)
        return test

    @app.post("/v1/aws/s3/sign")
    async def sign_s3_request(request: Request) -> Response:
        """Sign one S3 request inside the caller's table folders (S3V4RestSigner)."""
        try:
            raw = await request.body()

            def run() -> Response:
                who = caller(request, "reader", None)
                if signer is None:
                    raise _ForbiddenError("this server does not sign S3 requests")
                sign = SignRequest.parse(_json(raw))
                svc = service(who.scope)
                try:
                    _, writes = authorize(signer, sign, table_folders(svc, fresh=False))
                except ArcoError:
                    # A table created within the last second: look again at the head.
                    _, writes = authorize(signer, sign, table_folders(svc, fresh=True))
                if writes and not who.has("writer"):
                    raise _ForbiddenError("writing data files needs the 'writer' role")
                return _ok(signer.sign(sign))

            return await in_thread(run)
        except Exception as exc:
            return _error(exc)

    # ------------------------------------------------------------------ config
    @app.get("/v1/config")
    async def get_config(request: Request, warehouse: str | None = None) -> Response:
        """Catalog configuration: the prefix (the token's workspace) and client defaults."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            scope = svc.catalog.scope
            if warehouse not in (None, "", scope.workspace, f"{scope.tenant}/{scope.workspace}"):
                raise _ForbiddenError(
                    f"warehouse {warehouse!r} is not the token's workspace {scope.workspace!r}"
                )
            return _ok(
                {
                    "defaults": dict(io_config),
                    "overrides": {"prefix": scope.workspace},
                    "endpoints": ENDPOINTS + VIEW_ENDPOINTS,
                }
            )

        return await handle(request, "reader", None, work)

    # -------------------------------------------------------------- namespaces
    @app.get("/v1/{prefix}/namespaces")
    async def list_namespaces(
        request: Request,
        prefix: str,
        parent: str | None = None,
        pageToken: str | None = None,  # noqa: N803 - the spec's parameter name
        pageSize: int | None = None,  # noqa: N803
    ) -> Response:
        """Namespaces directly under ``parent`` (or the top level)."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            names, token = svc.list_namespaces(
                _levels(parent) if parent else None, pageToken, pageSize
            )
            return _ok({"namespaces": names, "next-page-token": token})

        return await handle(request, "reader", prefix, work)

    @app.post("/v1/{prefix}/namespaces")
    async def create_namespace(request: Request, prefix: str) -> Response:
        """Create a namespace."""

        def work(svc: IcebergCatalog, body: Any) -> Response:
            levels = body.get("namespace") if isinstance(body, dict) else None
            props = body.get("properties") or {} if isinstance(body, dict) else {}
            if not isinstance(levels, list) or not all(isinstance(p, str) for p in levels):
                raise InvalidArgumentError("namespace must be a list of strings")
            if not isinstance(props, dict):
                raise InvalidArgumentError("properties must be an object")
            svc.create_namespace(levels, props)
            return _ok({"namespace": levels, "properties": svc.namespace_properties(levels)})

        return await handle(request, "writer", prefix, work, body=True)

    @app.get("/v1/{prefix}/namespaces/{namespace}")
    async def load_namespace(request: Request, prefix: str, namespace: str) -> Response:
        """A namespace's properties."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            levels = _levels(namespace)
            return _ok({"namespace": levels, "properties": svc.namespace_properties(levels)})

        return await handle(request, "reader", prefix, work)

    @app.head("/v1/{prefix}/namespaces/{namespace}")
    async def namespace_exists(request: Request, prefix: str, namespace: str) -> Response:
        """204 if the namespace exists, else 404."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            svc.namespace_properties(_levels(namespace))
            return Response(status_code=204)

        return await handle(request, "reader", prefix, work)

    @app.delete("/v1/{prefix}/namespaces/{namespace}")
    async def drop_namespace(request: Request, prefix: str, namespace: str) -> Response:
        """Drop an empty namespace."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            svc.drop_namespace(_levels(namespace))
            return Response(status_code=204)

        return await handle(request, "writer", prefix, work)

    @app.post("/v1/{prefix}/namespaces/{namespace}/properties")
    async def update_properties(request: Request, prefix: str, namespace: str) -> Response:
        """Set and remove namespace properties."""

        def work(svc: IcebergCatalog, body: Any) -> Response:
            if not isinstance(body, dict):
                raise InvalidArgumentError("request body must be a JSON object")
            removals = body.get("removals") or []
            updates = body.get("updates") or {}
            if not isinstance(removals, list) or not isinstance(updates, dict):
                raise InvalidArgumentError("removals must be a list and updates an object")
            try:
                updated, removed, missing = svc.update_namespace_properties(
                    _levels(namespace), removals, updates
                )
            except InvalidArgumentError as exc:
                if "both set and removed" in str(exc):
                    return error_response(422, "UnprocessableEntityException", str(exc))
                raise
            return _ok({"updated": updated, "removed": removed, "missing": missing})

        return await handle(request, "writer", prefix, work, body=True)

    # ------------------------------------------------------------------ tables
    @app.get("/v1/{prefix}/namespaces/{namespace}/tables")
    async def list_tables(
        request: Request,
        prefix: str,
        namespace: str,
        pageToken: str | None = None,  # noqa: N803
        pageSize: int | None = None,  # noqa: N803
    ) -> Response:
        """The Iceberg tables of a namespace."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            levels = _levels(namespace)
            names, token = svc.list_tables(levels, pageToken, pageSize)
            return _ok(
                {
                    "identifiers": [{"namespace": levels, "name": n} for n in names],
                    "next-page-token": token,
                }
            )

        return await handle(request, "reader", prefix, work)

    @app.post("/v1/{prefix}/namespaces/{namespace}/tables")
    async def create_table(request: Request, prefix: str, namespace: str) -> Response:
        """Create a table, or stage its creation (``stage-create``)."""
        idempotency_key = request.headers.get("idempotency-key")

        def work(svc: IcebergCatalog, body: Any) -> Response:
            from pyiceberg.partitioning import PartitionSpec
            from pyiceberg.schema import Schema
            from pyiceberg.table.sorting import SortOrder

            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise InvalidArgumentError("request needs a table name")
            if not isinstance(body.get("schema"), dict):
                raise InvalidArgumentError("request needs a schema")
            props = body.get("properties") or {}
            if not isinstance(props, dict):
                raise InvalidArgumentError("properties must be an object")
            spec = body.get("partition-spec")
            order = body.get("write-order")
            loaded = svc.create_table(
                _levels(namespace),
                body["name"],
                Schema.model_validate(body["schema"]),
                location=body.get("location") or None,
                partition_spec=PartitionSpec.model_validate(spec) if spec else None,
                sort_order=SortOrder.model_validate(order) if order else None,
                properties={str(k): str(v) for k, v in props.items()},
                stage=bool(body.get("stage-create")),
                idempotency_key=idempotency_key,
            )
            return _table_result(loaded.metadata_location, loaded.raw, table_config)

        return await handle(request, "writer", prefix, work, body=True)

    @app.post("/v1/{prefix}/namespaces/{namespace}/register")
    async def register_table(request: Request, prefix: str, namespace: str) -> Response:
        """Register an existing metadata file (inside this workspace's warehouse)."""

        def work(svc: IcebergCatalog, body: Any) -> Response:
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise InvalidArgumentError("request needs a table name")
            location = body.get("metadata-location")
            if not isinstance(location, str):
                raise InvalidArgumentError("request needs a metadata-location")
            loaded = svc.register_table(
                _levels(namespace), body["name"], location, overwrite=bool(body.get("overwrite"))
            )
            return _table_result(loaded.metadata_location, loaded.raw, table_config)

        return await handle(request, "writer", prefix, work, body=True)

    async def load(request: Request, prefix: str, namespace: str, table: str) -> Response:
        def work(svc: IcebergCatalog, _: Any) -> Response:
            loaded = svc.load_table(_levels(namespace), table)
            return _table_result(loaded.metadata_location, loaded.raw, table_config)

        return await handle(request, "reader", prefix, work)

    @app.get("/v1/{prefix}/namespaces/{namespace}/tables/{table}")
    async def load_table(request: Request, prefix: str, namespace: str, table: str) -> Response:
        """A table's current metadata and the client I/O config."""
        return await load(request, prefix, namespace, table)

    # The same handler without FastAPI's routing and parameter resolution (fastpath.py).
    app.add_middleware(
        DirectTableLoads,
        handler=load,
        route=next(r for r in app.router.routes if getattr(r, "endpoint", None) is load_table),
    )

    @app.head("/v1/{prefix}/namespaces/{namespace}/tables/{table}")
    async def table_exists(request: Request, prefix: str, namespace: str, table: str) -> Response:
        """204 if the table exists, else 404."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            svc.load_table(_levels(namespace), table)
            return Response(status_code=204)

        return await handle(request, "reader", prefix, work)

    @app.post("/v1/{prefix}/namespaces/{namespace}/tables/{table}")
    async def commit_table(request: Request, prefix: str, namespace: str, table: str) -> Response:
        """Commit requirements + updates to one table (one Tier-1 catalog commit)."""
        idempotency_key = request.headers.get("idempotency-key")

        def work(svc: IcebergCatalog, body: Any) -> Response:
            from arco.iceberg.requests import table_changes

            change = table_changes(body, (tuple(_levels(namespace)), table))
            (loaded,) = svc.commit([change], idempotency_key)
            return _table_result(loaded.metadata_location, loaded.raw, table_config)

        return await handle(request, "writer", prefix, work, body=True)

    @app.delete("/v1/{prefix}/namespaces/{namespace}/tables/{table}")
    async def drop_table(
        request: Request,
        prefix: str,
        namespace: str,
        table: str,
        purgeRequested: bool = False,  # noqa: N803
    ) -> Response:
        """Drop a table; ``purgeRequested=true`` also deletes its files."""

        def work(svc: IcebergCatalog, _: Any) -> Response:
            svc.drop_table(_levels(namespace), table, purge=purgeRequested)
            return Response(status_code=204)

        return await handle(request, "writer", prefix, work)

    @app.post("/v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics")
    async def report_metrics(request: Request, prefix: str, namespace: str, table: str) -> Response:
        """Accept a scan or commit metrics report and record it in the server log."""

        def work(svc: IcebergCatalog, body: Any) -> Response:
            from arco.iceberg.requests import metrics_summary

            svc.load_table(_levels(namespace), table)
            log.info(
                "iceberg metrics %s %s.%s %s",
                svc.catalog.scope,
                ".".join(_levels(namespace)),
                table,
                metrics_summary(body),
            )
            return Response(status_code=204)

        return await handle(request, "reader", prefix, work, body=True)

    @app.post("/v1/{prefix}/tables/rename")
    async def rename_table(request: Request, prefix: str) -> Response:
        """Rename or move a table."""

        def work(svc: IcebergCatalog, body: Any) -> Response:
            svc.rename_table(_identifier(body, "source"), _identifier(body, "destination"))
            return Response(status_code=204)

        return await handle(request, "writer", prefix, work, body=True)

    from arco.iceberg.view_routes import add_view_routes

    add_view_routes(app, handle)

    @app.post("/v1/{prefix}/transactions/commit")
    async def commit_transaction(request: Request, prefix: str) -> Response:
        """Commit changes to several tables atomically (one Tier-1 catalog commit)."""
        idempotency_key = request.headers.get("idempotency-key")

        def work(svc: IcebergCatalog, body: Any) -> Response:
            from arco.iceberg.requests import table_changes

            changes = body.get("table-changes") if isinstance(body, dict) else None
            if not isinstance(changes, list) or not changes:
                raise InvalidArgumentError("table-changes must be a non-empty list")
            svc.commit([table_changes(c, None) for c in changes], idempotency_key)
            return Response(status_code=204)

        return await handle(request, "writer", prefix, work, body=True)

    return app
