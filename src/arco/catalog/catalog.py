"""The Tier-1 catalog: namespaces, tables and columns with linearizable DDL."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from arco.catalog.datatypes import normalize_type
from arco.catalog.formats import apply_format_hook
from arco.catalog.models import TABLE_FORMATS, Column, ColumnSpec, Namespace, Page, Table
from arco.catalog.pointread import (
    CatalogReader,
    namespace_from_row,
    table_from_row,
)
from arco.catalog.state import CatalogState
from arco.core.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
)
from arco.core.ids import canonical_json, check_idempotency_key, new_ulid, sha256_hex, utc_now_ms
from arco.core.scope import Scope, validate_dotted, validate_identifier
from arco.core.storage import ObjectStore, open_store
from arco.domain.lock import DEFAULT_LOCK_TTL, DEFAULT_LOCK_WAIT
from arco.domain.store import Change, DomainStore, Snapshot
from arco.domain.tableset import OP_DELETE, OP_UPSERT

DOMAIN = "catalog"
MAX_PROPERTIES = 256
MAX_PROPERTY_KEY = 256
MAX_PROPERTY_VALUE = 16_384
MAX_DESCRIPTION = 16_384
MAX_COLUMNS = 4_096
MAX_LOCATION = 2_048
_UNSET: Any = object()


def split_qualified(name: str) -> tuple[str, str]:
    """Split ``ns.table`` (``ns`` may itself be dotted) into namespace and table."""
    if not isinstance(name, str) or "." not in name:
        raise InvalidArgumentError(f"{name!r} is not a qualified name NAMESPACE.TABLE")
    namespace, table = name.rsplit(".", 1)
    return validate_dotted("namespace", namespace), validate_identifier("table name", table)


def parse_column_spec(text: str) -> ColumnSpec:
    """Parse the CLI's ``NAME:TYPE[:not-null]`` column syntax."""
    if not isinstance(text, str) or ":" not in text:
        raise InvalidArgumentError(f"column {text!r} must look like NAME:TYPE[:not-null]")
    name, rest = text.split(":", 1)
    nullable = True
    for suffix in (":not-null", ":not_null", ":notnull", ":required"):
        if rest.lower().endswith(suffix):
            rest, nullable = rest[: -len(suffix)], False
            break
    return ColumnSpec(name=name.strip(), data_type=rest.strip(), nullable=nullable)


def _check_text(kind: str, value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{kind} must be a string")
    if len(value) > limit:
        raise InvalidArgumentError(f"{kind} is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidArgumentError(f"{kind} must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates survive JSON decoding but cannot be stored as UTF-8.
            raise InvalidArgumentError(
                f"{kind} must be valid Unicode text (it holds an unpaired surrogate)"
            ) from None
    return value


def _check_properties(props: Mapping[str, Any] | None) -> dict[str, str]:
    if props is None:
        return {}
    if not isinstance(props, Mapping):
        raise InvalidArgumentError("properties must be a mapping of strings to strings")
    if len(props) > MAX_PROPERTIES:
        raise InvalidArgumentError(f"at most {MAX_PROPERTIES} properties are allowed")
    out: dict[str, str] = {}
    for key, value in props.items():
        if not isinstance(key, str) or not key or len(key) > MAX_PROPERTY_KEY:
            raise InvalidArgumentError(
                f"property key {key!r} must be a non-empty string of at most "
                f"{MAX_PROPERTY_KEY} characters"
            )
        if any(ord(ch) < 32 for ch in key):
            raise InvalidArgumentError(f"property key {key!r} contains control characters")
        _check_text("property key", key, MAX_PROPERTY_KEY)
        if not isinstance(value, str):
            raise InvalidArgumentError(f"property {key!r} must have a string value")
        _check_text(f"property {key!r}", value, MAX_PROPERTY_VALUE)
        out[key] = value
    return out


def _as_spec(col: ColumnSpec | Mapping[str, Any] | tuple[Any, ...] | str) -> ColumnSpec:
    if isinstance(col, ColumnSpec):
        return col
    if isinstance(col, str):
        return parse_column_spec(col)
    if isinstance(col, tuple):
        return ColumnSpec(*col)
    if isinstance(col, Mapping):
        unknown = set(col) - {"name", "type", "data_type", "nullable", "description"}
        if unknown:
            raise InvalidArgumentError(f"unknown column fields: {', '.join(sorted(unknown))}")
        nullable = col.get("nullable", True)
        if not isinstance(nullable, bool):
            raise InvalidArgumentError("column 'nullable' must be true or false")
        return ColumnSpec(
            name=col.get("name"),  # type: ignore[arg-type]
            data_type=col.get("type", col.get("data_type")),
            nullable=nullable,
            description=col.get("description"),
        )
    raise InvalidArgumentError(f"cannot read a column from {type(col).__name__}")


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


@dataclass
class Transaction:
    """Operations queued to be committed together, atomically, as one version."""

    _ops: list[Callable[[_Txn], Any]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    version: int | None = None

    def create_namespace(
        self,
        name: str,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        *,
        exist_ok: bool = False,
    ) -> None:
        """Queue a namespace creation."""
        self._ops.append(lambda t: t.create_namespace(name, description, properties, exist_ok))

    def create_table(
        self,
        namespace: str,
        name: str,
        columns: Sequence[Any] = (),
        *,
        format: str = "parquet",
        location: str | None = None,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        exist_ok: bool = False,
    ) -> None:
        """Queue a table creation."""
        self._ops.append(
            lambda t: t.create_table(
                namespace, name, columns, format, location, description, properties, exist_ok
            )
        )

    def drop_table(self, namespace: str, name: str) -> None:
        """Queue a table drop."""
        self._ops.append(lambda t: t.drop_table(namespace, name))


class Catalog:
    """The catalog of one scope on one store.

    Writes are linearizable (lock + fencing + pointer CAS); reads are served from
    memory keyed by the immutable manifest, after one pointer GET (or none, if
    ``max_staleness`` seconds have not passed since the last check).
    """

    def __init__(
        self,
        store: ObjectStore | str,
        scope: Scope | None = None,
        *,
        max_staleness: float = 0.0,
        lock_ttl: float = DEFAULT_LOCK_TTL,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        holder: str | None = None,
    ) -> None:
        self.store = open_store(store) if isinstance(store, str) else store
        self.scope = scope or Scope("default", "default")
        self.domain: DomainStore[CatalogState] = DomainStore(
            self.store,
            self.scope,
            DOMAIN,
            CatalogState,
            lock_ttl=lock_ttl,
            lock_wait=lock_wait,
            max_staleness=max_staleness,
            holder=holder,
        )
        self._sorted: tuple[int, list[tuple[str, str]]] | None = None
        self._point: tuple[str, CatalogReader] | None = None

    # ------------------------------------------------------------- plumbing
    def snapshot(self, max_staleness: float | None = None) -> Snapshot[CatalogState]:
        """The latest snapshot (see :meth:`DomainStore.read`)."""
        return self.domain.read(max_staleness)

    @property
    def version(self) -> int:
        """The latest committed version (0 before the first commit)."""
        return self.domain.read_head(0).version

    def _reader(self) -> CatalogReader | None:
        """A point reader of the latest version, or None when the folded state answers.

        A catalog that has folded its state (it committed, or someone asked for
        :meth:`view`) keeps answering from memory; a cold one reads only what each
        question needs (ADR 015). Catalogs written before sorted bases existed have
        no index to read by, and are folded until their next commit rewrites the base.
        """
        if self.domain.folded:
            return None
        head = self.domain.read_head()
        if head.manifest is None or head.manifest_key is None:
            return None
        point = self._point
        if point is None or point[0] != head.manifest_key:
            point = (head.manifest_key, CatalogReader(self.domain, head.manifest))
            self._point = point
        return point[1] if point[1].indexed else None

    def at_version(self, version: int) -> CatalogView:
        """A read-only view of the catalog as of ``version``."""
        return CatalogView(self.domain.read_version(version).state, version)

    def view(self) -> CatalogView:
        """A read-only view of the latest snapshot (consistent across calls on it)."""
        snap = self.snapshot()
        return CatalogView(snap.state, snap.version)

    def _write(
        self,
        request: dict[str, Any],
        idempotency_key: str | None,
        fn: Callable[[_Txn], Any],
        decode: Callable[[dict[str, Any]], Any] | None,
    ) -> Any:
        request_hash = sha256_hex(canonical_json(request))
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
            replay = self._replay(self.snapshot(0).state, idempotency_key, request_hash, decode)
            if replay is not None:
                return replay[0]

        def mutate(snap: Snapshot[CatalogState]) -> Change:
            if idempotency_key is not None:
                replay = self._replay(snap.state, idempotency_key, request_hash, decode)
                if replay is not None:
                    return Change(result=replay[0])
            txn = _Txn(snap.state, utc_now_ms(), self.store, self.scope)
            result = fn(txn)
            if not txn.ops:
                return Change(result=result)
            if idempotency_key is not None:
                txn.upsert(
                    "idempotency",
                    {
                        "key": idempotency_key,
                        "request_hash": request_hash,
                        "operation": request["op"],
                        "result_json": json.dumps(_to_json(result)),
                        "created_at": txn.now,
                    },
                )
            change = txn.change()
            change.result = result
            return change

        return self.domain.commit(mutate).result

    def write(
        self,
        request: dict[str, Any],
        fn: Callable[[CatalogTxn], Any],
        *,
        idempotency_key: str | None = None,
        decode: Callable[[dict[str, Any]], Any] | None = None,
    ) -> Any:
        """Run ``fn`` on a working copy of the latest state; commit what it did as one version.

        For operations built outside this module (the Iceberg REST catalog): ``fn``
        may run more than once (after a lost race) and records what it changed with
        ``CatalogTxn.upsert``/``delete`` and one ``ops`` entry. ``request`` identifies
        the operation for ``idempotency_key`` (same key, other request: ConflictError);
        a replay returns ``decode`` of the stored result.
        """
        return self._write(request, idempotency_key, fn, decode)

    @staticmethod
    def _replay(
        state: CatalogState,
        key: str,
        request_hash: str,
        decode: Callable[[dict[str, Any]], Any] | None,
    ) -> tuple[Any] | None:
        row = state.idempotency.get(key)
        if row is None:
            return None
        if row["request_hash"] != request_hash:
            raise ConflictError(f"idempotency key {key!r} was already used for a different request")
        raw = json.loads(row["result_json"]) if row["result_json"] else None
        return (decode(raw) if decode is not None and raw is not None else None,)

    # ----------------------------------------------------------- namespaces
    def create_namespace(
        self,
        name: str,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        *,
        exist_ok: bool = False,
        idempotency_key: str | None = None,
    ) -> Namespace:
        """Create a namespace; dotted names nest and need their parent to exist."""
        request = {
            "op": "create_namespace",
            "name": name,
            "description": description,
            "properties": dict(properties or {}),
        }
        return self._write(  # type: ignore[no-any-return]
            request,
            idempotency_key,
            lambda t: t.create_namespace(name, description, properties, exist_ok),
            namespace_from_dict,
        )

    def get_namespace(self, name: str) -> Namespace:
        """The namespace called ``name``."""
        reader = self._reader()
        if reader is None:
            return self.view().get_namespace(name)
        validate_dotted("namespace", name)
        row = reader.namespace_row(name)
        if row is None:
            raise NotFoundError(f"namespace {name!r} does not exist")
        return namespace_from_row(row)

    def list_namespaces(
        self,
        prefix: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Namespace]:
        """Namespaces sorted by name, optionally only those starting with ``prefix``."""
        reader = self._reader()
        if reader is None:
            return self.view().list_namespaces(prefix, page_size=page_size, page_token=page_token)
        after = _decode_token(page_token)
        marker = (after[0],) if after else None
        rows = _first(reader.namespaces.scan(after=marker), _page_size(page_size) + 1, prefix)
        items = [namespace_from_row(r) for r in rows]
        return _page(items, _page_size(page_size), lambda n: [n.name])

    def update_namespace(
        self,
        name: str,
        *,
        description: Any = _UNSET,
        set_properties: Mapping[str, str] | None = None,
        remove_properties: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Namespace:
        """Change a namespace's description or properties."""
        request = {
            "op": "update_namespace",
            "name": name,
            "description": None if description is _UNSET else description,
            "description_set": description is not _UNSET,
            "set": dict(set_properties or {}),
            "remove": list(remove_properties or []),
        }
        return self._write(  # type: ignore[no-any-return]
            request,
            idempotency_key,
            lambda t: t.update_namespace(name, description, set_properties, remove_properties),
            namespace_from_dict,
        )

    def drop_namespace(
        self, name: str, *, cascade: bool = False, idempotency_key: str | None = None
    ) -> None:
        """Drop a namespace; a non-empty one only with ``cascade``."""
        request = {"op": "drop_namespace", "name": name, "cascade": cascade}
        self._write(request, idempotency_key, lambda t: t.drop_namespace(name, cascade), None)

    # --------------------------------------------------------------- tables
    def create_table(
        self,
        namespace: str,
        name: str,
        columns: Sequence[Any] = (),
        *,
        format: str = "parquet",
        location: str | None = None,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        exist_ok: bool = False,
        idempotency_key: str | None = None,
    ) -> Table:
        """Register a table with its columns."""
        request = {
            "op": "create_table",
            "namespace": namespace,
            "name": name,
            "columns": [_spec_json(c) for c in columns],
            "format": format,
            "location": location,
            "description": description,
            "properties": dict(properties or {}),
        }
        return self._write(  # type: ignore[no-any-return]
            request,
            idempotency_key,
            lambda t: t.create_table(
                namespace, name, columns, format, location, description, properties, exist_ok
            ),
            table_from_dict,
        )

    def get_table(self, namespace: str, name: str) -> Table:
        """The table ``namespace.name``."""
        reader = self._reader()
        if reader is None:
            return self.view().get_table(namespace, name)
        table: Table | None = reader.table(namespace, name)
        if table is not None:
            return table
        validate_dotted("namespace", namespace)
        validate_identifier("table name", name)
        if reader.namespace_row(namespace) is None:
            raise NotFoundError(f"namespace {namespace!r} does not exist")
        raise NotFoundError(f"table {namespace}.{name} does not exist")

    def list_tables(
        self,
        namespace: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Table]:
        """Tables sorted by (namespace, name), optionally in one namespace / by name prefix."""
        reader = self._reader()
        if reader is None:
            return self.view().list_tables(
                namespace, prefix=prefix, page_size=page_size, page_token=page_token
            )
        size = _page_size(page_size)
        after = _decode_token(page_token)
        if after is not None and len(after) != 2:
            raise InvalidArgumentError("page token is not valid for this listing")
        batches = self._scan_tables(reader, namespace, tuple(after) if after else None, prefix)
        rows = _first(batches, size + 1)
        items = [table_from_row(r) for r in rows]
        return _page(items, size, lambda t: [t.namespace, t.name])

    def iter_tables(self, namespace: str | None = None) -> Iterator[list[Table]]:
        """Every table sorted by (namespace, name), in batches, read as they are yielded.

        One version throughout; the first batch comes before the last is read, so a
        caller can print rows while the rest are fetched (``arco table list``).
        """
        reader = self._reader()
        if reader is None:
            yield self.view().list_tables(namespace).items
            return
        for batch in self._scan_tables(reader, namespace, None, None):
            yield [table_from_row(r) for r in batch]

    def iter_table_batches(self, namespace: str | None = None) -> Iterator[pa.Table]:
        """Every table sorted by (namespace, name), as Arrow tables of ``tables`` rows.

        The rows of the ``tables`` state table (schema ``state.TABLES``), a batch
        per row group of the base, read as they are yielded: for renderers that
        work column by column (``arco table list``), with no Python object per row.
        """
        from arco.catalog.state import TABLES
        from arco.domain import tableset

        reader = self._reader()
        if reader is None:
            view = self.view()
            if namespace is not None:
                view.get_namespace(namespace)
            rows = sorted(
                (r for r in view.state.tables.values() if namespace in (None, r["namespace"])),
                key=lambda r: (r["namespace"], r["name"]),
            )
            for start in range(0, len(rows), tableset.GROUP_ROWS):
                chunk = rows[start : start + tableset.GROUP_ROWS]
                yield pa.Table.from_pylist(
                    [{**r, "properties": list(r["properties"].items())} for r in chunk],
                    schema=TABLES.schema,
                )
            return
        if namespace is not None:
            validate_dotted("namespace", namespace)
            if reader.namespace_row(namespace) is None:
                raise NotFoundError(f"namespace {namespace!r} does not exist")
        yield from reader.tables.scan_arrow((namespace,) if namespace is not None else ())

    @staticmethod
    def _scan_tables(
        reader: CatalogReader,
        namespace: str | None,
        after: tuple[str, ...] | None,
        prefix: str | None,
    ) -> Iterator[list[dict[str, Any]]]:
        if namespace is not None:
            validate_dotted("namespace", namespace)
            if reader.namespace_row(namespace) is None:
                raise NotFoundError(f"namespace {namespace!r} does not exist")
        key = (namespace,) if namespace is not None else ()
        return reader.tables.scan(key, after=after, name_prefix=prefix)

    def update_table(
        self,
        namespace: str,
        name: str,
        *,
        description: Any = _UNSET,
        location: Any = _UNSET,
        set_properties: Mapping[str, str] | None = None,
        remove_properties: Sequence[str] | None = None,
        add_columns: Sequence[Any] | None = None,
        drop_columns: Sequence[str] | None = None,
        rename_columns: Mapping[str, str] | None = None,
        column_descriptions: Mapping[str, str | None] | None = None,
        idempotency_key: str | None = None,
    ) -> Table:
        """Change a table: description, location, properties and columns."""
        request = {
            "op": "update_table",
            "namespace": namespace,
            "name": name,
            "description": None if description is _UNSET else description,
            "description_set": description is not _UNSET,
            "location": None if location is _UNSET else location,
            "location_set": location is not _UNSET,
            "set": dict(set_properties or {}),
            "remove": list(remove_properties or []),
            "add": [_spec_json(c) for c in add_columns or []],
            "drop": list(drop_columns or []),
            "rename": dict(rename_columns or {}),
            "docs": dict(column_descriptions or {}),
        }
        return self._write(  # type: ignore[no-any-return]
            request,
            idempotency_key,
            lambda t: t.update_table(
                namespace,
                name,
                description=description,
                set_properties=set_properties,
                remove_properties=remove_properties,
                add_columns=add_columns,
                drop_columns=drop_columns,
                rename_columns=rename_columns,
                column_descriptions=column_descriptions,
                location=location,
            ),
            table_from_dict,
        )

    def rename_table(
        self,
        namespace: str,
        name: str,
        new_name: str,
        *,
        new_namespace: str | None = None,
        idempotency_key: str | None = None,
    ) -> Table:
        """Rename a table, optionally moving it to another namespace."""
        target_ns = namespace if new_namespace is None else new_namespace
        request = {
            "op": "rename_table",
            "namespace": namespace,
            "name": name,
            "new_namespace": target_ns,
            "new_name": new_name,
        }
        return self._write(  # type: ignore[no-any-return]
            request,
            idempotency_key,
            lambda t: t.rename_table(namespace, name, target_ns, new_name),
            table_from_dict,
        )

    def drop_table(self, namespace: str, name: str, *, idempotency_key: str | None = None) -> None:
        """Remove a table and its columns from the catalog."""
        request = {"op": "drop_table", "namespace": namespace, "name": name}
        self._write(request, idempotency_key, lambda t: t.drop_table(namespace, name), None)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Queue operations and commit them as one atomic version on exit."""
        tx = Transaction()
        yield tx

        def run(t: _Txn) -> list[Any]:
            return [op(t) for op in tx._ops]

        def mutate(snap: Snapshot[CatalogState]) -> Change:
            txn = _Txn(snap.state, utc_now_ms())
            results = run(txn)
            change = txn.change()
            change.result = results
            return change

        if tx._ops:
            result = self.domain.commit(mutate)
            tx.results = list(result.result or [])
            tx.version = result.snapshot.version


class CatalogView:
    """Read-only queries over one immutable catalog state."""

    def __init__(self, state: CatalogState, version: int) -> None:
        self.state = state
        self.version = version

    def get_namespace(self, name: str) -> Namespace:
        """The namespace called ``name``."""
        validate_dotted("namespace", name)
        ns = self.state.namespace(name)
        if ns is None:
            raise NotFoundError(f"namespace {name!r} does not exist")
        return ns

    def get_table(self, namespace: str, name: str) -> Table:
        """The table ``namespace.name``."""
        table = self.state.table(namespace, name)
        if table is None:
            validate_dotted("namespace", namespace)
            validate_identifier("table name", name)
            if self.state.namespace(namespace) is None:
                raise NotFoundError(f"namespace {namespace!r} does not exist")
            raise NotFoundError(f"table {namespace}.{name} does not exist")
        return table

    def list_namespaces(
        self,
        prefix: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Namespace]:
        """Namespaces sorted by name."""
        names = sorted(n for n in self.state.namespaces if not prefix or n.startswith(prefix))
        after = _decode_token(page_token)
        if after is not None:
            names = [n for n in names if n > after[0]]
        size = _page_size(page_size)
        chunk = names[:size]
        items = [self.state.namespace(n) for n in chunk]
        token = _encode_token([chunk[-1]]) if len(names) > size and chunk else None
        return Page([i for i in items if i is not None], token)

    def list_tables(
        self,
        namespace: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Table]:
        """Tables sorted by (namespace, name)."""
        if namespace is not None:
            self.get_namespace(namespace)
            keys = [k for k in self.state.by_name if k[0] == namespace]
        else:
            keys = list(self.state.by_name)
        if prefix:
            keys = [k for k in keys if k[1].startswith(prefix)]
        keys.sort()
        after = _decode_token(page_token)
        if after is not None:
            if len(after) != 2:
                raise InvalidArgumentError("page token is not valid for this listing")
            marker = (after[0], after[1])
            keys = [k for k in keys if k > marker]
        size = _page_size(page_size)
        chunk = keys[:size]
        items = [self.state.table(ns, n) for ns, n in chunk]
        token = _encode_token(list(chunk[-1])) if len(keys) > size and chunk else None
        return Page([i for i in items if i is not None], token)


def _first(
    batches: Iterator[list[dict[str, Any]]], n: int, prefix: str | None = None
) -> list[dict[str, Any]]:
    """The first ``n`` rows of ``batches`` (whose name starts with ``prefix``)."""
    out: list[dict[str, Any]] = []
    for batch in batches:
        for row in batch:
            if prefix and not row["name"].startswith(prefix):
                continue
            out.append(row)
            if len(out) >= n:
                return out
    return out


def _page(items: list[Any], size: int, marker: Callable[[Any], list[str]]) -> Page[Any]:
    """A page of at most ``size`` items, with a token when ``items`` has more."""
    if len(items) > size:
        return Page(items[:size], _encode_token(marker(items[size - 1])))
    return Page(items, None)


def _page_size(page_size: int | None) -> int:
    if page_size is None:
        return 1_000_000
    if not isinstance(page_size, int) or not 1 <= page_size <= 10_000:
        raise InvalidArgumentError("page_size must be between 1 and 10000")
    return page_size


def _encode_token(parts: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode_token(token: str | None) -> list[str] | None:
    if token is None or token == "":
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
            raise ValueError
        return parts
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError("page token is malformed") from exc


def _spec_json(col: Any) -> Any:
    spec = _as_spec(col)
    return [spec.name, spec.data_type, spec.nullable, spec.description]


def _to_json(value: Any) -> Any:
    if value is None:
        return None
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if to_dict is not None else value


def namespace_from_dict(raw: dict[str, Any]) -> Namespace:
    """Inverse of :meth:`Namespace.to_dict`."""
    return Namespace(
        id=raw["id"],
        name=raw["name"],
        description=raw["description"],
        properties=dict(raw["properties"]),
        created_at=datetime.fromisoformat(raw["created_at"]),
        updated_at=datetime.fromisoformat(raw["updated_at"]),
    )


def table_from_dict(raw: dict[str, Any]) -> Table:
    """Inverse of :meth:`Table.to_dict`."""
    return Table(
        id=raw["id"],
        namespace=raw["namespace"],
        name=raw["name"],
        format=raw["format"],
        location=raw["location"],
        description=raw["description"],
        properties=dict(raw["properties"]),
        columns=tuple(
            Column(
                name=c["name"],
                data_type=c["type"],
                nullable=c["nullable"],
                ordinal=c["ordinal"],
                description=c["description"],
                column_id=c["column_id"],
            )
            for c in raw["columns"]
        ),
        created_at=datetime.fromisoformat(raw["created_at"]),
        updated_at=datetime.fromisoformat(raw["updated_at"]),
        schema_version=raw.get("schema_version", 1),
        metadata_location=raw.get("metadata_location"),
    )
