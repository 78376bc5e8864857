"""The catalog domain's state: tables, schemas and the in-memory fold.

The Parquet schemas here are a contract (golden files in tests pin them):
change them only by adding nullable columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import immutables
import pyarrow as pa

from arco.catalog.models import Column, Namespace, Table
from arco.domain.tableset import OP_DELETE, TableDef

_TS = pa.timestamp("ms", tz="UTC")
_PROPS = pa.map_(pa.string(), pa.string())

NAMESPACES = TableDef(
    "namespaces",
    pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("name", pa.string(), nullable=False),
            pa.field("description", pa.string()),
            pa.field("properties", _PROPS),
            pa.field("created_at", _TS, nullable=False),
            pa.field("updated_at", _TS, nullable=False),
        ]
    ),
    ("name",),
    sort_key=("name",),
    delta_ranges=True,
    dictionary=False,
)
COLUMN_STRUCT = pa.struct(
    [
        pa.field("column_id", pa.int32(), nullable=False),
        pa.field("ordinal", pa.int32(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("data_type", pa.string(), nullable=False),
        pa.field("nullable", pa.bool_(), nullable=False),
        pa.field("description", pa.string()),
    ]
)
# Columns are nested in their table's row: a table and its schema change
# together, so one DDL commit writes one small delta file, not two.
TABLES = TableDef(
    "tables",
    pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("namespace", pa.string(), nullable=False),
            pa.field("name", pa.string(), nullable=False),
            pa.field("format", pa.string(), nullable=False),
            pa.field("location", pa.string()),
            pa.field("description", pa.string()),
            pa.field("properties", _PROPS),
            pa.field("schema_version", pa.int32(), nullable=False),
            pa.field("last_column_id", pa.int32()),
            pa.field("columns", pa.list_(pa.field("item", COLUMN_STRUCT, nullable=False))),
            pa.field("created_at", _TS, nullable=False),
            pa.field("updated_at", _TS, nullable=False),
            # Iceberg tables: the current metadata file (added later, so nullable).
            pa.field("metadata_location", pa.string()),
        ]
    ),
    ("id",),
    sort_key=("namespace", "name"),
    delta_ranges=True,
    dictionary=False,
)
IDEMPOTENCY = TableDef(
    "idempotency",
    pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),
            pa.field("request_hash", pa.string(), nullable=False),
            pa.field("operation", pa.string(), nullable=False),
            pa.field("result_json", pa.string()),
            pa.field("created_at", _TS, nullable=False),
        ]
    ),
    ("key",),
)


def _props(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    return dict(value)


@dataclass(frozen=True)
class CatalogState:
    """Immutable (persistent-map) state of the catalog domain."""

    TABLES: ClassVar[dict[str, TableDef]] = {t.name: t for t in (NAMESPACES, TABLES, IDEMPOTENCY)}

    namespaces: immutables.Map[str, dict[str, Any]]
    tables: immutables.Map[str, dict[str, Any]]
    by_name: immutables.Map[tuple[str, str], str]
    idempotency: immutables.Map[str, dict[str, Any]]

    @classmethod
    def empty(cls) -> Self:
        """No namespaces, no tables."""
        m: immutables.Map[Any, Any] = immutables.Map()
        return cls(m, m, m, m)

    def clear(self, table: str) -> Self:
        """Drop every row of one state table."""
        m: immutables.Map[Any, Any] = immutables.Map()
        if table == "namespaces":
            return type(self)(m, self.tables, self.by_name, self.idempotency)
        if table == "tables":
            return type(self)(self.namespaces, m, m, self.idempotency)
        return type(self)(self.namespaces, self.tables, self.by_name, m)

    def apply(self, table: str, rows: Sequence[dict[str, Any]]) -> Self:
        """Apply delta rows in order."""
        if table == "namespaces":
            with self.namespaces.mutate() as ns:
                for row in rows:
                    if row["_op"] == OP_DELETE:
                        ns.pop(row["name"], None)
                    else:
                        ns[row["name"]] = _clean(row)
                namespaces = ns.finish()
            return type(self)(namespaces, self.tables, self.by_name, self.idempotency)
        if table == "tables":
            with self.tables.mutate() as tb, self.by_name.mutate() as bn:
                for row in rows:
                    old = tb.get(row["id"])
                    if old is not None:
                        bn.pop((old["namespace"], old["name"]), None)
                    if row["_op"] == OP_DELETE:
                        tb.pop(row["id"], None)
                    else:
                        tb[row["id"]] = _clean(row)
                        bn[(row["namespace"], row["name"])] = row["id"]
                tables, by_name = tb.finish(), bn.finish()
            return type(self)(self.namespaces, tables, by_name, self.idempotency)
        with self.idempotency.mutate() as idem:
            for row in rows:
                if row["_op"] == OP_DELETE:
                    idem.pop(row["key"], None)
                else:
                    idem[row["key"]] = _clean(row)
            idempotency = idem.finish()
        return type(self)(self.namespaces, self.tables, self.by_name, idempotency)

    def rows(self, table: str) -> Iterable[dict[str, Any]]:
        """Live rows of one state table."""
        if table == "namespaces":
            return list(self.namespaces.values())
        if table == "tables":
            return list(self.tables.values())
        return list(self.idempotency.values())

    # --------------------------------------------------------------- queries
    def namespace(self, name: str) -> Namespace | None:
        """The namespace called ``name``."""
        row = self.namespaces.get(name)
        return _namespace(row) if row is not None else None

    def table_row(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The raw row of a table."""
        table_id = self.by_name.get((namespace, name))
        return self.tables.get(table_id) if table_id is not None else None

    def table(self, namespace: str, name: str) -> Table | None:
        """The table ``namespace.name`` with its columns."""
        row = self.table_row(namespace, name)
        return self.table_from_row(row) if row is not None else None

    def column_rows(self, table_id: str) -> list[dict[str, Any]]:
        """Column rows of a table in ordinal order."""
        row = self.tables.get(table_id)
        if row is None:
            return []
        return sorted(row["columns"] or (), key=lambda c: c["ordinal"])

    @staticmethod
    def table_from_row(row: dict[str, Any]) -> Table:
        """A :class:`Table` from its row (columns are nested in it)."""
        return Table(
            id=row["id"],
            namespace=row["namespace"],
            name=row["name"],
            format=row["format"],
            location=row["location"],
            description=row["description"],
            properties=_props(row["properties"]),
            columns=tuple(
                Column(
                    name=c["name"],
                    data_type=c["data_type"],
                    nullable=c["nullable"],
                    ordinal=c["ordinal"],
                    description=c["description"],
                    column_id=c["column_id"],
                )
                for c in sorted(row["columns"] or (), key=lambda c: c["ordinal"])
            ),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            schema_version=row["schema_version"],
            metadata_location=row.get("metadata_location"),
        )

    def tables_in(self, namespace: str) -> list[dict[str, Any]]:
        """Rows of the tables directly inside ``namespace``."""
        return [r for r in self.tables.values() if r["namespace"] == namespace]

    def children(self, namespace: str) -> list[str]:
        """Names of namespaces nested directly or indirectly inside ``namespace``."""
        prefix = namespace + "."
        return [n for n in self.namespaces if n.startswith(prefix)]


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)  # a copy and two pops: half the time of a filtering comprehension
    out.pop("_op", None)
    out.pop("_version", None)
    if "properties" in out:
        out["properties"] = _props(out["properties"])
    return out


def _namespace(row: dict[str, Any]) -> Namespace:
    return Namespace(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        properties=_props(row["properties"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
