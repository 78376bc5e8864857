"""OpenLineage ingest (the path and shape Marquez uses), external runs, datasets,
column lineage.

``POST /api/v1/lineage`` takes one OpenLineage event, a JSON array of events, or
``{"events": [...]}``, optionally gzip-compressed (``Content-Encoding: gzip``, as
openlineage-python's ``compression = "gzip"`` sends). The caller's scope comes
from the bearer token (``OPENLINEAGE_API_KEY`` is sent as ``Authorization:
Bearer ...``), never from the event.
"""

from __future__ import annotations

import json
import zlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from arco.api.deps import Ingest, Reader, Writer
from arco.core.errors import InvalidArgumentError, NotFoundError
from arco.discovery.columns import ColumnLineage
from arco.ledger.external_lineage import OL_EVENT_TYPES
from arco.openlineage.ingest import GroupWriter, as_events, encode, prepare
from arco.openlineage.mapping import DatasetMapper, OpenLineageConfig
from arco.openlineage.schema import InvalidOpenLineageEventError
from arco.workspace import Workspace

router = APIRouter(prefix="/api/v1")


def _config(request: Request) -> OpenLineageConfig:
    found: OpenLineageConfig | None = getattr(request.app.state, "openlineage", None)
    if found is None:
        path = request.app.state.settings.openlineage_config
        found = OpenLineageConfig.from_file(path) if path else OpenLineageConfig()
        request.app.state.openlineage = found
    return found


def columns_of(svc: Workspace) -> ColumnLineage:
    """The scope's (cached) column lineage service."""
    return svc.extension(ColumnLineage, lambda ws: ColumnLineage(ws.lineage))


class _MapperSlot:
    """The scope's OpenLineage dataset mapper, rebuilt when the server's rules change."""

    def __init__(self) -> None:
        self.mapper: DatasetMapper | None = None


async def _body(request: Request) -> tuple[Any, bytes]:
    """The parsed body and its (decompressed) bytes."""
    data = await request.body()
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding == "gzip":
        limit = request.app.state.settings.max_body_bytes * 4
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(data, limit)
        except zlib.error as exc:
            raise InvalidOpenLineageEventError(f"body is not valid gzip: {exc}") from exc
        if inflater.unconsumed_tail:
            raise InvalidOpenLineageEventError(f"decompressed body exceeds {limit} bytes")
    elif encoding != "identity":
        raise InvalidOpenLineageEventError(f"unsupported Content-Encoding {encoding!r}")
    try:
        return json.loads(data), data
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidOpenLineageEventError(f"body is not JSON: {exc}") from exc


def _single_event_text(body: Any, data: bytes) -> str | None:
    """The body's text when it is exactly one event (kept as the event's ``raw_json``
    without encoding the parsed event again); None for batches or non-UTF-8 text."""
    if not isinstance(body, dict) or "eventTime" not in body:
        return None
    try:
        return data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return None


@router.post(
    "/lineage",
    status_code=status.HTTP_201_CREATED,
    tags=["openlineage"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "description": "An OpenLineage 2-0-x RunEvent, DatasetEvent or "
                        "JobEvent, or a JSON array of them (at most 1,000)",
                        "oneOf": [
                            {"type": "object"},
                            {"type": "array", "items": {"type": "object"}},
                        ],
                    }
                }
            },
        }
    },
    responses={201: {"description": "Accepted into the ledger"}},
)
async def post_lineage(request: Request, svc: Ingest) -> JSONResponse:
    """Accept OpenLineage events (Marquez-compatible); folded by the next compaction.

    Idempotent: an event with the same run id, ``eventType`` and ``eventTime`` as
    one already accepted is stored but counts once.
    """
    return await accept_lineage(request, svc)


async def accept_lineage(request: Request, svc: Workspace) -> JSONResponse:
    """The body of ``POST /api/v1/lineage`` once the caller is authorized for ``svc``
    (shared by the FastAPI route and the direct route of :mod:`arco.api.direct`)."""
    body, data = await _body(request)
    events = as_events(body)
    config = _config(request)
    slot = svc.extension(_MapperSlot, lambda _ws: _MapperSlot())
    mapper = slot.mapper
    if mapper is None or mapper.rules is not config.rules:
        # Kept per scope: the mapper caches names, and events repeat the same datasets.
        mapper = slot.mapper = config.mapper(svc.scope)
    envelopes = prepare(events, mapper, text=_single_event_text(body, data))
    encoded = encode(svc.ledger, envelopes)
    writer = svc.extension(GroupWriter, lambda ws: GroupWriter(ws.ledger))
    await writer.write(encoded)
    if config.auto_register:
        from arco.openlineage.register import register_datasets

        register_datasets(svc.catalog, [e.payload for e in envelopes])
    return JSONResponse(
        {"accepted": len(envelopes), "event_ids": [e.event_id for e in envelopes]},
        status_code=status.HTTP_201_CREATED,
    )


def _page(items: list[Any], page_size: int, page_token: str | None) -> tuple[list[Any], str | None]:
    offset = 0
    if page_token:
        if not page_token.isdigit():
            raise InvalidArgumentError("page token is malformed")
        offset = int(page_token)
    page = items[offset : offset + page_size]
    nxt = str(offset + page_size) if offset + page_size < len(items) else None
    return page, nxt


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


@router.get("/openlineage/runs", tags=["openlineage"])
def external_runs(
    svc: Reader,
    state: Annotated[str | None, Query(max_length=16)] = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: Annotated[str | None, Query(max_length=20)] = None,
) -> Any:
    """Runs reported by OpenLineage producers, newest first."""
    if state and state.upper() not in OL_EVENT_TYPES:
        # An unknown filter would answer an empty page, as if no run were in that state.
        raise InvalidArgumentError(
            f"unknown state {state!r}: expected one of {', '.join(OL_EVENT_TYPES)}"
        )
    rows = list(svc.lineage.snapshot().state.rows("external_runs"))
    if state:
        rows = [r for r in rows if r["state"] == state.upper()]
    rows.sort(key=lambda r: (r["updated_at"], r["run_id"]), reverse=True)
    page, nxt = _page(rows, page_size, page_token)
    return {
        "items": [
            {
                "run_id": r["run_id"],
                "job_namespace": r["job_namespace"],
                "job_name": r["job_name"],
                "parent_run_id": r["parent_run_id"],
                "state": r["state"],
                "producer": r["producer"],
                "started_at": _iso(r["started_at"]),
                "finished_at": _iso(r["finished_at"]),
                "error_message": r["error_message"],
                "inputs": list(r["inputs"] or ()),
                "outputs": list(r["outputs"] or ()),
                "events": r["events"],
            }
            for r in page
        ],
        "next_page_token": nxt,
    }


@router.get("/openlineage/datasets", tags=["openlineage"])
def datasets(
    svc: Reader,
    unknown: Annotated[
        bool, Query(description="Only datasets not mapped to a table of the catalog")
    ] = False,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: Annotated[str | None, Query(max_length=20)] = None,
) -> Any:
    """Datasets seen in OpenLineage events, with the catalog table each maps to."""
    rows = sorted(
        svc.lineage.snapshot().state.rows("datasets"), key=lambda r: (r["namespace"], r["name"])
    )
    view = svc.catalog.view()
    items = []
    for r in rows:
        qualified = r["qualified_name"]
        registered = False
        if qualified:
            ns, _, table = qualified.rpartition(".")
            try:
                view.get_table(ns, table)
                registered = True
            except NotFoundError:
                registered = False
        if unknown and registered:
            continue
        items.append(
            {
                "namespace": r["namespace"],
                "name": r["name"],
                "qualified_name": qualified,
                "registered": registered,
                "roles": list(r["roles"] or ()),
                "observations": r["observations"],
                "last_seen": _iso(r["last_seen"]),
                "last_run_id": r["last_run_id"],
                "schema": json.loads(r["schema_json"]) if r["schema_json"] else None,
                "row_count": r["row_count"],
            }
        )
    page, nxt = _page(items, page_size, page_token)
    return {"items": page, "next_page_token": nxt}


@router.get("/lineage/{node}/columns", tags=["lineage"])
def column_lineage(
    node: str,
    svc: Reader,
    column: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    direction: Literal["upstream", "downstream", "both"] = "upstream",
    depth: Annotated[int, Query(ge=1, le=50)] = 5,
) -> Any:
    """Column lineage of a table: each column's upstream columns, or, with
    ``column``, a walk over column edges from that column."""
    cols = columns_of(svc)
    if column is not None:
        return cols.traverse(node, column, direction=direction, depth=depth).to_dict()
    upstream = cols.upstream_of(node)
    return {
        "table": node,
        "columns": [
            {"column": c, "upstream": [e.to_dict() for e in edges]}
            for c, edges in sorted(upstream.items())
        ],
    }


@router.post("/lineage/columns", status_code=status.HTTP_201_CREATED, tags=["lineage"])
def declare_column_edges(svc: Writer, body: dict[str, Any]) -> Any:
    """Declare column edges: ``{"edges": [{"source", "source_column", "target",
    "target_column", "transformation"?}]}`` (idempotent)."""
    edges = body.get("edges")
    if not isinstance(edges, list) or not 1 <= len(edges) <= 1000:
        raise InvalidArgumentError("edges must be a list of 1 to 1000 column edges")
    cols = columns_of(svc)
    out = []
    for i, e in enumerate(edges):
        if not isinstance(e, dict):
            raise InvalidArgumentError(f"edges[{i}] must be an object")
        try:
            out.append(
                cols.add(
                    e["source"],
                    e["source_column"],
                    e["target"],
                    e["target_column"],
                    transformation=e.get("transformation"),
                ).to_dict()
            )
        except KeyError as exc:
            raise InvalidArgumentError(f"edges[{i}].{exc.args[0]}: field required") from exc
    return {"items": out}


@router.get("/lineage-coverage", tags=["lineage"])
def coverage(svc: Reader) -> Any:
    """Share of finished runs (Arco's and OpenLineage's) with an input or output recorded."""
    from arco.discovery.lineage import lineage_coverage

    return {"items": [c.to_dict() for c in lineage_coverage(svc.catalog.store, svc.scope)]}
