"""The Iceberg REST catalog's operations for one scope, on Arco's Tier-1 catalog.

Every write is one :meth:`Catalog.write` commit (lease + fencing + pointer CAS):
a table commit validates the requirements against the current metadata, applies
the updates, writes the next ``*.metadata.json`` create-only, and swaps the
table's ``metadata_location`` together with its Arco columns. A multi-table
transaction is one such commit. Namespaces are Arco namespaces (levels joined
with ``.``); an Iceberg table is an Arco table of format ``iceberg``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.sorting import SortOrder

from arco.catalog.catalog import Catalog
from arco.catalog.txn import CatalogTxn
from arco.core.errors import (
    AlreadyExistsError,
    ArcoError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    ObjectNotFoundError,
)
from arco.core.ids import new_ulid
from arco.core.scope import validate_identifier
from arco.core.storage import ObjectStore
from arco.iceberg.metadata import (
    Warehouse,
    apply_commit,
    decode_metadata,
    encode_metadata,
    new_metadata,
    next_metadata_location,
)

# Parsing the requests and writing the catalog's records have their own modules;
# the names stay importable from here, as before.
from arco.iceberg.records import FORMAT as FORMAT
from arco.iceberg.records import VIEW_FORMAT
from arco.iceberg.records import metadata_op as metadata_op
from arco.iceberg.records import table_row as table_row
from arco.iceberg.requests import TableChange as TableChange
from arco.iceberg.requests import metrics_summary as metrics_summary
from arco.iceberg.requests import namespace_name as namespace_name
from arco.iceberg.requests import paginate
from arco.iceberg.requests import table_changes as table_changes

log = logging.getLogger("arco.iceberg")


class NoSuchNamespaceError(NotFoundError):
    """The namespace does not exist (404 ``NoSuchNamespaceException``)."""

    code = "no-such-namespace"


class NoSuchTableError(NotFoundError):
    """The table does not exist or is not an Iceberg table (404 ``NoSuchTableException``)."""

    code = "no-such-table"


class NamespaceNotEmptyError(ConflictError):
    """The namespace still holds tables or namespaces (409 ``NamespaceNotEmptyException``)."""

    code = "namespace-not-empty"


class TableAlreadyExistsError(AlreadyExistsError):
    """The table or namespace already exists (409 ``AlreadyExistsException``)."""

    code = "already-exists"


@dataclass(frozen=True)
class LoadedTable:
    """A table's current metadata: its location and the file's exact bytes."""

    metadata_location: str | None
    metadata: TableMetadata
    raw: bytes


class MetadataCache:
    """Parsed metadata files by key; they are immutable, so entries never go stale."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[TableMetadata, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[TableMetadata, bytes] | None:
        """The cached metadata of ``key``."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: str, metadata: TableMetadata, raw: bytes) -> None:
        """Remember ``key``'s metadata."""
        with self._lock:
            self._items[key] = (metadata, raw)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class _Prepared:
    """A table change applied and written before the lease, against ``base_location``."""

    base_location: str
    metadata: TableMetadata
    location: str
    raw: bytes


@dataclass
class IcebergCatalog:
    """The Iceberg REST operations of one scope."""

    catalog: Catalog
    store: ObjectStore
    warehouse: Warehouse
    cache: MetadataCache = field(default_factory=MetadataCache)

    # ------------------------------------------------------------- metadata
    def read_metadata(self, location: str) -> tuple[TableMetadata, bytes]:
        """The parsed metadata file at ``location`` (must lie in the warehouse)."""
        key = self.warehouse.key_of(location)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        try:
            raw, _ = self.store.get(key)
        except ObjectNotFoundError as exc:
            raise NotFoundError(f"metadata file {location} does not exist") from exc
        metadata = decode_metadata(raw)
        self.cache.put(key, metadata, raw)
        return metadata, raw

    def _write_metadata(self, metadata: TableMetadata, previous: str | None) -> tuple[str, bytes]:
        location = next_metadata_location(metadata.location, previous)
        key = self.warehouse.key_of(location)
        raw = encode_metadata(metadata)
        # Create-only: a new name per attempt, so a retry never overwrites anything.
        self.store.put(key, raw, "create")
        self.cache.put(key, metadata, raw)
        return location, raw

    # ----------------------------------------------------------- namespaces
    def list_namespaces(
        self, parent: Sequence[str] | None, page_token: str | None, page_size: int | None
    ) -> tuple[list[list[str]], str | None]:
        """Direct children of ``parent`` (top-level namespaces without one)."""
        view = self.catalog.view()
        if parent:
            name = namespace_name(parent)
            if view.state.namespace(name) is None:
                raise NoSuchNamespaceError(f"namespace {name!r} does not exist")
            prefix, depth = name + ".", len(parent) + 1
        else:
            prefix, depth = "", 1
        names = sorted(
            n for n in view.state.namespaces if n.startswith(prefix) and n.count(".") == depth - 1
        )
        chunk, token = paginate(names, page_token, page_size)
        return [n.split(".") for n in chunk], token

    def create_namespace(self, levels: Sequence[str], properties: Mapping[str, str]) -> None:
        """Create a namespace (its parent must exist)."""
        name = namespace_name(levels)
        try:
            self.catalog.create_namespace(name, properties=dict(properties))
        except AlreadyExistsError as exc:
            raise TableAlreadyExistsError(str(exc)) from exc
        except NotFoundError as exc:
            raise NoSuchNamespaceError(str(exc)) from exc

    def namespace_properties(self, levels: Sequence[str]) -> dict[str, str]:
        """The properties of a namespace."""
        name = namespace_name(levels)
        ns = self.catalog.view().state.namespace(name)
        if ns is None:
            raise NoSuchNamespaceError(f"namespace {name!r} does not exist")
        return dict(ns.properties)

    def drop_namespace(self, levels: Sequence[str]) -> None:
        """Drop an empty namespace."""
        name = namespace_name(levels)
        try:
            self.catalog.drop_namespace(name)
        except NotFoundError as exc:
            raise NoSuchNamespaceError(str(exc)) from exc
        except ConflictError as exc:
            raise NamespaceNotEmptyError(str(exc)) from exc

    def update_namespace_properties(
        self, levels: Sequence[str], removals: Sequence[str], updates: Mapping[str, str]
    ) -> tuple[list[str], list[str], list[str]]:
        """Set and remove properties; answers (updated, removed, missing)."""
        name = namespace_name(levels)
        overlap = set(removals) & set(updates)
        if overlap:
            raise InvalidArgumentError(
                f"properties both set and removed: {', '.join(sorted(overlap))}"
            )
        before = self.namespace_properties(levels)
        try:
            self.catalog.update_namespace(
                name, set_properties=dict(updates), remove_properties=list(removals)
            )
        except NotFoundError as exc:
            raise NoSuchNamespaceError(str(exc)) from exc
        removed = sorted(k for k in removals if k in before)
        missing = sorted(k for k in removals if k not in before)
        return sorted(updates), removed, missing

    # --------------------------------------------------------------- tables
    def list_tables(
        self, levels: Sequence[str], page_token: str | None, page_size: int | None
    ) -> tuple[list[str], str | None]:
        """Names of the Iceberg tables directly in a namespace."""
        name = namespace_name(levels)
        state = self.catalog.view().state
        if state.namespace(name) is None:
            raise NoSuchNamespaceError(f"namespace {name!r} does not exist")
        names = sorted(
            r["name"]
            for r in state.tables_in(name)
            if r["format"] == FORMAT and r.get("metadata_location")
        )
        return paginate(names, page_token, page_size)

    def _iceberg_row(self, txn_state: Any, ns: str, name: str) -> dict[str, Any] | None:
        if txn_state.namespace(ns) is None:
            raise NoSuchNamespaceError(f"namespace {ns!r} does not exist")
        row: dict[str, Any] | None = txn_state.table_row(ns, name)
        if row is None:
            return None
        if row["format"] != FORMAT or not row.get("metadata_location"):
            raise NoSuchTableError(
                f"{ns}.{name} is an Arco table of format {row['format']!r}, not an Iceberg table"
            )
        return row

    def load_table(self, levels: Sequence[str], name: str) -> LoadedTable:
        """The current metadata of a table."""
        ns = namespace_name(levels)
        validate_identifier("table name", name)
        row = self._iceberg_row(self.catalog.view().state, ns, name)
        if row is None:
            raise NoSuchTableError(f"table {ns}.{name} does not exist")
        location = row["metadata_location"]
        metadata, raw = self.read_metadata(location)
        return LoadedTable(location, metadata, raw)

    def _check_no_overlap(self, state: Any, location: str, except_id: str | None) -> None:
        """Two tables (or views) never share a folder: a purge or GC of one must not
        touch the other."""
        mine = self.warehouse.key_of(location).rstrip("/") + "/"
        for row in state.tables.values():
            if (
                row["id"] == except_id
                or row["format"] not in (FORMAT, VIEW_FORMAT)
                or not row.get("location")
            ):
                continue
            try:
                theirs = self.warehouse.key_of(row["location"]).rstrip("/") + "/"
            except ArcoError:
                continue
            if mine.startswith(theirs) or theirs.startswith(mine):
                raise ConflictError(
                    f"location {location} overlaps the location of table "
                    f"{row['namespace']}.{row['name']}"
                )

    def _table_row(
        self,
        txn: CatalogTxn,
        old: dict[str, Any] | None,
        ns: str,
        name: str,
        metadata: TableMetadata,
        metadata_location: str,
        table_id: str | None = None,
    ) -> dict[str, Any]:
        return table_row(txn.now, old, ns, name, metadata, metadata_location, table_id)

    def create_table(
        self,
        levels: Sequence[str],
        name: str,
        schema: Schema,
        *,
        location: str | None,
        partition_spec: PartitionSpec | None,
        sort_order: SortOrder | None,
        properties: Mapping[str, str],
        stage: bool,
        idempotency_key: str | None = None,
    ) -> LoadedTable:
        """Create a table (or, with ``stage``, only its first metadata, committed later)."""
        ns = namespace_name(levels)
        validate_identifier("table name", name)
        table_id = new_ulid()
        table_location = (
            location.rstrip("/") if location else self.warehouse.table_location(ns, name, table_id)
        )
        self.warehouse.key_of(table_location)
        metadata = new_metadata(
            schema,
            table_location,
            partition_spec=partition_spec,
            sort_order=sort_order,
            properties=dict(properties),
        )
        if stage:
            state = self.catalog.view().state
            if self._iceberg_row(state, ns, name) is not None:
                raise TableAlreadyExistsError(f"table {ns}.{name} already exists")
            return LoadedTable(None, metadata, encode_metadata(metadata))

        def fn(txn: CatalogTxn) -> dict[str, Any]:
            state = txn.state
            if state.namespace(ns) is None:
                raise NoSuchNamespaceError(f"namespace {ns!r} does not exist")
            if state.table_row(ns, name) is not None:
                raise TableAlreadyExistsError(f"table {ns}.{name} already exists")
            if location:
                self._check_no_overlap(state, table_location, None)
            meta_location, raw = self._write_metadata(metadata, None)
            row = self._table_row(txn, None, ns, name, metadata, meta_location, table_id)
            txn.upsert("tables", row)
            txn.ops.append(_op("iceberg_create_table", f"{ns}.{name}", self, meta_location, raw))
            return {"metadata-location": meta_location}

        request = {
            "op": "iceberg_create_table",
            "namespace": ns,
            "name": name,
            "location": location,
            "properties": dict(properties),
            "schema": schema.model_dump_json(),
        }
        result = self.catalog.write(request, fn, idempotency_key=idempotency_key, decode=_same)
        loaded_location = result["metadata-location"]
        meta, raw = self.read_metadata(loaded_location)
        return LoadedTable(loaded_location, meta, raw)

    def commit(
        self, changes: Sequence[TableChange], idempotency_key: str | None = None
    ) -> list[LoadedTable]:
        """Apply every change in one catalog commit; all land or none does."""
        if not changes:
            raise InvalidArgumentError("a commit needs at least one table change")
        seen: set[tuple[str, str]] = set()
        for change in changes:
            ident = (namespace_name(change.namespace), change.name)
            validate_identifier("table name", change.name)
            if ident in seen:
                raise InvalidArgumentError(f"table {'.'.join(ident)} appears twice in one commit")
            seen.add(ident)

        # Outside the lease (ADR 014, "short critical section"): validate and apply
        # against the newest head and write the next metadata file; under the
        # lease only "is the table still at that base?" is asked again.
        prepared = {} if idempotency_key is not None else self._prepare(changes)

        def fn(txn: CatalogTxn) -> list[str]:
            out = []
            for change in changes:
                ns = namespace_name(change.namespace)
                old = self._iceberg_row(txn.state, ns, change.name)
                early = prepared.get((ns, change.name))
                if (
                    old is not None
                    and early is not None
                    and early.base_location == old["metadata_location"]
                ):
                    row = self._table_row(txn, old, ns, change.name, early.metadata, early.location)
                    txn.upsert("tables", row)
                    txn.ops.append(
                        _op(
                            "iceberg_commit",
                            f"{ns}.{change.name}",
                            self,
                            early.location,
                            early.raw,
                        )
                    )
                    out.append(early.location)
                    continue
                if old is None:
                    base, base_location = None, None
                else:
                    # The head moved since the early attempt: redo it here (that
                    # early file is an orphan for GC, like a lost race's).
                    base_location = old["metadata_location"]
                    base, _ = self.read_metadata(base_location)
                updated = apply_commit(base, base_location, change.requirements, change.updates)
                if old is None:
                    if not updated.location:
                        raise InvalidArgumentError("a created table needs a location")
                    self.warehouse.key_of(updated.location)
                    self._check_no_overlap(txn.state, updated.location, None)
                elif base is not None and updated.location != base.location:
                    self.warehouse.key_of(updated.location)
                    self._check_no_overlap(txn.state, updated.location, old["id"])
                meta_location, raw = self._write_metadata(updated, base_location)
                row = self._table_row(txn, old, ns, change.name, updated, meta_location)
                txn.upsert("tables", row)
                op = "iceberg_create_table" if old is None else "iceberg_commit"
                txn.ops.append(_op(op, f"{ns}.{change.name}", self, meta_location, raw))
                out.append(meta_location)
            return out

        # The request identifies the commit for its idempotency key only; without a
        # key, dumping every update (a snapshot's whole summary) would be wasted.
        request: dict[str, Any] = {"op": "iceberg_commit"}
        if idempotency_key is not None:
            request["changes"] = [
                {
                    "namespace": list(c.namespace),
                    "name": c.name,
                    "requirements": [r.model_dump(mode="json") for r in c.requirements],
                    "updates": [u.model_dump(mode="json") for u in c.updates],
                }
                for c in changes
            ]
        locations = self.catalog.write(request, fn, idempotency_key=idempotency_key, decode=_same)
        loaded = []
        for location in locations:
            metadata, raw = self.read_metadata(location)
            loaded.append(LoadedTable(location, metadata, raw))
        return loaded

    def _prepare(self, changes: Sequence[TableChange]) -> dict[tuple[str, str], _Prepared]:
        """Apply changes to existing tables against the newest head and write their files.

        A requirement that fails here fails on the newest state, so the commit is
        rejected at once (409). Creates, moves and anything this cannot decide
        alone (a missing table, a non-Iceberg row) are left to the commit's lease.
        """
        state = self.catalog.view().state
        out: dict[tuple[str, str], _Prepared] = {}
        for change in changes:
            ns = namespace_name(change.namespace)
            try:
                old = self._iceberg_row(state, ns, change.name)
            except ArcoError:
                continue
            if old is None:
                continue
            base_location = old["metadata_location"]
            base, _ = self.read_metadata(base_location)
            updated = apply_commit(base, base_location, change.requirements, change.updates)
            if updated.location != base.location:
                continue
            location, raw = self._write_metadata(updated, base_location)
            out[(ns, change.name)] = _Prepared(base_location, updated, location, raw)
        return out

    def rename_table(
        self, source: tuple[Sequence[str], str], destination: tuple[Sequence[str], str]
    ) -> None:
        """Rename (or move) a table; its files stay where they are."""
        src_ns, src_name = namespace_name(source[0]), source[1]
        dst_ns, dst_name = namespace_name(destination[0]), destination[1]
        validate_identifier("table name", src_name)
        validate_identifier("table name", dst_name)

        def fn(txn: CatalogTxn) -> None:
            if self._iceberg_row(txn.state, src_ns, src_name) is None:
                raise NoSuchTableError(f"table {src_ns}.{src_name} does not exist")
            if txn.state.namespace(dst_ns) is None:
                raise NoSuchNamespaceError(f"namespace {dst_ns!r} does not exist")
            if txn.state.table_row(dst_ns, dst_name) is not None:
                raise TableAlreadyExistsError(f"table {dst_ns}.{dst_name} already exists")
            txn.rename_table(src_ns, src_name, dst_ns, dst_name)

        self.catalog.write(
            {"op": "iceberg_rename", "from": [src_ns, src_name], "to": [dst_ns, dst_name]}, fn
        )

    def drop_table(self, levels: Sequence[str], name: str, *, purge: bool) -> int:
        """Drop a table; with ``purge`` also delete every file in its folder.

        Answers how many objects the purge deleted. The catalog commit comes
        first: a crash during the purge leaves files no table names, never a
        table whose files are half gone.
        """
        ns = namespace_name(levels)
        validate_identifier("table name", name)
        prefix: list[str] = []

        def fn(txn: CatalogTxn) -> None:
            row = self._iceberg_row(txn.state, ns, name)
            if row is None:
                raise NoSuchTableError(f"table {ns}.{name} does not exist")
            prefix.clear()
            if purge:
                folder = self.warehouse.key_of(row["location"]).rstrip("/") + "/"
                prefix.append(folder)
            txn.drop_table(ns, name)
            if purge:
                txn.ops.append({"op": "iceberg_purge", "name": f"{ns}.{name}", "prefix": folder})

        self.catalog.write({"op": "iceberg_drop", "name": [ns, name], "purge": purge}, fn)
        deleted = 0
        for folder in prefix:
            for meta in list(self.store.list(folder)):
                self.store.delete(meta.key)
                deleted += 1
        return deleted

    def register_table(
        self, levels: Sequence[str], name: str, metadata_location: str, *, overwrite: bool
    ) -> LoadedTable:
        """Make an existing metadata file (inside the warehouse) a table of the catalog."""
        ns = namespace_name(levels)
        validate_identifier("table name", name)
        metadata, raw = self.read_metadata(metadata_location)
        self.warehouse.key_of(metadata.location)

        def fn(txn: CatalogTxn) -> None:
            if txn.state.namespace(ns) is None:
                raise NoSuchNamespaceError(f"namespace {ns!r} does not exist")
            old = txn.state.table_row(ns, name)
            if old is not None and not overwrite:
                raise TableAlreadyExistsError(f"table {ns}.{name} already exists")
            if old is not None and old["format"] != FORMAT:
                raise NoSuchTableError(f"{ns}.{name} is not an Iceberg table")
            self._check_no_overlap(txn.state, metadata.location, old["id"] if old else None)
            row = self._table_row(txn, old, ns, name, metadata, metadata_location)
            txn.upsert("tables", row)
            txn.ops.append(_op("iceberg_register", f"{ns}.{name}", self, metadata_location, raw))

        self.catalog.write(
            {
                "op": "iceberg_register",
                "name": [ns, name],
                "location": metadata_location,
                "overwrite": overwrite,
            },
            fn,
        )
        return LoadedTable(metadata_location, metadata, raw)


def _same(raw: Any) -> Any:
    """A replayed result is stored as the JSON it was returned as."""
    return raw


def _op(kind: str, name: str, svc: IcebergCatalog, location: str, raw: bytes) -> dict[str, Any]:
    return metadata_op(kind, name, svc.warehouse, location, raw)
