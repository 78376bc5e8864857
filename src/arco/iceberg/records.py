"""What an Iceberg table (or view) leaves in Arco's catalog, written alike by both doors (the
Iceberg REST catalog and Arco's own): its catalog row, and the manifest's record
of each metadata file."""

from __future__ import annotations

from typing import Any

from pyiceberg.schema import Schema
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.view.metadata import ViewMetadata

from arco.core.ids import new_ulid, sha256_hex
from arco.iceberg.metadata import Warehouse, arco_columns

FORMAT = "iceberg"
#: An Iceberg view's catalog rows (:mod:`arco.iceberg.views`).
VIEW_FORMAT = "iceberg-view"


def table_row(
    now: Any,
    old: dict[str, Any] | None,
    ns: str,
    name: str,
    metadata: TableMetadata,
    metadata_location: str,
    table_id: str | None = None,
) -> dict[str, Any]:
    """The catalog row of an Iceberg table at ``metadata`` (both doors write it alike)."""
    return _row(
        now,
        old,
        (ns, name, FORMAT, table_id),
        metadata.location,
        dict(metadata.properties),
        metadata.schema(),
        metadata.last_column_id,
        metadata_location,
    )


def view_row(
    now: Any,
    old: dict[str, Any] | None,
    ns: str,
    name: str,
    metadata: ViewMetadata,
    metadata_location: str,
    view_id: str | None = None,
) -> dict[str, Any]:
    """The catalog row of an Iceberg view: its columns are its current version's schema."""
    current = next(v for v in metadata.versions if v.version_id == metadata.current_version_id)
    schema = next(s for s in metadata.schemas if s.schema_id == current.schema_id)
    return _row(
        now,
        old,
        (ns, name, VIEW_FORMAT, view_id),
        metadata.location,
        dict(metadata.properties),
        schema,
        schema.highest_field_id,
        metadata_location,
    )


def _row(
    now: Any,
    old: dict[str, Any] | None,
    ident: tuple[str, str, str, str | None],
    location: str,
    properties: dict[str, str],
    schema: Schema,
    last_column_id: int,
    metadata_location: str,
) -> dict[str, Any]:
    ns, name, fmt, row_id = ident
    columns = arco_columns(schema)
    row: dict[str, Any] = (
        dict(old)
        if old is not None
        else {
            "id": row_id or new_ulid(),
            "namespace": ns,
            "name": name,
            "format": fmt,
            "description": None,
            "schema_version": 0,
            "created_at": now,
        }
    )

    def shape(cols: Any) -> list[tuple[Any, ...]]:
        return [(c["column_id"], c["name"], c["data_type"], c["nullable"]) for c in cols or ()]

    if old is None or shape(old.get("columns")) != shape(columns):
        row["schema_version"] = int(row["schema_version"]) + 1
    row.update(
        location=location,
        properties=properties,
        columns=columns,
        last_column_id=last_column_id,
        metadata_location=metadata_location,
        updated_at=now,
    )
    # Iceberg's comment is Arco's description: one value, seen through both doors.
    row["description"] = properties.get("comment")
    return row


def metadata_op(
    kind: str, name: str, warehouse: Warehouse, location: str, raw: bytes
) -> dict[str, Any]:
    """The manifest's record of a metadata file: ``arco verify`` hashes it, GC keeps it."""
    return {
        "op": kind,
        "name": name,
        "metadata_key": warehouse.key_of(location),
        "metadata_sha256": sha256_hex(raw),
        "metadata_size": len(raw),
    }
