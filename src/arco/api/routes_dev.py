"""``GET /api/v1/dev/token``: automatic sign-in for the UI under ``arco dev``.

Only when ``Settings.dev_mode`` is on, the server signs HS256 tokens, and the request
comes from a loopback client to a loopback host name; a 404 problem otherwise, so the
route does not reveal itself. The host check stops DNS rebinding: a web page on
``evil.example`` re-pointed at 127.0.0.1 is same-origin from the browser's view but
sends ``Host: evil.example``. Hidden from the OpenAPI document: it is a development
convenience, not part of the API.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Request

from arco.api.auth import mint_token
from arco.core.errors import NotFoundError

router = APIRouter(prefix="/api/v1/dev", tags=["dev"])

#: Lifetime of a dev token: a working day, so a dev session does not need a refresh.
DEV_TOKEN_TTL_S = 12 * 3600
_LOOPBACK_NAMES = ("localhost",)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8484`` -> ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@router.get("/token", include_in_schema=False)
def dev_token(request: Request) -> dict[str, Any]:
    """A writer token for the dev scope, for loopback callers of a dev-mode server."""
    settings = request.app.state.settings
    client = request.client.host if request.client else None
    host = _host_name(request.headers.get("host", ""))
    if (
        not settings.dev_mode
        or not settings.jwt_secret
        or not _is_loopback(client)
        or not _is_loopback(host)
    ):
        raise NotFoundError("no such route")
    token = mint_token(
        settings.jwt_secret,
        tenant=settings.dev_tenant,
        workspace=settings.dev_workspace,
        roles=["writer"],
        ttl_seconds=DEV_TOKEN_TTL_S,
        sub="dev:web-ui",
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    return {
        "token": token,
        "tenant": settings.dev_tenant,
        "workspace": settings.dev_workspace,
        "roles": ["writer"],
        "expires_in": DEV_TOKEN_TTL_S,
    }
