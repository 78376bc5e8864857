"""Errors as the Iceberg REST spec's ``ErrorModel``: ``{"error": {message, type, code}}``.

Iceberg clients pick their exception from the status code (and some from
``type``): 404 ``NoSuchTableException``/``NoSuchNamespaceException``, 409
``AlreadyExistsException``/``CommitFailedException``/``NamespaceNotEmptyException``,
400 ``BadRequestException``, 401 ``NotAuthorizedException``, 403
``ForbiddenException``. A commit that was never published (a lost race, a lock
that could not be had) is a 409 ``CommitFailedException``, which clients retry;
5xx on a commit would make them report the commit state as unknown.
"""

from __future__ import annotations

import json
import logging

from starlette.responses import Response

from arco.core import errors as err

log = logging.getLogger("arco.iceberg")


# Defined here, not with the metadata code that raises them, so the API's problem
# mapping can name them without loading pyiceberg (the Iceberg app loads lazily).
class CommitRejectedError(err.ArcoError):
    """A commit requirement does not hold for the table's current metadata (HTTP 409)."""

    code = "commit-failed"


class ForbiddenLocationError(err.ArcoError):
    """A location lies outside the caller's own warehouse folder (HTTP 403)."""

    code = "forbidden-location"


# Most specific first; matched by error code, then by class (the API's auth and
# rate-limit errors are not imported here: arco.iceberg sits below the API layer).
_BY_CODE: dict[str, tuple[int, str]] = {
    "no-such-namespace": (404, "NoSuchNamespaceException"),
    "no-such-table": (404, "NoSuchTableException"),
    "no-such-view": (404, "NoSuchViewException"),
    "namespace-not-empty": (409, "NamespaceNotEmptyException"),
    "already-exists": (409, "AlreadyExistsException"),
    "commit-failed": (409, "CommitFailedException"),
    "commit-conflict": (409, "CommitFailedException"),
    "lock-unavailable": (409, "CommitFailedException"),
    "fenced": (409, "CommitFailedException"),
    "forbidden-location": (403, "ForbiddenException"),
    "unauthenticated": (401, "NotAuthorizedException"),
    "forbidden": (403, "ForbiddenException"),
    "workspace-retired": (403, "ForbiddenException"),
    "quota-exceeded": (429, "SlowDownException"),
    "rate-limited": (429, "SlowDownException"),
    "conflict": (409, "ConflictException"),
    "invalid-name": (400, "BadRequestException"),
    "invalid-argument": (400, "BadRequestException"),
    "unsupported": (406, "UnsupportedOperationException"),
    "integrity": (500, "IntegrityException"),
}
_BY_CLASS: list[tuple[type[BaseException], tuple[int, str]]] = [
    (err.NotFoundError, (404, "NotFoundException")),
    (err.StorageError, (503, "ServiceUnavailableException")),
]


def error_response(status: int, kind: str, message: str) -> Response:
    """A JSON ``ErrorModel`` response."""
    body = {"error": {"message": message, "type": kind, "code": status}}
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def status_of(exc: BaseException) -> tuple[int, str]:
    """The status code and ``type`` of an exception."""
    code = getattr(exc, "code", None)
    if isinstance(exc, err.ArcoError) and isinstance(code, str) and code in _BY_CODE:
        return _BY_CODE[code]
    for cls, answer in _BY_CLASS:
        if isinstance(exc, cls):
            return answer
    if isinstance(exc, err.ArcoError):
        return 400, "BadRequestException"
    return 500, "InternalServerError"


def response_for(exc: BaseException) -> Response:
    """The ``ErrorModel`` response for an exception (5xx are logged, never detailed)."""
    status, kind = status_of(exc)
    if status >= 500:
        log.error("iceberg request failed", exc_info=exc)
        message = str(exc).splitlines()[0] if isinstance(exc, err.ArcoError) else "internal error"
    else:
        message = str(exc)
    response = error_response(status, kind, message)
    if status == 429:
        response.headers["Retry-After"] = "1"
    return response
