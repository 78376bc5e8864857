"""Storing and loading asset values in the workspace's store.

Arrow, pandas and polars tables become Parquet (and catalog tables); other
JSON-able values become JSON; anything else is pickled only when the asset opts
in with ``io="pickle"``.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass
from typing import Any

from arco.core.errors import InvalidArgumentError
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
) -> StoredValue:
    """Write ``value`` and describe it."""
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
        store.put(key, data, "create")
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
        store.put(key, data, "create")
        rows = len(value) if isinstance(value, (list, dict)) else None
        return StoredValue(key, "json", rows, len(data), None)
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    key = keys.asset_output(asset_key, partition_hash(partition), mid, "pkl")
    store.put(key, data, "create")
    return StoredValue(key, "pickle", None, len(data), None)


def load_value(store: ObjectStore, location: str | None) -> Any:
    """Read a stored value back (Arrow table for Parquet)."""
    if location is None:
        return None
    data, _ = store.get(location)
    if location.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data), use_threads=False)
    if location.endswith(".json"):
        return json.loads(data)
    if location.endswith(".pkl"):
        return pickle.loads(data)
    raise InvalidArgumentError(f"unknown stored value format: {location}")
