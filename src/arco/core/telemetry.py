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
import threading
import time
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


def _tracer() -> Any:
    tracer = _TRACER
    if tracer is None:
        global _attach, _detach, _in_context
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        # Kept as globals: an import statement per span costs about a microsecond.
        _attach, _detach = otel_context.attach, otel_context.detach
        _in_context = trace.set_span_in_context
        # get_tracer builds a new tracer (and its scope) on every call: keep one.
        tracer = _remember_tracer(trace.get_tracer(TRACER_NAME))
    return tracer


_attach: Any = None
_detach: Any = None
_in_context: Any = None


def span(name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """A context manager around a unit of work, yielding its span.

    A no-op (one shared object) unless tracing is configured. Exceptions leaving
    the block are recorded on the span and mark it as an error. The storage calls
    made directly inside the block (not inside a nested span) are summed onto it
    as ``arco.storage.*`` attributes (see :func:`storage_call`).
    """
    if not _enabled:
        return _NO_SPAN
    return _Span(name, {k: v for k, v in (attributes or {}).items() if v is not None})


class _StorageTally:
    """The storage calls made directly inside one span, summed until the span ends.

    Shared by reference with the pool threads that run the span's work in a
    copied context, hence the lock (uncontended: ~0.1 us against a span's ~30 us).
    """

    __slots__ = ("closed", "counts", "lock")

    def __init__(self) -> None:
        #: op -> [calls, bytes, nanoseconds, errors]
        self.counts: dict[str, list[int]] = {}
        self.closed = False
        self.lock = threading.Lock()

    def add(self, op: str, nbytes: int, nanos: int, failed: bool) -> bool:
        """Count one call; False once the span has ended (the caller records it alone)."""
        with self.lock:
            if self.closed:
                return False
            row = self.counts.get(op)
            if row is None:
                row = self.counts[op] = [0, 0, 0, 0]
            row[0] += 1
            row[1] += nbytes
            row[2] += nanos
            row[3] += failed
            return True

    def close(self) -> dict[str, int | float]:
        """Stop counting; the sums as span attributes."""
        with self.lock:
            self.closed = True
            out: dict[str, int | float] = {}
            for op, (calls, nbytes, nanos, errors) in self.counts.items():
                out[f"arco.storage.{op}.calls"] = calls
                if nbytes:
                    out[f"arco.storage.{op}.bytes"] = nbytes
                out[f"arco.storage.{op}.ms"] = round(nanos / 1e6, 3)
                if errors:
                    out[f"arco.storage.{op}.errors"] = errors
            return out


_TALLY: ContextVar[_StorageTally | None] = ContextVar("arco_storage_tally", default=None)


class _Span:
    """A recording span made current for the block, with its storage tally.

    Does what the SDK's ``start_as_current_span`` does (exception recorded, status
    ERROR, span ended) without its two generator-based context managers.
    """

    __slots__ = ("_attributes", "_name", "_span", "_tally", "_tally_token", "_token")

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self._name = name
        self._attributes = attributes

    def __enter__(self) -> Any:
        sp = self._span = _tracer().start_span(self._name, attributes=self._attributes)
        self._token = _attach(_in_context(sp))
        # An unsampled span records nothing: its storage calls need not be counted.
        self._tally = _StorageTally() if sp.is_recording() else None
        self._tally_token = _TALLY.set(self._tally)
        return sp

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        sp = self._span
        try:  # noqa: SIM105 - contextlib.suppress would cost a context manager per span
            _TALLY.reset(self._tally_token)
        except ValueError:  # exited in another context than entered: the SDK tolerates it
            pass
        _detach(self._token)
        if self._tally is not None:
            totals = self._tally.close()
            if totals:
                sp.set_attributes(totals)
        # Like the SDK: BaseExceptions that are not errors (GeneratorExit) are not recorded.
        if isinstance(exc, Exception):
            _mark_failed(sp, exc)
        sp.end()


def _mark_failed(sp: Any, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    sp.record_exception(exc)
    sp.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


# ----------------------------------------------------------- storage calls
#: Every storage call its own span (``ARCO_TRACE_STORAGE=1``), not only a count.
_storage_detail = False
#: Calls at least this slow become spans even without full detail.
_storage_slow_ns = 100_000_000


def set_storage_detail(detail: bool | None = None, slow_ms: float | None = None) -> None:
    """Choose how storage calls are traced; ``None`` reads the environment.

    By default a storage call is counted on the span it runs in (calls, bytes, time
    per operation) and only calls slower than ``ARCO_TRACE_STORAGE_SLOW_MS``
    (100 ms) become spans of their own: a span per call cost more than the work of
    a small run. ``ARCO_TRACE_STORAGE=1`` makes every call a span (``storage.get``,
    ``storage.put``... with its key) for debugging.
    """
    global _storage_detail, _storage_slow_ns
    if detail is None:
        detail = os.environ.get("ARCO_TRACE_STORAGE", "").strip().lower() in ("1", "true", "yes")
    if slow_ms is None:
        raw = os.environ.get("ARCO_TRACE_STORAGE_SLOW_MS", "").strip()
        try:
            slow_ms = float(raw) if raw else 100.0
        except ValueError:
            slow_ms = 100.0
    _storage_detail = detail
    _storage_slow_ns = int(slow_ms * 1e6)


class _NoCall:
    """The storage-call stand-in of an unconfigured process."""

    __slots__ = ()

    def __enter__(self) -> _NoCall:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def received(self, nbytes: int) -> None:
        """Ignored."""


_NO_CALL = _NoCall()


class _StorageCall:
    """Times one storage call and counts it on the current span's tally.

    The call becomes a span of its own (made after the fact, with its real start
    and end) when full detail is on, when it was slow, or when it finished after
    the span it ran in had ended (a write-behind outliving its attempt).
    """

    __slots__ = ("_extra", "_key", "_nbytes", "_op", "_start")

    def __init__(self, op: str, key: str, nbytes: int, extra: Mapping[str, Any] | None) -> None:
        self._op = op
        self._key = key
        self._nbytes = nbytes
        self._extra = extra

    def __enter__(self) -> _StorageCall:
        self._start = time.time_ns()
        return self

    def received(self, nbytes: int) -> None:
        """The size of what a read returned."""
        self._nbytes = nbytes

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        end = time.time_ns()
        nanos = end - self._start
        tally = _TALLY.get()
        if tally is None:
            return  # outside any span: no trace to count it in
        counted = tally.add(self._op, self._nbytes, nanos, exc is not None)
        if counted and not _storage_detail and nanos < _storage_slow_ns:
            return
        attrs: dict[str, Any] = {"arco.key": self._key}
        if self._nbytes:
            attrs["arco.bytes"] = self._nbytes
        if self._extra:
            attrs.update(self._extra)
        sp = _tracer().start_span(f"storage.{self._op}", attributes=attrs, start_time=self._start)
        if isinstance(exc, Exception):
            _mark_failed(sp, exc)
        sp.end(end_time=end)


def storage_call(
    op: str, key: str, nbytes: int = 0, attributes: Mapping[str, Any] | None = None
) -> Any:
    """A context manager around one storage call (``op`` is ``get``, ``put``...).

    Free when tracing is off (one shared no-op object). When on, the call is
    counted on the innermost span (see :func:`set_storage_detail` for when it
    gets a span of its own). A read reports its size with ``.received(n)``.
    """
    if not _enabled:
        return _NO_CALL
    return _StorageCall(op, key, nbytes, attributes)


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
    set_storage_detail()
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
