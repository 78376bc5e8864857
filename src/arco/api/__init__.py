"""Arco's REST API (FastAPI): thin composition over the catalog; no domain policy here."""

from arco.api.app import create_app
from arco.api.settings import Settings

__all__ = ["Settings", "create_app"]
