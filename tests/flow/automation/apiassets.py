"""The automation test project plus a freshness policy: served by the API tests."""

from __future__ import annotations

from autoassets import (  # the project's declarations, collected from this module
    daily,
    daily_report,
    daily_total,
    files,
    looks_fine,
    nightly,
    not_blocked,
    quarterly,
    source,
)

from arco.flow.automation.freshness import freshness

__all__ = [
    "daily",
    "daily_report",
    "daily_total",
    "files",
    "looks_fine",
    "nightly",
    "not_blocked",
    "quarterly",
    "source",
    "source_fresh",
]

source_fresh = freshness(asset=source, max_lag_minutes=60)
