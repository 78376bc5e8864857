"""Query results as JSON: Arrow values (as DuckDB returns them) to JSON-ready rows.

:func:`to_json_rows` is how :func:`arco.sql.engine.run_query` fills
``QueryResult.rows``: timestamps, dates and times become ISO 8601 strings,
decimals strings, bytes base64, durations seconds, non-finite floats
``"NaN"``/``"Infinity"``, maps objects or key/value lists, structs objects.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pyarrow as pa
import pyarrow.compute as pc


def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _scalar(value: Any) -> Any:
    """A JSON-ready form of one Python value (recursing into containers)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, pa.MonthDayNano):  # a named tuple: before the tuple case
        return {"months": value.months, "days": value.days, "nanoseconds": value.nanoseconds}
    if isinstance(value, dict):
        return {str(k): _scalar(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scalar(v) for v in value]
    return str(value)


def _converter(dtype: pa.DataType) -> Callable[[Any], Any] | None:
    """A function turning one value of ``dtype`` (as ``to_pylist`` gives it) into JSON.

    None when the values are JSON-ready as they are.
    """
    if pa.types.is_map(dtype):
        key = _converter(dtype.key_type) or _same
        item = _converter(dtype.item_type) or _same
        string_keys = pa.types.is_string(dtype.key_type) or pa.types.is_large_string(dtype.key_type)

        def conv_map(value: Any) -> Any:
            if value is None:
                return None
            if string_keys:
                return {k: item(v) for k, v in value}
            return [{"key": key(k), "value": item(v)} for k, v in value]

        return conv_map
    if (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_fixed_size_list(dtype)
    ):
        inner = _converter(dtype.value_type)
        if inner is None:
            return None
        return lambda v: None if v is None else [inner(x) for x in v]
    if pa.types.is_struct(dtype):
        fields = [(f.name, _converter(f.type) or _same) for f in dtype]
        return lambda v: None if v is None else {n: c(v.get(n)) for n, c in fields}
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_null(dtype)
    ):
        return None
    return _scalar


def _same(value: Any) -> Any:
    return value


def _as_strings(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Top-level temporal and decimal columns formatted by Arrow, not value by value.

    Python ``datetime`` objects cost ~20 µs each to make; this is ~100 times cheaper.
    Timestamps hold UTC instants, so dropping the zone label keeps the UTC wall time.
    """
    dtype = column.type
    if pa.types.is_timestamp(dtype):
        wall = column.cast(pa.timestamp(dtype.unit)).cast(pa.string())
        text = pc.replace_substring(wall, " ", "T", max_replacements=1)
        return pc.binary_join_element_wise(text, "+00:00", "") if dtype.tz else text
    if pa.types.is_date(dtype) or pa.types.is_time(dtype) or pa.types.is_decimal(dtype):
        return column.cast(pa.string())
    return None


def to_json_rows(table: pa.Table) -> list[list[Any]]:
    """Rows of ``table`` as lists of JSON-ready values.

    Timestamps, dates and times become ISO 8601 strings, decimals strings, bytes
    base64, durations seconds, non-finite floats ``"NaN"``/``"Infinity"``; maps
    with string keys become objects (others lists of key/value objects), structs
    objects and lists lists.
    """
    columns = []
    for column in table.columns:
        text = _as_strings(column)
        if text is not None:
            columns.append(text.to_pylist())
            continue
        convert = _converter(column.type)
        values = column.to_pylist()
        columns.append(values if convert is None else [convert(v) for v in values])
    return [list(row) for row in zip(*columns, strict=True)] if columns else []
