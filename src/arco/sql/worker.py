"""The SQL query worker: a child process that runs ``system.*`` queries in DuckDB.

Run as a script (``python -I worker.py BUDGET THREADS DUCKDB_MEMORY``) by
:mod:`arco.sql.pool`; it imports nothing of ``arco``, so it starts quickly and
cannot reach anything but what the parent sends it.

Why a process: DuckDB's ``memory_limit`` governs its buffer manager only. A
scalar such as ``generate_series(1, 500000000)`` or ``repeat('x', 2e9)``
allocates its whole value outside it, in one step no interrupt can stop, so an
in-process query could drive the server to tens of GB and run far past its
deadline. Here the process's address space is capped (``RLIMIT_AS`` = its idle
size + ``BUDGET``), so such an allocation fails with an out-of-memory error,
and the parent kills the process when a query outlives its deadline.

Protocol on stdin/stdout: frames of an 8-byte big-endian length and a payload.
The worker first sends ``{"ready": true}``. A request is a JSON header
``{"sql", "remaining", "max_rows", "max_bytes", "truncate", "tables":
[{"name", "send"}]}`` followed by one Arrow IPC stream frame per table whose
``send`` is true (the others are reused from earlier requests). A table item
with ``"kind": "parquet"`` is table data: when sent, ``files`` frames of Parquet
file bytes follow, then, if ``schema`` is true, one Arrow IPC stream frame with
the schema to project every file onto; the worker decodes them itself, under its
memory cap, and drops the table data a request does not name. The answer is a
JSON header: ``{"ok": true, "names", "types", "truncated"}`` then one Arrow IPC
stream frame with the result, or ``{"ok": false, "kind", "message"}`` where
kind is ``rejected``, ``error``, ``unknown-table``, ``too-large``, ``timeout`` or
``fatal`` (DuckDB invalidated its database; the worker exits after answering).
``remaining`` in the request is the time left to the query's deadline, in seconds.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import threading
from typing import Any, BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

_HEADER = struct.Struct(">Q")
_BATCH_ROWS = 2048
#: Each value counts at least this many bytes against ``max_bytes``: a list of
#: NULLs has (almost) no Arrow buffers but becomes millions of Python objects.
VALUE_BYTES = 8

#: Applied in order: paths first, since they may not change once external access is off.
CONFIG: dict[str, Any] = {
    "temp_directory": "",
    "max_temp_directory_size": "0B",
    "extension_directory": "",
    "home_directory": "",
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "python_enable_replacements": False,
    "enable_external_access": False,
}


def value_weight(array: pa.Array | pa.ChunkedArray) -> int:
    """The bytes ``array`` counts against a result budget.

    Its Arrow buffers, but at least :data:`VALUE_BYTES` per value at every
    nesting level, so values with no buffers of their own (NULL-typed lists)
    still count for the Python objects they would become.
    """
    if isinstance(array, pa.ChunkedArray):
        return sum(value_weight(chunk) for chunk in array.chunks)
    values = len(array)
    children: list[pa.Array] = []
    dtype = array.type
    if pa.types.is_struct(dtype):
        children = list(array.flatten())
    elif pa.types.is_map(dtype):
        children = [array.keys, array.items]
    elif (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_fixed_size_list(dtype)
        or pa.types.is_list_view(dtype)
        or pa.types.is_large_list_view(dtype)
    ):
        children = [array.flatten()]
    elif pa.types.is_union(dtype):
        children = [array.field(i) for i in range(dtype.num_fields)]
    own = max(int(array.nbytes) - sum(int(c.nbytes) for c in children), 0)
    nested: int = sum(value_weight(c) for c in children)
    return max(own, values * VALUE_BYTES) + nested


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame, or None at the end of the stream."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    return data if len(data) == size else None


def write_frame(stream: BinaryIO, data: bytes) -> None:
    """Write one frame and flush."""
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> str | None:
    """Why ``sql`` is not a single SELECT, or None."""
    try:
        kinds = [s.type for s in con.extract_statements(sql)]
    except ValueError:  # a statement type the Python enum does not know
        return "only a single SELECT statement is allowed"
    if len(kinds) != 1 or kinds[0] != duckdb.StatementType.SELECT:
        return "only a single SELECT statement is allowed"
    return None


class _FailureError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _run(
    con: duckdb.DuckDBPyConnection, request: dict[str, Any], budget: int
) -> tuple[dict[str, Any], bytes]:
    sql: str = request["sql"]
    max_rows: int = request["max_rows"]
    max_bytes: int = request["max_bytes"]
    why = _check_statement(con, sql)
    if why is not None:
        raise _FailureError("rejected", why)
    fired = threading.Event()
    done = threading.Lock()

    def interrupt() -> None:
        with done:
            fired.set()
            con.interrupt()

    timer = threading.Timer(max(request["remaining"], 0.001), interrupt)
    timer.daemon = True
    timer.start()
    batches: list[pa.RecordBatch] = []
    rows = weight = 0
    truncated = False
    try:
        try:
            rel = con.sql(sql)
            names = list(rel.columns)
            types = [str(t) for t in rel.types]
            reader = rel.to_arrow_reader(_BATCH_ROWS)
            schema = reader.schema
            for batch in reader:
                if rows + batch.num_rows > max_rows:
                    if not request["truncate"]:
                        raise _FailureError(
                            "too-large",
                            f"the query returned more than {max_rows} rows (its row limit); "
                            "add a LIMIT or raise the row limit",
                        )
                    batch = batch.slice(0, max_rows - rows)
                    truncated = True
                rows += batch.num_rows
                weight += sum(value_weight(column) for column in batch.columns)
                if weight > max_bytes:
                    raise _FailureError(
                        "too-large",
                        f"the result is larger than its limit of {max_bytes} bytes; "
                        "select fewer columns or rows",
                    )
                batches.append(batch)
                if truncated:
                    break
        finally:
            with done:
                timer.cancel()
    except duckdb.InterruptException as exc:
        if fired.is_set():
            raise _FailureError("timeout", "") from exc
        raise _FailureError("error", _first_line(exc)) from exc
    except (duckdb.OutOfMemoryException, MemoryError) as exc:
        raise _FailureError(
            "too-large",
            f"the query needs more than its memory budget of {budget // (1024 * 1024)} MiB",
        ) from exc
    except duckdb.PermissionException as exc:
        raise _FailureError(
            "rejected", f"not allowed in the SQL sandbox: {_first_line(exc)}"
        ) from exc
    except duckdb.Error as exc:
        message = _first_line(exc)
        if isinstance(exc, duckdb.FatalException) or "invalidated" in message:
            raise _FailureError("fatal", message) from exc
        if "out of memory" in message.lower() or "bad allocation" in message.lower():
            raise _FailureError(
                "too-large",
                f"the query needs more than its memory budget of {budget // (1024 * 1024)} MiB",
            ) from exc
        if isinstance(exc, duckdb.CatalogException) and message.startswith("Catalog Error: Table"):
            raise _FailureError("unknown-table", message) from exc
        raise _FailureError("error", message) from exc
    if fired.is_set():
        raise _FailureError("timeout", "")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    header = {"ok": True, "names": names, "types": types, "truncated": truncated}
    return header, sink.getvalue().to_pybytes()


def _memory_message(budget: int) -> str:
    return f"the query needs more than its memory budget of {budget // (1024 * 1024)} MiB"


def _project(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing ones (older files) are NULL."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table[field.name].cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def parquet_table(name: str, blobs: list[bytes], schema: pa.Schema | None) -> pa.Table:
    """One table from the bytes of its Parquet files (projected onto ``schema`` if given)."""
    parts = []
    for i, blob in enumerate(blobs):
        try:
            part = pq.read_table(pa.BufferReader(blob), use_threads=False)
        except (pa.ArrowInvalid, OSError) as exc:
            raise _FailureError(
                "error", f"table {name}: data file {i + 1} is not valid Parquet: {_first_line(exc)}"
            ) from exc
        try:
            parts.append(_project(part, schema) if schema is not None else part)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _FailureError(
                "error",
                f"table {name}: a data file does not match the table schema: {_first_line(exc)}",
            ) from exc
    if not parts:
        return (schema or pa.schema([])).empty_table()
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _FailureError(
            "error", f"table {name}: its data files have incompatible schemas: {_first_line(exc)}"
        ) from exc


def _limit_address_space(budget: int) -> None:
    try:
        import resource
    except ImportError:  # not POSIX: the parent's deadline still applies
        return
    with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as f:
        idle = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = idle + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    """Serve requests on stdin/stdout until stdin closes."""
    budget, threads, duckdb_memory = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Nothing may write to stdout but the protocol.
    sys.stdout = sys.stderr
    db = duckdb.connect(
        ":memory:", config={**CONFIG, "threads": threads, "memory_limit": duckdb_memory}
    )
    db.execute("SET GLOBAL TimeZone = 'UTC'")
    db.execute("SET disabled_filesystems = 'LocalFileSystem'")
    db.execute("SET lock_configuration = true")
    # Start the thread pool and the allocators before measuring the idle size.
    warm = db.sql("SELECT range AS i, range::VARCHAR AS s FROM range(100000)").to_arrow_table()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, warm.schema) as writer:
        writer.write_table(warm)
    pa.ipc.open_stream(sink.getvalue()).read_all()
    del warm, sink
    if sys.platform == "linux":
        _limit_address_space(budget)
    write_frame(stdout, json.dumps({"ready": True}).encode())
    tables: dict[str, pa.Table] = {}
    data_names: set[str] = set()
    while True:
        frame = read_frame(stdin)
        if frame is None:
            return
        request = json.loads(frame)
        pending: dict[str, tuple[list[bytes], pa.Schema | None]] = {}
        for item in request["tables"]:
            if not item["send"]:
                continue
            if item.get("kind") == "parquet":
                blobs = []
                for _ in range(item["files"] + (1 if item["schema"] else 0)):
                    data = read_frame(stdin)
                    if data is None:
                        return
                    blobs.append(data)
                schema = pa.ipc.open_stream(blobs.pop()).schema if item["schema"] else None
                pending[item["name"]] = (blobs, schema)
                continue
            data = read_frame(stdin)
            if data is None:
                return
            tables[item["name"]] = pa.ipc.open_stream(data).read_all()
        # Table data nobody asks for any more only takes memory from the next query.
        named = {item["name"] for item in request["tables"]}
        for name in data_names - named:
            tables.pop(name, None)
        data_names = {i["name"] for i in request["tables"] if i.get("kind") == "parquet"}
        failure: dict[str, Any] | None = None
        for name in list(pending):
            blobs, schema = pending.pop(name)
            try:
                tables[name] = parquet_table(name, blobs, schema)
            except _FailureError as exc:
                failure = {"ok": False, "kind": exc.kind, "message": str(exc)}
            except MemoryError:
                failure = {"ok": False, "kind": "too-large", "message": _memory_message(budget)}
            del blobs
            if failure is not None:
                tables.pop(name, None)
                break
        if failure is not None:
            pending.clear()
            write_frame(stdout, json.dumps(failure).encode())
            continue
        con = db.cursor()
        payload = b""
        try:
            for item in request["tables"]:
                con.register(item["name"], tables[item["name"]])
            header, payload = _run(con, request, budget)
        except _FailureError as exc:
            header = {"ok": False, "kind": exc.kind, "message": str(exc)}
        except MemoryError:
            header = {"ok": False, "kind": "too-large", "message": _memory_message(budget)}
        finally:
            con.close()
        write_frame(stdout, json.dumps(header).encode())
        if header["ok"]:
            write_frame(stdout, payload)
        elif header["kind"] == "fatal":
            return  # DuckDB invalidated the database: the parent starts a new worker


if __name__ == "__main__":
    main()
