"""The ``system.*`` tables as DuckDB SQL over a scope's state files (contract 1).

The browser downloads each state file a manifest references and registers its
bytes as ``'arco://<path>'``; the SELECTs built here turn those files into the
rows :class:`~arco.sql.tables.SystemTables` builds in Python. Which views exist,
their columns and the state tables each reads all come from
:data:`~arco.sql.tables.SYSTEM_TABLES`, the description the server side is built
from too; only the tables in :data:`NOT_IN_BROWSER` have no view, each with its
reason. The views follow the readers exactly:

* resident tables (catalog tables, runs, tasks, edges, event keys, external runs,
  datasets, column edges) apply the delta rows newer than the base
  (``_version > base.max_version``) on top of the base: per primary key the row
  with the highest ``_version`` wins (later rows of the same file break ties, as
  the in-order fold does) and ``_op = 1`` deletes it. The window choosing that
  row reads only scalar columns; the winners are joined back by file and row
  number, because DuckDB-WASM 1.28.0 traps partitioning rows that carry LIST or
  MAP columns (ADR 008);
* append-only fact tables (materializations, logs, quarantine) are the base and
  every delta concatenated, as ``DomainStore.load_table`` reads them.

Only SQL that DuckDB 0.9 (the engine inside DuckDB-WASM 1.28.0) understands is
used: ``read_parquet`` with a list, ``filename``, ``file_row_number``, ``QUALIFY``,
``unnest`` and ``struct_extract``. Every column is cast to its system type, so a view over
no files has the same columns (typed NULLs and ``WHERE false``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa

from arco.domain.manifest import FileEntry, Manifest
from arco.domain.tableset import OP_DELETE
from arco.sql.tables import SYSTEM_SCHEMAS, SYSTEM_TABLES, Source

#: The file-name prefix the browser registers every downloaded file under.
FILE_PREFIX = "arco://"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_type(dtype: pa.DataType) -> str:
    """The DuckDB type name of an Arrow type used by the system schemas."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "VARCHAR"
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    ints = {8: "TINYINT", 16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}
    if pa.types.is_signed_integer(dtype):
        return ints[dtype.bit_width]
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
    if pa.types.is_float64(dtype):
        return "DOUBLE"
    if pa.types.is_map(dtype):
        return f"MAP({duckdb_type(dtype.key_type)}, {duckdb_type(dtype.item_type)})"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"{duckdb_type(dtype.value_type)}[]"
    raise TypeError(f"no DuckDB type for {dtype}")  # pragma: no cover - schemas are fixed


def _files(paths: Sequence[str]) -> str:
    return "[" + ", ".join(_literal(FILE_PREFIX + p) for p in paths) + "]"


#: System tables the browser gets no view of, and why. Every other table of
#: :data:`~arco.sql.tables.SYSTEM_TABLES` is a view, with the same columns.
NOT_IN_BROWSER: dict[str, str] = {
    name: "admin only: the API checks the caller's roles on each query, but a view "
    "over signed state files would show it to every reader of the scope"
    for name, table in SYSTEM_TABLES.items()
    if table.private
}
#: The state tables behind each system view, in output order of their domains.
_SOURCES: dict[str, tuple[Source, ...]] = {
    name: table.sources for name, table in SYSTEM_TABLES.items() if name not in NOT_IN_BROWSER
}
#: The system views the browser gets, and the domains each one reads.
VIEW_DOMAINS: dict[str, tuple[str, ...]] = {name: SYSTEM_TABLES[name].domains for name in _SOURCES}


def state_tables_used(domain: str) -> set[str]:
    """The state tables of ``domain`` that some view reads (the files worth downloading)."""
    return {s.state.name for sources in _SOURCES.values() for s in sources if s.domain == domain}


def _merged(source: Source, files: Sequence[FileEntry]) -> str | None:
    """A SELECT of the live rows (state-table columns) of one source, None if no files."""
    mine = [f for f in files if f.table == source.state.name]
    if not mine:
        return None
    columns = ", ".join(_ident(n) for n in source.state.schema.names)
    base = next((f for f in mine if f.kind == "base"), None)
    deltas = sorted((f for f in mine if f.kind == "delta"), key=lambda f: f.min_version)
    parts: list[str] = []
    if not source.keyed:
        if base is not None:
            parts.append(f"SELECT {columns} FROM read_parquet({_files([base.path])})")
        if deltas:
            parts.append(
                f"SELECT {columns} FROM read_parquet("
                f"{_files([d.path for d in deltas])}, union_by_name=true)"
            )
        return " UNION ALL ".join(parts)
    since = base.max_version if base is not None else 0
    # The readers apply only delta rows newer than the base (a merged delta may
    # straddle it), and a delta file newer than the base is read whole.
    deltas = [d for d in deltas if d.max_version > since]
    if not deltas:
        assert base is not None
        return f"SELECT {columns} FROM read_parquet({_files([base.path])})"
    keys = source.state.key
    partition = ", ".join(_ident(k) for k in keys)
    scan = (
        f"read_parquet({_files([d.path for d in deltas])}, "
        "union_by_name=true, filename=true, file_row_number=true)"
    )
    # The window that picks each key's newest row sees only scalars (the key,
    # _version and the row's file and position); the whole rows are joined back to
    # it. DuckDB-WASM 1.28.0 (DuckDB 0.9.1) traps with "memory access out of bounds"
    # partitioning rows that carry LIST/MAP columns (tables.columns, properties),
    # depending on the heap layout: with the same files it failed or not with the
    # length of the SQL text, e.g. a 45th catalog table, or the schema name.
    winners = (
        f"SELECT filename AS _file, file_row_number AS _row FROM ("
        f"SELECT {partition}, _version, filename, file_row_number FROM {scan} "
        f"WHERE _version > {since}) "
        f"QUALIFY row_number() OVER (PARTITION BY {partition} "
        "ORDER BY _version DESC, file_row_number DESC) = 1"
    )
    latest = (
        f"SELECT * FROM {scan} AS r WHERE EXISTS "
        "(SELECT 1 FROM w WHERE w._file = r.filename AND w._row = r.file_row_number)"
    )
    with_clause = f"WITH w AS ({winners}), d AS ({latest})"
    live = f"SELECT {columns} FROM d WHERE d._op <> {OP_DELETE}"
    if base is None:
        return f"{with_clause} {live}"
    match = " AND ".join(f"d.{_ident(k)} = b.{_ident(k)}" for k in keys)
    kept = (
        f"SELECT {', '.join('b.' + _ident(n) for n in source.state.schema.names)} "
        f"FROM read_parquet({_files([base.path])}) AS b "
        f"WHERE NOT EXISTS (SELECT 1 FROM d WHERE {match})"
    )
    return f"{with_clause} {kept} UNION ALL {live}"


def _cast(expression: str, name: str, dtype: pa.DataType) -> str:
    return f"CAST({expression} AS {duckdb_type(dtype)}) AS {_ident(name)}"


def _empty(schema: pa.Schema) -> str:
    return "SELECT " + ", ".join(_cast("NULL", f.name, f.type) for f in schema) + " WHERE false"


def _projection(name: str, source: Source) -> list[str]:
    """Expressions turning one source's rows (as ``s``) into the view's columns."""
    schema = SYSTEM_SCHEMAS[name]
    out = []
    for field in schema:
        if name == "tables" and field.name == "column_count":
            expr = 'coalesce(len(s."columns"), 0)'
        elif name in ("events", "quarantine") and field.name == "domain":
            expr = _literal(source.domain)
        else:
            expr = f"s.{_ident(field.name)}"
        out.append(_cast(expr, field.name, field.type))
    return out


def _columns_view(merged: str) -> str:
    schema = SYSTEM_SCHEMAS["columns"]
    struct_fields = {"name", "ordinal", "data_type", "nullable", "description", "column_id"}
    exprs = []
    for field in schema:
        if field.name == "table_id":
            expr = 's."id"'
        elif field.name == "table_name":
            expr = 's."name"'
        elif field.name in struct_fields:
            expr = f"struct_extract(s.c, {_literal(field.name)})"
        else:
            expr = f"s.{_ident(field.name)}"
        exprs.append(_cast(expr, field.name, field.type))
    exploded = (
        f'SELECT t."id", t."namespace", t."name", unnest(t."columns") AS c FROM ({merged}) AS t'
    )
    return f"SELECT {', '.join(exprs)} FROM ({exploded}) AS s"


def build_view(name: str, manifests: Mapping[str, Manifest | None]) -> str:
    """The SELECT of ``system.<name>`` over the files of ``manifests`` (domain -> manifest)."""
    sources = _SOURCES[name]
    selects = []
    for source in sources:
        manifest = manifests.get(source.domain)
        merged = _merged(source, manifest.files if manifest is not None else ())
        if merged is None:
            continue
        if name == "columns":
            selects.append(_columns_view(merged))
        else:
            selects.append(f"SELECT {', '.join(_projection(name, source))} FROM ({merged}) AS s")
    if not selects:
        return _empty(SYSTEM_SCHEMAS[name])
    # No ORDER BY: SQL promises no order without one, a sort of every row costs most
    # of a scan in the single-threaded browser engine, and DuckDB-WASM 1.28.0 traps
    # ("table index is out of bounds") on some aggregates over a view that sorts.
    return selects[0] if len(selects) == 1 else " UNION ALL ".join(f"({s})" for s in selects)


def build_views(manifests: Mapping[str, Manifest | None]) -> dict[str, str]:
    """Every system view whose domains are all in ``manifests`` (None: domain has no commit)."""
    return {
        name: build_view(name, manifests)
        for name, domains in VIEW_DOMAINS.items()
        if all(d in manifests for d in domains)
    }
