"""Traces, structured logs and metrics (issue #16): span trees, JSON lines, counters."""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from typing import Any

import pytest

from arco.core import metrics, telemetry
from arco.core.logs import JsonFormatter, configure_logging, resolve_format
from arco.core.scope import Scope
from arco.core.storage import open_store


def _tree(finished: Any) -> dict[str, list[str]]:
    """Parent span name -> child span names (in start order)."""
    by_id = {s.context.span_id: s for s in finished}
    out: dict[str, list[str]] = {}
    for s in sorted(finished, key=lambda s: s.start_time):
        parent = by_id.get(s.parent.span_id) if s.parent is not None else None
        out.setdefault(parent.name if parent else "<root>", []).append(s.name)
    return out


def test_span_is_free_and_inert_without_a_configured_sdk() -> None:
    telemetry.disable_tracing()
    with telemetry.span("x", {"a": 1}) as sp:
        sp.set_attribute("b", 2)
    assert telemetry.span("y") is telemetry.span("z")  # one shared no-op object
    with telemetry.storage_call("get", "k") as call:
        call.received(3)
    assert telemetry.storage_call("get", "k") is telemetry.storage_call("put", "j", 1)
    assert telemetry.current_trace_id() is None
    assert telemetry.traceparent() is None


def test_a_catalog_commit_is_one_trace_with_its_storage_calls_counted(spans: Any) -> None:
    from arco.catalog.catalog import Catalog

    catalog = Catalog(open_store(f"memory://{uuid.uuid4().hex}"), Scope("acme", "main"))
    with telemetry.span("request"):
        catalog.create_namespace("sales")
    finished = spans.get_finished_spans()
    tree = _tree(finished)
    assert tree["<root>"] == ["request"]
    assert tree["request"] == ["domain.commit"]
    # No span per storage call: the commit's delta, manifest and pointer writes are
    # counted on the commit's span.
    assert "domain.commit" not in tree, tree
    assert len({s.context.trace_id for s in finished}) == 1
    commit = next(s for s in finished if s.name == "domain.commit")
    assert commit.attributes["arco.domain"] == "catalog"
    assert commit.attributes["arco.version"] == 1
    assert commit.attributes["arco.storage.put.calls"] >= 3
    assert commit.attributes["arco.storage.put.bytes"] > 100
    assert commit.attributes["arco.storage.put.ms"] >= 0
    assert "arco.storage.put.errors" not in commit.attributes
    request = next(s for s in finished if s.name == "request")
    assert not any(k.startswith("arco.storage.") for k in request.attributes)


def test_full_storage_detail_makes_a_span_per_call(spans: Any) -> None:
    from arco.catalog.catalog import Catalog

    catalog = Catalog(open_store(f"memory://{uuid.uuid4().hex}"), Scope("acme", "main"))
    telemetry.set_storage_detail(True)
    catalog.create_namespace("sales")
    finished = spans.get_finished_spans()
    tree = _tree(finished)
    puts = [s for s in finished if s.name == "storage.put"]
    commit = next(s for s in finished if s.name == "domain.commit")
    # Every counted write is also a child span, with its key and size, in the
    # commit's trace and inside its time.
    assert tree["domain.commit"].count("storage.put") == commit.attributes["arco.storage.put.calls"]
    assert len(puts) >= 3
    for put in puts:
        assert put.attributes["arco.key"].startswith("tenant=acme/workspace=main/")
        assert put.attributes["arco.bytes"] > 0
        assert commit.start_time <= put.start_time <= put.end_time <= commit.end_time
    assert (
        sum(p.attributes["arco.bytes"] for p in puts) == commit.attributes["arco.storage.put.bytes"]
    )


def test_storage_detail_from_the_environment(spans: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    monkeypatch.setenv("ARCO_TRACE_STORAGE", "1")
    monkeypatch.setenv("ARCO_TRACE_STORAGE_SLOW_MS", "not-a-number")  # default kept
    telemetry.set_storage_detail()
    with telemetry.span("detailed"):
        store.put("a", b"1")
    monkeypatch.setenv("ARCO_TRACE_STORAGE", "0")
    monkeypatch.setenv("ARCO_TRACE_STORAGE_SLOW_MS", "1e9")
    telemetry.set_storage_detail()
    with telemetry.span("counted"):
        store.put("b", b"2")
    tree = _tree(spans.get_finished_spans())
    assert tree["detailed"] == ["storage.put"]
    assert "counted" not in tree


def test_slow_storage_calls_become_spans(spans: Any) -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    store.put("a", b"12345")
    with telemetry.span("fast"):
        store.get("a")
    telemetry.set_storage_detail(False, slow_ms=0)  # every call is "slow"
    with telemetry.span("slow"):
        store.get("a")
    tree = _tree(spans.get_finished_spans())
    assert "fast" not in tree
    assert tree["slow"] == ["storage.get"]
    got = next(s for s in spans.get_finished_spans() if s.name == "storage.get")
    assert (got.attributes["arco.key"], got.attributes["arco.bytes"]) == ("a", 5)


def test_failed_and_late_storage_calls(spans: Any) -> None:
    import contextvars

    from arco.core.errors import ObjectNotFoundError

    store = open_store(f"memory://{uuid.uuid4().hex}")
    store.put("a", b"xy")
    with telemetry.span("outer"):
        with pytest.raises(ObjectNotFoundError):
            store.get("missing")
        store.get("a")
        later = contextvars.copy_context()
    # A call made in the span's context after the span ended (a write-behind
    # outliving its attempt) cannot be counted on it any more: it is a span itself.
    later.run(store.put, "b", b"late")
    finished = spans.get_finished_spans()
    outer = next(s for s in finished if s.name == "outer")
    assert outer.attributes["arco.storage.get.calls"] == 2
    assert outer.attributes["arco.storage.get.errors"] == 1
    assert outer.attributes["arco.storage.get.bytes"] == 2
    assert "arco.storage.put.calls" not in outer.attributes
    late = next(s for s in finished if s.name == "storage.put")
    assert late.parent is not None
    assert late.parent.span_id == outer.context.span_id
    assert late.attributes["arco.bytes"] == 4


def test_an_unsampled_span_does_not_count_its_storage_calls(
    spans: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    with telemetry.span("warm"):  # the OpenTelemetry helpers are looked up
        pass
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("arco")
    monkeypatch.setattr(telemetry, "_TRACER", unsampled)
    store = open_store(f"memory://{uuid.uuid4().hex}")
    store.put("a", b"x")
    with telemetry.span("unsampled") as sp:
        assert not sp.is_recording()
        store.get("a")
        assert telemetry._TALLY.get() is None
    assert [s.name for s in spans.get_finished_spans()] == ["warm"]


def test_ledger_append_and_compaction_spans(spans: Any) -> None:
    from arco.ledger.compactor import Compactor
    from arco.ledger.log import Ledger

    store = open_store(f"memory://{uuid.uuid4().hex}")
    scope = Scope("acme", "main")
    ledger = Ledger(store, scope)
    for i in range(4):
        ledger.append(
            "lineage", "lineage.edges_observed", {"edges": [{"source": "a.b", "target": f"c.d{i}"}]}
        )
    Compactor(store, scope).compact("lineage")
    finished = spans.get_finished_spans()
    tree = _tree(finished)
    appends = [s for s in finished if s.name == "ledger.append"]
    assert len(appends) == 4
    assert all(s.attributes["arco.storage.put.calls"] == 1 for s in appends)
    assert "ledger.append" not in tree  # no child spans
    assert "domain.commit" in tree["compactor.compact"]
    commit = next(s for s in finished if s.name == "domain.commit")
    assert commit.attributes["arco.storage.put.calls"] >= 1
    # The four events are read by a thread pool, counted on the caller's span all the same.
    compact = next(s for s in finished if s.name == "compactor.compact")
    gets = compact.attributes.get("arco.storage.get.calls", 0) + commit.attributes.get(
        "arco.storage.get.calls", 0
    )
    assert gets >= 4


def test_traceparent_carries_the_trace_into_another_thread_or_process(
    spans: Any,
) -> None:
    with telemetry.span("parent") as parent:
        carried = telemetry.traceparent()
    assert carried is not None
    seen: list[str | None] = []

    def worker() -> None:  # a fresh thread: no context, like a worker process
        with telemetry.attached(carried), telemetry.span("child"):
            seen.append(telemetry.current_trace_id())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert seen == [trace_id]
    child = next(s for s in spans.get_finished_spans() if s.name == "child")
    assert child.parent is not None
    assert child.parent.span_id == parent.get_span_context().span_id


# ------------------------------------------------------------------- logs
def test_json_log_lines_carry_the_request_context() -> None:
    from arco.core.actor import acting_as

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.Logger("arco.test")
    log.addHandler(handler)
    with telemetry.request_context("req-1", "acme", "main"), acting_as("alice"):
        log.warning("hello %s", "world", extra={"domain": "catalog"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "hello world"
    assert (first["level"], first["logger"]) == ("WARNING", "arco.test")
    assert (first["request_id"], first["tenant"], first["workspace"]) == ("req-1", "acme", "main")
    assert first["actor"] == "alice"
    assert first["domain"] == "catalog"
    assert "trace_id" in first
    assert first["time"].endswith("+00:00")
    assert second["request_id"] is None
    assert second["exc_type"] == "ValueError"


def test_log_format_option_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCO_LOG_FORMAT", raising=False)
    assert resolve_format(None) == "text"
    monkeypatch.setenv("ARCO_LOG_FORMAT", "JSON")
    assert resolve_format(None) == "json"
    assert resolve_format("text") == "text"
    with pytest.raises(ValueError, match="log format 'xml'"):
        resolve_format("xml")
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    try:
        logging.getLogger("arco.compactor").warning("quarantined")
        logging.getLogger("uvicorn.error").info("started")
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert [(x["logger"], x["message"]) for x in lines] == [
            ("arco.compactor", "quarantined"),
            ("uvicorn.error", "started"),
        ]
        configure_logging("json", stream=stream)  # twice: still one line per record
        logging.getLogger("arco.x").warning("once")
        assert stream.getvalue().count('"once"') == 1
    finally:
        configure_logging("text")


# ---------------------------------------------------------------- metrics
def _value(name: str, labels: dict[str, str] | None = None) -> float:
    got = metrics.REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if got is None else got


def test_commit_conflict_lease_and_compaction_metrics() -> None:
    from arco.catalog.catalog import Catalog
    from arco.ledger.compactor import Compactor
    from arco.ledger.log import Ledger

    url = f"memory://{uuid.uuid4().hex}"
    scope = Scope("acme", "main")
    before = _value("arco_commits_total", {"domain": "catalog", "outcome": "committed"})
    conflicts = _value("arco_commit_cas_conflicts_total", {"domain": "catalog"})
    one, two = Catalog(open_store(url), scope), Catalog(open_store(url), scope)
    one.create_namespace("a")
    two.create_namespace("b")  # two's cached head is stale: no conflict (lease is contended)
    one.create_namespace("c")
    assert _value("arco_commits_total", {"domain": "catalog", "outcome": "committed"}) == before + 3
    assert _value("arco_commit_cas_conflicts_total", {"domain": "catalog"}) >= conflicts
    assert _value("arco_commit_seconds_count", {"domain": "catalog"}) >= 3
    assert _value("arco_lease_wait_seconds_count", {"kind": "domain"}) >= 3

    store = open_store(url)
    ledger = Ledger(store, scope)
    for i in range(3):
        ledger.append(
            "lineage", "lineage.edges_observed", {"edges": [{"source": "a.b", "target": f"c.d{i}"}]}
        )
    folded = _value("arco_compacted_events_total", {"domain": "lineage"})
    Compactor(store, scope).compact("lineage")
    assert _value("arco_compaction_backlog_objects", {"domain": "lineage"}) == 3
    assert _value("arco_compaction_lag_seconds", {"domain": "lineage"}) >= 0
    assert _value("arco_compacted_events_total", {"domain": "lineage"}) == folded + 3
    assert _value("arco_compaction_last_success_timestamp_seconds", {"domain": "lineage"}) > 0
    Compactor(store, scope).compact("lineage")
    assert _value("arco_compaction_backlog_objects", {"domain": "lineage"}) == 0


def test_lease_takeover_is_counted() -> None:
    import time

    from arco.domain.lock import LeaseLock

    store = open_store(f"memory://{uuid.uuid4().hex}")
    key = "tenant=acme/workspace=main/locks/catalog.lock.json"
    before = _value("arco_lease_takeovers_total", {"kind": "domain"})
    LeaseLock(store, key, ttl=0.05, holder="crashed").acquire()  # never released
    time.sleep(0.1)
    LeaseLock(store, key, holder="next").acquire()
    assert _value("arco_lease_takeovers_total", {"kind": "domain"}) == before + 1


def test_verify_result_is_a_metric_and_storage_errors_by_backend(tmp_path: Any) -> None:
    from arco.catalog.catalog import Catalog
    from arco.domain.verify import scheduled_verify

    store = open_store(f"file://{tmp_path}")
    scope = Scope("acme", "main")
    Catalog(store, scope).create_namespace("sales")
    scheduled_verify(store, [scope])
    assert _value("arco_verify_ok") == 1
    # Damage a state file: verify fails, the metric says so.
    victim = next(m.key for m in store.list(scope.prefix + "snapshots/"))
    store.put(victim, b"garbage", "overwrite")
    reports = scheduled_verify(store, [scope])
    assert not reports[str(scope)].ok
    assert _value("arco_verify_ok") == 0
    assert _value("arco_verify_problems") >= 1
    assert _value("arco_check_failures_total", {"kind": "verify"}) >= 1


def test_metrics_are_exported_for_short_lived_commands(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "arco.prom"
    monkeypatch.setenv("ARCO_METRICS_FILE", str(path))
    metrics.VERIFY_OK.set(1)
    metrics.export_from_env("arco_verify")
    assert "arco_verify_ok 1.0" in path.read_text()
