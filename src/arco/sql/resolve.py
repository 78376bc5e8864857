"""The tables a query names: ``system.*`` names and catalog tables, rewritten to registered ones.

DuckDB reserves the catalog name ``system``, so :func:`rewrite_system_names` points
``system.<name>`` (token by token, never inside strings or comments) at the
connection's ``temp.main.<name>``. :func:`resolve_data_tables` finds each qualified
name that is a catalog table in DuckDB's own parse tree (with its alias and an
Iceberg ``AT (...)`` clause), resolves the files it may read
(:mod:`arco.sql.tabledata`) and rewrites the reference to the table the worker
registers from those files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from arco.catalog.state import CatalogState
from arco.core.keys import Keys
from arco.sql.errors import QueryError, QueryRejectedError
from arco.sql.tabledata import TableData, resolve_table
from arco.sql.tables import SYSTEM_SCHEMAS, SystemTables

_NAME_TOKENS = (duckdb.token_type.identifier, duckdb.token_type.keyword)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].replace('""', '"')
    return text.lower()


def rewrite_system_names(sql: str) -> tuple[str, set[str]]:
    """Point ``system.<table>`` at the connection's ``temp.main.<table>``.

    Only two consecutive name tokens ``system`` ``.`` ``<known table>`` not
    preceded by a ``.`` are rewritten, so strings, comments, ``x.system.y`` and
    other names are left alone. Returns the new text and the tables it names.
    """
    tokens = duckdb.tokenize(sql)
    spans: list[tuple[int, Any, str]] = []
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        spans.append((start, kind, sql[start:end].rstrip()))
    pieces: list[str] = []
    used: set[str] = set()
    last = 0
    for i in range(len(spans) - 2):
        start, kind, text = spans[i]
        if kind not in _NAME_TOKENS or _unquote(text) != "system":
            continue
        if spans[i + 1][2] != "." or (i > 0 and spans[i - 1][2] == "."):
            continue
        if spans[i + 2][1] not in _NAME_TOKENS:
            continue
        name = _unquote(spans[i + 2][2])
        if name not in SYSTEM_SCHEMAS:
            continue
        pieces.append(sql[last:start])
        pieces.append("temp.main")
        last = start + len(text)
        used.add(name)
    pieces.append(sql[last:])
    return "".join(pieces), used


@dataclass(frozen=True)
class TableRef:
    """A table the query names by a qualified name (``ns.t``, ``"a.b".t``, ``a.b.t``).

    ``start``/``end`` are UTF-8 byte offsets of the whole reference in the query
    text (name, alias, column aliases and ``AT (...)`` clause).
    """

    parts: tuple[str, ...]
    alias: str
    column_aliases: tuple[str, ...]
    start: int
    end: int
    snapshot_id: int | None = None
    as_of: datetime | None = None


def _constant_text(expr: Any) -> str | None:
    if not isinstance(expr, dict):
        return None
    if expr.get("class") == "CAST":
        return _constant_text(expr.get("child"))
    if expr.get("class") == "CONSTANT":
        literal = expr.get("literal") or {}
        text = literal.get("text")
        return text if isinstance(text, str) else None
    return None


def _at_clause(at: Any, shown: str) -> tuple[int | None, datetime | None]:
    if not at:
        return None, None
    unit = str(at.get("unit", "")).upper()
    text = _constant_text(at.get("expr"))
    if text is None:
        raise QueryRejectedError(f"{shown} AT (...) takes a constant snapshot id or timestamp")
    if unit == "VERSION":
        try:
            return int(text), None
        except ValueError:
            raise QueryRejectedError(
                f"{shown} AT (VERSION => ...) takes an Iceberg snapshot id, not {text!r}"
            ) from None
    if unit == "TIMESTAMP":
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            raise QueryRejectedError(
                f"{shown} AT (TIMESTAMP => ...) takes an ISO timestamp, not {text!r}"
            ) from None
        return None, when if when.tzinfo else when.replace(tzinfo=UTC)
    raise QueryRejectedError(f"{shown} AT ({unit} => ...): use VERSION or TIMESTAMP")


def table_references(con: duckdb.DuckDBPyConnection, sql: str) -> list[TableRef]:
    """Every qualified table name in ``sql`` except ``system.*``, from DuckDB's own parse tree.

    ``AT (VERSION => <snapshot id>)`` and ``AT (TIMESTAMP => '<iso time>')`` after a
    name select an Iceberg snapshot.
    """
    row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree = json.loads(row[0]) if row else {}
    if tree.get("error"):
        raise QueryError(str(tree.get("error_message") or "the query could not be parsed"))
    found: list[TableRef] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("type") == "BASE_TABLE" and node.get("schema_name"):
            catalog, schema = node.get("catalog_name") or "", node["schema_name"]
            if not (catalog == "" and schema.lower() == "system"):
                parts = tuple(p for p in (catalog, schema, node["table_name"]) if p)
                snapshot_id, as_of = _at_clause(node.get("at_clause"), ".".join(parts))
                start = int(node.get("query_location", -1))
                length = int(node.get("query_location_length", 0))
                found.append(
                    TableRef(
                        parts=parts,
                        alias=node.get("alias") or "",
                        column_aliases=tuple(node.get("column_name_alias") or ()),
                        start=start,
                        end=start + length,
                        snapshot_id=snapshot_id,
                        as_of=as_of,
                    )
                )
        for value in node.values():
            walk(value)

    walk(tree.get("statements"))
    return found


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _leading_name(text: str) -> list[str]:
    """The dotted name a table reference starts with, unquoted and lower-cased."""
    parts: list[str] = []
    tokens = duckdb.tokenize(text)
    expect_name = True
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(text)
        piece = text[start:end].strip()
        if expect_name and kind in _NAME_TOKENS:
            parts.append(_unquote(piece))
        elif not expect_name and piece == ".":
            pass
        else:
            break
        expect_name = not expect_name
    return parts


def _find_table(state: CatalogState, parts: tuple[str, ...]) -> dict[str, Any] | None:
    """The catalog row a reference names: exact first, then ignoring case (as SQL does)."""
    namespace, name = ".".join(parts[:-1]), parts[-1]
    row = state.table_row(namespace, name)
    if row is not None:
        return row
    folded = (namespace.casefold(), name.casefold())
    matches = [k for k in state.by_name if (k[0].casefold(), k[1].casefold()) == folded]
    if len(matches) == 1:
        return state.table_row(*matches[0])
    return None


def resolve_data_tables(
    system: SystemTables,
    con: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    as_of_version: int | None = None,
) -> tuple[str, list[TableData]]:
    """Rewrite each catalog table ``sql`` names to the table data the worker registers.

    Tables are looked up in the catalog at ``as_of_version``; a qualified name that
    is no catalog table is left alone (DuckDB then says it does not exist). Returns
    the new text and the data to send, one entry per distinct table (and snapshot).
    """
    refs = table_references(con, sql)
    if not refs:
        return sql, []
    state = system.catalog_state(as_of_version=as_of_version)
    keys = Keys(system.scope)
    text = sql.encode()
    chosen: dict[tuple[str, int | None, datetime | None], TableData] = {}
    edits: list[tuple[int, int, bytes]] = []
    for ref in refs:
        row = _find_table(state, ref.parts)
        if row is None:
            namespace = ".".join(ref.parts[:-1])
            if state.namespace(namespace) is not None:
                raise QueryError(
                    f"namespace {namespace} has no table {ref.parts[-1]}"
                    + ("" if as_of_version is None else f" at catalog version {as_of_version}")
                )
            continue
        span = text[ref.start : ref.end].decode(errors="replace") if ref.start >= 0 else ""
        if _leading_name(span)[: len(ref.parts)] != [p.lower() for p in ref.parts]:
            raise QueryError(f"could not locate the table reference {'.'.join(ref.parts)}")
        key = (row["id"], ref.snapshot_id, ref.as_of)
        data = chosen.get(key)
        if data is None:
            data = resolve_table(
                system.store,
                keys,
                row,
                materializations=lambda: system.table("materializations"),
                snapshot_id=ref.snapshot_id,
                as_of=ref.as_of,
            )
            chosen[key] = data
        alias = _quote(ref.alias or row["name"])
        if ref.column_aliases:
            alias += "(" + ", ".join(_quote(c) for c in ref.column_aliases) + ")"
        edits.append((ref.start, ref.end, f"temp.main.{_quote(data.name)} AS {alias}".encode()))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    unique = {d.name: d for d in chosen.values()}
    return text.decode(), list(unique.values())
