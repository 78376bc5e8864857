"""Tables as JSON text straight from Arrow rows of the ``tables`` state table.

A listing (``arco table list``, a page of ``GET .../tables``) renders each row
column by column: no row dict, ``Table`` or ``Column`` object per table, and
every string escaped by the C function ``json`` itself uses. The text is exactly
``json.dumps(Table.to_dict(), ensure_ascii=False)`` (with the separators asked
for); ``tests/catalog/test_tablejson.py`` and ``tests/cli`` hold it equal.
"""

from __future__ import annotations

import json
import json.encoder
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from arco.domain.tableset import column_values, timestamp_integers

_COLUMN_FIELDS = ("name", "data_type", "nullable", "ordinal", "description", "column_id")
_ENCODERS = {
    compact: json.JSONEncoder(
        ensure_ascii=False, separators=(",", ":") if compact else (", ", ": ")
    ).encode
    for compact in (False, True)
}


def table_json_texts(batch: pa.Table, *, compact: bool = False) -> list[str]:
    """Each row of a ``tables`` batch as the JSON text of its ``Table.to_dict()``.

    ``compact``: the separators ``,`` and ``:`` (as the API writes its bodies),
    else ``json.dumps``'s defaults ``, `` and ``: ``.
    """
    enc = json.encoder.encode_basestring
    s, k = (",", ":") if compact else (", ", ": ")
    dump = _ENCODERS[compact]

    def text(values: list[Any]) -> list[str]:
        return ["null" if v is None else enc(v) for v in values]

    have = set(batch.column_names)

    def col(name: str) -> list[Any]:
        if name not in have:  # a file written before the column existed
            return [None] * batch.num_rows
        return column_values(batch.column(name))

    ids, namespaces, names = text(col("id")), text(col("namespace")), text(col("name"))
    formats, locations = text(col("format")), text(col("location"))
    descriptions, metadata = text(col("description")), text(col("metadata_location"))
    stamps: dict[tuple[str, int], str] = {}  # updated_at is mostly created_at again
    created = iso_texts(batch.column("created_at"), stamps)
    updated = iso_texts(batch.column("updated_at"), stamps)
    versions = col("schema_version")
    props = [dump(dict(p)) if p else "{}" for p in col("properties")]
    nested = batch.column("columns").combine_chunks()
    offsets = nested.offsets.to_pylist()
    values = nested.values.slice(offsets[0], offsets[-1] - offsets[0]) if offsets else None
    fields: dict[str, list[Any]] = (
        {f: values.field(f).to_pylist() for f in _COLUMN_FIELDS} if values is not None else {}
    )
    c_ord = fields.get("ordinal", [])
    # One text per column of every table in the batch, in one pass over flat lists.
    frags = [
        f'{{"name"{k}{n}{s}"type"{k}{t}{s}"nullable"{k}{"true" if nl else "false"}{s}'
        f'"ordinal"{k}{o}{s}"description"{k}{d}{s}"column_id"{k}{c}}}'
        for n, t, nl, o, d, c in zip(
            text(fields.get("name", [])),
            text(fields.get("data_type", [])),
            fields.get("nullable", []),
            c_ord,
            text(fields.get("description", [])),
            fields.get("column_id", []),
            strict=True,
        )
    ]
    # A null list may still span child values: it has no columns, as Table reads it.
    # (Per scalar: Array.is_valid would import pyarrow.compute into a cold CLI.)
    valid = [v.is_valid for v in nested] if nested.null_count else None
    out = []
    first = offsets[0] if offsets else 0
    for i in range(batch.num_rows):
        lo, hi = offsets[i] - first, offsets[i + 1] - first
        if valid is not None and not valid[i]:
            lo = hi
        part = frags[lo:hi]
        ords = c_ord[lo:hi]
        if ords != sorted(ords):  # ordinal order, as Table does (stored in it already)
            part = [frags[j] for j in sorted(range(lo, hi), key=c_ord.__getitem__)]
        columns = s.join(part)
        out.append(
            f'{{"id"{k}{ids[i]}{s}"namespace"{k}{namespaces[i]}{s}"name"{k}{names[i]}{s}'
            f'"format"{k}{formats[i]}{s}"location"{k}{locations[i]}{s}'
            f'"description"{k}{descriptions[i]}{s}"properties"{k}{props[i]}{s}'
            f'"columns"{k}[{columns}]{s}"created_at"{k}{created[i]}{s}'
            f'"updated_at"{k}{updated[i]}{s}'
            f'"schema_version"{k}{versions[i]}{s}"metadata_location"{k}{metadata[i]}}}'
        )
    return out


_UNIT_MICROSECONDS = {"s": 1_000_000, "ms": 1_000, "us": 1}
_EPOCH = datetime(1970, 1, 1)


def iso_texts(
    column: pa.ChunkedArray | pa.Array, known: dict[tuple[str, int], str] | None = None
) -> list[str]:
    """JSON texts of a timestamp column's ``datetime.isoformat()`` values (null: ``null``).

    A UTC column's texts are built from its integers, each distinct value once
    (``known`` keeps them by unit and value, to share with another column):
    making a ``datetime`` per value and formatting it was a third of a page's
    rendering. Other timestamp columns go through ``datetime``.
    """
    dtype = column.type
    if dtype.tz != "UTC" or dtype.unit not in _UNIT_MICROSECONDS:
        enc = json.encoder.encode_basestring
        return ["null" if v is None else enc(v.isoformat()) for v in column_values(column)]
    unit = dtype.unit
    scale = _UNIT_MICROSECONDS[unit]
    known = {} if known is None else known
    out = []
    for v in timestamp_integers(column):
        if v is None:
            out.append("null")
            continue
        text = known.get((unit, v))
        if text is None:
            # As isoformat writes an aware UTC datetime: a fraction only if non-zero.
            secs, micros = divmod(v * scale, 1_000_000)
            day = (_EPOCH + timedelta(seconds=secs)).isoformat()
            text = f'"{day}.{micros:06d}+00:00"' if micros else f'"{day}+00:00"'
            known[(unit, v)] = text
        out.append(text)
    return out
