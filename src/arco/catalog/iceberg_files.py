"""Iceberg metadata files in the catalog's chain: which ones GC keeps.

The chain names and hashes every metadata file a commit wrote
(:mod:`arco.domain.extfiles`, which ``arco verify`` checks). A metadata file is
*live* while some retained catalog version names it: the state at the oldest
retained version (its tables' ``metadata_location``) or a later commit's
operation. GC deletes the other metadata files in the folders of the Iceberg
tables of those versions; data and manifest files (Avro, Parquet) belong to
Iceberg's own snapshot expiry and are never touched, nor is any folder of a
table dropped without purge.
"""

from __future__ import annotations

from collections.abc import Sequence

from arco.core.errors import NotFoundError
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectMeta, ObjectStore
from arco.domain.extfiles import METADATA_SUFFIX, metadata_refs
from arco.domain.manifest import Manifest


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
            # Views keep their metadata files in their own folders, like tables.
            if row.get("format") not in ("iceberg", "iceberg-view"):
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
