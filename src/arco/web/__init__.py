"""The web UI: static files built by Vite from ``web/`` and the dev-mode sign-in route.

``arco serve`` and ``arco dev`` mount :class:`StaticUI` at ``/`` after every API route,
so ``/api``, ``/blob``, ``/healthz`` and friends always win. The built files live in
``src/arco/web/static/`` (package data, gitignored, built by ``make ui``).
"""

from __future__ import annotations

from fastapi import FastAPI

from arco.web.dev import router as dev_router
from arco.web.static import STATIC_DIR, StaticUI, UIMount

__all__ = ["STATIC_DIR", "StaticUI", "UIMount", "dev_router", "install"]


def install(app: FastAPI, responses: dict[int | str, dict[str, object]] | None = None) -> None:
    """Add the dev sign-in route and the UI to ``app``; call it after every other route."""
    app.include_router(dev_router, responses=responses)
    app.router.routes.append(UIMount("/", app=StaticUI(), name="web-ui"))
