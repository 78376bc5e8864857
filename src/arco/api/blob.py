"""``GET|HEAD /blob/{key}?expires=&sig=``: Arco's own signed-URL route (local and memory stores).

A local folder or an in-memory store cannot presign, so ``POST /api/v1/browser/urls``
hands out HMAC-signed URLs of this route instead. The signature is the credential
(no bearer token): it covers the key, which starts with the scope prefix, and the
expiry, and is method-agnostic, so DuckDB-WASM's HEAD works as well as GET.

Even with a valid signature only Parquet files are served: state files
(``tenant=…/workspace=…/snapshots/<domain>/<file>.parquet``) and table data files
outside Arco's metadata areas (``POST /api/v1/browser/tables`` signs exactly the
files of a table the caller may read): never ledger objects, locks, pointers or
manifests. ``Range`` is honoured (206, or 416 when unsatisfiable), the ETag is
the object's version (state files are immutable), and every answer, errors
included, carries CORS headers so a page on any origin can read it.
"""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, Request, Response

from arco.api import problems
from arco.api.schemas import Problem
from arco.core.errors import ArcoError, InvalidNameError, ObjectNotFoundError
from arco.core.keys import validate_store_key
from arco.core.storage import HmacSigner, ObjectStore
from arco.sql.tabledata import INTERNAL_AREAS

router = APIRouter(tags=["browser"])

#: What a signed URL may name: one immutable state file of one scope.
_SERVABLE = re.compile(
    r"^tenant=[a-z0-9][a-z0-9_-]{0,62}/workspace=[a-z0-9][a-z0-9_-]{0,62}/snapshots/"
    r"[a-z][a-z0-9_]{0,31}/[0-9]{20}-[0-9A-HJKMNP-TV-Z]{26}-[A-Za-z0-9][A-Za-z0-9_.=-]*\.parquet$"
)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, ETag",
}
_PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, If-None-Match",
    "Access-Control-Max-Age": "600",
}
_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The whole file"},
    206: {"content": {"application/octet-stream": {}}, "description": "The requested range"},
    304: {"description": "Not modified (If-None-Match)"},
    403: {"model": Problem, "description": "Tampered, expired or out-of-scope URL"},
    404: {"model": Problem, "description": "The file no longer exists"},
    416: {"model": Problem, "description": "The range is not satisfiable"},
    422: {"model": Problem, "description": "Unprocessable request"},
}


_SCOPE_PREFIX = re.compile(r"^tenant=[a-z0-9][a-z0-9_-]{0,62}/workspace=[a-z0-9][a-z0-9_-]{0,62}/")


def servable(key: str) -> bool:
    """True for keys a signed URL may name: a scope's state files and table data files."""
    if bool(_SERVABLE.fullmatch(key)) and ".." not in key:
        return True
    # Table data: a Parquet file of a scope, outside Arco's own metadata areas.
    prefix = _SCOPE_PREFIX.match(key)
    if prefix is None or not key.endswith(".parquet"):
        return False
    try:
        validate_store_key("key", key)
    except InvalidNameError:
        return False
    return not key[prefix.end() :].startswith(INTERNAL_AREAS)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single ``bytes=`` range, None to serve the whole object.

    Raises :class:`ValueError` for a well-formed range that is not satisfiable; a
    malformed or multi-range header is ignored (RFC 9110 allows serving it all).
    """
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or (last != "" and int(last) < start):
        raise ValueError("range starts beyond the end")
    return start, end


def _refuse(request: Request, status: int, code: str, detail: str, **headers: str) -> Response:
    return problems.problem(
        status, code, detail, request=request, headers={**CORS_HEADERS, **headers}
    )


@router.options("/blob/{key:path}", include_in_schema=False)
def blob_preflight(key: str) -> Response:
    """CORS preflight: any origin may GET or HEAD with a ``Range`` header."""
    return Response(status_code=204, headers=_PREFLIGHT_HEADERS)


_PARAMETERS = [
    {"name": "expires", "in": "query", "required": True, "schema": {"type": "integer"}},
    {"name": "sig", "in": "query", "required": True, "schema": {"type": "string"}},
    {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
    {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
]


# The query and headers are read by hand: a bad signature must be a 403 with CORS
# headers, never FastAPI's 422 validation answer.
# HEAD answers exactly like GET without the body; it is left out of the OpenAPI
# document (an error answer to HEAD has no problem body to describe).
@router.head("/blob/{key:path}", include_in_schema=False)
@router.get("/blob/{key:path}", responses=_RESPONSES, openapi_extra={"parameters": _PARAMETERS})
def blob(request: Request, key: str) -> Response:
    """One state file by signed URL (no bearer token: the signature is the credential)."""
    expires = request.query_params.get("expires")
    sig = request.query_params.get("sig")
    range_ = request.headers.get("range")
    if_none_match = request.headers.get("if-none-match")
    signer: HmacSigner = request.app.state.url_signer
    now = time.time()
    try:
        expiry = int(expires or "") if len(expires or "") <= 20 else -1
    except ValueError:
        expiry = -1
    if not sig or expiry < 0 or not signer.verify(key, expiry, sig, now=now):
        if sig and expiry >= 0 and expiry < now and signer.verify(key, expiry, sig, now=expiry):
            return _refuse(request, 403, "url-expired", "this signed URL has expired")
        return _refuse(request, 403, "bad-signature", "the URL signature is missing or invalid")
    if not servable(key):
        return _refuse(request, 403, "forbidden", "this key cannot be served by signed URL")
    store: ObjectStore = request.app.state.store
    try:
        meta = store.head(key)
    except ObjectNotFoundError:
        return _refuse(request, 404, "not-found", "the file no longer exists")
    except ArcoError as exc:
        return _refuse(request, 503, exc.code, str(exc).splitlines()[0], **{"Retry-After": "1"})
    etag = '"' + meta.version.strip('"') + '"'
    headers = {
        **CORS_HEADERS,
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": f"private, max-age={max(0, expiry - int(now))}",
    }
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    size = meta.size
    try:
        span = parse_range(range_, size) if range_ else None
    except ValueError:
        return _refuse(
            request,
            416,
            "range-not-satisfiable",
            f"the object has {size} bytes",
            **{"Content-Range": f"bytes */{size}"},
        )
    status = 200
    start, end = 0, size
    if span is not None:
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    try:
        if span is None:
            data, _ = store.get(key)
        else:
            data = store.get_range(key, start, end)
    except ObjectNotFoundError:
        return _refuse(request, 404, "not-found", "the file no longer exists")
    except ArcoError as exc:
        return _refuse(request, 503, exc.code, str(exc).splitlines()[0], **{"Retry-After": "1"})
    return Response(
        content=data, status_code=status, headers=headers, media_type="application/octet-stream"
    )
