"""Storing and loading asset values in the workspace's store.

Arrow, pandas and polars tables become Parquet (and catalog tables); other
JSON-able values become JSON; anything else is pickled only when the asset opts
in with ``io="pickle"``.
"""

from __future__ import annotations

import io
import json
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arco.core.errors import InvalidArgumentError, InvalidNameError
from arco.core.ids import sha256_hex
from arco.core.keys import Keys
from arco.core.storage import ObjectStore


@dataclass(frozen=True)
class StoredValue:
    """Where and how a value was stored."""

    location: str | None
    kind: str  # parquet | json | pickle | none
    row_count: int | None
    byte_size: int
    schema: list[dict[str, str]] | None


def _as_arrow(value: Any) -> Any | None:
    import pyarrow as pa

    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    module = type(value).__module__.split(".")[0]
    if module == "pandas" and type(value).__name__ == "DataFrame":
        return pa.Table.from_pandas(value, preserve_index=False)
    if module == "polars" and type(value).__name__ == "DataFrame":
        return value.to_arrow()
    return None


class _RecentValues:
    """The bytes of values this process wrote lately, by store and key.

    A downstream asset usually reads its inputs moments after they were written;
    in one process (the inline executor, a dask worker) the read is then served
    from here instead of a GET, which for small values cost more than the asset.
    Output keys are create-only and carry a fresh materialization id, so an entry
    can never be out of date. Bounded: small values only, least recently used out.
    """

    MAX_ENTRY = 1 << 20
    MAX_TOTAL = 16 << 20

    def __init__(self) -> None:
        self._data: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(store: ObjectStore, key: str) -> tuple[str, str]:
        # A bare memory:// store is a new store on every open: tell them apart.
        url = store.url if store.url and store.url != "memory://" else f"id:{id(store)}"
        return url, key

    def put(self, store: ObjectStore, key: str, data: bytes) -> None:
        if len(data) > self.MAX_ENTRY:
            return
        k = self._key(store, key)
        with self._lock:
            old = self._data.pop(k, None)
            if old is not None:
                self._size -= len(old)
            self._data[k] = data
            self._size += len(data)
            while self._size > self.MAX_TOTAL:
                _, dropped = self._data.popitem(last=False)
                self._size -= len(dropped)

    def get(self, store: ObjectStore, key: str) -> bytes | None:
        k = self._key(store, key)
        with self._lock:
            data = self._data.get(k)
            if data is not None:
                self._data.move_to_end(k)
            return data


_RECENT = _RecentValues()


#: Writes ``data`` under a new key (create-only); may return before it is durable.
Writer = Callable[[str, bytes], None]


def _put(store: ObjectStore, key: str, data: bytes, write: Writer | None) -> None:
    if write is None:
        store.put(key, data, "create")
    else:
        write(key, data)
    _RECENT.put(store, key, data)


def partition_hash(partition: str | None) -> str | None:
    """Short stable hash of a partition key, used in object keys."""
    return None if partition is None else sha256_hex(partition.encode())[:20]


def store_value(
    store: ObjectStore,
    keys: Keys,
    asset_key: str,
    partition: str | None,
    mid: str,
    value: Any,
    io_kind: str,
    write: Writer | None = None,
) -> StoredValue:
    """Write ``value`` and describe it.

    ``write`` replaces the store's create-only PUT (the inline executor hands the
    bytes to a writer thread); the caller then owns waiting for it to be durable.
    """
    if io_kind == "none" or (value is None and io_kind == "auto"):
        return StoredValue(None, "none", None, 0, None)
    table = _as_arrow(value) if io_kind in ("auto", "parquet") else None
    if table is not None:
        import pyarrow.parquet as pq

        from arco.catalog.datatypes import type_to_string

        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue()
        key = keys.asset_output(asset_key, partition_hash(partition), mid, "parquet")
        _put(store, key, data, write)
        schema = []
        for f in table.schema:
            try:
                type_name = type_to_string(f.type)
            except InvalidArgumentError:
                type_name = str(f.type)
            schema.append({"name": f.name, "type": type_name})
        return StoredValue(key, "parquet", table.num_rows, len(data), schema)
    if io_kind == "parquet":
        raise InvalidArgumentError(
            f"asset {asset_key} returned {type(value).__name__}, not a table"
        )
    if io_kind in ("auto", "json"):
        try:
            data = json.dumps(value, sort_keys=True, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            if io_kind == "json":
                raise InvalidArgumentError(f"asset {asset_key}: value is not JSON-able") from exc
            raise InvalidArgumentError(
                f"asset {asset_key} returned {type(value).__name__}, which is neither a table "
                "nor JSON-able; set io='pickle' on the asset to store it with pickle"
            ) from exc
        key = keys.asset_output(asset_key, partition_hash(partition), mid, "json")
        _put(store, key, data, write)
        rows = len(value) if isinstance(value, (list, dict)) else None
        return StoredValue(key, "json", rows, len(data), None)
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    key = keys.asset_output(asset_key, partition_hash(partition), mid, "pkl")
    _put(store, key, data, write)
    return StoredValue(key, "pickle", None, len(data), None)


def load_value(store: ObjectStore, location: str | None, keys: Keys) -> Any:
    """Read a stored value of ``keys``' scope back (Arrow table for Parquet).

    ``location`` comes from a ledger event or the compacted materializations, which
    a writer of the scope supplied: it is checked to lie inside the scope before
    anything is read (a key of another tenant, or an external URL, is refused).
    """
    if location is None:
        return None
    try:
        keys.require_within(location, "input location")
    except InvalidNameError as exc:
        raise InvalidArgumentError(
            f"refusing to load an input whose location is not a stored value of scope "
            f"{keys.scope}: {exc}"
        ) from exc
    data = _RECENT.get(store, location)
    if data is None:
        data, _ = store.get(location)
    if location.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data), use_threads=False)
    if location.endswith(".json"):
        return json.loads(data)
    if location.endswith(".pkl"):
        return pickle.loads(data)
    raise InvalidArgumentError(f"unknown stored value format: {location}")
