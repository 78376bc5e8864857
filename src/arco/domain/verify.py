"""Integrity verification: walk every domain's manifest chain and check each object.

Verification (like GC) may list storage; reads never do (invariant I7).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from arco.core import metrics
from arco.core.errors import IntegrityError, ObjectNotFoundError, StorageError
from arco.core.ids import sha256_hex
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.core.telemetry import span
from arco.domain import tableset
from arco.domain.extfiles import check_metadata_files
from arco.domain.lock import LockRecord
from arco.domain.manifest import Manifest, Pointer
from arco.domain.retention import read_floor

_log = logging.getLogger("arco.verify")


@dataclass(frozen=True)
class Problem:
    """One integrity problem, with the key it concerns."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


@dataclass
class VerifyReport:
    """What :func:`verify` checked and found."""

    problems: list[Problem] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    manifests_checked: int = 0
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def discover_domains(store: ObjectStore, keys: Keys) -> list[str]:
    """Domains with a head pointer, manifests or state files in this scope."""
    found = set()
    prefix = f"{keys.root}manifests/"
    for meta in store.list(prefix):
        rest = meta.key[len(prefix) :]
        if "/" not in rest and rest.endswith(".pointer.json"):
            found.add(rest[: -len(".pointer.json")])
        elif "/" in rest:
            found.add(rest.split("/", 1)[0])
    snaps = f"{keys.root}snapshots/"
    for meta in store.list(snaps):
        rest = meta.key[len(snaps) :]
        if "/" in rest:
            found.add(rest.split("/", 1)[0])
    return sorted(found)


@dataclass
class ChainWalk:
    """The manifests of one domain's chain, newest first, with the problems met on the way."""

    manifests: list[tuple[str, Manifest]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    complete: bool = False


def walk_chain(store: ObjectStore, keys: Keys, domain: str, *, attempts: int = 5) -> ChainWalk:
    """Follow pointer → manifest → parent ... checking each link's SHA-256.

    A commit that lands while the chain is walked leaves manifests newer than the
    head that was read, which look off the chain. So a walk that finds off-chain
    manifests re-reads the pointer, and walks again from the new head while the
    head keeps moving (at most ``attempts`` walks); only manifests beside the chain
    of a head that stood still are reported.
    """
    from arco.domain.repair import OFF_CHAIN

    walk = _walk_once(store, keys, domain)
    for _ in range(attempts - 1):
        if not walk.manifests or not any(OFF_CHAIN in p.message for p in walk.problems):
            return walk
        try:
            data, _ = store.get(keys.pointer(domain))
            head = Pointer.from_bytes(data, key=keys.pointer(domain)).manifest
        except (IntegrityError, StorageError):
            return walk
        if head == walk.manifests[0][0]:
            return walk
        walk = _walk_once(store, keys, domain)
    return walk


def _walk_once(store: ObjectStore, keys: Keys, domain: str) -> ChainWalk:
    walk = ChainWalk()
    pointer_key = keys.pointer(domain)
    try:
        data, _ = store.get(pointer_key)
        pointer = Pointer.from_bytes(data, key=pointer_key)
    except ObjectNotFoundError:
        # No pointer: fine for a domain nobody committed to, a problem if
        # manifests exist that nothing points at any more.
        first = f"{keys.manifests_prefix(domain)}{1:020d}-"
        stranded = [m.key for m in store.list(keys.manifests_prefix(domain))]
        # Version-1 manifests without a pointer are attempts of a first commit that
        # crashed before publishing: orphans for GC, not damage.
        if any(not k.startswith(first) for k in stranded):
            walk.problems.append(
                Problem(
                    pointer_key,
                    f"pointer is missing but manifests exist; run `arco repair --domain {domain}`",
                )
            )
            return walk
        walk.complete = True
        return walk
    except (IntegrityError, StorageError) as exc:
        walk.problems.append(Problem(pointer_key, str(exc).removeprefix(f"{pointer_key}: ")))
        return walk
    if pointer.domain != domain:
        walk.problems.append(Problem(pointer_key, f"names domain {pointer.domain!r}"))
    try:
        floor, _ = read_floor(store, keys, domain)
    except (IntegrityError, StorageError) as exc:
        key = keys.floor(domain)
        walk.problems.append(Problem(key, str(exc).removeprefix(f"{key}: ")))
        return walk
    if floor is not None and floor.version > pointer.version:
        walk.problems.append(
            Problem(keys.floor(domain), f"floor {floor.version} is above the head")
        )
        return walk
    key, expected_sha, expected_version = pointer.manifest, pointer.manifest_sha256, pointer.version
    if not keys.is_within(key):
        walk.problems.append(Problem(pointer_key, f"points outside its scope: {key}"))
        return walk
    while True:
        try:
            data, _ = store.get(key)
        except ObjectNotFoundError:
            walk.problems.append(Problem(key, "manifest is missing"))
            if not walk.manifests:
                walk.problems.append(Problem(pointer_key, f"names a missing manifest {key}"))
            return walk
        if sha256_hex(data) != expected_sha:
            walk.problems.append(Problem(key, "manifest SHA-256 does not match its reference"))
            if not walk.manifests:
                walk.problems.append(Problem(pointer_key, f"SHA-256 of {key} does not match"))
            return walk
        try:
            manifest = Manifest.from_bytes(data, key=key)
        except IntegrityError as exc:
            walk.problems.append(Problem(key, str(exc).removeprefix(f"{key}: ")))
            return walk
        if manifest.version != expected_version:
            walk.problems.append(
                Problem(key, f"version {manifest.version}, expected {expected_version} (gap)")
            )
        if not walk.manifests:
            # The pointer must agree with the manifest it names, field by field.
            for field_name, mine, theirs in (
                ("commit_id", pointer.commit_id, manifest.commit_id),
                ("fencing_token", pointer.fencing_token, manifest.fencing_token),
                ("updated_at", pointer.updated_at, manifest.committed_at),
                ("domain", pointer.domain, manifest.domain),
            ):
                if mine != theirs:
                    walk.problems.append(
                        Problem(pointer_key, f"{field_name} {mine!r} disagrees with {key}")
                    )
        walk.manifests.append((key, manifest))
        if floor is not None and manifest.version <= floor.version:
            # Expired history below the floor is not part of the chain any more.
            if (key, expected_sha) != (floor.manifest, floor.manifest_sha256):
                walk.problems.append(
                    Problem(keys.floor(domain), f"names a manifest not on the chain: {key}")
                )
                return walk
            return _check_off_chain(store, keys, domain, walk, pointer, floor.version)
        if manifest.parent is None:
            if manifest.version != 1:
                walk.problems.append(
                    Problem(key, f"chain ends at version {manifest.version}, not 1")
                )
            return _check_off_chain(store, keys, domain, walk, pointer, 0)
        key, expected_sha = manifest.parent.path, manifest.parent.sha256
        expected_version = manifest.version - 1
        if not keys.is_within(key):
            walk.problems.append(Problem(key, "parent lies outside the scope"))
            return walk


def _check_off_chain(
    store: ObjectStore, keys: Keys, domain: str, walk: ChainWalk, pointer: Pointer, floor: int
) -> ChainWalk:
    """Complete ``walk`` unless manifests of another history lie beside the chain.

    A crashed or losing commit attempt leaves a manifest of at most head + 1 whose
    parent is on the chain. A manifest above that, or one whose parent is off the
    chain, belongs to a history the head no longer reaches: the pointer was lost
    and re-created, or rolled back, and ``gc`` would delete that history.
    """
    from arco.domain.repair import OFF_CHAIN, manifest_version

    on_chain = {k for k, _ in walk.manifests}
    off: list[tuple[int, str]] = []
    for meta in store.list(keys.manifests_prefix(domain)):
        version = manifest_version(keys, domain, meta.key)
        if meta.key in on_chain or version is None or version <= floor:
            continue
        if version > pointer.version + 1:
            off.append((version, meta.key))
            continue
        try:
            orphan = Manifest.from_bytes(store.get(meta.key)[0], key=meta.key)
        except (IntegrityError, StorageError):
            continue  # an unreadable orphan is garbage, whatever it was
        if orphan.parent is not None and orphan.parent.path not in on_chain:
            off.append((version, meta.key))
    if off:
        newest, example = max(off)
        walk.problems.append(
            Problem(
                keys.pointer(domain),
                f"{len(off)} manifest(s) up to version {newest} (e.g. {example}) are "
                f"{OFF_CHAIN} at version {pointer.version}: the head pointer was lost or "
                f"rolled back; run `arco repair --domain {domain}`",
            )
        )
        return walk
    walk.complete = True
    return walk


def index_problem(index: dict[str, Any], data: bytes) -> str | None:
    """What is wrong with a sorted base's index (``FileEntry.index``) for ``data``, if anything.

    Point readers fetch the footer and single row groups by the index's byte
    ranges and check each against its SHA-256, so every range must hash as listed.
    A delta's index (``kind`` ``key-ranges``) must hold the keys of every row of
    the file: a point reader skips a delta whose ranges leave its key out.
    """
    if isinstance(index, dict) and index.get("kind") == tableset.DELTA_INDEX:
        return _delta_index_problem(index, data)
    try:
        ranges = [("footer", index["footer"][:3])]
        ranges += [(f"row group {i}", g[2:5]) for i, g in enumerate(index["groups"])]
        own = index.get("group_footers")
        if own is not None:
            if len(own) != len(index["groups"]):
                return "index: group_footers does not list one footer per row group"
            ranges += [(f"row group {i}'s own footer", f[:3]) for i, f in enumerate(own)]
        for label, (start, length, sha) in ranges:
            if start < 0 or start + length > len(data):
                return f"index: {label} lies outside the file"
            if sha256_hex(data[start : start + length]) != sha:
                return f"index: SHA-256 of {label} does not match the manifest"
        if own is not None:
            return _own_footer_problem(index, data)
    except (KeyError, TypeError, ValueError):
        return "index: malformed"
    return None


def _own_footer_problem(index: dict[str, Any], data: bytes) -> str | None:
    """Whether each row group reads the same through its own footer as through the file's.

    A cold point reader decodes a group by its own footer alone (ADR 029): a
    footer that hashes right but describes other bytes would answer wrongly.
    """
    try:
        reader = tableset.parquet_reader(pa.BufferReader(data))
        for i, (g, (start, length, _, size)) in enumerate(
            zip(index["groups"], index["group_footers"], strict=True)
        ):
            footer = tableset.unpack_own_footer(data[start : start + length], size)
            body = data[g[2] : g[2] + g[3]]
            alone = tableset.read_group_alone(body, footer)
            if not alone.equals(reader.read_row_group(i, use_threads=False)):
                return f"index: row group {i} reads otherwise through its own footer"
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        return f"index: a row group's own footer cannot be read ({exc})"
    return None


def _delta_index_problem(index: dict[str, Any], data: bytes) -> str | None:
    try:
        sort_key, key = list(index["sort_key"]), list(index["key"])
        table = tableset.decode(data, list(dict.fromkeys((*sort_key, *key))))
        found = tableset.key_ranges(table, sort_key, key)
        if found is None:
            return "index: malformed"
        for name, (first, last) in zip(("sort_range", "key_range"), found, strict=True):
            lo, hi = (tuple(bound) for bound in index[name])
            if not lo <= tuple(first) or not tuple(last) <= hi:
                return "index: the file holds keys outside the index's key ranges"
    except (KeyError, TypeError, ValueError, pa.ArrowException):
        return "index: malformed"
    return None


def verify(store: ObjectStore, scope: Scope, domains: list[str] | None = None) -> VerifyReport:
    """Check every manifest and every file referenced by every domain's chain."""
    keys = Keys(scope)
    report = VerifyReport(domains=domains if domains is not None else discover_domains(store, keys))
    checked: dict[str, bool] = {}
    for domain in report.domains:
        walk = walk_chain(store, keys, domain)
        report.problems.extend(walk.problems)
        report.manifests_checked += len(walk.manifests)
        for key, manifest in walk.manifests:
            if manifest.domain != domain:
                report.problems.append(Problem(key, f"belongs to domain {manifest.domain!r}"))
            for entry in manifest.files:
                if entry.path in checked:
                    continue
                checked[entry.path] = True
                report.files_checked += 1
                if not keys.is_within(entry.path):
                    report.problems.append(Problem(entry.path, f"outside the scope (from {key})"))
                    continue
                try:
                    data, _ = store.get(entry.path)
                except ObjectNotFoundError:
                    report.problems.append(Problem(entry.path, f"missing (referenced by {key})"))
                    continue
                if len(data) != entry.size:
                    report.problems.append(
                        Problem(entry.path, f"size {len(data)} bytes, manifest says {entry.size}")
                    )
                elif sha256_hex(data) != entry.sha256:
                    report.problems.append(
                        Problem(entry.path, "SHA-256 does not match the manifest")
                    )
                elif entry.index is not None and (bad := index_problem(entry.index, data)):
                    report.problems.append(Problem(entry.path, bad))
        if domain == "catalog":
            count, found = check_metadata_files(store, keys, [m for _, m in walk.manifests])
            report.files_checked += count
            report.problems.extend(Problem(key, message) for key, message in found)
        lock_key = keys.lock(domain)
        try:
            data, _ = store.get(lock_key)
            if LockRecord.from_bytes(data).holder == "<corrupt>":
                report.problems.append(Problem(lock_key, "lock record is unreadable"))
        except ObjectNotFoundError:
            pass
    return report


def record_verify(report: VerifyReport) -> None:
    """Publish ``report`` as metrics: ``arco_verify_ok``, problems, last run, failures.

    Called by every scheduled verify (``arco verify``, ``arco tick``, the daemon), so
    the "verify failed" alert and the integrity SLO read one set of series.
    """
    metrics.VERIFY_OK.set(1 if report.ok else 0)
    metrics.VERIFY_PROBLEMS.set(len(report.problems))
    metrics.VERIFY_LAST_RUN.set(time.time())
    metrics.VERIFY_RUNS.labels("ok" if report.ok else "failed").inc()
    if not report.ok:
        metrics.CHECK_FAILURES.labels("verify").inc(len(report.problems))


def scheduled_verify(store: ObjectStore, scopes: list[Scope]) -> dict[str, VerifyReport]:
    """Verify each scope and record the combined result (the hook for schedulers).

    The metric shows the worst scope: one failing scope makes ``arco_verify_ok`` 0.
    Each problem is logged on ``arco.verify`` with its key, for the on-call runbook.
    """
    reports: dict[str, VerifyReport] = {}
    combined = VerifyReport()
    with span("verify.scheduled", {"arco.scopes": len(scopes)}):
        for scope in scopes:
            report = verify(store, scope)
            reports[str(scope)] = report
            combined.problems.extend(report.problems)
            combined.manifests_checked += report.manifests_checked
            combined.files_checked += report.files_checked
            for problem in report.problems:
                _log.error("verify %s: %s: %s", scope, problem.key, problem.message)
    record_verify(combined)
    return reports
