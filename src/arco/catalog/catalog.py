"""The Tier-1 catalog: namespaces, tables and columns with linearizable DDL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from arco.catalog.models import Column, Namespace, Table
from arco.catalog.parse import (
    MAX_COLUMNS,
    MAX_DESCRIPTION,
    MAX_LOCATION,
    MAX_PROPERTIES,
    MAX_PROPERTY_KEY,
    MAX_PROPERTY_VALUE,
    _as_spec,
    _spec_json,
    parse_column_spec,
    split_qualified,
)
from arco.catalog.reads import CatalogReads, CatalogView
from arco.catalog.state import CatalogState
from arco.catalog.transaction import Transaction
from arco.catalog.txn import _UNSET, CatalogTxn, _Txn
from arco.core.errors import ConflictError
from arco.core.ids import canonical_json, check_idempotency_key, sha256_hex, utc_now_ms
from arco.core.scope import Scope
from arco.core.storage import ObjectStore, open_store
from arco.domain.lock import DEFAULT_LOCK_TTL, DEFAULT_LOCK_WAIT
from arco.domain.store import Change, DomainStore, Snapshot

# The names this module held before it was split by job (issue #11) stay importable
# from it; new code imports them from where they now live.
__all__ = [
    "DOMAIN",
    "MAX_COLUMNS",
    "MAX_DESCRIPTION",
    "MAX_LOCATION",
    "MAX_PROPERTIES",
    "MAX_PROPERTY_KEY",
    "MAX_PROPERTY_VALUE",
    "Catalog",
    "CatalogTxn",
    "CatalogView",
    "Transaction",
    "namespace_from_dict",
    "parse_column_spec",
    "split_qualified",
    "table_from_dict",
]

DOMAIN = "catalog"


class Catalog(CatalogReads):
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
        super().__init__(
            DomainStore(
                self.store,
                self.scope,
                DOMAIN,
                CatalogState,
                lock_ttl=lock_ttl,
                lock_wait=lock_wait,
                max_staleness=max_staleness,
                holder=holder,
            )
        )
        self._sorted: tuple[int, list[tuple[str, str]]] | None = None

    def _write(
        self,
        request: dict[str, Any],
        idempotency_key: str | None,
        fn: Callable[[_Txn], Any],
        decode: Callable[[dict[str, Any]], Any] | None,
    ) -> Any:
        # Only an idempotency key needs the request's hash (to tell a replay apart).
        request_hash = sha256_hex(canonical_json(request)) if idempotency_key is not None else ""
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
        # Parsed once, for the request and for the working copy (which still checks
        # them, and that they are a list).
        specs = [_as_spec(c) for c in columns]
        if isinstance(columns, Sequence) and not isinstance(columns, str):
            columns = specs
        request = {
            "op": "create_table",
            "namespace": namespace,
            "name": name,
            "columns": [_spec_json(c) for c in specs],
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
