"""A lost head pointer: detect it, refuse to paper over it, and re-point the domain.

A domain's head pointer is its only mutable object. If it is deleted (by hand, a
bad sync, a bucket policy), reading the domain as empty or letting the next
writer create a fresh pointer at version 1 would fork the history, and ``gc``
would then delete every manifest and file of the old one as unreferenced.

So a missing pointer is checked once against the domain's manifests (one LIST,
only on that rare path; reads otherwise never list, invariant I7): a manifest of
version 2 or more proves a pointer once existed, and readers and writers raise
:class:`~arco.core.errors.PointerMissingError`. (Version-1 manifests alone are
what a crashed first commit leaves: orphans, not history.) :func:`repair_domain`
re-points the domain, under its lease, to the newest manifest whose whole chain
verifies.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

from arco.core.errors import IntegrityError, ObjectNotFoundError, PointerMissingError
from arco.core.ids import sha256_hex
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import Match, ObjectMeta, ObjectStore, PutMode
from arco.domain.lock import DEFAULT_LOCK_WAIT, LeaseLock
from arco.domain.manifest import Manifest, Pointer

_MANIFEST_NAME = re.compile(r"^(\d{20})-[0-9A-HJKMNP-TV-Z]{26}\.json$")
#: Every verify problem about manifests off the head's chain contains this phrase.
OFF_CHAIN = "not on the head's chain"


def manifest_version(keys: Keys, domain: str, key: str) -> int | None:
    """The version in a manifest key of ``domain`` (None for any other object)."""
    prefix = keys.manifests_prefix(domain)
    if not key.startswith(prefix):
        return None
    match = _MANIFEST_NAME.match(key[len(prefix) :])
    return int(match.group(1)) if match else None


def find_stranded(store: ObjectStore, keys: Keys, domain: str) -> str | None:
    """A manifest proving ``domain`` had a head (version >= 2), or None. Lists once."""
    for meta in store.list(keys.manifests_prefix(domain)):
        version = manifest_version(keys, domain, meta.key)
        if version is not None and version >= 2:
            return meta.key
    return None


def pointer_missing(keys: Keys, domain: str, evidence: str) -> PointerMissingError:
    """The error readers and writers raise for a domain whose pointer was lost."""
    return PointerMissingError(
        f"{domain}: the head pointer {keys.pointer(domain)} is missing but committed "
        f"manifests exist (e.g. {evidence}); refusing to read the domain as empty or to "
        f"start a new history over it. Run `arco verify`, then "
        f"`arco repair --domain {domain}` to re-point it to the newest valid manifest"
    )


@dataclass
class RepairReport:
    """What :func:`repair_domain` found and did (or would do, in a dry run)."""

    domain: str
    #: ``"ok"`` (nothing to do), ``"repointed"``, ``"diverged"`` (a sound head beside
    #: another history: left alone) or ``"unrepairable"`` (no manifest verifies).
    action: str = "ok"
    before: int | None = None
    after: int | None = None
    manifest: str | None = None
    #: Newer manifests passed over because their chain does not verify.
    rejected: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON form (``arco repair --json``)."""
        return dict(self.__dict__)


class _PointerOverlay(ObjectStore):
    """``store`` as it would look with ``pointer`` published (to verify a candidate)."""

    def __init__(self, store: ObjectStore, key: str, pointer: bytes) -> None:
        self._store, self._key, self._pointer = store, key, pointer
        self.url = store.url

    def get(self, key: str) -> tuple[bytes, str]:
        """The candidate pointer, or the store's object."""
        return (self._pointer, "candidate") if key == self._key else self._store.get(key)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Delegated."""
        return self._store.get_range(key, start, end)

    def head(self, key: str) -> ObjectMeta:
        """Delegated."""
        return self._store.head(key)

    def list(self, prefix: str) -> Iterator[ObjectMeta]:
        """Delegated."""
        return self._store.list(prefix)

    def delete(self, key: str) -> None:  # pragma: no cover - verification never deletes
        """Refused: an overlay is read-only."""
        raise IntegrityError("read-only overlay")

    def put(self, key: str, data: bytes, mode: PutMode = "overwrite") -> str:  # pragma: no cover
        """Refused: an overlay is read-only."""
        raise IntegrityError("read-only overlay")

    def sign(self, key: str, ttl_seconds: int) -> str:  # pragma: no cover
        """Delegated."""
        return self._store.sign(key, ttl_seconds)


def _candidate_pointer(store: ObjectStore, key: str) -> Pointer | None:
    try:
        data, _ = store.get(key)
        manifest = Manifest.from_bytes(data, key=key)
    except (ObjectNotFoundError, IntegrityError):
        return None
    # The pointer mirrors its manifest field by field (what verify checks).
    return Pointer(
        domain=manifest.domain,
        version=manifest.version,
        manifest=key,
        manifest_sha256=sha256_hex(data),
        commit_id=manifest.commit_id,
        fencing_token=manifest.fencing_token,
        updated_at=manifest.committed_at,
    )


def _verifies(store: ObjectStore, scope: Scope, domain: str, pointer: Pointer) -> bool:
    from arco.domain.verify import verify

    overlay = _PointerOverlay(store, Keys(scope).pointer(domain), pointer.to_bytes())
    problems = verify(overlay, scope, [domain]).problems
    # Manifests of another history are what repair resolves, not a flaw of this chain.
    return not [p for p in problems if OFF_CHAIN not in p.message]


def repair_domain(
    store: ObjectStore,
    scope: Scope,
    domain: str,
    *,
    dry_run: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> RepairReport:
    """Re-point ``domain`` to the newest manifest whose chain verifies, under its lease.

    Does nothing when the head already verifies and no manifest lies off its chain,
    and reports ``"diverged"`` (changing nothing) when the head's chain is sound but
    another history lies beside it. Otherwise (the pointer is missing, unreadable
    or names a broken chain) candidates are tried newest version first; the first whose chain and
    files all verify becomes the head (create, or compare-and-swap from the pointer
    read under the lease). The newer manifests it passes over are listed in the
    report; nothing is deleted (``gc`` collects what stays unreferenced).
    """
    from arco.domain.verify import walk_chain

    keys = Keys(scope)
    report = RepairReport(domain=domain, dry_run=dry_run)
    pointer_key = keys.pointer(domain)

    def published_token() -> int:
        try:
            return Pointer.from_bytes(store.get(pointer_key)[0], key=pointer_key).fencing_token
        except ObjectNotFoundError:
            # Without a pointer no writer can publish (a CAS on it fails; a create is
            # refused by the lost-head check), so a lease left on the lock guards
            # nothing: count it as ended instead of waiting it out.
            return sys.maxsize
        except IntegrityError:
            return 0

    lock = LeaseLock(
        store, keys.lock(domain), wait_timeout=lock_wait, published_token=published_token
    )
    lease = lock.acquire()
    try:
        with lock.kept_alive(lease):
            current_version: str | None = None
            try:
                data, current_version = store.get(pointer_key)
                report.before = Pointer.from_bytes(data, key=pointer_key).version
            except ObjectNotFoundError:
                pass
            except IntegrityError:
                report.before = None  # unreadable: replaced like a missing one
            if current_version is not None:
                problems = walk_chain(store, keys, domain).problems
                report.after = report.before
                if not problems:
                    return report
                if all(OFF_CHAIN in p.message for p in problems):
                    # The head's own chain is sound, beside another history (the head
                    # was re-created or rolled back). Which one to keep is a decision
                    # for a person, not for repair.
                    report.action = "diverged"
                    return report
            metas = [
                (v, m.key)
                for m in store.list(keys.manifests_prefix(domain))
                if (v := manifest_version(keys, domain, m.key)) is not None
            ]
            for _, key in sorted(metas, reverse=True):
                candidate = _candidate_pointer(store, key)
                if candidate is None or candidate.domain != domain:
                    report.rejected.append(key)
                    continue
                if not _verifies(store, scope, domain, candidate):
                    report.rejected.append(key)
                    continue
                report.action, report.after, report.manifest = "repointed", candidate.version, key
                if not dry_run:
                    lock.check(lease, force=True)
                    mode: PutMode = "create" if current_version is None else Match(current_version)
                    store.put(pointer_key, candidate.to_bytes(), mode)
                return report
            report.action = "unrepairable"
            return report
    finally:
        lock.release(lease)
