"""Garbage collection of objects no live manifest references.

Crashed or losing commit attempts leave state files and manifests that no
pointer reaches. GC deletes them once they are older than a grace period (so an
attempt still in flight is never touched), and refuses to delete anything in a
domain whose chain it cannot read completely; it refuses to run at all while
``verify`` finds any problem in the scope. Given a retention policy it first
expires old history (:mod:`arco.domain.retention`), so the manifests below each
domain's new floor and the files only they referenced are collected too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from arco.catalog.iceberg_files import metadata_gc_plan
from arco.core.errors import IntegrityError
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectMeta, ObjectStore
from arco.domain.retention import ExpireReport, RetentionPolicy, expire_history
from arco.domain.verify import discover_domains, verify, walk_chain
from arco.ledger.compactor import Compactor, tier2_store
from arco.ledger.events import InvalidEventError
from arco.ledger.log import decode_object

DEFAULT_GRACE_SECONDS = 3600.0


@dataclass
class _Sweep:
    """Objects deleted (or, in a dry run, that would be) and kept by one GC pass."""

    deleted: list[str] = field(default_factory=list)
    kept: int = 0
    bytes_freed: int = 0
    dry_run: bool = False

    def sweep(
        self, store: ObjectStore, metas: Iterable[ObjectMeta], keep: Callable[[ObjectMeta], bool]
    ) -> None:
        """Delete every object of ``metas`` that ``keep`` does not keep."""
        for meta in metas:
            if keep(meta):
                self.kept += 1
                continue
            self.deleted.append(meta.key)
            self.bytes_freed += meta.size
            if not self.dry_run:
                store.delete(meta.key)


@dataclass
class GcReport(_Sweep):
    """What :func:`collect_garbage` deleted (or would delete, in a dry run)."""

    skipped_domains: list[str] = field(default_factory=list)
    expired: list[ExpireReport] = field(default_factory=list)


def collect_garbage(
    store: ObjectStore,
    scope: Scope,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    now: datetime | None = None,
    retention: RetentionPolicy | None = None,
) -> GcReport:
    """Delete unreferenced manifests and state files older than ``grace_seconds``.

    With ``retention``, each domain's history is first expired to the policy, and
    what only the expired versions referenced is unreferenced too.
    """
    keys = Keys(scope)
    problems = verify(store, scope).problems
    if problems:
        # A concurrent expiry can delete manifests below a floor this walk had not
        # seen yet; what is still wrong on a second look is real.
        problems = verify(store, scope).problems
    if problems:
        # Deleting "unreferenced" objects is only safe when the references can be
        # trusted: a lost or rolled-back head makes a whole history look unreferenced.
        raise IntegrityError(
            f"gc refuses to run while `arco verify` reports {len(problems)} problem(s) "
            f"in {scope}, e.g. {problems[0]}; fix them first (a lost head pointer: "
            "`arco repair`)"
        )
    report = GcReport(dry_run=dry_run)
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=grace_seconds)
    domains = set(discover_domains(store, keys))
    # Domains with files but no pointer (every attempt crashed before publishing).
    for prefix in (f"{keys.root}snapshots/", f"{keys.root}manifests/"):
        for meta in store.list(prefix):
            rest = meta.key[len(prefix) :]
            if "/" in rest:
                domains.add(rest.split("/", 1)[0])
    for domain in sorted(domains):
        walk = walk_chain(store, keys, domain)
        if not walk.complete:
            report.skipped_domains.append(domain)
            continue
        oldest = 0
        if retention is not None and walk.manifests:
            expired = expire_history(store, scope, domain, retention, now=now, dry_run=dry_run)
            report.expired.append(expired)
            if dry_run:
                # No floor was written, so the walk still reaches below the would-be one.
                oldest = expired.floor_after
            else:
                # Walk again from the head the floor was chosen against (or a newer one):
                # a head committed after the first walk may keep files of expired versions.
                walk = walk_chain(store, keys, domain)
                if not walk.complete:
                    report.skipped_domains.append(domain)
                    continue
        live: set[str] = set()
        for key, manifest in walk.manifests:
            if manifest.version < oldest:
                break
            live.add(key)
            live.update(f.path for f in manifest.files)
        for prefix in (keys.snapshots_prefix(domain), keys.manifests_prefix(domain)):
            report.sweep(store, store.list(prefix), _keeping(live, cutoff))
        if domain == "catalog":
            retained = [m for _, m in walk.manifests if m.version >= oldest]
            candidates, live_metadata = metadata_gc_plan(store, scope, retained)
            report.sweep(store, candidates, _keeping(live_metadata, cutoff))
    report.deleted.sort()
    return report


def _keeping(live: set[str], cutoff: datetime) -> Callable[[ObjectMeta], bool]:
    """Keep what the chain references, and anything younger than the grace period."""
    return lambda meta: meta.key in live or meta.last_modified > cutoff


@dataclass
class AssetGcReport(_Sweep):
    """What :func:`collect_asset_outputs` deleted (or would delete, in a dry run)."""

    referenced: int = 0


def collect_asset_outputs(
    store: ObjectStore,
    scope: Scope,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    now: datetime | None = None,
) -> AssetGcReport:
    """Delete stored asset values (``assets/``) that no materialization references.

    Attempts that failed after writing their value, or whose worker died, leave a
    file no ``materialization.recorded`` event names. A file is kept when the
    compacted ``materializations`` table or a not yet compacted ledger event of
    the ``executions`` domain names it, or when it is younger than the grace
    period (an attempt writes its value before it records the event).
    """
    keys = Keys(scope)
    report = AssetGcReport(dry_run=dry_run)
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=grace_seconds)
    # Listed before the references are read: a value written after this listing is
    # simply not considered, and one recorded meanwhile is found among the events.
    candidates = [m for m in store.list(f"{keys.root}assets/") if m.last_modified <= cutoff]
    if not candidates:
        return report
    dstore = tier2_store(store, scope, "executions")
    snap = dstore.read(max_staleness=0)
    referenced = set(dstore.load_table(snap, "materializations").column("location").to_pylist())
    compactor = Compactor(store, scope)
    for obj, data in compactor.ledger.read_many(compactor.pending("executions")):
        if data is None:
            continue
        try:
            envelopes = decode_object(data, obj.is_batch)
        except (InvalidEventError, ValueError, KeyError, TypeError):
            continue  # the compactor quarantines it; it names nothing we could keep
        for env in envelopes:
            if env.event_type == "materialization.recorded" and isinstance(env.payload, dict):
                referenced.add(env.payload.get("location"))
    referenced.discard(None)
    report.referenced = len(referenced)
    report.sweep(store, candidates, lambda meta: meta.key in referenced)
    report.deleted.sort()
    return report
