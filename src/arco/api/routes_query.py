"""``POST /api/v1/query``: read-only SQL over the caller's catalog tables and ``system.*``."""

from __future__ import annotations

from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Header, Query, Request, Response

from arco.api.deps import Querier
from arco.api.responses import json_out
from arco.api.schemas import QueryIn, QueryOut
from arco.sql.limits import QueryLimits

router = APIRouter(prefix="/api/v1", tags=["query"])
ARROW_STREAM = "application/vnd.apache.arrow.stream"


@router.post(
    "/query",
    response_model=QueryOut,
    responses={200: {"content": {ARROW_STREAM: {}}, "description": "JSON or Arrow IPC stream"}},
)
def query(
    request: Request,
    body: QueryIn,
    svc: Querier,
    as_of_version: Annotated[int | None, Query(ge=0)] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Run one read-only SELECT over catalog tables (``ns.table``) and ``system.*``.

    ``as_of_version`` reads an earlier catalog snapshot. A table whose data cannot
    be read (format, location outside the caller's data) is a 422, a missing data
    file a 404, data over the byte budget a 413.
    """
    # Imported on the first query: the engine loads DuckDB (~12 MiB), which a
    # server answering only catalog reads never needs.
    from arco.sql.engine import run_query

    settings = request.app.state.settings
    limits = QueryLimits(
        max_seconds=settings.query_seconds,
        max_rows=settings.query_rows,
        max_bytes=settings.query_bytes,
    )
    version = body.as_of_version if body.as_of_version is not None else as_of_version
    result = run_query(svc.system, body.sql, as_of_version=version, limits=limits)
    if accept and ARROW_STREAM in accept:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, result.arrow.schema) as writer:
            writer.write_table(result.arrow)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)
    return json_out(
        {
            "columns": [{"name": n, "type": t} for n, t in result.columns],
            "rows": result.rows,
            "row_count": result.row_count,
            "elapsed_ms": result.elapsed_ms,
            "truncated": result.truncated,
        }
    )
