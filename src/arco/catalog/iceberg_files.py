"""Iceberg metadata files in the catalog's chain: what ``arco verify`` hashes and GC keeps.

Every catalog commit that writes an Iceberg ``*.metadata.json`` (the Iceberg
REST catalog, ``arco.iceberg``) records it in its manifest's operation as
``{"metadata_key", "metadata_sha256", "metadata_size"}``; a drop with purge
records ``{"op": "iceberg_purge", "prefix"}``. So the chain names and hashes each
metadata file like a state file, without the catalog layer parsing Iceberg.

A metadata file is *live* while some retained catalog version names it: the
state at the oldest retained version (its tables' ``metadata_location``) or a
later commit's operation. GC deletes the other metadata files in the folders of
the Iceberg tables of those versions; data and manifest files (Avro, Parquet)
belong to Iceberg's own snapshot expiry and are never touched, nor is any
folder of a table dropped without purge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from arco.catalog.manifest import Manifest
from arco.core.errors import NotFoundError, ObjectNotFoundError
from arco.core.ids import sha256_hex
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectMeta, ObjectStore

METADATA_SUFFIX = ".metadata.json"


@dataclass(frozen=True)
class MetadataRef:
    """One metadata file a commit wrote."""

    key: str
    sha256: str
    size: int


def metadata_refs(manifest: Manifest) -> list[MetadataRef]:
    """The Iceberg metadata files ``manifest``'s commit wrote."""
    ops = manifest.operation.get("ops") if isinstance(manifest.operation, dict) else None
    out = []
    for op in ops if isinstance(ops, list) else ():
        if isinstance(op, dict) and isinstance(op.get("metadata_key"), str):
            out.append(
                MetadataRef(
                    op["metadata_key"],
                    str(op.get("metadata_sha256")),
                    int(op.get("metadata_size", -1)),
                )
            )
    return out


def purged_prefixes(manifests: Iterable[Manifest]) -> list[str]:
    """Folders that a drop with purge emptied on purpose."""
    out = []
    for manifest in manifests:
        ops = manifest.operation.get("ops") if isinstance(manifest.operation, dict) else None
        for op in ops if isinstance(ops, list) else ():
            if isinstance(op, dict) and op.get("op") == "iceberg_purge":
                prefix = op.get("prefix")
                if isinstance(prefix, str) and prefix:
                    out.append(prefix)
    return out


def check_metadata_files(
    store: ObjectStore, keys: Keys, manifests: Sequence[Manifest]
) -> tuple[int, list[tuple[str, str]]]:
    """Hash every metadata file the chain names: (files checked, [(key, problem)])."""
    purged = purged_prefixes(manifests)
    problems: list[tuple[str, str]] = []
    checked: set[str] = set()
    for manifest in manifests:
        for ref in metadata_refs(manifest):
            if ref.key in checked:
                continue
            checked.add(ref.key)
            if not keys.is_within(ref.key):
                problems.append((ref.key, "Iceberg metadata file outside the scope"))
                continue
            try:
                data, _ = store.get(ref.key)
            except ObjectNotFoundError:
                if not any(ref.key.startswith(p) for p in purged):
                    problems.append(
                        (
                            ref.key,
                            f"Iceberg metadata file missing (written by v{manifest.version})",
                        )
                    )
                continue
            if len(data) != ref.size:
                problems.append((ref.key, f"size {len(data)} bytes, the chain says {ref.size}"))
            elif sha256_hex(data) != ref.sha256:
                problems.append((ref.key, "SHA-256 does not match the chain"))
    return len(checked), problems


def _key_of(url: object, base: str) -> str | None:
    if not isinstance(url, str) or not url.startswith(base):
        return None
    return url[len(base) :]


def metadata_gc_plan(
    store: ObjectStore, scope: Scope, retained: Sequence[Manifest]
) -> tuple[list[ObjectMeta], set[str]]:
    """Candidate metadata files of the catalog ``scope`` and the live ones among them.

    ``retained`` are the retained manifests of the catalog domain. The folders
    searched are those of the Iceberg tables at the oldest retained version and
    at the head. When a table's location cannot be mapped to a key of this
    store, nothing is proposed: deleting on a guess is unsafe.
    """
    from arco.catalog.catalog import Catalog

    keys = Keys(scope)
    # No warehouse objects, nothing to collect: skip folding any catalog state.
    if not retained or next(iter(store.list(keys.warehouse_prefix())), None) is None:
        return [], set()
    catalog = Catalog(store, scope)
    oldest = min(m.version for m in retained)
    base = store.url.rstrip("/") + "/"
    live = {ref.key for m in retained for ref in metadata_refs(m)}
    folders: set[str] = set()
    try:
        states = [catalog.snapshot(0).state, catalog.domain.read_version(oldest).state]
    except NotFoundError:
        # Another collector expired that version meanwhile: propose nothing this time.
        return [], live
    for state in states:
        for row in state.tables.values():
            if row.get("format") != "iceberg":
                continue
            location = _key_of(row.get("location"), base)
            current = row.get("metadata_location")
            current_key = _key_of(current, base)
            if location is None or (current is not None and current_key is None):
                return [], live
            if current_key is not None:
                live.add(current_key)
            if keys.is_within(location):
                folders.add(location.rstrip("/") + "/metadata/")
    candidates = [
        meta
        for folder in sorted(folders)
        for meta in store.list(folder)
        if meta.key.endswith(METADATA_SUFFIX) and "/" not in meta.key[len(folder) :]
    ]
    return candidates, live
