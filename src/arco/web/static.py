"""Serve the built single-page app with the MIME types DuckDB-WASM needs.

Why not ``starlette.staticfiles.StaticFiles``: it guesses MIME types from the host's
``mimetypes`` database, which on some systems maps ``.js`` to ``application/x-javascript``
or lacks ``.wasm``; DuckDB-WASM then hangs instead of failing (see RECIPES.md). The
table below is fixed. It also adds the SPA fallback (client routes get ``index.html``)
and a page that says how to build the UI when the files are missing.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Match, Mount
from starlette.types import Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Extension -> Content-Type. ``.wasm`` must be application/wasm for streaming
#: compilation; module workers must be a JavaScript MIME type.
MIME_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".cjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}

#: Paths that belong to the server, never to the single-page app: an unknown
#: ``/api/...`` must stay a 404, not turn into the app's HTML.
_SERVER_PREFIXES = ("/api/", "/blob/", "/docs/")
_SERVER_PATHS = {
    "/api",
    "/blob",
    "/healthz",
    "/readyz",
    "/metrics",
    "/version",
    "/docs",
    "/openapi.json",
}

_MISSING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Arco: web UI not built</title>
<style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;line-height:1.5}}
code,pre{{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}}</style></head>
<body><h1>The Arco web UI is not built</h1>
<p>The API is running (see <a href="/docs">/docs</a>), but the web UI's files are missing
from <code>{where}</code>.</p>
<p>Build them with Node.js 20 or newer, from the repository root:</p>
<pre>make ui
# or: npm ci --prefix web &amp;&amp; npm run --prefix web build</pre>
<p>then reload this page. Wheels built with <code>make ui</code> first include the UI.</p>
</body></html>
"""


#: First path segments of the UI's own routes (web/src/main.tsx): always the app's page.
_CLIENT_ROUTES = ("catalog", "tables", "lineage", "search", "sql", "runs", "assets", "signin")


def _is_client_route(path: str) -> bool:
    first, _, rest = path.lstrip("/").partition("/")
    # /assets/<file> is a build file, /assets alone the asset graph page.
    return first == "" or (first in _CLIENT_ROUTES and not (first == "assets" and rest))


def _accepts_gzip(header: str) -> bool:
    """True if an ``Accept-Encoding`` header allows gzip (and does not give it q=0)."""
    for part in header.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=")
            try:
                return not params.strip() or float(quality) > 0
            except ValueError:
                return False
    return False


class StaticUI:
    """ASGI app serving ``directory`` with an ``index.html`` fallback for client routes."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.directory = directory.resolve()

    def _file(self, path: str) -> Path | None:
        """The file under the static directory for a URL path; None if absent or outside."""
        relative = path.lstrip("/")
        if not relative:
            return None
        candidate = (self.directory / relative).resolve()
        if not candidate.is_relative_to(self.directory) or not candidate.is_file():
            return None
        return candidate

    def _send_file(self, file: Path, accept_encoding: str = "") -> Response:
        media = MIME_TYPES.get(file.suffix.lower(), "application/octet-stream")
        # Vite names files under assets/ by content hash: they never change.
        immutable = file.parent.name == "assets" and file.parent.parent == self.directory
        headers = {
            "Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        packed = file.with_name(file.name + ".gz")
        if packed.is_file():
            # The build pre-compresses (web/scripts/compress.mjs): the DuckDB .wasm goes
            # from 18 MB to 4 MB on the wire, with no CPU spent per request.
            headers["Vary"] = "Accept-Encoding"
            if _accepts_gzip(accept_encoding):
                headers["Content-Encoding"] = "gzip"
                return FileResponse(packed, media_type=media, headers=headers)
        return FileResponse(file, media_type=media, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request (GET/HEAD only)."""
        if scope["type"] != "http":  # pragma: no cover - lifespan goes to the app
            return
        path: str = scope["path"]
        accept = Headers(scope=scope).get("accept-encoding", "")
        response: Response
        if (file := self._file(path)) is not None:
            response = self._send_file(file, accept)
        elif "." in path.rsplit("/", 1)[-1] and not _is_client_route(path):
            # A missing asset (a file name with an extension) is a 404, not the app's HTML:
            # a stale hashed bundle must fail loudly, not parse HTML as JavaScript. Client
            # routes are exempt: their names have dots (/catalog/analytics.marketing).
            response = PlainTextResponse("not found", status_code=404)
        elif (index := self.directory / "index.html").is_file():
            response = self._send_file(index)
        else:
            where = html.escape(os.fspath(self.directory))
            response = HTMLResponse(_MISSING_PAGE.format(where=where), status_code=503)
        await response(scope, receive, send)


class UIMount(Mount):
    """A mount at ``/`` that only takes GET/HEAD requests outside the server's paths.

    Anything else does not match, so the router answers exactly as without the UI:
    405 for a wrong method on an API route, problem+json 404 for an unknown API path.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Match like a mount, but never server paths or methods other than GET/HEAD."""
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            return Match.NONE, {}
        path = scope.get("path", "")
        if path.startswith(_SERVER_PREFIXES) or path in _SERVER_PATHS:
            return Match.NONE, {}
        # The index.html fallback is for browsers navigating to a client route; an API
        # client (no text/html in Accept) asking for an unknown path gets problem+json 404.
        ui = self.app
        if (
            isinstance(ui, StaticUI)
            and not _is_client_route(path)
            and ui._file(path) is None
            and "text/html" not in Headers(scope=scope).get("accept", "")
        ):
            return Match.NONE, {}
        return super().matches(scope)
