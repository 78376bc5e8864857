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
    s, k = (",", ":") if compact else (", ", ": ")
    dump = _ENCODERS[compact]
    # A batch cut from many runs (a page, a listing's group) has a chunk per run:
    # one copy into single arrays costs less than converting each column chunk by chunk.
    batch = batch.combine_chunks()
    have = set(batch.column_names)
    rows = batch.num_rows

    def text(name: str) -> list[str]:
        if name not in have:  # a file written before the column existed
            return ["null"] * rows
        return _texts(batch.column(name))

    stamps: dict[tuple[str, int], str] = {}  # updated_at is mostly created_at again
    created = iso_texts(batch.column("created_at"), stamps)
    updated = iso_texts(batch.column("updated_at"), stamps)
    props = [dump(dict(p)) if p else "{}" for p in column_values(batch.column("properties"))]
    columns = _columns_texts(batch.column("columns").chunk(0), s, k)
    template = (
        "".join(f'{s if i else "{"}"{name}"{k}%s' for i, name in enumerate(_TABLE_KEYS)) + "}"
    )
    return [
        template % row
        for row in zip(
            text("id"),
            text("namespace"),
            text("name"),
            text("format"),
            text("location"),
            text("description"),
            props,
            columns,
            created,
            updated,
            column_values(batch.column("schema_version")),
            text("metadata_location"),
            strict=True,
        )
    ]


#: The keys of ``Table.to_dict()``, in its order.
_TABLE_KEYS = (
    "id",
    "namespace",
    "name",
    "format",
    "location",
    "description",
    "properties",
    "columns",
    "created_at",
    "updated_at",
    "schema_version",
    "metadata_location",
)


def _texts(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """JSON texts of a string column's values, escaped by ``json``'s own C function."""
    enc = json.encoder.encode_basestring
    if not column.null_count:
        return list(map(enc, column.to_pylist()))
    return ["null" if v is None else enc(v) for v in column.to_pylist()]


def _columns_texts(nested: pa.ListArray, s: str, k: str) -> list[str]:
    """The JSON text of each row's ``columns`` list, in ordinal order, as ``Column.to_dict()``."""
    offsets = nested.offsets.to_pylist()
    values = nested.values.slice(offsets[0], offsets[-1] - offsets[0])
    c_ord = values.field("ordinal").to_pylist()
    # One text per column of every table in the batch, in one pass over flat lists.
    frags = [
        f'{{"name"{k}{n}{s}"type"{k}{t}{s}"nullable"{k}{"true" if nl else "false"}{s}'
        f'"ordinal"{k}{o}{s}"description"{k}{d}{s}"column_id"{k}{c}}}'
        for n, t, nl, o, d, c in zip(
            _texts(values.field("name")),
            _texts(values.field("data_type")),
            values.field("nullable").to_pylist(),
            c_ord,
            _texts(values.field("description")),
            values.field("column_id").to_pylist(),
            strict=True,
        )
    ]
    # A null list may still span child values: it has no columns, as Table reads it.
    # (Per scalar: Array.is_valid would import pyarrow.compute into a cold CLI.)
    valid = [v.is_valid for v in nested] if nested.null_count else None
    out = []
    first = offsets[0]
    for i in range(len(offsets) - 1):
        lo, hi = offsets[i] - first, offsets[i + 1] - first
        if valid is not None and not valid[i]:
            lo = hi
        ords = c_ord[lo:hi]
        if ords == sorted(ords):  # ordinal order, as Table does (stored in it already)
            out.append("[" + s.join(frags[lo:hi]) + "]")
        else:
            order = sorted(range(lo, hi), key=c_ord.__getitem__)
            out.append("[" + s.join([frags[j] for j in order]) + "]")
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
