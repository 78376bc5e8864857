"""The sandboxed SQL engine: :func:`run_query` runs one read-only SELECT in DuckDB.

A query reads the ``system.*`` tables (:mod:`arco.sql.tables`) and the data of
the catalog's tables (:mod:`arco.sql.tabledata`). The sandbox:

* the text must parse as exactly one SELECT statement (DuckDB's own parser
  decides, so comments and string literals cannot hide a second statement);
* the statement runs in a query worker process (:mod:`arco.sql.worker`, driven by
  :mod:`arco.sql.pool`), on a fresh connection (a cursor) of its DuckDB database,
  which was started with external access, extension auto-install and auto-load,
  Python replacement scans, spilling to disk, persistent secrets and the local file
  system disabled, then had its configuration locked — so no file, URL,
  extension, setting or Python variable is reachable, only the Arrow tables
  registered on that connection for this one query;
* memory: the worker's address space is capped at its idle size plus
  ``ENGINE_MEMORY_BUDGET`` (:mod:`arco.sql.limits`), which bounds everything a query
  allocates — DuckDB's ``memory_limit`` alone does not cover a value computed in
  one step (``generate_series(1, 500000000)``, ``repeat('x', 2000000000)``), which
  then fails with :class:`~arco.sql.errors.QueryTooLargeError` instead of growing
  the server;
* time: the worker interrupts the query at ``max_seconds``; a query that does
  not stop (one uninterruptible step) is killed with its worker shortly after;
* results are streamed and stop at ``max_rows`` rows or ``max_bytes`` bytes,
  where each value, however deeply nested, counts at least 8 bytes (a list of
  a million NULLs has almost no Arrow buffers but would be a million Python
  objects).

The names a query uses are rewritten before it runs (:mod:`arco.sql.resolve`), and
its rows are made JSON-ready by :mod:`arco.sql.convert`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from arco.core.errors import InvalidArgumentError
from arco.sql import worker as _sqlworker
from arco.sql.convert import to_json_rows
from arco.sql.errors import QueryError, QueryRejectedError
from arco.sql.limits import QueryLimits
from arco.sql.pool import _data_too_large, _pool
from arco.sql.resolve import resolve_data_tables, rewrite_system_names
from arco.sql.tables import SystemTables


@dataclass(frozen=True)
class QueryResult:
    """The result of :func:`run_query`; ``rows`` holds JSON-ready values."""

    columns: list[tuple[str, str]]
    rows: list[list[Any]]
    arrow: pa.Table
    row_count: int
    elapsed_ms: float
    truncated: bool = False
    #: The version of each domain the query read (catalog, executions, lineage).
    versions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: columns (name, type), rows, row_count, elapsed_ms, truncated."""
        return {
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "rows": self.rows,
            "row_count": self.row_count,
            "elapsed_ms": self.elapsed_ms,
            "truncated": self.truncated,
        }


class _Parser:
    """A locked-down DuckDB that only parses: statements are checked before tables are built."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db: duckdb.DuckDBPyConnection | None = None
        self._pid = 0

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A new cursor of the parse-only database."""
        with self._lock:
            if self._db is None or self._pid != os.getpid():
                config = {**_sqlworker.CONFIG, "threads": 1, "memory_limit": "64MB"}
                db = duckdb.connect(":memory:", config=config)
                db.execute("SET disabled_filesystems = 'LocalFileSystem'")
                db.execute("SET lock_configuration = true")
                self._db, self._pid = db, os.getpid()
            return self._db.cursor()


_PARSER = _Parser()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
        kinds = [s.type for s in statements]
    except duckdb.Error as exc:
        raise QueryError(_first_line(exc)) from exc
    except ValueError as exc:  # a statement type the Python enum does not know
        raise QueryRejectedError("only a single SELECT statement is allowed") from exc
    if not kinds:
        raise QueryRejectedError("the query is empty")
    if len(kinds) > 1:
        raise QueryRejectedError(
            f"only a single SELECT statement is allowed, got {len(kinds)} statements"
        )
    if kinds[0] != duckdb.StatementType.SELECT:
        raise QueryRejectedError(
            f"only a single SELECT statement is allowed, not {kinds[0].name.replace('_', ' ')}"
        )


def run_query(
    system: SystemTables,
    sql: str,
    *,
    as_of_version: int | None = None,
    limits: QueryLimits | None = None,
) -> QueryResult:
    """Run one read-only SELECT over ``system``'s tables and the catalog's tables, in ``limits``.

    A qualified name of a catalog table (``ns.table``) reads that table's data
    files (see :mod:`arco.sql.tabledata`): Arco lists and reads them through
    the store and hands the bytes to the worker, so the engine opens no path.
    The query runs in a worker process whose memory is capped (see the module
    docstring): :class:`QueryTooLargeError` when the result, the table data
    (``max_data_bytes``) or the memory the query needs is over its limit,
    :class:`QueryTimeoutError` past ``max_seconds``.
    """
    limits = limits or QueryLimits()
    started = time.perf_counter()
    if not isinstance(sql, str):
        raise InvalidArgumentError("the query must be a string")
    if len(sql) > limits.max_sql_length:
        raise QueryRejectedError(
            f"the query is {len(sql)} characters long; at most {limits.max_sql_length} allowed"
        )
    if "\x00" in sql:
        raise QueryRejectedError("the query must not contain NUL characters")
    con = _PARSER.connection()
    try:
        _check_statement(con, sql)
        with_data, data = resolve_data_tables(system, con, sql, as_of_version=as_of_version)
        rewritten, used = rewrite_system_names(with_data)
        if rewritten != sql:
            _check_statement(con, rewritten)
    finally:
        con.close()
    if sum(d.size for d in data) > limits.max_data_bytes:
        raise _data_too_large(limits, data)
    tables, versions = system.tables(sorted(used), as_of_version=as_of_version)
    deadline = time.monotonic() + limits.max_seconds - (time.perf_counter() - started)
    names, types, arrow, truncated = _pool().run(
        rewritten, tables, limits, deadline, data, system.store
    )
    json_rows = to_json_rows(arrow)
    return QueryResult(
        columns=list(zip(names, types, strict=True)),
        rows=json_rows,
        arrow=arrow,
        row_count=arrow.num_rows,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        truncated=truncated,
        versions=versions,
    )
