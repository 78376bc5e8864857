"""Emit: Arco's own runs as OpenLineage events, sent by the ``openlineage-python`` client.

:class:`OpenLineageEmitter` owns a bounded in-memory queue and one background
thread that sends its events through openlineage-python's ``HttpTransport``. A run
never waits for the endpoint and never fails because of it: :meth:`emit` only
enqueues; while the endpoint is down the sender retries the event at the head of
the queue with backoff, and events that arrive while the queue is full are
dropped and counted (``arco_openlineage_dropped_total`` in ``/metrics``). A
re-sent event is harmless: OpenLineage receivers (Arco, Marquez) key events by
run id, event type and time.

:class:`RunTranslator` turns the scheduler's ledger events into OpenLineage run
events: one OpenLineage run per Arco run (job ``arco://{tenant}/{workspace}`` /
``run.{selection}``) and one child run per task (job = the asset key, parent = the
Arco run), START when it starts, COMPLETE with its inputs, its output, the
output's ``schema`` and ``outputStatistics`` (row count) facets, or FAIL with the
``errorMessage`` facet. Run ids are the ULIDs of Arco's runs as UUIDs, and a
task's run id is a UUID derived from its run id, task id and attempt, so a
re-emitted event carries the same ids.

Configured by ``[openlineage] url`` (and ``api_key``, ``buffer``, ``timeout``) in
``arco.toml``, or ``ARCO_OPENLINEAGE_URL`` / ``ARCO_OPENLINEAGE_API_KEY``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ulid import ULID

from arco import __version__
from arco.core.scope import Scope
from arco.openlineage.mapping import OpenLineageConfig, arco_namespace

log = logging.getLogger("arco.openlineage")
PRODUCER = f"urn:arco:producer:{__version__}"
_TASK_NS = uuid.UUID("8f0c7b8e-4c1e-4c57-9a53-6b1f0f2d7a11")


@dataclass
class EmitStats:
    """Counters of every emitter in this process (exported in ``/metrics``)."""

    queued: int = 0
    sent: int = 0
    dropped: int = 0
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


STATS = EmitStats()


def _default_transport(url: str, api_key: str | None, endpoint: str, timeout: float) -> Any:
    from openlineage.client.transport.http import (
        ApiKeyTokenProvider,
        HttpConfig,
        HttpTransport,
        TokenProvider,
    )

    auth: TokenProvider = ApiKeyTokenProvider({"apiKey": api_key}) if api_key else TokenProvider({})
    config = HttpConfig(
        url=url,
        endpoint=endpoint,
        timeout=timeout,
        auth=auth,
        # Retries are the emitter's own (never blocking a run); one attempt per try.
        retry={"total": 0, "connect": 0, "read": 0, "status": 0, "redirect": 0},
    )
    return HttpTransport(config)


class OpenLineageEmitter:
    """A bounded, non-blocking queue of OpenLineage events and the thread sending them."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        endpoint: str = "api/v1/lineage",
        buffer: int = 10_000,
        timeout: float = 5.0,
        max_backoff: float = 5.0,
        transport: Any = None,
        stats: EmitStats = STATS,
    ) -> None:
        from openlineage.client import OpenLineageClient

        self.url = url
        self.buffer = buffer
        self.stats = stats
        self.max_backoff = max_backoff
        #: How long a CLI run waits at exit for queued events to be sent.
        self.close_timeout = 2.0
        self._client = OpenLineageClient(
            transport=transport or _default_transport(url, api_key, endpoint, timeout)
        )
        self._queue: deque[Any] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="arco-openlineage", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, config: OpenLineageConfig) -> OpenLineageEmitter | None:
        """An emitter for ``[openlineage] url`` or ``ARCO_OPENLINEAGE_URL``; None if unset
        (or when openlineage-python is not installed: a warning, never a failed run)."""
        url = os.environ.get("ARCO_OPENLINEAGE_URL") or config.url
        if not url:
            return None
        try:
            import openlineage.client  # noqa: F401
        except ImportError:
            log.warning(
                "OpenLineage url is set but openlineage-python is not installed: "
                "pip install 'arco[openlineage]'"
            )
            return None
        return cls(
            url,
            api_key=os.environ.get("ARCO_OPENLINEAGE_API_KEY") or config.api_key,
            endpoint=config.endpoint,
            buffer=config.buffer,
            timeout=config.timeout,
        )

    def emit(self, event: Any) -> bool:
        """Queue one event; never blocks. False (and counted) when the buffer is full."""
        with self._cond:
            if self._closed or len(self._queue) >= self.buffer:
                self.stats.add("dropped")
                return False
            self._queue.append(event)
            self.stats.add("queued")
            self._cond.notify()
        return True

    def pending(self) -> int:
        """Events waiting to be sent (including one being sent)."""
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the queue to drain; True when it did."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> bool:
        """Send what is queued for up to ``timeout`` seconds, then stop the thread."""
        drained = self.flush(timeout)
        with self._cond:
            self._closed = True
            left = len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        if left:
            self.stats.add("dropped", left)
        self._thread.join(timeout=max(1.0, self.max_backoff + 1))
        return drained

    def _run(self) -> None:
        backoff = 0.05
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed and not self._queue:
                    return
                event = self._queue[0]
                self._busy = True
            try:
                self._client.emit(event)
            except Exception as exc:  # the endpoint is down or refused: retry, never raise
                self.stats.add("failures")
                log.debug("OpenLineage emit to %s failed: %s", self.url, exc)
                with self._cond:
                    self._busy = False
                    if self._closed:
                        return
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.05
            with self._cond:
                if self._queue and self._queue[0] is event:
                    self._queue.popleft()
                self._busy = False
                self._cond.notify_all()
            self.stats.add("sent")


def _uuid_of_run(run_id: str) -> str:
    try:
        return str(ULID.from_str(run_id).to_uuid())
    except ValueError:
        return str(uuid.uuid5(_TASK_NS, run_id))


def task_run_uuid(run_id: str, task_id: str, attempt: int) -> str:
    """The OpenLineage run id of one attempt of one task."""
    return str(uuid.uuid5(_TASK_NS, f"{run_id}\x00{task_id}\x00{attempt}"))


@dataclass
class _RunInfo:
    selection: str = ""
    parent: str | None = None
    inputs: set[str] = field(default_factory=set)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)


class RunTranslator:
    """Scheduler ledger events -> OpenLineage RunEvents, handed to an emitter.

    Called by :class:`arco.flow.runner.Scheduler` (``on_events``) after the events
    are written to the ledger. ``upstreams(asset)`` names the assets a task reads.
    """

    def __init__(
        self,
        emitter: OpenLineageEmitter,
        scope: Scope,
        upstreams: Callable[[str], Iterable[str]] = lambda asset: (),
    ) -> None:
        self.emitter = emitter
        self.namespace = arco_namespace(scope)
        self.upstreams = upstreams
        self._runs: dict[str, _RunInfo] = {}
        self._lock = threading.Lock()

    def __call__(self, run_id: str, events: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Translate one batch of a run's events (never raises)."""
        try:
            with self._lock:
                for etype, payload in events:
                    self._one(run_id, etype, payload)
        except Exception:  # emitting must never fail a run
            log.exception("could not translate run %s to OpenLineage", run_id)

    def _one(self, run_id: str, etype: str, p: Mapping[str, Any]) -> None:
        info = self._runs.setdefault(run_id, _RunInfo())
        at = getattr(p, "at", None) or datetime.now(UTC).isoformat()
        if etype == "run.created":
            info.selection = str(p.get("selection") or "all")
            info.parent = p.get("parent_run_id")
        elif etype == "run.state_changed":
            state = p.get("state")
            if state == "RUNNING":
                self._send("START", _uuid_of_run(run_id), self._run_job(info), at, parent=None)
            elif state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                kind = {"SUCCEEDED": "COMPLETE", "FAILED": "FAIL", "CANCELLED": "ABORT"}[state]
                self._send(
                    kind,
                    _uuid_of_run(run_id),
                    self._run_job(info),
                    at,
                    parent=None,
                    inputs=sorted(info.inputs - set(info.outputs)),
                    outputs=info.outputs,
                    error=p.get("reason") if kind == "FAIL" else None,
                )
                self._runs.pop(run_id, None)
        elif etype == "materialization.recorded":
            out = info.task_outputs.setdefault(str(p.get("task_id")), {})
            out.update(rows=p.get("row_count"), schema=p.get("schema"))
            info.inputs.update(str(i["asset"]) for i in p.get("inputs") or ())
        elif etype == "task.state_changed":
            self._task(run_id, info, p, at)

    def _run_job(self, info: _RunInfo) -> str:
        return f"run.{info.selection}"[:256]

    def _task(self, run_id: str, info: _RunInfo, p: Mapping[str, Any], at: str) -> None:
        state, asset, task_id = p.get("state"), p.get("asset"), str(p.get("task_id"))
        if not asset or state not in ("RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"):
            return
        attempt = int(p.get("attempt") or 0)
        ol_run = task_run_uuid(run_id, task_id, attempt)
        inputs = sorted(set(self.upstreams(asset)))
        parent = (_uuid_of_run(run_id), self._run_job(info))
        if state == "RUNNING":
            self._send("START", ol_run, asset, at, parent=parent, inputs=inputs)
            return
        written = info.task_outputs.get(task_id, {})
        outputs = {asset: written}
        if state == "SUCCEEDED":
            info.inputs.update(inputs)
            info.outputs[asset] = written
            self._send("COMPLETE", ol_run, asset, at, parent=parent, inputs=inputs, outputs=outputs)
        else:
            kind = "FAIL" if state == "FAILED" else "ABORT"
            error = p.get("error") or state.lower()
            self._send(
                kind, ol_run, asset, at, parent=parent, inputs=inputs, outputs=outputs, error=error
            )

    def _send(
        self,
        kind: str,
        run_uuid: str,
        job: str,
        at: str,
        *,
        parent: tuple[str, str] | None,
        inputs: Iterable[str] = (),
        outputs: Mapping[str, Mapping[str, Any]] | None = None,
        error: str | None = None,
    ) -> None:
        from openlineage.client.event_v2 import (
            InputDataset,
            Job,
            OutputDataset,
            Run,
            RunEvent,
            RunState,
        )
        from openlineage.client.facet_v2 import (
            error_message_run,
            output_statistics_output_dataset,
            parent_run,
            schema_dataset,
        )

        run_facets: dict[str, Any] = {}
        if parent is not None:
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent[0]),
                job=parent_run.Job(namespace=self.namespace, name=parent[1]),
            )
        if error:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error[:65_536], programmingLanguage="python"
            )
        outs = []
        for asset, written in sorted((outputs or {}).items()):
            facets: dict[str, Any] = {}
            out_facets: dict[str, Any] = {}
            if written.get("schema"):
                facets["schema"] = schema_dataset.SchemaDatasetFacet(
                    fields=[
                        schema_dataset.SchemaDatasetFacetFields(name=c["name"], type=c.get("type"))
                        for c in written["schema"]
                    ]
                )
            if written.get("rows") is not None:
                out_facets["outputStatistics"] = (
                    output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                        rowCount=int(written["rows"])
                    )
                )
            outs.append(
                OutputDataset(
                    namespace=self.namespace, name=asset, facets=facets, outputFacets=out_facets
                )
            )
        event = RunEvent(
            eventType=getattr(RunState, kind),
            eventTime=at,
            run=Run(runId=run_uuid, facets=run_facets),
            job=Job(namespace=self.namespace, name=job),
            producer=PRODUCER,
            inputs=[InputDataset(namespace=self.namespace, name=a) for a in inputs],
            outputs=outs,
        )
        self.emitter.emit(event)


def find_config(start: Path | None = None) -> OpenLineageConfig:
    """The ``[openlineage]`` section of the nearest ``arco.toml`` (cwd upwards), if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "arco.toml"
        if candidate.is_file():
            return OpenLineageConfig.from_file(candidate)
    return OpenLineageConfig()


def emitter_for_cli(scope: Scope, defs: Any) -> tuple[OpenLineageEmitter, RunTranslator] | None:
    """The emitter and translator for a CLI run, when an OpenLineage url is configured."""
    return emitter_for_worker(scope, lambda: defs)


def emitter_for_worker(
    scope: Scope, definitions: Callable[[], Any]
) -> tuple[OpenLineageEmitter, RunTranslator] | None:
    """The emitter and translator for runs of ``arco run``, ``arco worker`` or
    ``arco dev`` (runs queued through the API), when an OpenLineage url is configured.

    ``definitions`` gives the project's definitions when a task needs its upstreams,
    so a worker that loads the project lazily keeps doing so.
    """
    config = find_config()
    emitter = OpenLineageEmitter.from_config(config)
    if emitter is None:
        return None

    def upstreams(asset: str) -> list[str]:
        return [u.key for u in definitions().upstreams.get(asset, ())]

    emitter.close_timeout = min(config.timeout, 2.0)
    return emitter, RunTranslator(emitter, scope, upstreams)


def register_metrics(registry: Any, stats: EmitStats = STATS) -> None:
    """Export the emitters' counters (``arco_openlineage_{queued,sent,dropped,failures}_total``)."""
    from prometheus_client.core import CounterMetricFamily

    class _Collector:
        def collect(self) -> Iterator[CounterMetricFamily]:
            for name, text in (
                ("queued", "OpenLineage events queued for sending"),
                ("sent", "OpenLineage events delivered"),
                ("dropped", "OpenLineage events dropped: buffer full, or still queued at exit"),
                ("failures", "OpenLineage send attempts that failed (each is retried)"),
            ):
                yield CounterMetricFamily(
                    f"arco_openlineage_{name}", text, value=getattr(stats, name)
                )

    registry.register(_Collector())
