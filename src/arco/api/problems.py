"""RFC 9457 ``application/problem+json`` responses with a stable ``type`` per failure."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from arco.api.auth import AuthenticationError, PermissionDeniedError
from arco.api.ratelimit import RateLimitedError
from arco.api.schemas import Problem
from arco.core import errors as err
from arco.flow.states import IllegalTransitionError
from arco.governance.tenants import QuotaExceededError
from arco.iceberg.errors import CommitRejectedError, ForbiddenLocationError
from arco.iceberg.signer import SignRefusedError
from arco.sql.errors import QueryTimeoutError, QueryTooLargeError
from arco.sql.tabledata import TableDataError

log = logging.getLogger("arco.api")
PROBLEM_BASE = "urn:arco:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# The status of each error class. An error takes the entry of the nearest class in
# its MRO, so a subclass is never shadowed by a broader entry listed before it.
STATUS: dict[type[BaseException], int] = {
    err.ArcoError: 400,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    RateLimitedError: 429,
    err.NotFoundError: 404,
    err.AlreadyExistsError: 409,
    err.ConflictError: 409,
    err.FencedError: 409,
    err.CommitConflictError: 503,
    err.LockUnavailableError: 503,
    err.InvalidNameError: 400,
    err.InvalidArgumentError: 400,
    err.IntegrityError: 500,
    err.StorageError: 503,
    # A key the metadata names is missing or a conditional write lost: the store, not the
    # request, is at fault (and a retry may succeed).
    err.ObjectNotFoundError: 503,
    err.PreconditionFailedError: 503,
    err.UnsupportedOperationError: 400,
    # A run or task asked to move where its state machine does not allow (cancel a
    # finished run): the request conflicts with the current state.
    IllegalTransitionError: 409,
    QueryTooLargeError: 413,
    # Not 408: that tells clients the request was sent too slowly and invites a retry.
    QueryTimeoutError: 422,
    # A table the query names cannot be read (format, location outside the caller's
    # data, invalid metadata): the request is well-formed, the table is not readable.
    # Its missing files are a TableFileMissingError, a NotFoundError: 404.
    TableDataError: 422,
    # A tenant quota (ingest, signed URLs, storage, concurrent runs) is used up.
    QuotaExceededError: 429,
    # Iceberg errors answer in the spec's ErrorModel on /iceberg; these are their
    # statuses where they surface through /api/v1 (the Arco door of an Iceberg table).
    CommitRejectedError: 409,
    ForbiddenLocationError: 422,
    SignRefusedError: 403,
}
_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


#: Error answers documented on every ``/api/v1`` operation (``include_router(responses=)``).
API_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": _TITLES[status]}
    for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Declare error answers of an OpenAPI document as ``application/problem+json``."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content") or {}
                if status[:1] in ("4", "5") and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return document


class PayloadTooLargeError(err.ArcoError):
    """The request body is larger than the server accepts (HTTP 413)."""

    code = "payload-too-large"


STATUS[PayloadTooLargeError] = 413


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        rid = getattr(request.state, "request_id", None)
        if rid:
            body["request_id"] = rid
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def status_for(exc: BaseException) -> int:
    """The HTTP status an Arco error maps to: the entry of the nearest class in its MRO."""
    for cls in type(exc).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(err.ArcoError)
    async def arco_error(request: Request, exc: err.ArcoError) -> JSONResponse:
        status = status_for(exc)
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimitedError | QuotaExceededError):
            headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        elif status == 503:
            headers["Retry-After"] = "1"
        elif status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="arco"'
        detail = str(exc)
        if status == 500:
            log.error("integrity problem on %s: %s", request.url.path, exc)
        return problem(status, exc.code, detail, request=request, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for item in exc.errors()[:20]:
            loc = ".".join(str(p) for p in item.get("loc", ()))
            errors.append({"location": loc, "message": str(item.get("msg", ""))})
        first = errors[0] if errors else {"location": "request", "message": "invalid"}
        return problem(
            422,
            "validation-error",
            f"{first['location']}: {first['message']}",
            request=request,
            extra={"errors": errors},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed", 401: "unauthenticated"}.get(
            exc.status_code, f"http-{exc.status_code}"
        )
        headers = dict(exc.headers or {})
        return problem(exc.status_code, code, str(exc.detail), request=request, headers=headers)

    @app.exception_handler(OSError)
    async def os_error(request: Request, exc: OSError) -> JSONResponse:
        # A file-system or network failure outside the storage layer's translation:
        # the service, not the request, is at fault.
        log.error("I/O error on %s %s: %s", request.method, request.url.path, exc)
        reason = exc.strerror or type(exc).__name__
        return problem(
            503,
            err.StorageError.code,
            f"storage is unavailable: {reason}",
            request=request,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal", "internal server error", request=request)
