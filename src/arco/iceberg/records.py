"""What an Iceberg table leaves in Arco's catalog, written alike by both doors (the
Iceberg REST catalog and Arco's own): its catalog row, and the manifest's record
of each metadata file."""

from __future__ import annotations

from typing import Any

from pyiceberg.table.metadata import TableMetadata

from arco.core.ids import new_ulid, sha256_hex
from arco.iceberg.metadata import Warehouse, arco_columns

FORMAT = "iceberg"


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
    columns = arco_columns(metadata.schema())
    row: dict[str, Any] = (
        dict(old)
        if old is not None
        else {
            "id": table_id or new_ulid(),
            "namespace": ns,
            "name": name,
            "format": FORMAT,
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
        location=metadata.location,
        properties=dict(metadata.properties),
        columns=columns,
        last_column_id=metadata.last_column_id,
        metadata_location=metadata_location,
        updated_at=now,
    )
    # Iceberg's table comment is Arco's description: one value, seen through both doors.
    row["description"] = metadata.properties.get("comment")
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
