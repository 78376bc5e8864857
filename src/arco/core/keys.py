"""The one module that builds object keys.

No other code concatenates key strings: each builder validates its inputs, so a
name from a request can never escape its scope.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from arco.core.errors import InvalidNameError
from arco.core.scope import (
    Scope,
    validate_dotted,
    validate_identifier,
    validate_key_part,
    validate_scope_part,
)

DOMAINS_BUILTIN = ("catalog", "lineage", "search", "executions")
_DOMAIN_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def validate_domain(domain: object) -> str:
    """A domain name is lowercase ``[a-z][a-z0-9_]*`` (at most 32 characters)."""
    if not isinstance(domain, str) or not _DOMAIN_RE.match(domain):
        raise InvalidNameError(f"domain {domain!r} must match [a-z][a-z0-9_]{{0,31}}")
    return domain


def validate_ulid(value: object) -> str:
    """A canonical 26-character Crockford base32 ULID."""
    if not isinstance(value, str) or not _ULID_RE.match(value):
        raise InvalidNameError(f"{value!r} is not a ULID")
    return value


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builder for one scope."""

    scope: Scope

    @property
    def root(self) -> str:
        """Prefix of everything this scope owns."""
        return self.scope.prefix

    def pointer(self, domain: str) -> str:
        """The domain's head pointer: the only mutable object besides the lock."""
        return f"{self.root}manifests/{validate_domain(domain)}.pointer.json"

    def floor(self, domain: str) -> str:
        """The domain's history floor: the oldest retained manifest (see catalog.retention)."""
        return f"{self.root}manifests/{validate_domain(domain)}.floor.json"

    def manifests_prefix(self, domain: str) -> str:
        """Prefix under which the domain's immutable manifests live."""
        return f"{self.root}manifests/{validate_domain(domain)}/"

    def manifest(self, domain: str, version: int, commit_id: str) -> str:
        """An immutable manifest; the commit id keeps a crashed attempt from blocking a retry."""
        if version < 0:
            raise InvalidNameError(f"manifest version must be >= 0, got {version}")
        return f"{self.manifests_prefix(domain)}{version:020d}-{validate_ulid(commit_id)}.json"

    def snapshots_prefix(self, domain: str) -> str:
        """Prefix of the domain's immutable state files."""
        return f"{self.root}snapshots/{validate_domain(domain)}/"

    def snapshot_file(self, domain: str, version: int, commit_id: str, name: str) -> str:
        """An immutable Parquet (or JSON) state file written by one commit attempt."""
        # Flat (no directory per commit): on a local folder a new directory per
        # commit costs a mkdir on the write path.
        return (
            f"{self.snapshots_prefix(domain)}{version:020d}-{validate_ulid(commit_id)}-"
            f"{validate_key_part('file name', name)}"
        )

    def lock(self, domain: str) -> str:
        """The domain's lease lock."""
        return f"{self.root}locks/{validate_domain(domain)}.lock.json"

    def ledger_prefix(self, domain: str) -> str:
        """Prefix of the domain's Tier-2 event ledger."""
        return f"{self.root}ledger/{validate_domain(domain)}/"

    def ledger_event(self, domain: str, day: datetime, event_id: str) -> str:
        """One create-only ledger event, partitioned by UTC date."""
        return f"{self.ledger_prefix(domain)}{day:%Y-%m-%d}/{validate_ulid(event_id)}.json"

    def ledger_batch(self, domain: str, day: datetime, batch_id: str) -> str:
        """One create-only ledger object holding a batch of events."""
        return f"{self.ledger_prefix(domain)}{day:%Y-%m-%d}/{validate_ulid(batch_id)}.batch.json"

    def ledger_day_prefix(self, domain: str, day: datetime) -> str:
        """Prefix of one UTC day of a domain's ledger."""
        return f"{self.ledger_prefix(domain)}{day:%Y-%m-%d}/"

    def quarantined(self, domain: str, object_id: str) -> str:
        """Where a quarantined ledger object is copied."""
        return f"{self.quarantine_prefix(domain)}{validate_ulid(object_id)}.json"

    def quarantine_prefix(self, domain: str) -> str:
        """Prefix where events that arrive too late are moved aside, never dropped."""
        return f"{self.root}quarantine/{validate_domain(domain)}/"

    def asset_prefix(self, asset_key: str) -> str:
        """Prefix of every stored value of one asset."""
        return f"{self.root}assets/{validate_key_part('asset key', asset_key)}/"

    def asset_output(
        self, asset_key: str, partition_hash: str | None, materialization_id: str, ext: str
    ) -> str:
        """Where a materialized asset value is stored (the partition is hashed: its
        canonical form may contain characters that do not belong in a key)."""
        part = f"p={validate_key_part('partition hash', partition_hash)}" if partition_hash else "_"
        return (
            f"{self.root}assets/{validate_key_part('asset key', asset_key)}/{part}/"
            f"{validate_ulid(materialization_id)}.{validate_key_part('extension', ext)}"
        )

    def run_cancel(self, run_id: str) -> str:
        """Marker object asking a running scheduler to cancel ``run_id``."""
        return f"{self.root}control/runs/{validate_ulid(run_id)}.cancel.json"

    def attempt_outcome(self, asset_key: str, run_id: str, task_id: str, attempt: int) -> str:
        """The outcome of one attempt, as the executor that ran it recorded it (dask:
        see :func:`arco.flow.executors.dask.execute_once`). It sits beside the asset's
        values, written with the same right, and the asset gc removes it once past
        its grace period, as it does an orphaned value. Task ids hold partition keys,
        so they are hashed here."""
        task = hashlib.sha256(task_id.encode()).hexdigest()[:32]
        return (
            f"{self.asset_prefix(asset_key)}_attempts/"
            f"{validate_ulid(run_id)}.{task}.{int(attempt)}.json"
        )

    def run_request(self, run_id: str) -> str:
        """The immutable request of a queued run (its plan and options)."""
        return f"{self.root}control/runs/{validate_ulid(run_id)}.request.json"

    def run_lease(self, run_id: str) -> str:
        """The lease lock naming the run worker that owns ``run_id``."""
        return f"{self.root}control/runs/{validate_ulid(run_id)}.lease.json"

    def run_idempotency(self, digest: str) -> str:
        """Maps the hash of a run trigger's ``Idempotency-Key`` to the run it created."""
        return f"{self.root}control/runs/idempotency/{validate_key_part('key digest', digest)}.json"

    def run_queue_prefix(self) -> str:
        """Prefix of the markers of runs that are not finished yet (what workers list)."""
        return f"{self.root}control/queue/"

    def run_queued(self, run_id: str) -> str:
        """Marker of an unfinished run: removed once the run is terminal."""
        return f"{self.run_queue_prefix()}{validate_ulid(run_id)}.json"

    def automation_state(self) -> str:
        """The automation cursor document: schedule cursors, sensor cursors and claims,
        backfill progress and launches in flight (compare-and-swap, ADR 016)."""
        return f"{self.root}control/automation/state.json"

    def backfill_request(self, backfill_id: str) -> str:
        """The immutable request of a backfill: selection, partitions and chunks."""
        return f"{self.root}control/automation/backfills/{validate_ulid(backfill_id)}.json"

    def warehouse_prefix(self) -> str:
        """Prefix of the scope's table data: Iceberg table folders live under it."""
        return f"{self.root}warehouse/"

    def iceberg_table_prefix(self, namespace: str, table: str, table_id: str) -> str:
        """The default folder of an Iceberg table (its id keeps re-created names apart)."""
        return (
            f"{self.warehouse_prefix()}{validate_dotted('namespace', namespace)}/"
            f"{validate_identifier('table name', table)}-{validate_ulid(table_id).lower()}/"
        )

    def is_within(self, key: object) -> bool:
        """True when ``key`` is a well-formed store key under this scope's prefix."""
        try:
            self.require_within(key)
        except InvalidNameError:
            return False
        return True

    def require_within(self, key: object, kind: str = "key") -> str:
        """Return ``key`` if it is a well-formed store key inside this scope, else raise.

        The one check for every key that arrives from outside -- an event's
        ``location``, a request body, a manifest or state row read back -- before
        anything reads or writes it. The message names the key relative to the
        store, never a server path.
        """
        value = validate_store_key(kind, key)
        if not value.startswith(self.root):
            raise InvalidNameError(f"{kind} {value!r} lies outside this scope ({self.root})")
        return value


MAX_KEY_LENGTH = 1024
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_external(location: object) -> bool:
    """True for a location with a URL scheme (``s3://b/k``): not a key of Arco's store."""
    return isinstance(location, str) and bool(_URL_SCHEME.match(location))


_ENCODED_SEPARATOR = re.compile(r"%(2[eEfF]|5[cC]|25)")


def validate_store_key(kind: str, key: object) -> str:
    """A relative ``/``-separated store key: no absolute path, no empty, ``.`` or ``..``
    segment, no backslash, no control or invisible character, no percent-encoded
    separator, at most ``MAX_KEY_LENGTH`` characters. Says nothing about scope."""
    if not isinstance(key, str):
        raise InvalidNameError(f"{kind} must be a string, got {type(key).__name__}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidNameError(f"{kind} must have 1 to {MAX_KEY_LENGTH} characters")
    shown = key[:200]
    # Printable ASCII holds none of these categories: only other keys need the
    # per-character lookup (a manifest's keys are checked on every read).
    if not key.isprintable() or (
        not key.isascii()
        and any(
            unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for ch in key
        )
    ):
        raise InvalidNameError(f"{kind} {shown!r} contains control or invisible characters")
    if "\\" in key or "://" in key:
        raise InvalidNameError(f"{kind} {shown!r} must be a store key, not a path or URL")
    if key.startswith("/"):
        raise InvalidNameError(f"{kind} {shown!r} must not be an absolute path")
    if _ENCODED_SEPARATOR.search(key):
        raise InvalidNameError(f"{kind} {shown!r} must not contain percent-encoded separators")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidNameError(f"{kind} {shown!r} has an empty, '.' or '..' segment")
    return key


@dataclass(frozen=True, slots=True)
class TenantKeys:
    """Keys of one tenant's administration, beside (never inside) its workspaces.

    ``tenant={t}/_admin/`` cannot collide with a workspace, whose keys all start
    with ``tenant={t}/workspace=``.
    """

    tenant: str

    def __post_init__(self) -> None:
        validate_scope_part("tenant", self.tenant)

    @property
    def root(self) -> str:
        """Prefix of everything the tenant owns (its workspaces included)."""
        return f"tenant={self.tenant}/"

    @property
    def admin_root(self) -> str:
        """Prefix of the tenant's administration objects."""
        return f"{self.root}_admin/"

    def quotas(self) -> str:
        """The tenant's quota document (compare-and-swap)."""
        return f"{self.admin_root}quotas.json"

    def storage_usage(self) -> str:
        """The tenant's last measured storage usage (written by ``arco admin measure``)."""
        return f"{self.admin_root}storage.json"

    def workspaces_prefix(self) -> str:
        """Prefix of the workspace registry."""
        return f"{self.admin_root}workspaces/"

    def workspace(self, workspace: str) -> str:
        """The registry record of one workspace (compare-and-swap)."""
        return f"{self.workspaces_prefix()}{validate_scope_part('workspace', workspace)}.json"

    def usage_prefix(self, kind: str | None = None) -> str:
        """Prefix of the per-minute usage counters (of one quota ``kind``)."""
        base = f"{self.admin_root}usage/"
        return base if kind is None else f"{base}{validate_identifier('quota', kind)}/"

    def usage_slice(self, kind: str, minute: int, index: int) -> str:
        """One create-only slice of a quota's per-minute allowance (see arco.governance.tenants)."""
        if minute < 0 or index < 0:
            raise InvalidNameError("usage minute and slice index must be non-negative")
        return f"{self.usage_prefix(kind)}{minute:010d}/{index:06d}"
