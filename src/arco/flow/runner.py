"""The scheduler: runs a plan, write-ahead logging every transition to the ledger.

Each state change is appended to the ``executions`` ledger *before* the
scheduler acts on it, so a run's state is the fold of its events (the
compactor's ``runs``/``tasks`` tables) and replaying the ledger reproduces it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arco.catalog.catalog import Catalog
from arco.catalog.compactor import Compactor, tier2_store
from arco.catalog.ledger import Ledger
from arco.core.errors import InvalidArgumentError, ObjectNotFoundError, PreconditionFailedError
from arco.core.ids import new_ulid
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.flow.definitions import Definitions
from arco.flow.executors import Executor, Handle, InlineExecutor, Job, Outcome, register
from arco.flow.planner import Materialization, Plan, PlannedTask
from arco.flow.states import run_outcome, run_transition, task_transition


@dataclass
class TaskRun:
    """Live state of one task in a run."""

    task: PlannedTask
    state: str = "PLANNED"
    attempt: int = 0
    error: str | None = None
    retry_at: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    outcome: Outcome | None = None
    handle: Handle | None = None
    deadline: float | None = None


@dataclass
class RunResult:
    """What :meth:`Scheduler.run` returns."""

    run_id: str
    state: str
    tasks: dict[str, TaskRun]
    elapsed: float
    parent_run_id: str | None = None

    @property
    def failed(self) -> list[str]:
        """Task ids that failed."""
        return [t for t, r in self.tasks.items() if r.state == "FAILED"]


@dataclass
class RunOptions:
    """Scheduler knobs."""

    max_concurrency: int = 4
    tag_concurrency: Mapping[str, int] = field(default_factory=dict)
    poll_interval: float = 0.005
    compact_after: bool = True
    register_tables: bool = True


def latest_materializations(
    store: ObjectStore, scope: Scope
) -> dict[tuple[str, str | None], tuple[Materialization, str | None]]:
    """The newest materialization (and its location) of every asset partition."""
    domain = tier2_store(store, scope, "executions")
    snap = domain.read()
    if snap.manifest is None:
        return {}
    table = domain.load_table(snap, "materializations")
    out: dict[tuple[str, str | None], tuple[Materialization, str | None]] = {}
    newest: dict[tuple[str, str | None], tuple[Any, str]] = {}
    for row in table.select(
        [
            "asset",
            "partition",
            "code_version",
            "recorded_at",
            "run_id",
            "location",
            "materialization_id",
        ]
    ).to_pylist():
        key = (row["asset"], row["partition"])
        mat = Materialization(
            row["asset"], row["partition"], row["code_version"], row["recorded_at"], row["run_id"]
        )
        order = (mat.recorded_at, row["materialization_id"])
        if key not in newest or order > newest[key]:
            newest[key] = order
            out[key] = (mat, row["location"])
    return out


class Scheduler:
    """Runs plans against one store and scope."""

    def __init__(
        self,
        store: ObjectStore,
        scope: Scope,
        defs: Definitions,
        *,
        store_url: str,
        executor: Executor | None = None,
        options: RunOptions | None = None,
        on_change: Callable[[str, TaskRun], None] | None = None,
    ) -> None:
        self.store = store
        self.scope = scope
        self.defs = defs
        self.store_url = store_url
        self.executor = executor or InlineExecutor()
        self.options = options or RunOptions()
        self.ledger = Ledger(store, scope)
        self.keys = Keys(scope)
        self.on_change = on_change
        self._seq = 0
        for a in defs.assets.values():
            register(a)

    # ---------------------------------------------------------------- events
    def _emit(self, run_id: str, events: list[tuple[str, dict[str, Any]]]) -> None:
        batch = []
        lineage = []
        for etype, payload in events:
            if etype.startswith("lineage."):
                lineage.append({"type": etype, "payload": payload})
                continue
            self._seq += 1
            body = (
                {**payload, "seq": self._seq}
                if etype.startswith(("run.s", "run.c", "task."))
                else payload
            )
            batch.append(
                {"type": etype, "payload": body, "idempotency_key": f"{run_id}:{self._seq}:{etype}"}
            )
        for i in range(0, len(batch), 5_000):
            self.ledger.append_batch("executions", batch[i : i + 5_000], source="scheduler")
        for i in range(0, len(lineage), 5_000):
            self.ledger.append_batch("lineage", lineage[i : i + 5_000], source="scheduler")

    def _task_event(self, run_id: str, tr: TaskRun, state: str) -> tuple[str, dict[str, Any]]:
        tr.state = task_transition(tr.state, state)
        if self.on_change is not None:
            self.on_change(run_id, tr)
        return (
            "task.state_changed",
            {
                "run_id": run_id,
                "task_id": tr.task.task_id,
                "state": state,
                "asset": tr.task.asset,
                "partition": tr.task.partition,
                "attempt": tr.attempt,
                "error": tr.error,
            },
        )

    # ------------------------------------------------------------------- run
    def run(
        self,
        plan: Plan,
        *,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        reuse: Mapping[tuple[str, str | None], str | None] | None = None,
    ) -> RunResult:
        """Execute ``plan`` to a terminal state; returns the per-task outcome."""
        run_id = run_id or new_ulid()
        start = time.monotonic()
        self._seq = 0
        known = latest_materializations(self.store, self.scope)
        locations: dict[tuple[str, str | None], str | None] = {
            k: loc for k, (_, loc) in known.items()
        }
        locations.update(reuse or {})
        tasks = {t.task_id: TaskRun(t) for t in plan.tasks}
        down: dict[str, list[str]] = {tid: [] for tid in tasks}
        for tid, tr in tasks.items():
            for d in tr.task.deps:
                down[d].append(tid)
        self._emit(run_id, self._open(run_id, plan, tasks, down, locations, parent_run_id))
        run_state = run_transition("QUEUED", "RUNNING")
        cancelled = False
        running: dict[str, TaskRun] = {}
        while True:
            now = time.monotonic()
            batch: list[tuple[str, dict[str, Any]]] = []
            if not cancelled and self._cancel_requested(run_id):
                cancelled = True
                victims = list(running.values())
                for tr in victims:
                    tr.error = "cancelled"
                    batch.append(self._task_event(run_id, tr, "CANCELLED"))
                    running.pop(tr.task.task_id)
                for tr in tasks.values():
                    if tr.state in ("PLANNED", "BLOCKED", "READY", "RETRY_WAIT"):
                        batch.append(self._task_event(run_id, tr, "CANCELLED"))
                # Write-ahead: the cancellations are durable before any worker is killed.
                self._emit(run_id, batch)
                batch = []
                for tr in victims:
                    if tr.handle is not None:
                        tr.handle.kill()
            for tr in tasks.values():
                if tr.state == "RETRY_WAIT" and now >= tr.retry_at:
                    batch.append(self._task_event(run_id, tr, "READY"))
            # Start what is ready, within the global and per-tag limits.
            starts: list[TaskRun] = []
            if not cancelled:
                for tr in tasks.values():
                    if tr.state != "READY":
                        continue
                    if len(running) + len(starts) >= self.options.max_concurrency:
                        break
                    if not self._tag_allows(tr, [*running.values(), *starts]):
                        continue
                    tr.attempt += 1
                    tr.error = None
                    starts.append(tr)
                    batch.append(self._task_event(run_id, tr, "RUNNING"))
            self._emit(run_id, batch)  # write-ahead: RUNNING is durable before work starts
            batch = []
            for tr in starts:
                tr.started = time.monotonic()
                asset = self.defs[tr.task.asset]
                tr.deadline = tr.started + asset.timeout if asset.timeout else None
                job = self._job(run_id, tr, locations)
                tr.handle = self.executor.start(job)
                running[tr.task.task_id] = tr
            progressed = bool(starts)
            for tid, tr in list(running.items()):
                assert tr.handle is not None
                outcome = tr.handle.poll()
                if outcome is None and tr.deadline is not None and time.monotonic() > tr.deadline:
                    tr.handle.kill()
                    asset = self.defs[tr.task.asset]
                    outcome = Outcome(ok=False, error=f"TimeoutError: exceeded {asset.timeout}s")
                if outcome is None:
                    continue
                progressed = True
                running.pop(tid)
                tr.finished = time.monotonic()
                tr.outcome = outcome
                batch.extend(self._finish(run_id, tr, outcome, tasks, down, locations))
            self._emit(run_id, batch)
            if not running and all(
                tr.state in ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED") for tr in tasks.values()
            ):
                break
            if not progressed:
                time.sleep(self.options.poll_interval)
        final = run_outcome([tr.state for tr in tasks.values()], cancelled)
        run_state = run_transition(run_state, final)
        self._emit(
            run_id,
            [
                (
                    "run.state_changed",
                    {
                        "run_id": run_id,
                        "state": run_state,
                        "reason": "cancelled" if cancelled else None,
                    },
                )
            ],
        )
        if self.options.compact_after:
            compactor = Compactor(self.store, self.scope)
            compactor.compact("executions")
            compactor.compact("lineage")
        if self.options.register_tables:
            self._register_tables(tasks)
        return RunResult(run_id, run_state, tasks, time.monotonic() - start, parent_run_id)

    def _open(
        self,
        run_id: str,
        plan: Plan,
        tasks: dict[str, TaskRun],
        down: dict[str, list[str]],
        locations: dict[tuple[str, str | None], str | None],
        parent_run_id: str | None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """The events that start a run (a run worker overrides this to resume one)."""
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "run.created",
                {
                    "run_id": run_id,
                    "selection": plan.selection,
                    "plan_fingerprint": plan.fingerprint,
                    "parent_run_id": parent_run_id,
                    # The task list is not repeated here: each task's own events name
                    # it, and a plan of thousands of tasks would overflow one event.
                    "tags": {"task_count": str(len(plan.tasks)), "mode": plan.mode},
                },
            ),
            ("run.state_changed", {"run_id": run_id, "state": "RUNNING"}),
        ]
        for tr in tasks.values():
            events.append(self._task_event(run_id, tr, "BLOCKED" if tr.task.deps else "READY"))
        return events

    def _tag_allows(self, tr: TaskRun, active: list[TaskRun]) -> bool:
        limits = self.options.tag_concurrency
        if not limits:
            return True
        asset = self.defs[tr.task.asset]
        for tag, limit in limits.items():
            if asset.tag(tag) is None:
                continue
            used = sum(1 for o in active if self.defs[o.task.asset].tag(tag) is not None)
            if used >= limit:
                return False
        return True

    def _job(
        self, run_id: str, tr: TaskRun, locations: Mapping[tuple[str, str | None], str | None]
    ) -> Job:
        asset = self.defs[tr.task.asset]
        by_param: dict[str, list[tuple[str | None, str | None]]] = {}
        params = {up.key: up.param for up in self.defs.upstreams[asset.key] if up.param}
        for up_key, up_part in tr.task.inputs:
            param = params.get(up_key)
            if param is None:
                continue
            by_param.setdefault(param, []).append((up_part, locations.get((up_key, up_part))))
        return Job(
            run_id=run_id,
            task_id=tr.task.task_id,
            asset_key=asset.key,
            partition=tr.task.partition,
            attempt=tr.attempt,
            module=asset.fn.__module__,
            qualname=asset.fn.__qualname__,
            inputs=tuple((p, tuple(v)) for p, v in sorted(by_param.items())),
            io=asset.io,
            store_url=self.store_url,
            tenant=self.scope.tenant,
            workspace=self.scope.workspace,
            timeout=asset.timeout,
        )

    def _finish(
        self,
        run_id: str,
        tr: TaskRun,
        outcome: Outcome,
        tasks: dict[str, TaskRun],
        down: dict[str, list[str]],
        locations: dict[tuple[str, str | None], str | None],
    ) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        asset = self.defs[tr.task.asset]
        if outcome.logs:
            out.append(
                (
                    "run.log",
                    {"run_id": run_id, "task_id": tr.task.task_id, "lines": outcome.logs[:10_000]},
                )
            )
        if outcome.ok:
            locations[(tr.task.asset, tr.task.partition)] = outcome.location
            inputs = [{"asset": a, "partition": p} for a, p in tr.task.inputs]
            out.append(
                (
                    "materialization.recorded",
                    {
                        "asset": tr.task.asset,
                        "partition": tr.task.partition,
                        "run_id": run_id,
                        "task_id": tr.task.task_id,
                        "location": outcome.location,
                        "row_count": outcome.row_count,
                        "byte_size": outcome.byte_size,
                        "schema": outcome.schema,
                        "code_version": asset.code_version,
                        "inputs": inputs,
                        "metadata": json.loads(json.dumps(outcome.metadata, default=str)),
                    },
                )
            )
            upstream_assets = sorted(
                {a for a, _ in tr.task.inputs} | {u.key for u in self.defs.upstreams[asset.key]}
            )
            if upstream_assets:
                out.append(
                    (
                        "lineage.edges_observed",
                        {
                            "edges": [
                                {
                                    "source": a,
                                    "target": asset.key,
                                    "edge_type": "derives",
                                    "run_id": run_id,
                                }
                                for a in upstream_assets
                            ]
                        },
                    )
                )
            out.append(self._task_event(run_id, tr, "SUCCEEDED"))
            for d in down[tr.task.task_id]:
                dt = tasks[d]
                if dt.state == "BLOCKED" and all(
                    tasks[x].state == "SUCCEEDED" for x in dt.task.deps
                ):
                    out.append(self._task_event(run_id, dt, "READY"))
            return out
        tr.error = outcome.error
        if tr.attempt <= asset.retry.max_retries and not (outcome.error or "").startswith(
            "cancelled"
        ):
            tr.retry_at = time.monotonic() + asset.retry.delay(tr.attempt + 1)
            out.append(self._task_event(run_id, tr, "RETRY_WAIT"))
            return out
        out.append(self._task_event(run_id, tr, "FAILED"))
        stack = list(down[tr.task.task_id])
        while stack:
            d = stack.pop()
            dt = tasks[d]
            if dt.state in ("PLANNED", "BLOCKED", "READY"):
                dt.error = f"upstream {tr.task.task_id} failed"
                out.append(self._task_event(run_id, dt, "SKIPPED"))
                stack.extend(down[d])
        return out

    def _cancel_requested(self, run_id: str) -> bool:
        try:
            self.store.head(self.keys.run_cancel(run_id))
        except ObjectNotFoundError:
            return False
        return True

    def _register_tables(self, tasks: dict[str, TaskRun]) -> None:
        schemas: dict[str, list[dict[str, str]]] = {}
        for tr in tasks.values():
            if tr.state == "SUCCEEDED" and tr.outcome and tr.outcome.kind == "parquet":
                schemas[tr.task.asset] = tr.outcome.schema or []
        if not schemas:
            return
        catalog = Catalog(self.store, self.scope)
        for key, schema in sorted(schemas.items()):
            asset = self.defs[key]
            parts = asset.namespace.split(".")
            for i in range(1, len(parts) + 1):
                catalog.create_namespace(".".join(parts[:i]), exist_ok=True)
            columns = [{"name": c["name"], "type": c["type"]} for c in schema]
            location = f"{self.store_url.rstrip('/')}/{self.keys.asset_prefix(key)}"
            try:
                existing = catalog.get_table(asset.namespace, asset.name)
            except Exception:
                existing = None
            try:
                if existing is None:
                    catalog.create_table(
                        asset.namespace,
                        asset.name,
                        columns,
                        format="parquet",
                        location=location,
                        description=asset.description,
                        properties={"arco.asset": key},
                        exist_ok=True,
                    )
                else:
                    have = {c.name for c in existing.columns}
                    new = [c for c in columns if c["name"] not in have]
                    if new:
                        catalog.update_table(asset.namespace, asset.name, add_columns=new)
            except InvalidArgumentError:
                continue


def request_cancel(store: ObjectStore, scope: Scope, run_id: str, reason: str = "") -> None:
    """Ask the scheduler running ``run_id`` to cancel it (idempotent)."""
    body = json.dumps(
        {"run_id": run_id, "reason": reason, "requested_at": datetime.now(UTC).isoformat()}
    ).encode()
    with contextlib.suppress(PreconditionFailedError):
        store.put(Keys(scope).run_cancel(run_id), body, "create")
