"""``arco compact``: fold new ledger events into Tier-2 state, refresh the search index."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from arco.cli import output
from arco.cli.context import CliUsageError, settings

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from arco.ledger.compactor import CompactionReport

SEARCH_DOMAIN = "search"
#: Ledger domains the compactor folds, in the order it folds them (``STATE_CLASSES``;
#: the audit trail last, so the run data it reports on comes first).
LEDGER_DOMAINS = ("executions", "lineage", "audit")
DEFAULT_INTERVAL = 10.0
DEFAULT_WINDOW = 600.0
#: Extra keyword arguments for :class:`~arco.ledger.compactor.Compactor` (tests shrink
#: ``max_objects`` to get several chunks, hence progress callbacks, out of few objects).
COMPACTOR_OPTIONS: dict[str, Any] = {}

_sleep: Callable[[float], None] = time.sleep  # replaced by tests


def _progress_console() -> Console | None:
    """The console for the progress bar: stderr, and only when it is a terminal."""
    console = Console(stderr=True)
    return console if console.is_terminal else None


class _ProgressBar:
    """A transient progress bar on stderr, per domain, for runs of more than one chunk.

    A domain whose pending objects fit in one chunk reports once, when it is done; it
    gets no bar (there would be nothing to watch). A longer run reports after every
    chunk with ``done < total`` and gets a bar until it is finished.
    """

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, domain: str, done: int, total: int) -> None:
        if self.console is None:
            return
        if domain not in self.tasks:
            if done >= total:
                return
            if self.progress is None:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )

                self.progress = Progress(
                    TextColumn("compacting {task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("objects"),
                    TimeElapsedColumn(),
                    console=self.console,
                    transient=True,
                )
                self.progress.start()
            self.tasks[domain] = self.progress.add_task(domain, total=total)
        if self.progress is not None:
            self.progress.update(self.tasks[domain], completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


@dataclass
class _PassResult:
    reports: list[CompactionReport]
    catalog_version: int | None  # the catalog version the search index reflects

    def to_dict(self) -> dict[str, Any]:
        search = None if self.catalog_version is None else {"catalog_version": self.catalog_version}
        return {"domains": [asdict(r) for r in self.reports], "search": search}

    @property
    def idle(self) -> bool:
        return not any(r.objects for r in self.reports)


def _report_line(r: CompactionReport) -> str:
    quarantined = f"{r.quarantined} quarantined"
    if r.quarantine_reasons:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(r.quarantine_reasons.items()))
        quarantined += f" ({reasons})"
    watermark = f"watermark {r.watermark}" if r.watermark else "no watermark"
    return (
        f"{r.domain}: {output.plural(r.objects, 'object')}, {output.plural(r.events, 'event')}, "
        f"{output.plural(r.duplicates, 'duplicate')}, {quarantined}; "
        f"version {r.version}, {watermark}"
    )


def _print_pass(result: _PassResult, *, loop_pass: int | None, as_json: bool) -> None:
    if as_json:
        if loop_pass is None:
            output.emit_json(result.to_dict())
        else:  # one JSON object per line and pass
            body = {"pass": loop_pass, **result.to_dict()}
            typer.echo(json.dumps(body, ensure_ascii=False, default=str))
        return
    prefix = ""
    if loop_pass is not None:
        stamp = output.when(datetime.now(UTC))
        prefix = f"[{stamp} pass {loop_pass}] "
    for report in result.reports:
        output.say(prefix + _report_line(report))
    if result.catalog_version is not None:
        output.say(f"{prefix}search: index at catalog version {result.catalog_version}")


def compact(
    ctx: typer.Context,
    domain: Annotated[
        str | None,
        typer.Option(
            "--domain",
            metavar="D",
            help="Only this domain: executions, lineage or search (default: all).",
        ),
    ] = None,
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep compacting every --interval seconds until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float | None,
        typer.Option(
            "--interval",
            min=0,
            metavar="S",
            help=f"Seconds between passes with --loop (default {DEFAULT_INTERVAL:g}).",
        ),
    ] = None,
    window: Annotated[
        float,
        typer.Option(
            "--window",
            min=0,
            metavar="SECONDS",
            help="How late (behind the watermark) an event may arrive and still be folded.",
        ),
    ] = DEFAULT_WINDOW,
    max_loops: Annotated[
        int | None, typer.Option("--max-loops", min=1, hidden=True, help="Stop after N passes.")
    ] = None,
) -> None:
    """Fold new ledger events into each domain's state and refresh the search index.

    Prints, per domain, the ledger objects and events folded, duplicates skipped,
    objects quarantined, and the new version and watermark.
    """
    from datetime import timedelta

    from arco.core.errors import InvalidArgumentError

    cfg = settings(ctx)
    if not loop and (interval is not None or max_loops is not None):
        raise CliUsageError("--interval and --max-loops need --loop")
    known = (*LEDGER_DOMAINS, SEARCH_DOMAIN)
    if domain is not None and domain not in known:
        raise InvalidArgumentError(f"unknown domain {domain!r}; known: {', '.join(known)}")
    ledger_domains: Sequence[str] = (
        LEDGER_DOMAINS if domain is None else [d for d in LEDGER_DOMAINS if d == domain]
    )
    with_search = domain in (None, SEARCH_DOMAIN)

    from arco.ledger.compactor import Compactor

    store, scope = cfg.store(), cfg.scope()
    # The CLI's own window and limits, so not the workspace's default compactor.
    compactor = Compactor(store, scope, window=timedelta(seconds=window), **COMPACTOR_OPTIONS)
    index = cfg.open_workspace().search if with_search else None

    def run_pass() -> _PassResult:
        bar = _ProgressBar(_progress_console())
        try:
            reports = [
                compactor.compact(d, progress=functools.partial(bar, d)) for d in ledger_domains
            ]
        finally:
            bar.close()
        return _PassResult(reports, index.refresh() if index is not None else None)

    if not loop:
        _print_pass(run_pass(), loop_pass=None, as_json=cfg.json)
        return
    pause = DEFAULT_INTERVAL if interval is None else interval
    passes = 0
    last_version: int | None = None
    try:
        while True:
            started = time.monotonic()
            result = run_pass()
            passes += 1
            quiet = passes > 1 and result.idle and result.catalog_version == last_version
            if cfg.json or not quiet:
                _print_pass(result, loop_pass=passes, as_json=cfg.json)
            last_version = result.catalog_version
            if max_loops is not None and passes >= max_loops:
                return
            _sleep(max(0.0, pause - (time.monotonic() - started)))
    except KeyboardInterrupt:
        typer.echo(f"stopped after {output.plural(passes, 'pass', 'passes')}", err=True)
