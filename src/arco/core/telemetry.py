"""Traces and the request context every log line, span and audit record carries.

Tracing goes through ``opentelemetry-api`` only. Until :func:`configure_tracing`
installs an SDK tracer provider (the ``arco[otel]`` extra; done by the server,
worker and CLI when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and by tests with an
in-memory exporter), :func:`span` returns one shared do-nothing context manager:
no span object, no context switch, so an unconfigured process pays one global
read per call.

The trace context crosses process boundaries as a W3C ``traceparent`` string
(:func:`traceparent` / :func:`attached`): the run scheduler puts it on each job,
and the worker process or dask task that runs the job continues the trace.

The request context (:func:`request_context`) holds the request id, tenant and
workspace of the running API request in context variables, so log lines and
audit records made anywhere below the API carry them without being passed down.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

#: The instrumentation scope name of every Arco span.
TRACER_NAME = "arco"

# opentelemetry is imported only once tracing is configured: a process that never
# traces (most CLI commands) does not pay for the import.
_enabled = False
#: Exporters handed to configure_tracing, so one is never attached twice.
_EXPORTERS: list[Any] = []
_TRACER: Any = None


def _remember_tracer(tracer: Any) -> Any:
    global _TRACER
    _TRACER = tracer
    return tracer


@dataclass(frozen=True)
class RequestContext:
    """Who and what the current unit of work is for (an API request, a CLI command)."""

    request_id: str | None = None
    tenant: str | None = None
    workspace: str | None = None


_NO_REQUEST = RequestContext()
_REQUEST: ContextVar[RequestContext | None] = ContextVar("arco_request", default=None)


def current_request() -> RequestContext:
    """The request context of the running request (empty outside one)."""
    return _REQUEST.get() or _NO_REQUEST


def set_request(
    request_id: str | None = None, tenant: str | None = None, workspace: str | None = None
) -> None:
    """Update the current request context (fields left ``None`` are kept)."""
    old = current_request()
    _REQUEST.set(
        RequestContext(
            request_id if request_id is not None else old.request_id,
            tenant if tenant is not None else old.tenant,
            workspace if workspace is not None else old.workspace,
        )
    )


@contextlib.contextmanager
def request_context(
    request_id: str | None = None, tenant: str | None = None, workspace: str | None = None
) -> Iterator[RequestContext]:
    """Run the block inside a request context; the previous one comes back after it."""
    token = _REQUEST.set(RequestContext(request_id, tenant, workspace))
    try:
        yield current_request()
    finally:
        _REQUEST.reset(token)


# ------------------------------------------------------------------ tracing
def tracing_enabled() -> bool:
    """True once :func:`configure_tracing` installed a recording tracer provider."""
    return _enabled


class _NoSpan:
    """The span stand-in of an unconfigured process: accepts everything, records nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        """Ignored."""

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Ignored."""

    def record_exception(self, exc: BaseException) -> None:
        """Ignored."""


_NO_SPAN = _NoSpan()


def span(name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """A context manager around a unit of work, yielding its span.

    A no-op (one shared object) unless tracing is configured. Exceptions leaving
    the block are recorded on the span and mark it as an error.
    """
    if not _enabled:
        return _NO_SPAN
    tracer = _TRACER
    if tracer is None:
        from opentelemetry import trace

        # get_tracer builds a new tracer (and its scope) on every call: keep one.
        tracer = _remember_tracer(trace.get_tracer(TRACER_NAME))
    return tracer.start_as_current_span(
        name, attributes={k: v for k, v in (attributes or {}).items() if v is not None}
    )


def current_trace_id() -> str | None:
    """The 32-hex-digit id of the current trace, or None outside a recording span."""
    if not _enabled:
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def traceparent() -> str | None:
    """The current span as a W3C ``traceparent`` header value (None when not tracing)."""
    if not _enabled:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def attached(parent: str | None) -> Iterator[None]:
    """Continue the trace of ``parent`` (a ``traceparent`` value) inside the block.

    Used where work crosses a process: a run worker, a dask task. ``None`` or a
    malformed value leaves the current context alone.
    """
    if not parent or not _enabled:
        yield
        return
    from opentelemetry import context as otel_context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    ctx = TraceContextTextMapPropagator().extract({"traceparent": parent})
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def configure_tracing(
    service_name: str = "arco",
    *,
    exporter: Any = None,
    from_env: bool = True,
) -> bool:
    """Install an SDK tracer provider; True if spans are now recorded.

    ``exporter`` (any SDK ``SpanExporter``, e.g. the in-memory one in tests) is
    used as given, synchronously. Otherwise, when ``from_env`` and
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set, spans
    are batched to that OTLP/HTTP endpoint. Without either, nothing changes and
    tracing stays free. Needs the ``arco[otel]`` extra; without it a configured
    endpoint is reported on stderr once and ignored.
    """
    global _enabled
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if exporter is None and not (from_env and endpoint):
        return _enabled
    from opentelemetry import trace

    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:  # pragma: no cover - depends on the extra being installed
        import sys

        print(
            "arco: OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not "
            "installed (pip install 'arco[otel]'); tracing stays off",
            file=sys.stderr,
        )
        return False
    provider = trace.get_tracer_provider()
    if not hasattr(provider, "add_span_processor"):
        _remember_tracer(None)
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name}
            )
        )
        trace.set_tracer_provider(provider)
    if exporter is not None:
        if any(e is exporter for e in _EXPORTERS):
            _enabled = True  # already attached (a test fixture, configured again)
            return True
        _EXPORTERS.append(exporter)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _enabled = True
    return True


def disable_tracing() -> None:
    """Stop making spans (the provider stays installed; for overhead measurements)."""
    global _enabled
    _enabled = False


def enable_tracing() -> None:
    """Make spans again after :func:`disable_tracing` (a provider must be installed)."""
    global _enabled
    from opentelemetry import trace

    _enabled = hasattr(trace.get_tracer_provider(), "add_span_processor")


def shutdown_tracing() -> None:
    """Flush and stop the span processors (before a short-lived process exits)."""
    if not _enabled:
        return
    from opentelemetry import trace

    shutdown = getattr(trace.get_tracer_provider(), "shutdown", None)
    if shutdown is not None:
        shutdown()
