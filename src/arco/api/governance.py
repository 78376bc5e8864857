"""Tenant policy on the request path: retired workspaces and quotas (ADR 017).

The state is in the store (:mod:`arco.governance.tenants`); each server process
caches what it read for ``ttl`` seconds (one GET per tenant and per workspace
per ``ttl``), so a change made by a tenant admin reaches every process within
that time. Per-minute allowances are shared through the store and are exact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arco.api.auth import Principal
from arco.api.ratelimit import RateLimitedError
from arco.core import metrics
from arco.core.errors import PermissionDeniedError
from arco.core.storage import ObjectStore
from arco.governance import tenants

#: The routes that start a run, which ``concurrent_runs`` limits.
RUN_LAUNCH_ROUTES = frozenset({("POST", "/api/v1/runs"), ("POST", "/api/v1/runs/{run_id}/rerun")})


class QuotaRejectedError(RateLimitedError):
    """A tenant quota refused the request (HTTP 429 with ``Retry-After``)."""

    code = "quota-exceeded"


class WorkspaceRetiredError(PermissionDeniedError):
    """The caller's workspace was retired by a tenant admin (HTTP 403)."""

    code = "workspace-retired"


@dataclass
class _Cached:
    value: Any
    at: float


class Governance:
    """Cached tenant policy and the store-shared allowances of one server process."""

    def __init__(self, store: ObjectStore, *, ttl: float = 10.0) -> None:
        self.store = store
        self.ttl = ttl
        self._cache: dict[tuple[str, ...], _Cached] = {}
        self._allowances: dict[tuple[str, str], tenants.MinuteAllowance] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple[str, ...], load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit.at < self.ttl:
            return hit.value
        value = load()
        with self._lock:
            self._cache[key] = _Cached(value, now)
        return value

    def ready(self, who: Principal, rate: str | None) -> bool:
        """True when the policy of a request of ``who`` (with rate class ``rate``) can be
        applied without the store: every policy read cached, and an ingest allowance
        or storage measurement it needs at hand."""
        now = time.monotonic()

        def fresh(key: tuple[str, ...]) -> _Cached | None:
            hit = self._cache.get(key)
            return hit if hit is not None and now - hit.at < self.ttl else None

        with self._lock:
            doc = fresh(("quotas", who.tenant))
            if doc is None or fresh(("workspace", who.tenant, who.workspace)) is None:
                return False
            quotas: tenants.Quotas = doc.value.quotas
            storage = rate in ("write", "ingest") and quotas.storage_bytes is not None
            if storage and fresh(("storage", who.tenant)) is None:
                return False
            limit = quotas.ingest_per_minute
            allowance = self._allowances.get((who.tenant, "ingest_per_minute"))
        if rate == "ingest" and limit is not None:
            return allowance is not None and allowance.local(limit)
        return True

    def forget(self, tenant: str) -> None:
        """Drop what this process cached about ``tenant`` (after an admin change here)."""
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if k[1] != tenant}

    def quotas(self, tenant: str) -> tenants.Quotas:
        """The tenant's quotas (cached)."""
        doc: tenants.QuotaDocument = self._cached(
            ("quotas", tenant), lambda: tenants.get_quotas(self.store, tenant)
        )
        return doc.quotas

    def check_workspace(self, who: Principal) -> None:
        """Refuse a caller whose workspace is retired."""
        record = self._cached(
            ("workspace", who.tenant, who.workspace),
            lambda: tenants.get_workspace(self.store, who.tenant, who.workspace),
        )
        if record is not None and record.status == "retired":
            raise WorkspaceRetiredError(
                f"workspace {who.tenant}/{who.workspace} is retired; a tenant admin can "
                "reactivate it"
            )

    def _take(self, tenant: str, quota: str, limit: int | None, units: int = 1) -> None:
        if limit is None:
            return
        with self._lock:
            allowance = self._allowances.get((tenant, quota))
            if allowance is None:
                allowance = tenants.MinuteAllowance(self.store, tenant, quota)
                self._allowances[(tenant, quota)] = allowance
        try:
            allowance.take(limit, units)
        except tenants.QuotaExceededError as exc:
            metrics.QUOTA_REJECTIONS.labels(quota).inc()
            raise QuotaRejectedError(str(exc), exc.retry_after) from exc

    def take_ingest(self, tenant: str) -> None:
        """Spend one Tier-2 ingest request of the tenant's per-minute quota."""
        self._take(tenant, "ingest_per_minute", self.quotas(tenant).ingest_per_minute)

    def mint_guard(self, tenant: str) -> Callable[[str], None]:
        """The per-URL hook that charges the tenant's signed-URL quota."""
        limit = self.quotas(tenant).signed_urls_per_minute

        def guard(_kind: str) -> None:
            self._take(tenant, "signed_urls_per_minute", limit)

        return guard

    def check_storage(self, tenant: str) -> None:
        """Refuse writes while the tenant's last measured storage is at its quota."""
        limit = self.quotas(tenant).storage_bytes
        if limit is None:
            return
        usage = self._cached(("storage", tenant), lambda: tenants.storage_usage(self.store, tenant))
        if usage is not None and usage.bytes >= limit:
            metrics.QUOTA_REJECTIONS.labels("storage_bytes").inc()
            raise QuotaRejectedError(
                f"tenant {tenant!r} stores {usage.bytes} bytes (measured {usage.measured_at}), "
                f"at or over its quota of {limit}; writes are refused until it shrinks",
                300.0,
            )

    def check_runs(self, who: Principal) -> None:
        """Refuse a run launch while the tenant has ``concurrent_runs`` unfinished runs."""
        limit = self.quotas(who.tenant).concurrent_runs
        if limit is None:
            return
        names = self._cached(
            ("workspaces", who.tenant),
            lambda: [w.workspace for w in tenants.list_workspaces(self.store, who.tenant)],
        )
        active = tenants.active_runs(self.store, who.tenant, [*names, who.workspace])
        if active >= limit:
            metrics.QUOTA_REJECTIONS.labels("concurrent_runs").inc()
            raise QuotaRejectedError(
                f"tenant {who.tenant!r} has {active} unfinished runs, its quota is {limit}",
                30.0,
            )
