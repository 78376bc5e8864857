"""History retention: expire old versions of a domain so GC can reclaim their files.

Every commit writes a manifest naming its parent, so without retention a domain's
history (and every state file an old version references) grows forever. Expiry
moves the domain's **history floor** up: a small JSON object next to the pointer
(``manifests/<domain>.floor.json``) naming the oldest retained manifest by key and
SHA-256. The chain walk of ``verify`` and ``gc`` stops there, so the manifests
below it, and the state files only they reference, become unreferenced and GC
deletes them once they are older than its grace period.

Safety:

* Only versions at or below the head can be expired, and the head is always
  retained, so a commit (which reads the head and writes above it) never needs an
  expired object.
* The floor only moves up: it is written with compare-and-swap, re-read on a lost
  race, and never lowered, so a slow expiry cannot re-expose a chain GC has already
  cut (which ``verify`` would report as damage).
* Writing the floor deletes nothing; deletion is GC's job, with its grace period
  and ``--dry-run``. A crash between the two leaves a valid store: the next GC run
  finishes the work.

Time travel (``as_of_version``) below the floor answers "no longer retained".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from arco.core.errors import (
    CommitConflictError,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from arco.core.ids import utc_now
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import Match, ObjectStore, PutMode
from arco.domain.manifest import Manifest, Pointer, fetch_manifest

FLOOR_FORMAT = "arco.floor/1"


@dataclass(frozen=True)
class Floor:
    """The oldest retained version of a domain, named by manifest key and SHA-256."""

    domain: str
    version: int
    manifest: str
    manifest_sha256: str
    set_at: str

    def to_bytes(self) -> bytes:
        """Stable JSON encoding."""
        raw = {**self.__dict__, "format": FLOOR_FORMAT}
        return json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, key: str = "") -> Floor:
        """Decode, raising :class:`IntegrityError` on anything malformed."""
        try:
            raw = json.loads(data)
            if raw.get("format") != FLOOR_FORMAT:
                raise ValueError(f"unknown format {raw.get('format')!r}")
            raw.pop("format")
            floor = cls(**raw)
            if not isinstance(floor.version, int) or floor.version < 1:
                raise ValueError(f"version must be a positive integer, got {floor.version!r}")
            return floor
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{key}: malformed history floor ({exc})") from exc


def read_floor(store: ObjectStore, keys: Keys, domain: str) -> tuple[Floor | None, str | None]:
    """The domain's history floor and its object version (``(None, None)``: full history)."""
    key = keys.floor(domain)
    try:
        data, version = store.get(key)
    except ObjectNotFoundError:
        return None, None
    floor = Floor.from_bytes(data, key=key)
    if floor.domain != domain:
        raise IntegrityError(f"{key}: names domain {floor.domain!r}")
    return floor, version


def floor_version(store: ObjectStore, keys: Keys, domain: str) -> int:
    """The oldest retained version of ``domain`` (1 when nothing was ever expired)."""
    floor, _ = read_floor(store, keys, domain)
    return floor.version if floor is not None else 1


def require_retained(store: ObjectStore, keys: Keys, domain: str, version: int) -> None:
    """Raise :class:`NotFoundError` when ``version`` of ``domain`` lies below its floor."""
    oldest = floor_version(store, keys, domain)
    if version < oldest:
        raise NotFoundError(
            f"{domain} version {version} is no longer retained (history starts at version {oldest})"
        )


@dataclass
class ExpireReport:
    """What :func:`expire_history` did (or would do) to one domain."""

    domain: str
    head: int = 0
    floor_before: int = 1
    floor_after: int = 1
    dry_run: bool = False

    @property
    def expired(self) -> int:
        """Versions newly expired."""
        return self.floor_after - self.floor_before

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**self.__dict__, "expired": self.expired}


@dataclass
class RetentionPolicy:
    """Which versions to keep: the newest ``keep_versions`` and any newer than ``keep_for``.

    A version is expired only when both rules let it go; the head is always kept.
    """

    keep_versions: int | None = None
    keep_for: timedelta | None = None

    def __post_init__(self) -> None:
        if self.keep_versions is None and self.keep_for is None:
            raise InvalidArgumentError("a retention policy needs keep_versions or keep_for")
        if self.keep_versions is not None and self.keep_versions < 1:
            raise InvalidArgumentError(
                f"keep_versions must be at least 1 (the head), got {self.keep_versions}"
            )
        if self.keep_for is not None and self.keep_for < timedelta(0):
            raise InvalidArgumentError(f"keep_for must not be negative, got {self.keep_for}")

    def keeps(self, manifest: Manifest, head: int, now: datetime) -> bool:
        """True if ``manifest``'s version must be retained."""
        if manifest.version == head:
            return True
        if self.keep_versions is not None and manifest.version > head - self.keep_versions:
            return True
        if self.keep_for is not None:
            committed = datetime.fromisoformat(manifest.committed_at)
            if committed.tzinfo is None:
                committed = committed.replace(tzinfo=UTC)
            if committed >= now - self.keep_for:
                return True
        return False


def expire_history(
    store: ObjectStore,
    scope: Scope,
    domain: str,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    max_attempts: int = 10,
) -> ExpireReport:
    """Move ``domain``'s history floor up to the oldest version ``policy`` keeps.

    Deletes nothing: run :func:`~arco.maintenance.gc.collect_garbage` afterwards to
    reclaim the expired manifests and the state files only they referenced.
    """
    keys = Keys(scope)
    report = ExpireReport(domain=domain, dry_run=dry_run)
    at = now or datetime.now(UTC)
    for _ in range(max_attempts):
        floor, floor_version_tag = read_floor(store, keys, domain)
        report.floor_before = report.floor_after = floor.version if floor is not None else 1
        try:
            data, _ = store.get(keys.pointer(domain))
        except ObjectNotFoundError:
            return report  # nothing committed: no history to expire
        pointer = Pointer.from_bytes(data, key=keys.pointer(domain))
        report.head = pointer.version
        # Walk newest to oldest while versions are kept; the last kept one is the floor.
        key, sha = pointer.manifest, pointer.manifest_sha256
        target: tuple[str, str, Manifest] | None = None
        while True:
            manifest = fetch_manifest(store, keys, key, sha)
            if not policy.keeps(manifest, pointer.version, at):
                break
            target = (key, sha, manifest)
            if manifest.parent is None or manifest.version <= report.floor_before:
                break
            key, sha = manifest.parent.path, manifest.parent.sha256
        assert target is not None  # the head is always kept
        new_key, new_sha, new_manifest = target
        if new_manifest.version <= report.floor_before:
            return report  # the floor only moves up
        report.floor_after = new_manifest.version
        if dry_run:
            return report
        record = Floor(
            domain=domain,
            version=new_manifest.version,
            manifest=new_key,
            manifest_sha256=new_sha,
            set_at=utc_now().isoformat(),
        )
        mode: PutMode = "create" if floor_version_tag is None else Match(floor_version_tag)
        try:
            store.put(keys.floor(domain), record.to_bytes(), mode)
        except PreconditionFailedError:
            continue  # another expiry moved it: re-read and decide again
        return report
    raise CommitConflictError(
        f"{domain}: the history floor kept changing under {max_attempts} attempts; try again"
    )
