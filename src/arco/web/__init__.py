"""The web UI: static files built by Vite from ``web/``.

``arco serve`` and ``arco dev`` mount :class:`StaticUI` at ``/`` after every API route,
so ``/api``, ``/blob``, ``/healthz`` and friends always win. The built files live in
``src/arco/web/static/`` (package data, gitignored, built by ``make ui``).
"""

from __future__ import annotations

from fastapi import FastAPI

from arco.web.static import STATIC_DIR, StaticUI, UIMount

__all__ = ["STATIC_DIR", "StaticUI", "UIMount", "install"]


def install(app: FastAPI) -> None:
    """Mount the UI on ``app`` at ``/``; call it after every other route."""
    app.router.routes.append(UIMount("/", app=StaticUI(), name="web-ui"))
