"""Catalog records returned to callers (plain frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

TableFormat = Literal["delta", "iceberg", "parquet", "csv", "json"]
TABLE_FORMATS: tuple[str, ...] = ("delta", "iceberg", "parquet", "csv", "json")

T = TypeVar("T")


def _iso(ts: datetime) -> str:
    return ts.isoformat()


@dataclass(frozen=True)
class Namespace:
    """A namespace (schema); dotted names nest (``sales.emea``)."""

    id: str
    name: str
    description: str | None
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @property
    def parent(self) -> str | None:
        """The enclosing namespace, if nested."""
        return self.name.rsplit(".", 1)[0] if "." in self.name else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "properties": dict(self.properties),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True)
class Column:
    """A column of a table."""

    name: str
    data_type: str
    nullable: bool = True
    ordinal: int = 0
    description: str | None = None
    column_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "type": self.data_type,
            "nullable": self.nullable,
            "ordinal": self.ordinal,
            "description": self.description,
            "column_id": self.column_id,
        }


@dataclass(frozen=True)
class ColumnSpec:
    """A column as given by a caller (type not yet normalised)."""

    name: str
    data_type: str
    nullable: bool = True
    description: str | None = None


@dataclass(frozen=True)
class Table:
    """A table registered in the catalog."""

    id: str
    namespace: str
    name: str
    format: str
    location: str | None
    description: str | None
    properties: dict[str, str]
    columns: tuple[Column, ...]
    created_at: datetime
    updated_at: datetime
    schema_version: int = 1
    #: An Iceberg table's current metadata file (``format == "iceberg"``), else None.
    metadata_location: str | None = None

    @property
    def qualified_name(self) -> str:
        """``namespace.name``."""
        return f"{self.namespace}.{self.name}"

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "namespace": self.namespace,
            "name": self.name,
            "format": self.format,
            "location": self.location,
            "description": self.description,
            "properties": dict(self.properties),
            "columns": [c.to_dict() for c in self.columns],
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "schema_version": self.schema_version,
            "metadata_location": self.metadata_location,
        }


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_page_token`` back for the next one."""

    items: list[T] = field(default_factory=list)
    next_page_token: str | None = None
