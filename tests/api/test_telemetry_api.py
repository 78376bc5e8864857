"""The API request is the root of a trace that reaches the commit (issue #16)."""

from __future__ import annotations

from typing import Any

from .conftest import Tokens, in_process_client, make_app


def test_api_request_span_continues_the_callers_trace(spans: Any) -> None:

    app = make_app()
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with in_process_client(app) as c:
        r = c.post(
            "/api/v1/namespaces",
            json={"name": "sales"},
            headers={**Tokens().headers(), "traceparent": caller},
        )
        assert r.status_code == 201
    finished = spans.get_finished_spans()
    request = next(s for s in finished if s.name == "http.request")
    assert format(request.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert request.attributes["http.route"] == "/api/v1/namespaces"
    # Arco's span is the request's own: a child of the caller's span, not of a
    # second request span made by FastAPI's native tracing (switched off).
    assert request.parent is not None
    assert format(request.parent.span_id, "016x") == "b7ad6b7169203331"
    assert {s.instrumentation_scope.name for s in finished} == {"arco"}
    commit = next(s for s in finished if s.name == "domain.commit")
    assert commit.context.trace_id == request.context.trace_id
