"""The exceptions of the client: one class per problem status, built from answers."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

PROBLEM_TYPE_PREFIX = "urn:arco:problem:"


class ArcoAPIError(Exception):
    """An error answer of the Arco API (``application/problem+json``)."""

    def __init__(
        self,
        status: int,
        type: str,
        detail: str,
        *,
        title: str | None = None,
        request_id: str | None = None,
        instance: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.detail = detail
        self.title = title
        self.request_id = request_id
        self.instance = instance
        self.body: dict[str, Any] = dict(body or {})
        rid = f" [request {request_id}]" if request_id else ""
        super().__init__(f"{status} {self.code}: {detail}{rid}")

    @property
    def code(self) -> str:
        """The problem type without the ``urn:arco:problem:`` prefix (e.g. ``not-found``)."""
        if self.type.startswith(PROBLEM_TYPE_PREFIX):
            return self.type[len(PROBLEM_TYPE_PREFIX) :]
        return self.type


class BadRequest(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """400 (bad name, bad type string...) or 422 (the request does not match the schema)."""


class Unauthenticated(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """401: the bearer token is missing, malformed, expired or not accepted."""


class Forbidden(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """403: the token lacks the role the operation needs."""


class NotFound(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """404: the object (or route) does not exist in the caller's scope."""


class Conflict(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """409: already exists, not empty, or an Idempotency-Key reused for another request."""


class PayloadTooLarge(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """413: the request body (or a query result) is larger than the server accepts."""


class RateLimited(ArcoAPIError):  # noqa: N818 (HTTP status names)
    """429: the tenant's rate limit is exhausted; retry after ``retry_after`` seconds."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(ArcoAPIError):
    """5xx: the server failed or is unavailable (503 is retried before this is raised)."""


class ArcoConnectionError(ArcoAPIError):
    """The server could not be reached (``status`` is 0); the cause is chained."""


STATUS_CLASSES: dict[int, type[ArcoAPIError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: BadRequest,
    429: RateLimited,
}


def retry_after_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(response: httpx.Response) -> ArcoAPIError:
    """The typed exception for an error ``response`` (problem+json or anything else)."""
    status = response.status_code
    body: dict[str, Any] = {}
    try:
        parsed = response.json()
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    problem_type = body.get("type")
    if not isinstance(problem_type, str):
        problem_type = "about:blank"
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = response.text[:500] if not body else str(detail or response.reason_phrase)
    request_id = body.get("request_id") or response.headers.get("x-request-id")
    cls = STATUS_CLASSES.get(status) or (ServerError if status >= 500 else ArcoAPIError)
    kwargs: dict[str, Any] = {
        "title": body.get("title") if isinstance(body.get("title"), str) else None,
        "request_id": request_id if isinstance(request_id, str) else None,
        "instance": body.get("instance") if isinstance(body.get("instance"), str) else None,
        "body": body,
    }
    if cls is RateLimited:
        return RateLimited(
            status, problem_type, detail, retry_after=retry_after_seconds(response), **kwargs
        )
    return cls(status, problem_type, detail, **kwargs)
