"""A fresh, read-only view of runs: the compacted ``executions`` state plus a fold
of the ledger objects the compactor has not reached yet.

``system.runs``/``system.tasks`` lag the ledger by one compaction. A run worker
resuming a run, and the API answering "how is my run doing", need the state as
the ledger has it now; they fold the pending events with the compactor's own
:class:`~arco.ledger.folds.Folder` over a copy of the state and never
write anything, so a reader (role ``reader``) needs no compaction rights.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.domain.store import DomainStore
from arco.flow.status import latest_rows
from arco.ledger.compactor import DEFAULT_WINDOW, tier2_store
from arco.ledger.folds import Folder, RowMapState
from arco.ledger.log import Ledger
from arco.ledger.pending import fold_pending
from arco.workspace import Workspace


@dataclass
class RunsView:
    """Runs, tasks, and this view's pending materializations and log lines."""

    runs: dict[str, dict[str, Any]]
    tasks: dict[str, dict[str, dict[str, Any]]]
    #: Facts folded from pending ledger objects only (the compacted ones are in Parquet).
    pending_materializations: list[dict[str, Any]] = field(default_factory=list)
    pending_logs: list[dict[str, Any]] = field(default_factory=list)
    pending_asset_checks: list[dict[str, Any]] = field(default_factory=list)
    #: Highest event ``seq`` seen per run (a resuming worker continues above it).
    max_seq: dict[str, int] = field(default_factory=dict)

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run's row, or None."""
        return self.runs.get(run_id)

    def tasks_of(self, run_id: str) -> list[dict[str, Any]]:
        """The task rows of one run, by task id."""
        return sorted(self.tasks.get(run_id, {}).values(), key=lambda r: r["task_id"])

    def task_counts(self, run_id: str) -> dict[str, int]:
        """How many tasks of the run are in each state."""
        counts: dict[str, int] = {}
        for row in self.tasks.get(run_id, {}).values():
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        return counts


class RunsReader:
    """Builds :class:`RunsView`s of one scope (keeps the domain's read caches)."""

    def __init__(
        self,
        store: ObjectStore,
        scope: Scope,
        *,
        domain: DomainStore[RowMapState] | None = None,
        window: timedelta = DEFAULT_WINDOW,
    ) -> None:
        self.store = store
        self.scope = scope
        self.domain = domain or tier2_store(store, scope, "executions")
        self.ledger = Ledger(store, scope)
        self.window = window

    @classmethod
    def of(cls, ws: Workspace) -> RunsReader:
        """The one reader of ``ws``, sharing the compactor's executions domain and caches."""
        return ws.extension(
            cls, lambda w: cls(w.store, w.scope, domain=w.compactor.domain_store("executions"))
        )

    def view(self, *, fresh: bool = True) -> RunsView:
        """The runs as compacted, plus (``fresh``) the events not compacted yet."""
        snap = self.domain.read()
        state = snap.state
        max_seq: dict[str, int] = {}
        if fresh:
            folder, folded = fold_pending(self.ledger, "executions", snap, window=self.window)
            for env in folded:
                run_id = env.payload.get("run_id")
                if isinstance(run_id, str) and "seq" in env.payload:
                    max_seq[run_id] = max(max_seq.get(run_id, -1), int(env.payload["seq"]))
        else:
            folder = Folder(state)
        runs = {k[0]: row for k, row in state.table("runs").items()}
        runs.update({k[0]: row for k, row in folder.upserts.get("runs", {}).items()})
        tasks: dict[str, dict[str, dict[str, Any]]] = {}
        for rows in (state.table("tasks").items(), folder.upserts.get("tasks", {}).items()):
            for (run_id, task_id), row in rows:
                tasks.setdefault(run_id, {})[task_id] = row
        for run_id, row in runs.items():
            max_seq[run_id] = max(max_seq.get(run_id, -1), int(row["seq"]))
        for run_id, by_task in tasks.items():
            top = max((int(r["seq"]) for r in by_task.values()), default=-1)
            max_seq[run_id] = max(max_seq.get(run_id, -1), top)
        return RunsView(
            runs=runs,
            tasks=tasks,
            pending_materializations=list(folder.appends.get("materializations", [])),
            pending_logs=list(folder.appends.get("logs", [])),
            pending_asset_checks=list(folder.appends.get("asset_checks", [])),
            max_seq=max_seq,
        )

    def materializations(self, view: RunsView, run_id: str) -> list[dict[str, Any]]:
        """Every materialization recorded by ``run_id`` (compacted and pending)."""
        return self._facts(view.pending_materializations, "materializations", run_id)

    def latest(self, view: RunsView) -> dict[tuple[str, str | None], dict[str, Any]]:
        """The newest materialization of every asset partition (compacted and pending)."""
        return latest_rows(self.domain, view.pending_materializations)

    def logs(self, view: RunsView, run_id: str) -> list[dict[str, Any]]:
        """Every log line of ``run_id``, in the order they were logged."""
        rows = self._facts(view.pending_logs, "logs", run_id)
        return sorted(rows, key=lambda r: (r["logged_at"], r["event_id"], r["line_no"]))

    def _facts(self, pending: Iterable[dict[str, Any]], table: str, run_id: str) -> list[Any]:
        snap = self.domain.read()
        out: list[dict[str, Any]] = []
        if snap.manifest is not None:
            import pyarrow.compute as pc  # only here: it costs ~70 ms to import

            data = self.domain.load_table(snap, table)
            if data.num_rows:
                out = data.filter(pc.equal(data["run_id"], run_id)).to_pylist()
        have = {
            json.dumps([r.get("event_id"), r.get("line_no"), r.get("materialization_id")])
            for r in out
        }
        for row in pending:
            if row["run_id"] != run_id:
                continue
            key = json.dumps(
                [row.get("event_id"), row.get("line_no"), row.get("materialization_id")]
            )
            if key not in have:
                out.append(row)
        return out
