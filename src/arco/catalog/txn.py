"""The working copy one catalog commit mutates, collapsed to one :class:`Change`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from arco.catalog.datatypes import normalize_type
from arco.catalog.formats import apply_format_hook
from arco.catalog.models import TABLE_FORMATS, ColumnSpec, Namespace, Table
from arco.catalog.parse import (
    MAX_COLUMNS,
    MAX_DESCRIPTION,
    MAX_LOCATION,
    _as_spec,
    _check_properties,
    _check_text,
)
from arco.catalog.state import CatalogState
from arco.core.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
)
from arco.core.ids import new_ulid
from arco.core.scope import Scope, validate_dotted, validate_identifier
from arco.core.storage import ObjectStore
from arco.domain.store import Change
from arco.domain.tableset import OP_DELETE, OP_UPSERT

_UNSET: Any = object()


class _Txn:
    """A working copy of the state that operations mutate; collapses to one Change."""

    def __init__(
        self,
        state: CatalogState,
        now: datetime,
        store: ObjectStore | None = None,
        scope: Scope | None = None,
    ) -> None:
        self.state = state
        self.now = now
        # For format hooks (formats.py): an Iceberg table's schema change writes metadata.
        self.store = store
        self.scope = scope
        self._rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        self.ops: list[dict[str, Any]] = []

    def _put(self, table: str, row: dict[str, Any], op: int) -> None:
        tdef = CatalogState.TABLES[table]
        stamped = {**row, "_op": op}
        self._rows.setdefault(table, {})[tdef.row_key(row)] = stamped
        self.state = self.state.apply(table, [stamped])

    def upsert(self, table: str, row: dict[str, Any]) -> None:
        """Insert or replace a row."""
        self._put(table, row, OP_UPSERT)

    def delete(self, table: str, row: dict[str, Any]) -> None:
        """Delete a row (the full old row is kept in the delta for auditing)."""
        self._put(table, row, OP_DELETE)

    def change(self) -> Change:
        """All rows this transaction touched, one per key."""
        change = Change(operation={"ops": self.ops})
        for table, rows in self._rows.items():
            change.rows[table] = [
                {**r, "properties": list(r["properties"].items())}
                if isinstance(r.get("properties"), dict)
                else r
                for r in rows.values()
            ]
        return change

    # ------------------------------------------------------------ namespaces
    def create_namespace(
        self,
        name: str,
        description: str | None,
        properties: Mapping[str, Any] | None,
        exist_ok: bool = False,
    ) -> Namespace:
        name = validate_dotted("namespace", name)
        existing = self.state.namespace(name)
        if existing is not None:
            if exist_ok:
                return existing
            raise AlreadyExistsError(f"namespace {name!r} already exists")
        if "." in name:
            parent = name.rsplit(".", 1)[0]
            if self.state.namespace(parent) is None:
                raise NotFoundError(f"parent namespace {parent!r} does not exist; create it first")
        row = {
            "id": new_ulid(),
            "name": name,
            "description": _check_text("description", description, MAX_DESCRIPTION),
            "properties": _check_properties(properties),
            "created_at": self.now,
            "updated_at": self.now,
        }
        self.upsert("namespaces", row)
        self.ops.append({"op": "create_namespace", "name": name})
        result = self.state.namespace(name)
        assert result is not None
        return result

    def require_namespace(self, name: str) -> dict[str, Any]:
        name = validate_dotted("namespace", name)
        row = self.state.namespaces.get(name)
        if row is None:
            raise NotFoundError(f"namespace {name!r} does not exist")
        return row

    def update_namespace(
        self,
        name: str,
        description: Any,
        set_properties: Mapping[str, Any] | None,
        remove_properties: Sequence[str] | None,
    ) -> Namespace:
        row = dict(self.require_namespace(name))
        if description is not _UNSET:
            row["description"] = _check_text("description", description, MAX_DESCRIPTION)
        props = dict(row["properties"])
        props.update(_check_properties(set_properties))
        for key in remove_properties or ():
            props.pop(key, None)
        row["properties"] = _check_properties(props)
        row["updated_at"] = self.now
        self.upsert("namespaces", row)
        self.ops.append({"op": "update_namespace", "name": name})
        result = self.state.namespace(name)
        assert result is not None
        return result

    def drop_namespace(self, name: str, cascade: bool) -> None:
        row = self.require_namespace(name)
        children = self.state.children(name)
        tables = [t for ns in (name, *children) for t in self.state.tables_in(ns)]
        if (children or tables) and not cascade:
            raise ConflictError(
                f"namespace {name!r} is not empty ({len(tables)} tables, {len(children)} "
                "nested namespaces); drop them first or use cascade"
            )
        for table in tables:
            self._drop_table_row(table)
        for child in sorted(children, reverse=True):
            self.delete("namespaces", self.state.namespaces[child])
        self.delete("namespaces", row)
        self.ops.append({"op": "drop_namespace", "name": name, "cascade": cascade})

    # ---------------------------------------------------------------- tables
    def _columns(self, specs: Sequence[Any], start_id: int = 1) -> list[ColumnSpec]:
        if not isinstance(specs, Sequence) or isinstance(specs, str):
            raise InvalidArgumentError("columns must be a list")
        if len(specs) > MAX_COLUMNS:
            raise InvalidArgumentError(f"a table may have at most {MAX_COLUMNS} columns")
        out = []
        for raw in specs:
            spec = _as_spec(raw)
            validate_identifier("column name", spec.name)
            if not isinstance(spec.data_type, str):
                raise InvalidArgumentError(f"column {spec.name!r} needs a type")
            out.append(
                ColumnSpec(
                    name=spec.name,
                    data_type=normalize_type(spec.data_type),
                    nullable=spec.nullable,
                    description=_check_text(
                        "column description", spec.description, MAX_DESCRIPTION
                    ),
                )
            )
        return out

    @staticmethod
    def _check_unique(names: Sequence[str]) -> None:
        seen: set[str] = set()
        for name in names:
            if name.lower() in seen:
                raise InvalidArgumentError(f"duplicate column name {name!r}")
            seen.add(name.lower())

    def require_table(self, namespace: str, name: str) -> dict[str, Any]:
        self.require_namespace(namespace)
        validate_identifier("table name", name)
        row = self.state.table_row(namespace, name)
        if row is None:
            raise NotFoundError(f"table {namespace}.{name} does not exist")
        return row

    def create_table(
        self,
        namespace: str,
        name: str,
        columns: Sequence[Any],
        fmt: str,
        location: str | None,
        description: str | None,
        properties: Mapping[str, Any] | None,
        exist_ok: bool = False,
    ) -> Table:
        self.require_namespace(namespace)
        validate_identifier("table name", name)
        existing = self.state.table(namespace, name)
        if existing is not None:
            if exist_ok:
                return existing
            raise AlreadyExistsError(f"table {namespace}.{name} already exists")
        if fmt not in TABLE_FORMATS:
            raise InvalidArgumentError(f"format {fmt!r} is not one of {', '.join(TABLE_FORMATS)}")
        specs = self._columns(columns)
        self._check_unique([s.name for s in specs])
        table_id = new_ulid()
        self.upsert(
            "tables",
            {
                "id": table_id,
                "namespace": namespace,
                "name": name,
                "format": fmt,
                "location": _check_text("location", location, MAX_LOCATION),
                "description": _check_text("description", description, MAX_DESCRIPTION),
                "properties": _check_properties(properties),
                "schema_version": 1,
                "last_column_id": len(specs),
                "columns": [self._column_row(i + 1, i, spec) for i, spec in enumerate(specs)],
                "created_at": self.now,
                "updated_at": self.now,
            },
        )
        self.ops.append({"op": "create_table", "name": f"{namespace}.{name}"})
        result = self.state.table(namespace, name)
        assert result is not None
        return result

    @staticmethod
    def _column_row(column_id: int, ordinal: int, spec: ColumnSpec) -> dict[str, Any]:
        return {
            "column_id": column_id,
            "ordinal": ordinal,
            "name": spec.name,
            "data_type": spec.data_type,
            "nullable": spec.nullable,
            "description": spec.description,
        }

    def update_table(
        self,
        namespace: str,
        name: str,
        *,
        description: Any,
        set_properties: Mapping[str, Any] | None,
        remove_properties: Sequence[str] | None,
        add_columns: Sequence[Any] | None,
        drop_columns: Sequence[str] | None,
        rename_columns: Mapping[str, str] | None,
        column_descriptions: Mapping[str, str | None] | None,
        location: Any,
    ) -> Table:
        row = dict(self.require_table(namespace, name))
        cols = [dict(c) for c in self.state.column_rows(row["id"])]
        schema_changed = False
        qualified = f"{namespace}.{name}"

        def find(col_name: str) -> dict[str, Any]:
            for col in cols:
                if col["name"] == col_name:
                    return col
            raise NotFoundError(f"column {col_name!r} does not exist in {qualified}")

        for col_name in drop_columns or ():
            col = find(col_name)
            cols.remove(col)
            schema_changed = True
        for old, new in (rename_columns or {}).items():
            find(old)["name"] = validate_identifier("column name", new)
            schema_changed = True
        for col_name, doc in (column_descriptions or {}).items():
            find(col_name)["description"] = _check_text("column description", doc, MAX_DESCRIPTION)
        # Column ids are never reused (like Iceberg field ids): a dropped column's id
        # stays retired, so readers of old files never confuse two columns.
        next_id = (row.get("last_column_id") or 0) + 1
        next_id = max(next_id, max((c["column_id"] for c in cols), default=0) + 1)
        for spec in self._columns(add_columns or []):
            if any(c["name"] == spec.name for c in cols):
                raise AlreadyExistsError(f"column {spec.name!r} already exists in {qualified}")
            cols.append(self._column_row(next_id, 0, spec))
            next_id += 1
            schema_changed = True
        # The limit is on the table, not on one request: added columns count with the rest.
        if len(cols) > MAX_COLUMNS:
            raise InvalidArgumentError(
                f"{qualified} would have {len(cols)} columns; "
                f"a table may have at most {MAX_COLUMNS} columns"
            )
        self._check_unique([c["name"] for c in cols])
        for i, col in enumerate(cols):
            col["ordinal"] = i
        row["columns"] = cols
        row["last_column_id"] = next_id - 1
        if description is not _UNSET:
            row["description"] = _check_text("description", description, MAX_DESCRIPTION)
        if location is not _UNSET:
            row["location"] = _check_text("location", location, MAX_LOCATION)
        props = dict(row["properties"])
        props.update(_check_properties(set_properties))
        for key in remove_properties or ():
            props.pop(key, None)
        row["properties"] = _check_properties(props)
        if schema_changed:
            row["schema_version"] = row["schema_version"] + 1
        row["updated_at"] = self.now
        old_row = self.require_table(namespace, name)
        row = apply_format_hook(self.store, self.scope, self, old_row, row)
        self.upsert("tables", row)
        self.ops.append({"op": "update_table", "name": f"{namespace}.{name}"})
        result = self.state.table(namespace, name)
        assert result is not None
        return result

    def rename_table(self, namespace: str, name: str, new_namespace: str, new_name: str) -> Table:
        row = dict(self.require_table(namespace, name))
        self.require_namespace(new_namespace)
        validate_identifier("table name", new_name)
        if self.state.table_row(new_namespace, new_name) is not None:
            raise AlreadyExistsError(f"table {new_namespace}.{new_name} already exists")
        row.update(namespace=new_namespace, name=new_name, updated_at=self.now)
        self.upsert("tables", row)
        self.ops.append(
            {
                "op": "rename_table",
                "name": f"{namespace}.{name}",
                "to": f"{new_namespace}.{new_name}",
            }
        )
        result = self.state.table(new_namespace, new_name)
        assert result is not None
        return result

    def drop_table(self, namespace: str, name: str) -> None:
        self._drop_table_row(self.require_table(namespace, name))

    def _drop_table_row(self, row: dict[str, Any]) -> None:
        self.delete("tables", row)
        self.ops.append({"op": "drop_table", "name": f"{row['namespace']}.{row['name']}"})


#: The working copy a :meth:`Catalog.write` function mutates.
CatalogTxn = _Txn
