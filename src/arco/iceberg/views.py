"""Iceberg views (the REST spec's view endpoints) on Arco's Tier-1 catalog.

A view is an Arco catalog row of format ``iceberg-view`` whose current metadata
file (view spec v1: versions of SQL representations over a schema) lies in the
workspace's warehouse, exactly like an Iceberg table's: every write is one
:meth:`Catalog.write` commit that writes the next ``*.metadata.json`` create-only
and swaps the row's ``metadata_location``, so view changes are linearizable,
hashed by ``arco verify`` and kept by GC while a retained version names them.

Views and tables share one name space per namespace (a view cannot take a
table's name, nor the reverse); Arco's own door shows a view's columns (its
current schema) but refuses to change them: the Iceberg door owns the view.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyiceberg.schema import Schema
from pyiceberg.view.metadata import ViewMetadata

from arco.catalog.formats import UnsupportedTableChangeError
from arco.catalog.txn import CatalogTxn
from arco.core.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    ObjectNotFoundError,
)
from arco.core.ids import new_ulid
from arco.core.scope import Scope, validate_identifier
from arco.core.storage import ObjectStore
from arco.iceberg.metadata import CommitRejectedError, next_metadata_location
from arco.iceberg.records import VIEW_FORMAT, metadata_op, view_row
from arco.iceberg.requests import namespace_name, paginate
from arco.iceberg.service import IcebergCatalog, NoSuchNamespaceError


class NoSuchViewError(NotFoundError):
    """The view does not exist (404 ``NoSuchViewException``)."""

    code = "no-such-view"


class ViewAlreadyExistsError(AlreadyExistsError):
    """A view or table already has that name (409 ``AlreadyExistsException``)."""


@dataclass(frozen=True)
class LoadedView:
    """A view's current metadata: its location and the file's exact bytes."""

    metadata_location: str
    metadata: ViewMetadata
    raw: bytes


def decode_view_metadata(data: bytes) -> ViewMetadata:
    """Parse a view's ``*.metadata.json``."""
    try:
        return ViewMetadata.model_validate_json(data)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"not valid Iceberg view metadata: {exc}") from exc


def encode_view_metadata(metadata: ViewMetadata) -> bytes:
    """The JSON bytes of view metadata (the spec's hyphenated names)."""
    return metadata.model_dump_json(by_alias=True, exclude_none=True).encode()


def refuse_arco_door_change(
    store: ObjectStore, scope: Scope, txn: Any, old: Mapping[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    """The catalog's format hook for views: Arco's door never rewrites a view."""
    raise UnsupportedTableChangeError(
        f"{old['namespace']}.{old['name']} is an Iceberg view: change it through the "
        "Iceberg REST catalog (replace view); nothing was changed"
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def new_view_metadata(
    location: str, schema: dict[str, Any], version: dict[str, Any], properties: dict[str, str]
) -> ViewMetadata:
    """The first metadata of a new view: version 1 over ``schema``, current."""
    schema_id = schema.get("schema-id", 0)
    if not isinstance(schema_id, int) or schema_id < 0:
        schema_id = 0
    first = {**version, "version-id": 1}
    if first.get("schema-id") in (None, -1):
        first["schema-id"] = schema_id
    first.setdefault("timestamp-ms", _now_ms())
    data = {
        "view-uuid": str(uuid.uuid4()),
        "format-version": 1,
        "location": location,
        "schemas": [{**schema, "schema-id": schema_id}],
        "current-version-id": 1,
        "versions": [first],
        "version-log": [{"timestamp-ms": first["timestamp-ms"], "version-id": 1}],
        "properties": properties,
    }
    return _checked(data)


def _checked(data: dict[str, Any]) -> ViewMetadata:
    try:
        metadata = ViewMetadata.model_validate(data)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(f"invalid view metadata: {exc}") from exc
    schema_ids = {s.schema_id for s in metadata.schemas}
    version_ids = {v.version_id for v in metadata.versions}
    if metadata.current_version_id not in version_ids:
        raise InvalidArgumentError(
            f"current-version-id {metadata.current_version_id} names no version of the view"
        )
    for v in metadata.versions:
        if v.schema_id not in schema_ids:
            raise InvalidArgumentError(
                f"view version {v.version_id} names unknown schema {v.schema_id}"
            )
        if not v.representations:
            raise InvalidArgumentError(f"view version {v.version_id} has no representation")
    return metadata


def _same_version(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ignore = ("version-id", "timestamp-ms")
    return {k: v for k, v in a.items() if k not in ignore} == {
        k: v for k, v in b.items() if k not in ignore
    }


def apply_view_commit(
    base: ViewMetadata, requirements: Sequence[Any], updates: Sequence[Any]
) -> ViewMetadata:
    """Check ``requirements`` against ``base`` and apply the spec's view updates.

    A failed requirement raises :class:`CommitRejectedError` (409, retried by
    clients); an update that cannot apply raises :class:`InvalidArgumentError`.
    """
    data = base.model_dump(by_alias=True, mode="json", exclude_none=True)
    for req in requirements:
        if not isinstance(req, dict) or req.get("type") != "assert-view-uuid":
            raise InvalidArgumentError(f"unsupported view requirement: {req!r}")
        if req.get("uuid") != data["view-uuid"]:
            raise CommitRejectedError(
                f"requirement failed: view uuid {data['view-uuid']} is not {req.get('uuid')}"
            )
    last_schema: int | None = None
    last_version: int | None = None
    for update in updates:
        if not isinstance(update, dict) or not isinstance(update.get("action"), str):
            raise InvalidArgumentError(f"a view update needs an action: {update!r}")
        action = update["action"]
        if action == "assign-uuid":
            if update.get("uuid") != data["view-uuid"]:
                raise InvalidArgumentError("a view's uuid cannot be changed")
        elif action == "upgrade-format-version":
            if update.get("format-version") != 1:
                raise InvalidArgumentError("only view format version 1 is supported")
        elif action == "add-schema":
            last_schema = _add_schema(data, update.get("schema"))
        elif action == "set-location":
            if not isinstance(update.get("location"), str) or not update["location"]:
                raise InvalidArgumentError("set-location needs a location")
            data["location"] = update["location"].rstrip("/")
        elif action == "set-properties":
            if not isinstance(update.get("updates"), dict):
                raise InvalidArgumentError("set-properties needs an updates object")
            data.setdefault("properties", {}).update(
                {str(k): str(v) for k, v in update["updates"].items()}
            )
        elif action == "remove-properties":
            if not isinstance(update.get("removals"), list):
                raise InvalidArgumentError("remove-properties needs a removals list")
            for key in update["removals"]:
                data.setdefault("properties", {}).pop(str(key), None)
        elif action == "add-view-version":
            last_version = _add_version(data, update.get("view-version"), last_schema)
        elif action == "set-current-view-version":
            vid = update.get("view-version-id")
            if vid == -1:
                if last_version is None:
                    raise InvalidArgumentError("no view version was added in this commit")
                vid = last_version
            if not any(v["version-id"] == vid for v in data["versions"]):
                raise InvalidArgumentError(f"view version {vid!r} does not exist")
            if data["current-version-id"] != vid:
                data["current-version-id"] = vid
                data["version-log"].append({"timestamp-ms": _now_ms(), "version-id": vid})
        else:
            raise InvalidArgumentError(f"unsupported view update action {action!r}")
    return _checked(data)


def _add_schema(data: dict[str, Any], schema: Any) -> int:
    if not isinstance(schema, dict) or not isinstance(schema.get("fields"), list):
        raise InvalidArgumentError("add-schema needs a schema with fields")
    for existing in data["schemas"]:
        if existing.get("fields") == schema["fields"]:
            return int(existing["schema-id"])
    new_id = max((int(s["schema-id"]) for s in data["schemas"]), default=-1) + 1
    data["schemas"].append({**schema, "schema-id": new_id})
    return new_id


def _add_version(data: dict[str, Any], version: Any, last_schema: int | None) -> int:
    if not isinstance(version, dict):
        raise InvalidArgumentError("add-view-version needs a view-version object")
    version = dict(version)
    if version.get("schema-id") == -1:
        if last_schema is None:
            raise InvalidArgumentError("no schema was added in this commit")
        version["schema-id"] = last_schema
    for existing in data["versions"]:
        if _same_version(existing, version):
            return int(existing["version-id"])
    new_id = max((int(v["version-id"]) for v in data["versions"]), default=0) + 1
    version["version-id"] = new_id
    version.setdefault("timestamp-ms", _now_ms())
    data["versions"].append(version)
    return new_id


@dataclass
class IcebergViews:
    """The view operations of one scope (beside :class:`IcebergCatalog`'s tables)."""

    tables: IcebergCatalog

    # ------------------------------------------------------------- helpers
    def _read(self, location: str) -> tuple[ViewMetadata, bytes]:
        key = self.tables.warehouse.key_of(location)
        try:
            raw, _ = self.tables.store.get(key)
        except ObjectNotFoundError as exc:
            raise NotFoundError(f"metadata file {location} does not exist") from exc
        return decode_view_metadata(raw), raw

    def _write(self, metadata: ViewMetadata, previous: str | None) -> tuple[str, bytes]:
        location = next_metadata_location(metadata.location, previous)
        raw = encode_view_metadata(metadata)
        # Create-only: a new name per attempt, so a retry never overwrites anything.
        self.tables.store.put(self.tables.warehouse.key_of(location), raw, "create")
        return location, raw

    def _row(self, state: Any, ns: str, name: str) -> dict[str, Any] | None:
        if state.namespace(ns) is None:
            raise NoSuchNamespaceError(f"namespace {ns!r} does not exist")
        row: dict[str, Any] | None = state.table_row(ns, name)
        if row is None or row["format"] != VIEW_FORMAT or not row.get("metadata_location"):
            return None
        return row

    def _op(self, kind: str, name: str, location: str, raw: bytes) -> dict[str, Any]:
        return metadata_op(kind, name, self.tables.warehouse, location, raw)

    def _claim(self, txn: CatalogTxn, ns: str, name: str) -> None:
        """``ns.name`` must be free: no view and no table holds it."""
        if txn.state.namespace(ns) is None:
            raise NoSuchNamespaceError(f"namespace {ns!r} does not exist")
        old = txn.state.table_row(ns, name)
        if old is not None:
            kind = "view" if old["format"] == VIEW_FORMAT else "table"
            raise ViewAlreadyExistsError(f"{kind} {ns}.{name} already exists")

    # ------------------------------------------------------------------ API
    def list_views(
        self, levels: Sequence[str], page_token: str | None, page_size: int | None
    ) -> tuple[list[str], str | None]:
        """Names of the views directly in a namespace."""
        ns = namespace_name(levels)
        state = self.tables.catalog.view().state
        if state.namespace(ns) is None:
            raise NoSuchNamespaceError(f"namespace {ns!r} does not exist")
        names = sorted(r["name"] for r in state.tables_in(ns) if r["format"] == VIEW_FORMAT)
        return paginate(names, page_token, page_size)

    def load_view(self, levels: Sequence[str], name: str) -> LoadedView:
        """The current metadata of a view."""
        ns = namespace_name(levels)
        validate_identifier("view name", name)
        row = self._row(self.tables.catalog.view().state, ns, name)
        if row is None:
            raise NoSuchViewError(f"view {ns}.{name} does not exist")
        metadata, raw = self._read(row["metadata_location"])
        return LoadedView(row["metadata_location"], metadata, raw)

    def create_view(self, levels: Sequence[str], body: Mapping[str, Any]) -> LoadedView:
        """Create a view from a ``CreateViewRequest``."""
        ns = namespace_name(levels)
        name = body.get("name")
        if not isinstance(name, str):
            raise InvalidArgumentError("request needs a view name")
        validate_identifier("view name", name)
        schema, version = body.get("schema"), body.get("view-version")
        if not isinstance(schema, dict) or not isinstance(version, dict):
            raise InvalidArgumentError("request needs a schema and a view-version")
        Schema.model_validate(schema)  # a clear 400 for a malformed schema
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidArgumentError("properties must be an object")
        location = body.get("location")
        view_id = new_ulid()
        if isinstance(location, str) and location:
            location = location.rstrip("/")
        else:
            location = self.tables.warehouse.table_location(ns, name, view_id)
        self.tables.warehouse.key_of(location)
        metadata = new_view_metadata(
            location, schema, version, {str(k): str(v) for k, v in props.items()}
        )

        def fn(txn: CatalogTxn) -> str:
            self._claim(txn, ns, name)
            self.tables._check_no_overlap(txn.state, metadata.location, None)
            meta_location, raw = self._write(metadata, None)
            txn.upsert(
                "tables", view_row(txn.now, None, ns, name, metadata, meta_location, view_id)
            )
            txn.ops.append(self._op("iceberg_create_view", f"{ns}.{name}", meta_location, raw))
            return meta_location

        request = {"op": "iceberg_create_view", "namespace": ns, "name": name}
        meta_location = self.tables.catalog.write(request, fn)
        loaded, raw = self._read(meta_location)
        return LoadedView(meta_location, loaded, raw)

    def register_view(self, levels: Sequence[str], name: str, metadata_location: str) -> LoadedView:
        """Make an existing view metadata file (inside the warehouse) a view of the catalog."""
        ns = namespace_name(levels)
        validate_identifier("view name", name)
        metadata, raw = self._read(metadata_location)
        self.tables.warehouse.key_of(metadata.location)

        def fn(txn: CatalogTxn) -> None:
            self._claim(txn, ns, name)
            self.tables._check_no_overlap(txn.state, metadata.location, None)
            txn.upsert("tables", view_row(txn.now, None, ns, name, metadata, metadata_location))
            txn.ops.append(
                self._op("iceberg_register_view", f"{ns}.{name}", metadata_location, raw)
            )

        request = {"op": "iceberg_register_view", "name": [ns, name], "location": metadata_location}
        self.tables.catalog.write(request, fn)
        return LoadedView(metadata_location, metadata, raw)

    def replace_view(self, levels: Sequence[str], name: str, body: Any) -> LoadedView:
        """Apply a ``CommitViewRequest`` (requirements + updates) in one catalog commit."""
        ns = namespace_name(levels)
        validate_identifier("view name", name)
        if not isinstance(body, dict):
            raise InvalidArgumentError("request body must be a JSON object")
        requirements = body.get("requirements") or []
        updates = body.get("updates") or []
        if not isinstance(requirements, list) or not isinstance(updates, list):
            raise InvalidArgumentError("requirements and updates must be lists")

        def fn(txn: CatalogTxn) -> str:
            old = self._row(txn.state, ns, name)
            if old is None:
                raise NoSuchViewError(f"view {ns}.{name} does not exist")
            base_location = old["metadata_location"]
            base, _ = self._read(base_location)
            updated = apply_view_commit(base, requirements, updates)
            if updated.location != base.location:
                self.tables.warehouse.key_of(updated.location)
                self.tables._check_no_overlap(txn.state, updated.location, old["id"])
            meta_location, raw = self._write(updated, base_location)
            txn.upsert("tables", view_row(txn.now, old, ns, name, updated, meta_location))
            txn.ops.append(self._op("iceberg_replace_view", f"{ns}.{name}", meta_location, raw))
            return meta_location

        request = {"op": "iceberg_replace_view", "name": [ns, name], "body": body}
        meta_location = self.tables.catalog.write(request, fn)
        metadata, raw = self._read(meta_location)
        return LoadedView(meta_location, metadata, raw)

    def rename_view(
        self, source: tuple[Sequence[str], str], destination: tuple[Sequence[str], str]
    ) -> None:
        """Rename (or move) a view; its metadata files stay where they are."""
        src_ns, src_name = namespace_name(source[0]), source[1]
        dst_ns, dst_name = namespace_name(destination[0]), destination[1]
        validate_identifier("view name", src_name)
        validate_identifier("view name", dst_name)

        def fn(txn: CatalogTxn) -> None:
            if self._row(txn.state, src_ns, src_name) is None:
                raise NoSuchViewError(f"view {src_ns}.{src_name} does not exist")
            self._claim(txn, dst_ns, dst_name)
            txn.rename_table(src_ns, src_name, dst_ns, dst_name)

        self.tables.catalog.write(
            {"op": "iceberg_rename_view", "from": [src_ns, src_name], "to": [dst_ns, dst_name]},
            fn,
        )

    def drop_view(self, levels: Sequence[str], name: str) -> None:
        """Drop a view (its metadata files are left to GC)."""
        ns = namespace_name(levels)
        validate_identifier("view name", name)

        def fn(txn: CatalogTxn) -> None:
            if self._row(txn.state, ns, name) is None:
                raise NoSuchViewError(f"view {ns}.{name} does not exist")
            txn.drop_table(ns, name)

        self.tables.catalog.write({"op": "iceberg_drop_view", "name": [ns, name]}, fn)


__all__ = [
    "IcebergViews",
    "LoadedView",
    "NoSuchViewError",
    "ViewAlreadyExistsError",
    "apply_view_commit",
    "decode_view_metadata",
    "encode_view_metadata",
    "new_view_metadata",
    "refuse_arco_door_change",
]
