"""Rendering: Rich tables for people, JSON for machines.

Every user-supplied string goes through :class:`rich.text.Text`, never through
markup, so a description such as ``[red]x`` prints literally. Rich is imported by
the views that draw with it, not here: the detail views (``table show``,
``namespace show``) draw with :mod:`arco.cli.plain` and never load it (ADR 025).
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from arco.cli import plain

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console
    from rich.text import Text

    from arco.catalog import Namespace, Table
    from arco.discovery.lineage import Edge
    from arco.discovery.search import SearchResults
    from arco.domain.manifest import Manifest
    from arco.ledger.events import Envelope

#: What a record written before actors were recorded shows as its actor
#: (the value of :data:`arco.core.actor.UNKNOWN_ACTOR`, kept here so the CLI stays light).
UNKNOWN_ACTOR = "-"

#: Longest payload excerpt ``arco events tail`` prints in its table.
SHORT_PAYLOAD = 60


def console() -> Console:
    """A console on the current stdout (looked up per call, so test runners capture it)."""
    from rich.console import Console

    return Console(highlight=False)


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def tables_json_texts(batch: pa.Table) -> list[str]:
    """Each row of a ``tables`` batch as ``json.dumps(Table.to_dict(), ensure_ascii=False)``.

    Built column by column from Arrow (:meth:`Catalog.iter_table_batches`) by
    :func:`arco.catalog.tablejson.table_json_texts`: no ``Table``, ``Column`` or
    row dict per table. ``tests/cli`` checks it text for text against ``json.dumps``.
    """
    from arco.catalog.tablejson import table_json_texts

    return table_json_texts(batch)


def emit_json_texts(batches: Iterable[Sequence[str]]) -> None:
    """Print JSON texts as one JSON array, one item per line, batch by batch.

    Nothing is held back: the first items are out before the last batch is read.
    One compact item per line (not ``indent=2``, which makes ``json`` fall back
    to its pure-Python encoder: 80% of a long listing's time) stays readable.
    """
    write = sys.stdout.write
    first = True
    for batch in batches:
        if not batch:
            continue
        write(("[\n" if first else ",\n") + ",\n".join(batch))
        first = False
    write("[]\n" if first else "\n]\n")
    sys.stdout.flush()


def table_list_rows(batch: pa.Table) -> list[dict[str, Any]]:
    """What the text listing shows of each row of a ``tables`` batch."""
    nested = batch.column("columns").combine_chunks()
    offsets = nested.offsets.to_pylist()
    return [
        {"namespace": ns, "name": n, "format": f, "columns": range(hi - lo), "description": d}
        for ns, n, f, d, lo, hi in zip(
            batch.column("namespace").to_pylist(),
            batch.column("name").to_pylist(),
            batch.column("format").to_pylist(),
            batch.column("description").to_pylist(),
            offsets,
            offsets[1:],
            strict=False,
        )
    ]


def say(message: str) -> None:
    """Print a plain line on stdout."""
    typer.echo(message)


def _text(value: object) -> Text:
    from rich.text import Text

    return Text(_plain(value))


def when(value: datetime | str, *, utc_suffix: bool = True) -> str:
    """A timestamp to the second in UTC, ``2024-05-01 12:00:00Z``."""
    if isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        stamp = value
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if utc_suffix else "")


def _props_inline(props: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(props.items()))


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return when(value)
    return str(value)


def _details(title: str, rows: Iterable[tuple[str, object]]) -> None:
    plain.write_title(title)
    plain.grid([(label, _plain(value)) for label, value in rows])


def properties_table(props: Mapping[str, str]) -> None:
    """Print a table's or namespace's properties (or say there are none)."""
    if not props:
        plain.write_note("No properties.")
        return
    plain.boxed("Properties", ["Key", "Value"], sorted(props.items()))


def namespaces_table(items: Sequence[Namespace]) -> None:
    """Print namespaces as a table."""
    from rich.table import Table as RichTable
    from rich.text import Text

    out = console()
    if not items:
        out.print(Text("No namespaces.", style="dim"))
        return
    table = RichTable(title="Namespaces", title_justify="left")
    table.add_column("Name", overflow="fold")
    table.add_column("Description", ratio=2, overflow="fold")
    table.add_column("Properties", ratio=1, overflow="fold")
    for ns in items:
        table.add_row(Text(ns.name), _text(ns.description), Text(_props_inline(ns.properties)))
    out.print(table)


def namespace_details(ns: Namespace, table_count: int | None = None) -> None:
    """Print one namespace."""
    rows: list[tuple[str, object]] = [
        ("id", ns.id),
        ("description", ns.description or "-"),
    ]
    if table_count is not None:
        rows.append(("tables", table_count))
    rows += [("created", ns.created_at), ("updated", ns.updated_at)]
    _details(f"Namespace {ns.name}", rows)
    properties_table(ns.properties)


def _qualified(t: Mapping[str, Any]) -> str:
    return f"{t['namespace']}.{t['name']}"


def tables_table(items: Sequence[Mapping[str, Any]]) -> None:
    """Print tables (``Table.to_dict()`` form) as a table."""
    from rich.table import Table as RichTable
    from rich.text import Text

    out = console()
    if not items:
        out.print(Text("No tables.", style="dim"))
        return
    table = RichTable(title="Tables", title_justify="left")
    table.add_column("Table", overflow="fold")
    table.add_column("Format", overflow="fold")
    table.add_column("Columns", justify="right", overflow="fold")
    table.add_column("Description", ratio=1, overflow="fold")
    for t in items:
        table.add_row(
            Text(_qualified(t)),
            Text(t["format"]),
            Text(str(len(t["columns"]))),
            _text(t["description"]),
        )
    out.print(table)


def tables_stream(batches: Iterable[Sequence[Mapping[str, Any]]]) -> None:
    """Print tables batch by batch: a Rich table if there is one batch, else plain columns.

    A Rich table measures every row before it prints the first (seconds for tens
    of thousands), so a long listing is written as aligned plain text instead,
    its widths taken from the first batch, each batch as soon as it is read.
    Each table is a mapping with its namespace, name, format, columns and description.
    """
    it = iter(batches)
    first = list(next(it, []))
    second = next(it, None)
    if second is None:
        tables_table(first)
        return
    name_w = min(60, max([5, *(len(_qualified(t)) for t in first)]))
    fmt_w = max([6, *(len(t["format"]) for t in first)])
    write = sys.stdout.write
    write(f"{'Table':<{name_w}}  {'Format':<{fmt_w}}  Columns  Description\n")
    # chain, not (first, second, *it): unpacking would read the whole listing first.
    for batch in itertools.chain((first, second), it):
        write(
            "".join(
                f"{_qualified(t):<{name_w}}  {t['format']:<{fmt_w}}  {len(t['columns']):>7}  "
                f"{' '.join((t['description'] or '').split())}".rstrip()
                + "\n"
                for t in batch
            )
        )
    sys.stdout.flush()


def table_details(t: Table) -> None:
    """Print one table: its attributes, columns and properties."""
    _details(
        f"Table {t.qualified_name}",
        [
            ("id", t.id),
            ("format", t.format),
            ("location", t.location or "-"),
            *([("metadata", t.metadata_location)] if t.metadata_location else []),
            ("description", t.description or "-"),
            ("schema version", t.schema_version),
            ("created", t.created_at),
            ("updated", t.updated_at),
        ],
    )
    if t.columns:
        plain.boxed(
            "Columns",
            ["#", "Name", "Type", "Nullable", "Description"],
            [
                [
                    str(col.ordinal + 1),
                    col.name,
                    col.data_type,
                    "yes" if col.nullable else "no",
                    _plain(col.description),
                ]
                for col in t.columns
            ],
            ["right", "left", "left", "left", "left"],
        )
    else:
        plain.write_note("No columns.")
    properties_table(t.properties)


def _op_summary(op: Mapping[str, Any]) -> str:
    name = op.get("op", "?")
    if "name" in op:  # catalog operations: create_table raw.orders, rename ... -> ...
        text = f"{name} {op['name']}"
        if "to" in op:
            text += f" -> {op['to']}"
        if op.get("cascade"):
            text += " (cascade)"
        return text
    if "source" in op and "target" in op:  # lineage: declare_edge a -> b
        return f"{name} {op['source']} -> {op['target']}"
    rest = " ".join(f"{k}={v}" for k, v in op.items() if k != "op")  # compact, index, ...
    return f"{name} {rest}".strip()


def _ops_summary(operation: Mapping[str, Any]) -> str:
    ops = operation.get("ops")
    if not isinstance(ops, list) or not ops:
        return json.dumps(dict(operation), sort_keys=True) if operation else ""
    parts = []
    for op in ops:
        if not isinstance(op, Mapping):
            parts.append(str(op))
            continue
        parts.append(_op_summary(op))
    return "; ".join(parts)


def history_json(entries: Sequence[tuple[str, Manifest]]) -> list[dict[str, Any]]:
    """Commit history as JSON-ready dicts, newest first."""
    return [
        {
            "version": m.version,
            "commit_id": m.commit_id,
            "committed_at": m.committed_at,
            "writer": m.writer,
            "actor": m.actor,
            "operation": m.operation,
            "manifest": key,
        }
        for key, m in entries
    ]


def history_table(
    domain: str, entries: Sequence[tuple[str, Manifest]], limit: int | None = None
) -> None:
    """Print commit history as a table, newest first (``limit``: how many were asked for)."""
    from rich.table import Table as RichTable
    from rich.text import Text

    out = console()
    if not entries:
        out.print(Text(f"No commits in domain {domain} yet.", style="dim"))
        return
    table = RichTable(title=f"History of {domain}", title_justify="left")
    table.add_column("Version", justify="right", no_wrap=True)
    table.add_column("Committed (UTC)", no_wrap=True)
    table.add_column("Actor", max_width=24, overflow="fold")
    table.add_column("Writer", max_width=24, overflow="fold")
    table.add_column("Operations", ratio=1, overflow="fold")
    for _key, m in entries:
        table.add_row(
            Text(str(m.version)),
            Text(when(m.committed_at, utc_suffix=False)),
            Text(m.actor or UNKNOWN_ACTOR),
            Text(m.writer),
            Text(_ops_summary(m.operation)),
        )
    out.print(table)
    oldest = entries[-1][1]
    if (limit is None or len(entries) < limit) and oldest.parent is not None:
        # The walk stopped at the history floor, not at the limit or the first commit.
        out.print(
            Text(
                f"Versions before {oldest.version} were expired by retention (arco gc --keep-*).",
                style="dim",
            )
        )


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 event``, ``2 events`` (``nouns`` for an irregular plural)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def short_json(value: Any, limit: int = SHORT_PAYLOAD) -> str:
    """Compact JSON of ``value`` without null fields, cut to ``limit`` characters."""
    if isinstance(value, Mapping):
        value = {k: v for k, v in value.items() if v is not None}
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def events_table(domain: str, envelopes: Sequence[Envelope]) -> None:
    """Print ledger events, oldest first."""
    from rich.table import Table as RichTable
    from rich.text import Text

    out = console()
    if not envelopes:
        out.print(Text(f"No events in domain {domain}.", style="dim"))
        return
    table = RichTable(title=f"Events of {domain}", title_justify="left")
    table.add_column("Event ID", no_wrap=True)
    table.add_column("Type", overflow="fold")
    table.add_column("Ver", justify="right", no_wrap=True)
    table.add_column("Occurred (UTC)", overflow="fold")
    table.add_column("Payload", ratio=1, overflow="fold")
    for env in envelopes:
        table.add_row(
            Text(env.event_id),
            Text(env.event_type),
            Text(str(env.event_version)),
            Text(when(env.occurred_at, utc_suffix=False)),
            Text(short_json(env.payload)),
        )
    out.print(table)


def event_types_table(rows: Sequence[Mapping[str, Any]]) -> None:
    """Print the registered event types."""
    from rich.table import Table as RichTable
    from rich.text import Text

    table = RichTable(title="Event types", title_justify="left")
    table.add_column("Type", overflow="fold")
    table.add_column("Domain", overflow="fold")
    table.add_column("Versions", overflow="fold")
    table.add_column("Latest", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            Text(row["type"]),
            Text(row["domain"]),
            Text(", ".join(map(str, row["versions"]))),
            Text(str(row["latest"])),
        )
    console().print(table)


def edges_table(edges: Sequence[Edge]) -> None:
    """Print lineage edges."""
    from rich.table import Table as RichTable
    from rich.text import Text

    out = console()
    if not edges:
        out.print(Text("No lineage edges.", style="dim"))
        return
    table = RichTable(title="Lineage edges", title_justify="left")
    table.add_column("Source", overflow="fold")
    table.add_column("Target", overflow="fold")
    table.add_column("Type", overflow="fold")
    table.add_column("Seen as", overflow="fold")
    table.add_column("Columns", ratio=1, overflow="fold")
    for e in edges:
        seen = ["declared"] if e.declared else []
        if e.observations:
            last = f", last {when(e.last_seen)}" if e.last_seen else ""
            seen.append(f"observed {e.observations}x{last}")
        table.add_row(
            Text(e.source),
            Text(e.target),
            Text(e.edge_type),
            Text("; ".join(seen)),
            Text(", ".join(e.columns)),
        )
    out.print(table)


def search_json(results: SearchResults) -> dict[str, Any]:
    """A page of search results as JSON: hits, total and the next page's token."""
    return {
        "hits": [h.to_dict() for h in results.hits],
        "total": results.total,
        "next_page_token": results.next_page_token,
    }


def search_table(query: str, results: SearchResults) -> None:
    """Print a page of search results, best first, and how to get the next page."""
    from rich.table import Table as RichTable
    from rich.text import Text

    out = console()
    if not results.hits:
        out.print(Text(f"No matches for {query!r}.", style="dim"))
        return
    table = RichTable(title=f"Search: {query}", title_justify="left")
    table.add_column("Kind", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Score", justify="right", no_wrap=True)
    table.add_column("Description", ratio=1, overflow="fold")
    for hit in results.hits:
        table.add_row(
            Text(hit.kind),
            Text(hit.qualified_name),
            Text(f"{hit.score:g}"),
            _text(hit.description),
        )
    out.print(table)
    footer = f"{len(results.hits)} of {plural(results.total, 'hit')}"
    if results.next_page_token:
        footer += f"; next page: --page-token {results.next_page_token}"
    out.print(Text(footer, style="dim"))
