"""Routes for lineage, search, events and compaction."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response, status

from arco.api.deps import Ingest, Querier, Reader, Writer
from arco.api.responses import json_out
from arco.api.schemas import (
    CompactionIn,
    CompactionsOut,
    EdgePage,
    EdgesIn,
    EventBatchIn,
    EventIn,
    EventOut,
    EventsAccepted,
    SearchOut,
    TraversalOut,
)
from arco.ledger.events import parse_occurred_at

router = APIRouter(prefix="/api/v1")


@router.post(
    "/lineage/edges", status_code=status.HTTP_201_CREATED, response_model=EdgePage, tags=["lineage"]
)
def declare_edges(body: EdgesIn, svc: Writer) -> Any:
    """Declare lineage edges (idempotent: declaring an edge twice changes nothing)."""
    edges = [
        svc.lineage.add_edge(e.source, e.target, edge_type=e.edge_type, columns=e.columns)
        for e in body.edges
    ]
    return {"items": [e.to_dict() for e in edges], "next_page_token": None}


@router.delete("/lineage/edges", status_code=status.HTTP_204_NO_CONTENT, tags=["lineage"])
def remove_edge(
    svc: Writer,
    source: Annotated[str, Query(min_length=1, max_length=512)],
    target: Annotated[str, Query(min_length=1, max_length=512)],
    edge_type: Annotated[str, Query(min_length=1, max_length=64)] = "derives",
) -> Response:
    """Withdraw a declared edge (observed history is kept)."""
    svc.lineage.remove_edge(source, target, edge_type=edge_type)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/lineage/edges", response_model=EdgePage, tags=["lineage"])
def list_edges(
    svc: Reader,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: Annotated[str | None, Query(max_length=20)] = None,
) -> Any:
    """All edges, sorted by (source, target, type)."""
    offset = 0
    if page_token:
        if not page_token.isdigit():
            from arco.core.errors import InvalidArgumentError

            raise InvalidArgumentError("page token is malformed")
        offset = int(page_token)
    edges = svc.lineage.edges()
    page = edges[offset : offset + page_size]
    nxt = str(offset + page_size) if offset + page_size < len(edges) else None
    return {"items": [e.to_dict() for e in page], "next_page_token": nxt}


@router.get("/lineage/{node}", response_model=TraversalOut, tags=["lineage"])
def traverse(
    node: str,
    svc: Reader,
    direction: Literal["upstream", "downstream", "both"] = "both",
    depth: Annotated[int, Query(ge=1, le=50)] = 5,
) -> Any:
    """Upstream and/or downstream lineage of a table or asset, up to ``depth`` hops."""
    return json_out(svc.lineage.traverse(node, direction=direction, depth=depth).to_dict())


@router.get("/search", response_model=SearchOut, tags=["search"])
def search(
    svc: Querier,
    q: Annotated[str, Query(min_length=1, max_length=512)],
    kind: Literal["namespace", "table", "column"] | None = None,
    namespace: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    page_token: Annotated[str | None, Query(max_length=20)] = None,
) -> Any:
    """Ranked search over names, descriptions and properties."""
    result = svc.search.search(
        q, kind=kind, namespace=namespace, limit=limit, page_token=page_token
    )
    return json_out(
        {
            "hits": [h.to_dict() for h in result.hits],
            "total": result.total,
            "next_page_token": result.next_page_token,
            "catalog_version": result.catalog_version,
        }
    )


@router.post(
    "/events/{domain}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventsAccepted,
    tags=["events"],
)
def append_event(
    domain: str,
    body: EventIn,
    svc: Ingest,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Any:
    """Append one event to a domain's ledger (folded by the next compaction)."""
    env = svc.ledger.append(
        domain,
        body.type,
        body.payload,
        version=body.version,
        idempotency_key=body.idempotency_key or idempotency_key,
        trace_id=body.trace_id,
        occurred_at=parse_occurred_at(body.occurred_at),
        source="api",
    )
    return {"accepted": 1, "event_ids": [env.event_id]}


@router.post(
    "/events/{domain}/batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventsAccepted,
    tags=["events"],
)
def append_batch(domain: str, body: EventBatchIn, svc: Ingest) -> Any:
    """Append many events as one ledger object; all or nothing."""
    items = [e.model_dump(exclude_none=True) for e in body.events]
    envs = svc.ledger.append_batch(domain, items, source="api")
    return {"accepted": len(envs), "event_ids": [e.event_id for e in envs]}


@router.get("/events/{domain}", response_model=list[EventOut], tags=["events"])
def tail_events(domain: str, svc: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> Any:
    """The newest events of a domain's ledger."""
    return [e.to_dict() for e in svc.ledger.tail(domain, limit)]


@router.post("/compaction", response_model=CompactionsOut, tags=["events"])
def compact(svc: Writer, body: CompactionIn | None = None) -> Any:
    """Fold pending ledger events into Parquet state and refresh the search index."""
    domains = [body.domain] if body is not None and body.domain else ["executions", "lineage"]
    reports = [svc.compactor.compact(d) for d in domains]
    version = svc.search.refresh()
    return {
        "reports": [
            {
                "domain": r.domain,
                "objects": r.objects,
                "events": r.events,
                "duplicates": r.duplicates,
                "quarantined": r.quarantined,
                "commits": r.commits,
                "version": r.version,
                "watermark": r.watermark,
            }
            for r in reports
        ],
        "search_catalog_version": version,
    }
