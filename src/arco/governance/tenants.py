"""Tenant administration: workspaces, quotas and their enforcement through the store.

Everything here lives under ``tenant={t}/_admin/`` (:class:`~arco.core.keys.TenantKeys`)
and, like the rest of Arco, needs no database: any number of API processes share it.

* **Workspaces.** A registry record per workspace (``active`` or ``retired``),
  changed by compare-and-swap. A retired workspace refuses every API request;
  its data stays until deleted by hand (retiring is reversible).
* **Quotas.** One document per tenant, changed by compare-and-swap:
  ``ingest_per_minute`` (Tier-2 ingest requests, each one ledger object),
  ``signed_urls_per_minute``, ``storage_bytes`` and ``concurrent_runs``.
* **Per-minute allowances across processes** (:class:`MinuteAllowance`). A
  minute's allowance of ``limit`` units is cut into at most 32 slices; a process
  claims a slice by creating its object (create-only, so two processes can never
  hold the same slice) and spends it locally. When every slice of the minute is
  claimed, further requests are refused until the next minute. The allowance is
  never exceeded; at worst the unspent rest of slices held by idle processes is
  lost for that minute. Cost: one PUT per slice claimed (at most 32 a minute per
  tenant and quota at full use, plus one LIST per process and minute), none
  while idle. Old minutes are removed by :func:`prune_usage` (``arco admin
  prune-usage``, run by the maintenance CronJob).
* **Storage bytes** are measured by listing the tenant's prefix
  (:func:`measure_storage`, a CronJob); writes are refused while the last
  measurement is at or over the quota. Enforcement is as fresh as that measurement.
* **Concurrent runs** count the unfinished-run markers of the tenant's
  registered workspaces (one LIST per workspace, at each run launch).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from arco.core.actor import current_actor
from arco.core.errors import (
    AlreadyExistsError,
    ArcoError,
    InvalidArgumentError,
    NotFoundError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from arco.core.keys import Keys, TenantKeys
from arco.core.scope import Scope, validate_scope_part
from arco.core.storage import Match, ObjectStore

QUOTA_NAMES = ("ingest_per_minute", "signed_urls_per_minute", "storage_bytes", "concurrent_runs")
#: A minute's allowance is claimed in at most this many slices.
MAX_SLICES = 32
_CAS_ATTEMPTS = 20


class QuotaExceededError(ArcoError):
    """A tenant quota refuses the request (HTTP 429 with ``Retry-After``)."""

    code = "quota-exceeded"

    def __init__(self, message: str, quota: str, retry_after: float) -> None:
        super().__init__(message)
        self.quota = quota
        self.retry_after = retry_after


@dataclass(frozen=True)
class Quotas:
    """A tenant's limits; ``None`` means unlimited."""

    ingest_per_minute: int | None = None
    signed_urls_per_minute: int | None = None
    storage_bytes: int | None = None
    concurrent_runs: int | None = None

    @classmethod
    def from_dict(cls, raw: Any) -> Quotas:
        """Validate a quota mapping (unknown names and negative values are refused)."""
        if not isinstance(raw, dict):
            raise InvalidArgumentError("quotas must be an object")
        unknown = set(raw) - set(QUOTA_NAMES)
        if unknown:
            raise InvalidArgumentError(
                f"unknown quota {sorted(unknown)[0]!r}; quotas are {', '.join(QUOTA_NAMES)}"
            )
        values: dict[str, int | None] = {}
        for name in QUOTA_NAMES:
            value = raw.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise InvalidArgumentError(f"quota {name} must be a non-negative integer or null")
            values[name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, int | None]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class QuotaDocument:
    """The stored quota document and who last changed it."""

    quotas: Quotas
    revision: int = 0
    updated_at: str | None = None
    updated_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "quotas": self.quotas.to_dict(),
            "revision": self.revision,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class WorkspaceRecord:
    """One registered workspace."""

    tenant: str
    workspace: str
    status: str = "active"
    description: str = ""
    created_at: str = ""
    created_by: str = ""
    updated_at: str = ""
    updated_by: str = ""
    registered: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _load(store: ObjectStore, key: str) -> tuple[dict[str, Any], str] | None:
    try:
        data, version = store.get(key)
    except ObjectNotFoundError:
        return None
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise InvalidArgumentError(f"{key}: not a JSON object")
    return raw, version


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# ------------------------------------------------------------------ quotas
def get_quotas(store: ObjectStore, tenant: str) -> QuotaDocument:
    """The tenant's quota document (all unlimited if none was ever set)."""
    found = _load(store, TenantKeys(tenant).quotas())
    if found is None:
        return QuotaDocument(Quotas())
    raw, _ = found
    return QuotaDocument(
        Quotas.from_dict(raw.get("quotas") or {}),
        int(raw.get("revision") or 0),
        raw.get("updated_at"),
        raw.get("updated_by"),
    )


def set_quotas(store: ObjectStore, tenant: str, changes: dict[str, Any]) -> QuotaDocument:
    """Change some quotas (``None`` removes a limit); others keep their value.

    Compare-and-swap on the document, so two admins' changes never overwrite each other.
    """
    Quotas.from_dict(changes)  # validate before touching anything
    key = TenantKeys(tenant).quotas()
    for _ in range(_CAS_ATTEMPTS):
        found = _load(store, key)
        raw, version = found if found is not None else ({}, None)
        merged = {**(raw.get("quotas") or {}), **changes}
        doc = QuotaDocument(
            Quotas.from_dict(merged),
            int(raw.get("revision") or 0) + 1,
            _now(),
            current_actor(),
        )
        try:
            store.put(key, _dump(doc.to_dict()), "create" if version is None else Match(version))
        except PreconditionFailedError:
            continue
        return doc
    raise PreconditionFailedError(f"{key}: quota document kept changing; try again")


# -------------------------------------------------------------- workspaces
def _record(tenant: str, workspace: str, raw: dict[str, Any]) -> WorkspaceRecord:
    return WorkspaceRecord(
        tenant=tenant,
        workspace=workspace,
        status=str(raw.get("status") or "active"),
        description=str(raw.get("description") or ""),
        created_at=str(raw.get("created_at") or ""),
        created_by=str(raw.get("created_by") or ""),
        updated_at=str(raw.get("updated_at") or ""),
        updated_by=str(raw.get("updated_by") or ""),
    )


def get_workspace(store: ObjectStore, tenant: str, workspace: str) -> WorkspaceRecord | None:
    """The registry record of ``workspace``, None if it was never registered."""
    found = _load(store, TenantKeys(tenant).workspace(workspace))
    return None if found is None else _record(tenant, workspace, found[0])


def create_workspace(
    store: ObjectStore, tenant: str, workspace: str, *, description: str = ""
) -> WorkspaceRecord:
    """Register a new workspace (:class:`AlreadyExistsError` if it is registered)."""
    Scope(tenant, workspace)
    if len(description) > 1024:
        raise InvalidArgumentError("description must be at most 1024 characters")
    now, who = _now(), current_actor()
    record = WorkspaceRecord(tenant, workspace, "active", description, now, who, now, who)
    body = {k: v for k, v in record.to_dict().items() if k not in ("tenant", "registered")}
    try:
        store.put(TenantKeys(tenant).workspace(workspace), _dump(body), "create")
    except PreconditionFailedError as exc:
        raise AlreadyExistsError(f"workspace {tenant}/{workspace} already exists") from exc
    return record


def set_workspace_status(
    store: ObjectStore, tenant: str, workspace: str, status: str
) -> WorkspaceRecord:
    """Retire (``retired``) or reactivate (``active``) a registered workspace.

    Retiring a workspace nobody registered registers it as retired, so any
    workspace a token can name can be shut off.
    """
    if status not in ("active", "retired"):
        raise InvalidArgumentError("status must be 'active' or 'retired'")
    key = TenantKeys(tenant).workspace(workspace)
    for _ in range(_CAS_ATTEMPTS):
        found = _load(store, key)
        if found is None and status == "active":
            raise NotFoundError(f"workspace {tenant}/{workspace} is not registered")
        raw, version = found if found is not None else ({}, None)
        now, who = _now(), current_actor()
        body = {
            **raw,
            "status": status,
            "updated_at": now,
            "updated_by": who,
            "created_at": raw.get("created_at") or now,
            "created_by": raw.get("created_by") or who,
        }
        try:
            store.put(key, _dump(body), "create" if version is None else Match(version))
        except PreconditionFailedError:
            continue
        return _record(tenant, workspace, body)
    raise PreconditionFailedError(f"{key}: workspace record kept changing; try again")


def _child_names(store: ObjectStore, prefix: str, marker: str) -> set[str]:
    """Names ``X`` of the ``{prefix}{marker}X/`` folders, one level down.

    Uses a delimited listing where the backend has one (every obstore backend);
    otherwise lists everything under ``prefix``.
    """
    inner = getattr(store, "inner", None)
    if inner is not None:
        import obstore

        result = obstore.list_with_delimiter(inner, prefix or None)
        names = set()
        for common in result["common_prefixes"]:
            part = common[len(prefix) :].strip("/")
            if part.startswith(marker):
                names.add(part[len(marker) :])
        return names
    names = set()
    for meta in store.list(prefix):
        part = meta.key[len(prefix) :].split("/", 1)[0]
        if part.startswith(marker) and "/" in meta.key[len(prefix) :]:
            names.add(part[len(marker) :])
    return names


def list_workspaces(store: ObjectStore, tenant: str) -> list[WorkspaceRecord]:
    """Registered workspaces, plus those that hold data but were never registered."""
    tkeys = TenantKeys(tenant)
    out: dict[str, WorkspaceRecord] = {}
    for meta in store.list(tkeys.workspaces_prefix()):
        name = meta.key[len(tkeys.workspaces_prefix()) :].removesuffix(".json")
        found = _load(store, meta.key)
        if found is not None:
            out[name] = _record(tenant, name, found[0])
    for name in _child_names(store, tkeys.root, "workspace="):
        if name not in out:
            out[name] = WorkspaceRecord(tenant, name, "active", registered=False)
    return [out[k] for k in sorted(out)]


def list_tenants(store: ObjectStore) -> list[str]:
    """Every tenant that holds an object in the store (one delimited listing)."""
    return sorted(_child_names(store, "", "tenant="))


# ------------------------------------------------------------ usage limits
@dataclass
class _Window:
    minute: int = -1
    next_index: int = 0
    remaining: int = 0
    exhausted: bool = False


@dataclass
class MinuteAllowance:
    """A per-tenant, per-minute allowance shared by every process through the store."""

    store: ObjectStore
    tenant: str
    kind: str
    clock: Any = time.time
    _windows: dict[int, _Window] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def local(self, limit: int, units: int = 1) -> bool:
        """Whether :meth:`take` of ``units`` would be answered from this process's slice of
        the current minute, without touching the store."""
        minute = int(self.clock() // 60)
        with self._lock:
            window = self._windows.get(limit)
            return window is not None and window.minute == minute and window.remaining >= units

    def take(self, limit: int, units: int = 1) -> None:
        """Spend ``units`` of this minute's ``limit`` or raise :class:`QuotaExceededError`."""
        if units <= 0:
            return
        now = self.clock()
        minute = int(now // 60)
        retry = 60 - (now % 60)
        if units > limit:
            raise QuotaExceededError(
                f"{self.kind} quota of tenant {self.tenant!r} is {limit} a minute; "
                f"this request needs {units}",
                self.kind,
                retry,
            )
        size = max(1, math.ceil(limit / MAX_SLICES))
        slices = math.ceil(limit / size) if limit else 0
        tkeys = TenantKeys(self.tenant)
        with self._lock:
            window = self._windows.get(limit)
            if window is None or window.minute != minute:
                window = _Window(minute)
                # Skip the slices other processes took already (one LIST a minute).
                taken = sum(
                    1 for _ in self.store.list(f"{tkeys.usage_prefix(self.kind)}{minute:010d}/")
                )
                window.next_index = taken
                self._windows = {limit: window}
            while window.remaining < units:
                if window.exhausted or window.next_index >= slices:
                    window.exhausted = True
                    raise QuotaExceededError(
                        f"{self.kind} quota of tenant {self.tenant!r} ({limit} a minute) "
                        "is used up for this minute",
                        self.kind,
                        retry,
                    )
                index = window.next_index
                window.next_index += 1
                try:
                    self.store.put(tkeys.usage_slice(self.kind, minute, index), b"", "create")
                except PreconditionFailedError:
                    continue  # another process holds this slice
                window.remaining += min(size, limit - index * size)
            window.remaining -= units


def prune_usage(store: ObjectStore, tenant: str, *, keep_minutes: int = 60) -> int:
    """Delete usage slices older than ``keep_minutes``; returns how many."""
    floor = int(time.time() // 60) - keep_minutes
    tkeys = TenantKeys(tenant)
    prefix = tkeys.usage_prefix()
    removed = 0
    for meta in list(store.list(prefix)):
        parts = meta.key[len(prefix) :].split("/")
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < floor:
            store.delete(meta.key)
            removed += 1
    return removed


@dataclass(frozen=True)
class StorageUsage:
    """A measurement of a tenant's stored bytes."""

    tenant: str
    bytes: int
    objects: int
    measured_at: str


def measure_storage(store: ObjectStore, tenant: str) -> StorageUsage:
    """List the tenant's prefix, sum object sizes and record the result."""
    tkeys = TenantKeys(validate_scope_part("tenant", tenant))
    total = count = 0
    for meta in store.list(tkeys.root):
        if meta.key.startswith(tkeys.usage_prefix()):
            continue
        total += meta.size
        count += 1
    usage = StorageUsage(tenant, total, count, _now())
    store.put(tkeys.storage_usage(), _dump(asdict(usage)), "overwrite")
    return usage


def storage_usage(store: ObjectStore, tenant: str) -> StorageUsage | None:
    """The last measurement, None if the tenant was never measured."""
    found = _load(store, TenantKeys(tenant).storage_usage())
    if found is None:
        return None
    raw = found[0]
    return StorageUsage(
        tenant, int(raw.get("bytes", 0)), int(raw.get("objects", 0)), str(raw.get("measured_at"))
    )


def active_runs(store: ObjectStore, tenant: str, workspaces: Iterable[str]) -> int:
    """Unfinished runs (queued or running) across ``workspaces`` of ``tenant``."""
    total = 0
    for workspace in sorted(set(workspaces)):
        prefix = Keys(Scope(tenant, workspace)).run_queue_prefix()
        total += sum(1 for m in store.list(prefix) if m.key.endswith(".json"))
    return total
