"""The OpenLineage folds: ``openlineage.event`` into external runs, datasets and edges.

Every field is a function of the *set* of events folded (ADR 013): any order of the
same events, split over any number of compactions, gives the same rows. The rules:

* counts add up (``events``, ``observations``); sets union (a dataset's ``roles``, a
  run's ``inputs`` and ``outputs``); ``first_seen`` and a run's ``started_at`` (of
  its START and RUNNING events) are the least event time, ``last_seen`` and
  ``updated_at`` the greatest.
* *Newest* means the greatest ``(event time, event id)``. Event ids are unique, so
  exactly one event is the newest of any set, ties in time included.
* A run's ``state`` and ``finished_at`` follow its greatest ``(event time, rank,
  event id)`` among START, RUNNING, COMPLETE, ABORT and FAIL events (rank START 0 <
  RUNNING 1 < the terminal states 2, so a COMPLETE beats a START of the same
  millisecond); ``OTHER`` never changes the state. ``last_event_time``,
  ``last_rank`` and ``last_event_id`` record that event.
* A field that only some events carry follows the newest event that carries it. The
  row keeps that event's time and id beside the field (``*_seen``, ``*_event_id``)
  so that a later compaction can tell whether a new event beats it; null there
  means the row's last event (a run's ``last_event_time``/``last_event_id``, a
  dataset's or column edge's ``last_seen``/``last_event_id``), which is how a run
  stores its job and parent when they came with its last event (most runs: it
  saves writing two columns per run):

  - a run's ``job_namespace``, ``job_name`` and ``producer``, taken together from
    one event: the newest event that names a job (while none does, the newest event);
  - a run's ``parent_run_id``, ``parent_job_namespace`` and ``parent_job_name``,
    together: the newest event with a parent run;
  - a run's ``error_message``: while the run's state is FAIL, the message of the
    newest FAIL event that has one (null otherwise; ``fail_message`` keeps it);
  - a dataset's ``schema_json``: the newest event with a schema facet for it; its
    ``row_count``: the newest event with a row count for it;
  - a column edge's ``transformation``: the newest observation naming one.
* A field every event carries follows the newest event: a dataset's
  ``qualified_name`` and ``last_run_id``, an edge's and a column edge's
  ``last_run_id``.

One event naming a dataset twice (as an input and an output) gives both mentions the
same time and id: the first in the event (inputs, then outputs) wins, which depends
on the event only. Rows folded before provenance was kept read it as null, so their
values date from the row's last event: the bound the former fold kept.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from arco.core.errors import InvalidNameError
from arco.ledger.external_lineage import OL_RANK, OL_TERMINAL, dotted_node

if TYPE_CHECKING:
    from arco.ledger.events import Envelope
    from arco.ledger.folds import Folder


def observe(row: dict[str, Any], when: datetime, event_id: str, run_id: str | None) -> bool:
    """Count one more observation of ``row`` (an edge or a dataset) at ``when`` and
    widen its first/last seen; True when this event is the newest so far (latest
    time, then highest event id), whose run is then the row's last run."""
    row["observations"] = int(row["observations"]) + 1
    first_seen = row["first_seen"]
    if first_seen is None or when < first_seen:
        row["first_seen"] = when
    last_seen = row["last_seen"]
    if (
        last_seen is None
        or when > last_seen
        or (when == last_seen and event_id > (row["last_event_id"] or ""))
    ):
        row["last_seen"] = when
        row["last_event_id"] = event_id
        row["last_run_id"] = run_id
        return True
    return False


def node_or_none(value: str | None) -> str | None:
    """A stored qualified name re-validated; an invalid one is treated as unmapped."""
    if value is None:
        return None
    try:
        return dotted_node(value)
    except InvalidNameError:
        return None


def fold_openlineage(folder: Folder, env: Envelope, when: datetime) -> None:
    """Fold one ``openlineage.event`` into runs, datasets, edges and column edges."""
    fold_openlineage_payload(folder, env.event_id, env.payload, when)


def fold_openlineage_payload(
    folder: Folder, event_id: str, p: dict[str, Any], when: datetime
) -> None:
    """:func:`fold_openlineage` of a validated (v2) payload and its event id."""
    # Hot: 100,000 events touch the same few thousand rows half a million times, so
    # the folds below inline their small helpers (each call was a tenth of the fold).
    kind = p["kind"]
    run_id = p.get("run_id") if kind == "run" else None
    if run_id:
        _fold_run(folder, event_id, p, when)
    inputs, outputs = p["inputs"], p["outputs"]
    if inputs or outputs:
        datasets = folder.owned("datasets")
        for ds in inputs:
            _fold_dataset(folder, datasets, event_id, ds, "input", run_id, when)
        for ds in outputs:
            _fold_dataset(folder, datasets, event_id, ds, "output", run_id, when)
    if inputs and outputs and kind in ("run", "job"):
        sources = sorted({q for d in inputs if (q := node_or_none(d.get("qualified_name")))})
        targets = sorted({q for d in outputs if (q := node_or_none(d.get("qualified_name")))})
        for target in targets:
            for source in sources:
                if source != target:
                    folder.observe_edge((source, target, "derives"), run_id, None, event_id, when)
    for ce in p.get("column_edges") or ():
        col_source, col_target = node_or_none(ce["source"]), node_or_none(ce["target"])
        if col_source is None or col_target is None:
            continue
        fold_column_edge(
            folder,
            (col_source, ce["source_column"], col_target, ce["target_column"]),
            ce.get("transformation"),
            run_id,
            event_id,
            when,
        )


def fold_column_edge(
    folder: Folder,
    key: tuple[str, str, str, str],
    transformation: str | None,
    run_id: str | None,
    event_id: str,
    when: datetime,
) -> None:
    """Count one observation of a column edge (``source.col -> target.col``)."""
    row = folder.row(
        "column_edges",
        key,
        lambda: {
            "source": key[0],
            "source_column": key[1],
            "target": key[2],
            "target_column": key[3],
            "transformation": None,
            "declared": False,
            "observations": 0,
            "first_seen": None,
            "last_seen": None,
            "last_run_id": None,
            "last_event_id": None,
            "updated_at": when,
            "transformation_seen": None,
            "transformation_event_id": None,
        },
    )
    if (
        row["transformation_seen"] is None
        and row["transformation"] is not None
        and row["last_seen"] is not None
    ):
        # Folded before provenance was kept, or declared (Tier 1) after observations.
        row["transformation_seen"] = row["last_seen"]
        row["transformation_event_id"] = row["last_event_id"] or ""
    observe(row, when, event_id, run_id)
    if transformation:
        seen = row["transformation_seen"]
        if (
            seen is None
            or when > seen
            or (when == seen and event_id > row["transformation_event_id"])
        ):
            row["transformation"] = transformation
            row["transformation_seen"] = when
            row["transformation_event_id"] = event_id
    row["updated_at"] = max(row["updated_at"], when)


def _fresh_run(run_id: str, when: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "job_namespace": None,
        "job_name": None,
        "parent_run_id": None,
        "parent_job_namespace": None,
        "parent_job_name": None,
        "state": "OTHER",
        "producer": None,
        "started_at": None,
        "finished_at": None,
        "error_message": None,
        "inputs": [],
        "outputs": [],
        "events": 0,
        "last_event_time": None,
        "last_rank": -1,
        "last_event_id": "",
        "updated_at": when,
        "job_seen": None,
        "job_event_id": None,
        "parent_seen": None,
        "parent_event_id": None,
        "fail_message": None,
        "fail_seen": None,
        "fail_event_id": None,
    }


def _last_event(row: dict[str, Any]) -> tuple[datetime, str]:
    """The event a run's null provenance stands for: its last (state) event."""
    at = row["last_event_time"]
    if at is None:  # a row folded before provenance was kept, of OTHER events only
        return row["updated_at"], ""
    return at, row["last_event_id"]


def _fold_run(folder: Folder, event_id: str, p: dict[str, Any], when: datetime) -> None:
    key = (p["run_id"],)
    row = folder.owned("external_runs").get(key)
    if row is None:
        row = folder.row("external_runs", key, lambda: _fresh_run(p["run_id"], when))
        if row["fail_message"] is None and row["state"] == "FAIL" and row["error_message"]:
            # Folded before provenance was kept (error_message derives from fail_message).
            row["fail_message"] = row["error_message"]
            row["fail_seen"], row["fail_event_id"] = _last_event(row)
    etype = p.get("event_type") or "OTHER"
    counted = row["events"]
    row["events"] = int(counted) + 1
    if etype in ("START", "RUNNING"):
        started_at = row["started_at"]
        if started_at is None or when < started_at:
            row["started_at"] = when
    rank = OL_RANK.get(etype)
    if rank is None:
        newer = False
    else:
        last_time = row["last_event_time"]
        # (when, rank, event_id) > the row's (last_event_time, last_rank, last_event_id)
        newer = (
            last_time is None
            or when > last_time
            or (
                when == last_time
                and (
                    rank > int(row["last_rank"])
                    or (rank == int(row["last_rank"]) and event_id > row["last_event_id"])
                )
            )
        )
    # Provenance is stored null when it is the run's last event (most runs: their job
    # and parent come with their last event), so it is resolved before that changes.
    job_at, job_id = row["job_seen"], row["job_event_id"]
    if job_at is None and counted:
        job_at, job_id = _last_event(row)
    parent_at, parent_id = row["parent_seen"], row["parent_event_id"]
    if parent_at is None and row["parent_run_id"]:
        parent_at, parent_id = _last_event(row)
    # Job and producer: the greatest (names a job, event time, event id).
    job_name = p.get("job_name")
    if job_at is None:
        take = True
    else:
        names, named = bool(job_name), bool(row["job_name"])
        take = names > named or (
            names == named and (when > job_at or (when == job_at and event_id > job_id))
        )
    if take:
        row["job_namespace"] = p.get("job_namespace")
        row["job_name"] = job_name
        row["producer"] = p.get("producer")
        job_at, job_id = when, event_id
    if p.get("parent_run_id") and (
        parent_at is None or when > parent_at or (when == parent_at and event_id > parent_id)
    ):
        row["parent_run_id"] = p["parent_run_id"]
        row["parent_job_namespace"] = p.get("parent_job_namespace")
        row["parent_job_name"] = p.get("parent_job_name")
        parent_at, parent_id = when, event_id
    if newer:
        row["state"] = etype
        row["last_event_time"], row["last_rank"], row["last_event_id"] = when, rank, event_id
        row["finished_at"] = when if etype in OL_TERMINAL else None
    if etype == "FAIL" and p.get("error_message") is not None:
        seen = row["fail_seen"]
        if seen is None or when > seen or (when == seen and event_id > row["fail_event_id"]):
            row["fail_message"] = p["error_message"]
            row["fail_seen"], row["fail_event_id"] = when, event_id
    if newer or etype == "FAIL":
        row["error_message"] = row["fail_message"] if row["state"] == "FAIL" else None
    last_at, last_id = row["last_event_time"], row["last_event_id"]
    if job_at == last_at and job_id == last_id:
        job_at = job_id = None
    row["job_seen"], row["job_event_id"] = job_at, job_id
    if parent_at == last_at and parent_id == last_id:
        parent_at = parent_id = None
    row["parent_seen"], row["parent_event_id"] = parent_at, parent_id
    for role in ("inputs", "outputs"):
        datasets = p[role]
        have = row[role]
        if not have:
            if datasets:
                row[role] = sorted({f"{d['namespace']}::{d['name']}" for d in datasets})
            continue
        labels = {f"{d['namespace']}::{d['name']}" for d in datasets}
        if not labels.issubset(have):
            row[role] = sorted(labels.union(have))
    if when > row["updated_at"]:
        row["updated_at"] = when


def _fold_dataset(
    folder: Folder,
    datasets: dict[tuple[Any, ...], dict[str, Any]],
    event_id: str,
    ds: dict[str, Any],
    role: str,
    run_id: str | None,
    when: datetime,
) -> None:
    key = (ds["namespace"], ds["name"])
    row = datasets.get(key)
    if row is None:
        row = folder.row(
            "datasets",
            key,
            lambda: {
                "namespace": key[0],
                "name": key[1],
                "qualified_name": None,
                "roles": [],
                "observations": 0,
                "first_seen": None,
                "last_seen": None,
                "last_run_id": None,
                "last_event_id": None,
                "schema_json": None,
                "schema_seen": None,
                "schema_event_id": None,
                "row_count": None,
                "row_count_seen": None,
                "row_count_event_id": None,
            },
        )
        if row["row_count_seen"] is None and row["row_count"] is not None:
            # Folded before provenance was kept: the count came from the last event.
            row["row_count_seen"] = row["last_seen"]
            row["row_count_event_id"] = row["last_event_id"] or ""
    roles = row["roles"] or ()
    if role not in roles:
        row["roles"] = sorted({*roles, role})
    if observe(row, when, event_id, run_id):
        row["qualified_name"] = node_or_none(ds.get("qualified_name"))
    count = ds.get("row_count")
    if count is not None:
        seen = row["row_count_seen"]
        if seen is None or when > seen or (when == seen and event_id > row["row_count_event_id"]):
            row["row_count"] = count
            row["row_count_seen"] = when
            row["row_count_event_id"] = event_id
    schema = ds.get("schema")
    if schema:
        schema_seen = row["schema_seen"]
        if (
            schema_seen is None
            or when > schema_seen
            or (when == schema_seen and event_id > (row["schema_event_id"] or ""))
        ):
            row["schema_json"] = json.dumps(schema, sort_keys=True)
            row["schema_seen"] = when
            row["schema_event_id"] = event_id
