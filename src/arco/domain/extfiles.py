"""Files outside a domain's own state that its manifests name and hash.

A commit may write a file that is not one of the domain's state files, for
example the Iceberg REST catalog's ``*.metadata.json`` (``arco.iceberg``). The
commit records it in its manifest's operation as ``{"metadata_key",
"metadata_sha256", "metadata_size"}``; a drop with purge records ``{"op":
"iceberg_purge", "prefix"}``. So the chain names and hashes each such file like
a state file, and ``arco verify`` checks them without the domain layer parsing
the file format. What GC may delete of them is the catalog's business
(:mod:`arco.catalog.iceberg_files`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from arco.core.errors import ObjectNotFoundError
from arco.core.ids import sha256_hex
from arco.core.keys import Keys
from arco.core.storage import ObjectStore
from arco.domain.manifest import Manifest

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
