"""Ingest: validated OpenLineage events become ``openlineage.event`` ledger events.

Each event is validated (:mod:`arco.openlineage.schema`), its datasets mapped to
qualified names (:mod:`arco.openlineage.mapping`) and its facets reduced to what
the compactor folds; the event as received rides along as compact JSON text
(``raw_json``) when it fits the ledger's size limit. The idempotency key is derived
from the run id (or the job or dataset of a run-less event), ``eventType`` and
``eventTime``: a re-sent event counts once. Nothing from an event becomes part of a storage key.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any

from arco.core.actor import current_actor
from arco.core.ids import new_ulid, sha256_hex
from arco.ledger.events import Envelope, EventTooLargeError, surrogate_path
from arco.ledger.external_lineage import MAX_RAW_JSON
from arco.ledger.log import Ledger
from arco.openlineage.mapping import DatasetMapper
from arco.openlineage.schema import (
    MAX_BATCH,
    Dataset,
    DatasetEvent,
    Event,
    InvalidOpenLineageEventError,
    JobEvent,
    OutputDataset,
    RunEvent,
    validate_event,
)

EVENT_TYPE = "openlineage.event"
#: The version :func:`normalise` writes (the latest of ``openlineage.event``).
EVENT_VERSION = 2
DOMAIN = "lineage"
#: Above this size the event as received is not kept in the ledger event (only
#: the normalised fields are): the envelope must stay under the ledger's limit.
_RAW_LIMIT = MAX_RAW_JSON


@dataclass(frozen=True)
class Normalised:
    """One event ready for the ledger."""

    payload: dict[str, Any]
    idempotency_key: str
    kind: str
    #: ``eventTime`` in UTC, as the envelope's ``occurred_at``.
    occurred_at: str


def _columns(ds: Dataset) -> list[dict[str, Any]] | None:
    facet = ds.facets.schema_ if ds.facets is not None else None
    if facet is None:
        return None
    return [{"name": f.name, "type": f.type} for f in facet.fields]


def _dataset(ds: Dataset, mapper: DatasetMapper) -> dict[str, Any]:
    row_count = None
    if isinstance(ds, OutputDataset) and ds.outputFacets is not None:
        stats = ds.outputFacets.outputStatistics
        row_count = stats.rowCount if stats is not None else None
    return {
        "namespace": ds.namespace,
        "name": ds.name,
        "qualified_name": mapper.map(ds.namespace, ds.name),
        "schema": _columns(ds),
        "row_count": row_count,
    }


def _column_edges(
    outputs: Sequence[Dataset], mapper: DatasetMapper, cache: dict[tuple[str, str], str | None]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def qualified(namespace: str, name: str) -> str | None:
        key = (namespace, name)
        if key not in cache:
            cache[key] = mapper.map(namespace, name)
        return cache[key]

    for ds in outputs:
        facet = ds.facets.columnLineage if ds.facets is not None else None
        target = qualified(ds.namespace, ds.name)
        if facet is None or target is None:
            continue
        for column, spec in sorted(facet.fields.items()):
            if not 1 <= len(column) <= 256:
                continue
            how = spec.transformationType or None
            for field_in in spec.inputFields:
                source = qualified(field_in.namespace, field_in.name)
                if source is None:
                    continue
                subtype = None
                if field_in.transformations:
                    first = field_in.transformations[0]
                    kinds = [str(first.get(k)) for k in ("type", "subtype") if first.get(k)]
                    subtype = "/".join(kinds) or None
                out.append(
                    {
                        "source": source,
                        "source_column": field_in.field,
                        "target": target,
                        "target_column": column,
                        "transformation": (subtype or how or None),
                    }
                )
    return out


def idempotency_key(event: Event) -> str:
    """``ol:`` + a hash of run id (or job / dataset), eventType and eventTime."""
    return _idempotency_key(event, event.eventTime.astimezone(UTC).isoformat())


def _idempotency_key(event: Event, when: str) -> str:
    if isinstance(event, RunEvent):
        ident = f"run\x00{event.run.runId}\x00{event.eventType or 'OTHER'}"
    elif isinstance(event, DatasetEvent):
        ident = f"dataset\x00{event.dataset.namespace}\x00{event.dataset.name}"
    else:
        ident = f"job\x00{event.job.namespace}\x00{event.job.name}"
    return "ol:" + sha256_hex(f"{ident}\x00{when}".encode())[:40]


def normalise(raw: Any, mapper: DatasetMapper, *, text: str | None = None) -> Normalised:
    """Validate one OpenLineage event and turn it into an ``openlineage.event`` payload.

    The payload is built here from the validated event, in the shape of the latest
    ``openlineage.event`` version, so it is not validated a second time at append
    (the compactor validates what it folds).
    """
    event = validate_event(raw)
    cache: dict[tuple[str, str], str | None] = {}
    when = event.eventTime.astimezone(UTC).isoformat()
    payload: dict[str, Any] = {
        "kind": "run",
        "event_type": None,
        # As the registry's model writes it (pydantic: "Z"); the envelope keeps "+00:00".
        "event_time": when.removesuffix("+00:00") + "Z",
        "producer": event.producer,
        "run_id": None,
        "job_namespace": None,
        "job_name": None,
        "parent_run_id": None,
        "parent_job_namespace": None,
        "parent_job_name": None,
        "error_message": None,
        "inputs": [],
        "outputs": [],
        "column_edges": [],
        "raw_json": None,
    }
    if isinstance(event, RunEvent):
        facets = event.run.facets
        parent = facets.parent if facets is not None else None
        error = facets.errorMessage if facets is not None else None
        payload.update(
            event_type=event.eventType or "OTHER",
            run_id=event.run.runId,
            job_namespace=event.job.namespace,
            job_name=event.job.name,
            parent_run_id=parent.run.runId if parent is not None else None,
            parent_job_namespace=parent.job.namespace if parent is not None else None,
            parent_job_name=parent.job.name if parent is not None else None,
            error_message=error.message[:65_536] if error is not None else None,
        )
    elif isinstance(event, JobEvent):
        payload.update(kind="job", job_namespace=event.job.namespace, job_name=event.job.name)
    else:
        payload["kind"] = "dataset"
    if isinstance(event, (RunEvent, JobEvent)):
        payload["inputs"] = [_dataset(d, mapper) for d in event.inputs]
        payload["outputs"] = [_dataset(d, mapper) for d in event.outputs]
        payload["column_edges"] = _column_edges(event.outputs, mapper, cache)
    else:
        payload["outputs"] = [_dataset(event.dataset, mapper)]
        payload["column_edges"] = _column_edges([event.dataset], mapper, cache)
    # Kept as text: a parsed copy of the event cost more to check, copy and encode
    # (at ingest and again at every compaction) than everything the folds read.
    if text is None:
        text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
        suspect = not text.isascii() and not _utf8(text)
    else:  # the body as received: a lone surrogate can only be a \u escape there
        suspect = "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None
    if suspect:
        where = surrogate_path(raw)
        if where is not None:
            raise InvalidOpenLineageEventError(
                f"{where.lstrip('.') or 'event'}: text that is not valid Unicode "
                "(a lone UTF-16 surrogate such as \\ud800)"
            )
    if len(text) <= _RAW_LIMIT:
        payload["raw_json"] = text
    return Normalised(payload, _idempotency_key(event, when), payload["kind"], when)


#: A JSON escape of a UTF-16 surrogate (paired or lone: the parsed event tells).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def as_events(body: Any) -> list[Any]:
    """A request body as a list of events: one object, a JSON array, or ``{"events": [...]}``."""
    if isinstance(body, dict) and "events" in body and "eventTime" not in body:
        body = body["events"]
    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidOpenLineageEventError("the batch is empty")
    if len(items) > MAX_BATCH:
        raise InvalidOpenLineageEventError(f"a batch holds at most {MAX_BATCH} events")
    return items


def prepare(
    events: Sequence[Any], mapper: DatasetMapper, *, text: str | None = None
) -> list[Envelope]:
    """Validate and normalise events into envelopes (nothing is written).

    ``text``: the JSON text of the only event, as received (a request body holding
    one event): kept as ``raw_json`` instead of encoding the parsed event again.
    All or nothing: an invalid event is reported with its index in a batch.
    """
    if text is not None and len(events) != 1:
        raise ValueError("text is the JSON of a single event")
    normalised = []
    for i, raw in enumerate(events):
        try:
            normalised.append(normalise(raw, mapper, text=text))
        except InvalidOpenLineageEventError as exc:
            if len(events) == 1:
                raise
            raise InvalidOpenLineageEventError(f"events[{i}].{exc}") from exc
    actor = current_actor()
    return [
        Envelope(
            event_id=new_ulid(),
            event_type=EVENT_TYPE,
            event_version=EVENT_VERSION,
            idempotency_key=n.idempotency_key,
            occurred_at=n.occurred_at,
            source="openlineage",
            payload=n.payload,
            actor=actor,
        )
        for n in normalised
    ]


def encode(ledger: Ledger, envelopes: list[Envelope]) -> list[tuple[str, bytes]]:
    """Envelopes as the ledger stores them; an event too big with its text copy keeps
    only its normalised fields (``envelopes`` is updated in place to match)."""
    try:
        parts = ledger.encode_prepared(DOMAIN, envelopes)
    except EventTooLargeError:
        if not any(e.payload["raw_json"] for e in envelopes):
            raise
        envelopes[:] = [replace(e, payload={**e.payload, "raw_json": None}) for e in envelopes]
        parts = ledger.encode_prepared(DOMAIN, envelopes)
    return [(e.event_id, b) for e, b in zip(envelopes, parts, strict=True)]


def ingest(ledger: Ledger, events: Sequence[Any], mapper: DatasetMapper) -> list[Envelope]:
    """Validate, normalise and write events as one ledger object; all or nothing."""
    envelopes = prepare(events, mapper)
    ledger.write_encoded(DOMAIN, encode(ledger, envelopes))
    return envelopes


class GroupWriter:
    """Group commit of ingest requests: events of concurrent requests share one object.

    One write is in flight at a time (in a worker thread for an object store, so the
    event loop keeps accepting requests; in the loop itself for a local folder);
    requests arriving meanwhile wait together for the next one.
    Each request returns only once the object holding its events is written, so an
    acknowledged event is in the ledger exactly as before; a failed write fails every
    request of its group and none of their events is in the ledger. An idle writer
    adds no delay: the first request of a quiet period is written at once.
    """

    def __init__(self, ledger: Ledger, *, max_events: int = 10_000) -> None:
        self.ledger = ledger
        self.max_events = max_events
        #: Write in the event loop itself: a local folder's write is a few system
        #: calls (~70 us), and handing it to a thread and back cost more CPU than
        #: that (measured: -20% CPU per single-event request with one worker).
        #: An object store's PUT is a network round trip and stays in a thread.
        self.inline = ledger.store.url.startswith(("file:", "memory:"))
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary()
        )

    async def write(self, encoded: list[tuple[str, bytes]]) -> None:
        """Write ``encoded`` (from :func:`encode`) with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        done: asyncio.Future[None] = loop.create_future()
        queue.pending.append((encoded, done))
        if queue.task is None:
            queue.task = loop.create_task(self._drain(queue))
        await done

    async def _drain(self, queue: _Queue) -> None:
        try:
            while queue.pending:
                group: list[tuple[list[tuple[str, bytes]], asyncio.Future[None]]] = []
                size = 0
                while queue.pending and (
                    not group or size + len(queue.pending[0][0]) <= self.max_events
                ):
                    item = queue.pending.pop(0)
                    group.append(item)
                    size += len(item[0])
                parts = [p for encoded, _ in group for p in encoded]
                try:
                    if self.inline:
                        self.ledger.write_encoded(DOMAIN, parts)
                    else:
                        await asyncio.to_thread(self.ledger.write_encoded, DOMAIN, parts)
                except Exception as exc:
                    for _, done in group:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, done in group:
                        if not done.done():
                            done.set_result(None)
        finally:
            queue.task = None


@dataclass
class _Queue:
    pending: list[tuple[list[tuple[str, bytes]], asyncio.Future[None]]] = field(
        default_factory=list
    )
    task: asyncio.Task[None] | None = None
