"""Arco-door changes of an Iceberg table, written into its Iceberg metadata.

:meth:`arco.catalog.Catalog.update_table` (``arco table add-column``, the API's
table ``PATCH``) calls :func:`apply_arco_change` through the catalog's format
hook (:mod:`arco.catalog.formats`) when the table is an Iceberg table: inside the
same Tier-1 commit it translates the change into pyiceberg's own updates
(``AddSchemaUpdate`` + ``SetCurrentSchemaUpdate`` with field ids above the
table's ``last-column-id``, ``SetPropertiesUpdate``/``RemovePropertiesUpdate``),
writes the next metadata file create-only and answers the table row computed
from the new metadata, exactly as an Iceberg-door commit would. A change Iceberg
cannot express is refused with :class:`UnsupportedTableChangeError` and nothing
is written.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.name_mapping import parse_mapping_from_json, update_mapping
from pyiceberg.table.update import (
    AddSchemaUpdate,
    RemovePropertiesUpdate,
    SetCurrentSchemaUpdate,
    SetPropertiesUpdate,
    TableUpdate,
)
from pyiceberg.types import NestedField

from arco.catalog.datatypes import normalize_type, parse_type
from arco.catalog.formats import UnsupportedTableChangeError, register_format_hook
from arco.core.errors import ObjectNotFoundError
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.iceberg.metadata import (
    Warehouse,
    apply_commit,
    arco_type,
    decode_metadata,
    encode_metadata,
    next_metadata_location,
)

__all__ = ["apply_arco_change", "evolve_schema", "install"]

#: Iceberg's table property for the table comment (Arco's description).
COMMENT = "comment"
_NAME_MAPPING = "schema.name-mapping.default"
_ROOT = -1


def _new_field(
    column: Mapping[str, Any], table: str, format_version: int, next_id: Any
) -> NestedField:
    """An Iceberg field (fresh ids) for an Arco column spec; refuse types Iceberg lacks."""
    from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids

    name, wanted = column["name"], normalize_type(column["data_type"])
    if not column["nullable"]:
        raise UnsupportedTableChangeError(
            f"cannot add not-null column {name!r} to Iceberg table {table}: Iceberg adds "
            "columns as optional (existing rows have no value); add it nullable"
        )
    arrow = pa.schema([pa.field(name, parse_type(wanted), nullable=True)])
    try:
        converted = _pyarrow_to_schema_without_ids(arrow, format_version=format_version)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise UnsupportedTableChangeError(
            f"Iceberg has no type for column {name!r} ({wanted}): {exc}"
        ) from exc
    fresh = assign_fresh_schema_ids(converted, next_id)
    field = fresh.fields[0]
    if arco_type(field.field_type) != wanted:
        raise UnsupportedTableChangeError(
            f"Iceberg has no type {wanted} (column {name!r} of {table}); the nearest Iceberg "
            f"type is {field.field_type}, which Arco calls {arco_type(field.field_type)}: "
            "add the column with that type"
        )
    return field.model_copy(update={"doc": column.get("description")})


def evolve_schema(
    metadata: TableMetadata, columns: list[Mapping[str, Any]], table: str
) -> tuple[Schema, dict[int, NestedField], list[NestedField]]:
    """The schema whose top-level fields are ``columns`` (Arco rows, ids = field ids).

    Columns whose id the current schema has keep their field (name and doc
    follow the column: a rename or a comment); others are new optional fields
    with ids above ``last-column-id``; current fields with no column are dropped,
    unless a partition spec, the sort order or the identifier fields need them.
    Answers the schema, the changed fields by id and the added fields.
    """
    current = metadata.schema()
    by_id = {f.field_id: f for f in current.fields}
    counter = itertools.count(metadata.last_column_id + 1)
    fields: list[NestedField] = []
    changed: dict[int, NestedField] = {}
    added: list[NestedField] = []
    for column in columns:
        old = by_id.get(int(column["column_id"]))
        if old is None:
            field = _new_field(column, table, metadata.format_version, lambda: next(counter))
            added.append(field)
        else:
            field = old.model_copy(
                update={"name": column["name"], "doc": column.get("description")}
            )
            if field.name != old.name or field.doc != old.doc:
                changed[field.field_id] = field
        fields.append(field)
    kept = {f.field_id for f in fields}
    needed = {
        pf.source_id: f"partition spec {spec.spec_id}"
        for spec in metadata.partition_specs
        for pf in spec.fields
    }
    needed.update(
        (sf.source_id, f"sort order {order.order_id}")
        for order in metadata.sort_orders
        if order.order_id == metadata.default_sort_order_id
        for sf in order.fields
    )
    needed.update((fid, "the identifier fields") for fid in current.identifier_field_ids)
    for fid, field in by_id.items():
        if fid not in kept and fid in needed:
            raise UnsupportedTableChangeError(
                f"cannot drop column {field.name!r} of Iceberg table {table}: {needed[fid]} uses it"
            )
    identifier = list(current.identifier_field_ids)
    return Schema(*fields, identifier_field_ids=identifier), changed, added


def _updates(
    metadata: TableMetadata, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[TableUpdate]:
    table = f"{old['namespace']}.{old['name']}"
    if new.get("location") != old.get("location"):
        raise UnsupportedTableChangeError(
            f"cannot move Iceberg table {table} through the Arco door: its data and metadata "
            "files name their folder; commit set-location through the Iceberg door"
        )
    updates: list[TableUpdate] = []
    schema, changed, added = evolve_schema(metadata, list(new["columns"]), table)
    current = metadata.schema()
    if schema != current:
        existing = next((s.schema_id for s in metadata.schemas if s == schema), None)
        if existing is None:
            schema = Schema(
                *schema.fields,
                schema_id=max(s.schema_id for s in metadata.schemas) + 1,
                identifier_field_ids=list(schema.identifier_field_ids),
            )
            updates += [
                AddSchemaUpdate(schema=schema),
                SetCurrentSchemaUpdate.model_validate({"schema-id": -1}),
            ]
        else:
            updates.append(SetCurrentSchemaUpdate.model_validate({"schema-id": existing}))
    props = dict(new.get("properties") or {})
    if new.get("description") != old.get("description"):
        if new.get("description") is None:
            props.pop(COMMENT, None)
        else:
            props[COMMENT] = str(new["description"])
    mapping = metadata.properties.get(_NAME_MAPPING)
    if mapping and (changed or added) and props.get(_NAME_MAPPING) == mapping:
        # Readers of files written without field ids find columns by these names.
        refreshed = update_mapping(
            parse_mapping_from_json(mapping), changed, {_ROOT: added} if added else {}
        )
        props[_NAME_MAPPING] = refreshed.model_dump_json()
    to_set = {k: v for k, v in props.items() if metadata.properties.get(k) != v}
    removals = [k for k in metadata.properties if k not in props]
    if to_set:
        updates.append(SetPropertiesUpdate(updates=to_set))
    if removals:
        updates.append(RemovePropertiesUpdate(removals=removals))
    return updates


def apply_arco_change(
    store: ObjectStore,
    scope: Scope,
    txn: Any,
    old: Mapping[str, Any],
    new: dict[str, Any],
) -> dict[str, Any]:
    """The catalog's format hook for Iceberg tables (:class:`arco.catalog.formats.FormatHook`)."""
    from arco.iceberg.records import metadata_op, table_row

    warehouse = Warehouse(store.url, Keys(scope))
    base_location = str(old["metadata_location"])
    try:
        raw, _ = store.get(warehouse.key_of(base_location))
    except ObjectNotFoundError as exc:
        raise UnsupportedTableChangeError(
            f"the metadata file {base_location} of {old['namespace']}.{old['name']} is missing"
        ) from exc
    base = decode_metadata(raw)
    updates = _updates(base, old, new)
    if not updates:
        return dict(old)
    metadata = apply_commit(base, base_location, (), updates)
    location = next_metadata_location(metadata.location, base_location)
    data = encode_metadata(metadata)
    # Create-only under a new name per attempt: a retried commit never overwrites.
    store.put(warehouse.key_of(location), data, "create")
    row = table_row(txn.now, dict(old), str(old["namespace"]), str(old["name"]), metadata, location)
    name = f"{old['namespace']}.{old['name']}"
    txn.ops.append(metadata_op("iceberg_arco_change", name, warehouse, location, data))
    return row


def install() -> None:
    """Register :func:`apply_arco_change` as the catalog's hook for format ``iceberg``."""
    register_format_hook("iceberg", apply_arco_change)
