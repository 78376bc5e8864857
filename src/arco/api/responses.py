"""Fast JSON responses for payloads that already have their response model's shape."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


def json_out(payload: Any, status_code: int = 200) -> Response:
    """``payload`` (plain JSON values, shaped like the route's response model) as JSON.

    Returning a ``Response`` makes FastAPI skip re-validating the payload against the
    route's ``response_model`` (for a sync route that is a second thread-pool hop):
    read routes answer several times faster. The model stays on the decorator for the
    OpenAPI document, and the schemathesis test checks every answer against it.
    """
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(body.encode(), status_code=status_code, media_type="application/json")


def json_page_out(items: list[str], next_page_token: str | None) -> Response:
    """A page ``{"items": [...], "next_page_token": ...}`` of items that are JSON texts.

    The bytes :func:`json_out` writes for the same page of values, when each item
    is that value's compact JSON text (``list_tables_json``): the page is joined,
    not encoded again.
    """
    token = "null" if next_page_token is None else json.dumps(next_page_token, ensure_ascii=False)
    body = '{"items":[' + ",".join(items) + '],"next_page_token":' + token + "}"
    return Response(body.encode(), media_type="application/json")
