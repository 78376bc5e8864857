"""Ingest: validated OpenLineage events become ``openlineage.event`` ledger events.

Each event is validated (:mod:`arco.openlineage.schema`), its datasets mapped to
qualified names (:mod:`arco.openlineage.mapping`) and its facets reduced to what
the compactor folds; the event as received rides along (``raw``) when it fits the
ledger's size limit. The idempotency key is derived from the run id (or the job or
dataset of a run-less event), ``eventType`` and ``eventTime``: a re-sent event
counts once. Nothing from an event becomes part of a storage key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from arco.catalog.events import MAX_EVENT_BYTES, Envelope, InvalidEventError
from arco.catalog.ledger import Ledger
from arco.core.ids import sha256_hex
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
DOMAIN = "lineage"
#: Above this size the event as received is not kept in the ledger event (only
#: the normalised fields are): the envelope must stay under the ledger's limit.
_RAW_LIMIT = MAX_EVENT_BYTES // 2


@dataclass(frozen=True)
class Normalised:
    """One event ready for the ledger."""

    payload: dict[str, Any]
    idempotency_key: str
    kind: str


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
    when = event.eventTime.astimezone(UTC).isoformat()
    if isinstance(event, RunEvent):
        ident = f"run\x00{event.run.runId}\x00{event.eventType or 'OTHER'}"
    elif isinstance(event, DatasetEvent):
        ident = f"dataset\x00{event.dataset.namespace}\x00{event.dataset.name}"
    else:
        ident = f"job\x00{event.job.namespace}\x00{event.job.name}"
    return "ol:" + sha256_hex(f"{ident}\x00{when}".encode())[:40]


def normalise(raw: Any, mapper: DatasetMapper, *, raw_size: int | None = None) -> Normalised:
    """Validate one OpenLineage event and turn it into an ``openlineage.event`` payload."""
    event = validate_event(raw)
    cache: dict[tuple[str, str], str | None] = {}
    payload: dict[str, Any] = {
        "event_time": event.eventTime.astimezone(UTC).isoformat(),
        "producer": event.producer,
        "inputs": [],
        "outputs": [],
        "column_edges": [],
    }
    if isinstance(event, RunEvent):
        facets = event.run.facets
        parent = facets.parent if facets is not None else None
        error = facets.errorMessage if facets is not None else None
        payload.update(
            kind="run",
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
        payload.update(kind="dataset")
    if isinstance(event, (RunEvent, JobEvent)):
        payload["inputs"] = [_dataset(d, mapper) for d in event.inputs]
        payload["outputs"] = [_dataset(d, mapper) for d in event.outputs]
        payload["column_edges"] = _column_edges(event.outputs, mapper, cache)
    else:
        payload["outputs"] = [_dataset(event.dataset, mapper)]
        payload["column_edges"] = _column_edges([event.dataset], mapper, cache)
    size = raw_size if raw_size is not None else len(json.dumps(raw))
    if size <= _RAW_LIMIT:
        payload["raw"] = raw
    return Normalised(payload, idempotency_key(event), payload["kind"])


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


def ingest(
    ledger: Ledger,
    events: Sequence[Any],
    mapper: DatasetMapper,
    *,
    raw_size: int | None = None,
) -> list[Envelope]:
    """Validate, normalise and write events: one ledger object for one event, else a batch.

    All or nothing: an invalid event (reported with its index in a batch) writes nothing.
    """
    normalised = []
    for i, raw in enumerate(events):
        try:
            normalised.append(
                normalise(raw, mapper, raw_size=raw_size if len(events) == 1 else None)
            )
        except InvalidOpenLineageEventError as exc:
            if len(events) == 1:
                raise
            raise InvalidOpenLineageEventError(f"events[{i}].{exc}") from exc
    if len(normalised) == 1:
        n = normalised[0]
        return [_append_one(ledger, n)]
    items = [
        {
            "type": EVENT_TYPE,
            "payload": n.payload,
            "idempotency_key": n.idempotency_key,
            "occurred_at": n.payload["event_time"],
        }
        for n in normalised
    ]
    try:
        return ledger.append_batch(DOMAIN, items, source="openlineage")
    except InvalidEventError:
        # An event too big with its raw copy: keep only the normalised fields.
        for item in items:
            item["payload"] = {k: v for k, v in item["payload"].items() if k != "raw"}
        return ledger.append_batch(DOMAIN, items, source="openlineage")


def _append_one(ledger: Ledger, n: Normalised) -> Envelope:
    from datetime import datetime

    when = datetime.fromisoformat(n.payload["event_time"])
    try:
        return ledger.append(
            DOMAIN,
            EVENT_TYPE,
            n.payload,
            idempotency_key=n.idempotency_key,
            occurred_at=when,
            source="openlineage",
        )
    except InvalidEventError:
        if "raw" not in n.payload:
            raise
        slim = {k: v for k, v in n.payload.items() if k != "raw"}
        return ledger.append(
            DOMAIN,
            EVENT_TYPE,
            slim,
            idempotency_key=n.idempotency_key,
            occurred_at=when,
            source="openlineage",
        )
