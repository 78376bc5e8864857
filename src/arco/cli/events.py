"""``arco events ...``: append Tier-2 events to the ledger, tail it, list event types."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from arco.cli import output
from arco.cli.context import CliUsageError, settings

if TYPE_CHECKING:
    from arco.ledger.events import Envelope
    from arco.ledger.log import Ledger

app = typer.Typer(
    name="events",
    help="Append Tier-2 events to the ledger, show the newest, prune old history, list types.",
    no_args_is_help=True,
)

#: Events per ledger batch object (the ledger's own limit, ``MAX_BATCH_EVENTS``).
BATCH_CHUNK = 10_000
#: Fields a line of an ``--file`` may carry (those ``Ledger.append_batch`` accepts).
LINE_FIELDS = frozenset(
    {"type", "payload", "version", "idempotency_key", "occurred_at", "trace_id", "source"}
)

DomainArg = Annotated[
    str, typer.Argument(metavar="DOMAIN", help="Ledger domain: executions or lineage.")
]


def _parse_payload(text: str) -> Any:
    from arco.ledger.events import InvalidEventError

    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidEventError(f"--payload is not valid JSON: {exc}") from exc


def _lines(stream: BinaryIO) -> Iterator[tuple[int, str]]:
    """Non-blank lines of ``stream`` with their 1-based numbers."""
    from arco.ledger.events import InvalidEventError

    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEventError(f"line {number}: not UTF-8 ({exc.reason})") from exc
        if text.strip():
            yield number, text


def _check_line(domain: str, number: int, text: str) -> dict[str, Any]:
    """Parse and fully validate one line of an ``--file``; nothing is written here."""
    from arco.ledger.events import InvalidEventError, build_envelope, parse_occurred_at

    try:
        item = json.loads(text)
    except ValueError as exc:
        raise InvalidEventError(f"line {number}: not valid JSON: {exc}") from exc
    try:
        if not isinstance(item, dict):
            raise InvalidEventError("each line must be a JSON object")
        unknown = set(item) - LINE_FIELDS
        if unknown:
            raise InvalidEventError(f"unknown fields {', '.join(sorted(unknown))}")
        if not isinstance(item.get("type"), str):
            raise InvalidEventError("'type' is missing or not a string")
        if "payload" not in item:
            raise InvalidEventError("'payload' is missing")
        when = parse_occurred_at(item.get("occurred_at"))
        extra = {"source": item["source"]} if "source" in item else {}
        build_envelope(
            domain,
            item["type"],
            item["payload"],
            version=item.get("version"),
            idempotency_key=item.get("idempotency_key"),
            trace_id=item.get("trace_id"),
            occurred_at=when,
            **extra,
        )
    except InvalidEventError as exc:
        raise InvalidEventError(f"line {number}: {exc}") from exc
    return item


def _read_file(domain: str, path: str) -> list[dict[str, Any]]:
    """Every event of a JSON-lines file (``-`` is stdin), all validated before any write."""
    from arco.core.errors import InvalidArgumentError

    if path == "-":
        return [_check_line(domain, n, text) for n, text in _lines(sys.stdin.buffer)]
    try:
        with open(path, "rb") as stream:
            return [_check_line(domain, n, text) for n, text in _lines(stream)]
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _append_chunks(ledger: Ledger, domain: str, items: list[dict[str, Any]]) -> list[Envelope]:
    """Write ``items`` as batch objects of at most :data:`BATCH_CHUNK` events."""
    from arco.core.errors import ArcoError, StorageError

    written: list[Envelope] = []
    for start in range(0, len(items), BATCH_CHUNK):
        try:
            written.extend(ledger.append_batch(domain, items[start : start + BATCH_CHUNK]))
        except (ArcoError, OSError) as exc:
            if not written:
                raise
            raise StorageError(
                f"appended {len(written)} of {len(items)} events, then failed: {exc}"
            ) from exc
    return written


@app.command("append")
def append(
    ctx: typer.Context,
    domain: DomainArg,
    event_type: Annotated[
        str | None, typer.Option("--type", "-t", metavar="T", help="Event type, e.g. run.created.")
    ] = None,
    payload: Annotated[
        str | None, typer.Option("--payload", "-p", metavar="JSON", help="The payload object.")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, metavar="N", help="Payload version (default: latest)."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            metavar="K",
            help="Events with the same key are folded once (default: hash of the payload).",
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            metavar="PATH",
            help=(
                "JSON lines, one event per line: type, payload, optional version and "
                "idempotency_key ('-' reads stdin). Written as one batch, or nothing if any "
                "line is invalid."
            ),
        ),
    ] = None,
) -> None:
    """Append one event (--type, --payload) or a file of events (--file); print their ids."""
    from arco.ledger.events import REGISTRY

    cfg = settings(ctx)
    if file is not None:
        if any(v is not None for v in (event_type, payload, version, idempotency_key)):
            raise CliUsageError(
                "--file cannot be combined with --type, --payload, --version or --idempotency-key"
            )
        REGISTRY.check_domain(domain)
        items = _read_file(domain, file)
        envelopes = _append_chunks(cfg.open_workspace().ledger, domain, items)
        if cfg.json:
            output.emit_json([e.to_dict() for e in envelopes])
        else:
            for env in envelopes:
                output.say(env.event_id)
        return
    if event_type is None or payload is None:
        raise CliUsageError("give --type and --payload, or --file")
    REGISTRY.check_domain(domain)
    env = cfg.open_workspace().ledger.append(
        domain,
        event_type,
        _parse_payload(payload),
        version=version,
        idempotency_key=idempotency_key,
    )
    if cfg.json:
        output.emit_json(env.to_dict())
    else:
        output.say(env.event_id)


@app.command("tail")
def tail(
    ctx: typer.Context,
    domain: DomainArg,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10_000, help="How many events to show.")
    ] = 20,
) -> None:
    """Show the newest events of a domain's ledger, oldest first (compacted or not)."""

    cfg = settings(ctx)
    envelopes = cfg.open_workspace().ledger.tail(domain, limit)
    if cfg.json:
        output.emit_json([e.to_dict() for e in envelopes])
    else:
        output.events_table(domain, envelopes)


@app.command("prune")
def prune(
    ctx: typer.Context,
    domain: Annotated[
        str | None,
        typer.Argument(metavar="[DOMAIN]", help="executions or lineage (default: both)."),
    ] = None,
    keep_days: Annotated[
        float,
        typer.Option(
            "--keep-days",
            min=0,
            metavar="DAYS",
            help="Keep this much ledger history behind the watermark (the dedup horizon).",
        ),
    ] = 7,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be pruned.")
    ] = False,
) -> None:
    """Delete compacted ledger objects and dedup records older than --keep-days.

    The compacted state (runs, tasks, materializations, lineage, quarantine) stays;
    an event re-sent with an idempotency key older than the horizon is no longer
    recognised as a duplicate.
    """
    from datetime import timedelta

    from arco.ledger.compactor import STATE_CLASSES

    cfg = settings(ctx)
    compactor = cfg.open_workspace().compactor
    domains = [domain] if domain is not None else sorted(STATE_CLASSES)
    reports = [compactor.prune(d, timedelta(days=keep_days), dry_run=dry_run) for d in domains]
    if cfg.json:
        output.emit_json([r.to_dict() for r in reports])
        return
    verb = "would prune" if dry_run else "pruned"
    for r in reports:
        if r.cutoff is None:
            output.say(f"{r.domain}: nothing compacted yet; nothing to prune")
            continue
        output.say(
            f"{r.domain}: {verb} {r.ledger_objects} ledger objects and {r.event_keys} "
            f"dedup records older than {r.cutoff.isoformat(timespec='seconds')}"
        )


@app.command("types")
def types(ctx: typer.Context) -> None:
    """List the registered event types with their versions and domains."""
    from arco.ledger.events import REGISTRY

    cfg = settings(ctx)
    rows = []
    for name in REGISTRY.names():
        etype = REGISTRY.get(name)
        rows.append(
            {
                "type": name,
                "domain": etype.domain,
                "versions": sorted(etype.models),
                "latest": etype.latest,
            }
        )
    if cfg.json:
        output.emit_json(rows)
    else:
        output.event_types_table(rows)
