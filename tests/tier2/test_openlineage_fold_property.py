"""The OpenLineage folds, inlined for speed (issue #14), against a plain reference.

The reference below is the fold as it was written before the hot path inlined its
helpers: tuple comparisons for "newer", ``min``/``max`` for times, a set union for
run datasets. Any sequence of events must give exactly the same rows through both.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from arco.ledger.external_lineage import (
    _RANK,
    OL_TERMINAL,
    _node_or_none,
    fold_openlineage_payload,
)
from arco.ledger.folds import Folder, LineageState

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _ref_min(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _ref_row(rows: dict[Any, Any], key: Any, fresh: dict[str, Any]) -> dict[str, Any]:
    return rows.setdefault(key, fresh)


def _ref_edge(rows: dict[Any, Any], key: Any, run_id: Any, event_id: str, when: datetime) -> None:
    row = _ref_row(
        rows,
        key,
        {
            "source": key[0],
            "target": key[1],
            "edge_type": key[2],
            "declared": False,
            "observations": 0,
            "first_seen": None,
            "last_seen": None,
            "last_run_id": None,
            "last_event_id": None,
            "columns": [],
            "updated_at": when,
        },
    )
    row["observations"] += 1
    row["first_seen"] = _ref_min(row["first_seen"], when)
    if row["last_seen"] is None or (when, event_id) > (row["last_seen"], row["last_event_id"]):
        row["last_seen"], row["last_event_id"], row["last_run_id"] = when, event_id, run_id
    row["updated_at"] = max(row["updated_at"], when)


def _ref_run(rows: dict[Any, Any], event_id: str, p: dict[str, Any], when: datetime) -> None:
    row = _ref_row(
        rows,
        (p["run_id"],),
        {
            "run_id": p["run_id"],
            **dict.fromkeys(
                (
                    "job_namespace",
                    "job_name",
                    "parent_run_id",
                    "parent_job_namespace",
                    "parent_job_name",
                    "producer",
                    "started_at",
                    "finished_at",
                    "error_message",
                    "last_event_time",
                )
            ),
            "state": "OTHER",
            "inputs": [],
            "outputs": [],
            "events": 0,
            "last_rank": -1,
            "last_event_id": "",
            "updated_at": when,
        },
    )
    etype = p.get("event_type") or "OTHER"
    row["events"] += 1
    if etype in ("START", "RUNNING"):
        row["started_at"] = _ref_min(row["started_at"], when)
    rank = _RANK.get(etype)
    mine = (when, rank if rank is not None else -1, event_id)
    last = (row["last_event_time"], row["last_rank"], row["last_event_id"])
    newer = rank is not None and (last[0] is None or mine > last)
    if newer or row["job_name"] is None:
        for field in ("job_namespace", "job_name", "producer"):
            row[field] = p.get(field) or row[field]
        if p.get("parent_run_id"):
            row["parent_run_id"] = p["parent_run_id"]
            row["parent_job_namespace"] = p.get("parent_job_namespace")
            row["parent_job_name"] = p.get("parent_job_name")
    if newer:
        row["state"] = etype
        row["last_event_time"], row["last_rank"], row["last_event_id"] = mine
        row["finished_at"] = when if etype in OL_TERMINAL else None
        row["error_message"] = p.get("error_message") if etype == "FAIL" else None
    elif etype == "FAIL" and row["state"] == "FAIL" and row["error_message"] is None:
        row["error_message"] = p.get("error_message")
    for role in ("inputs", "outputs"):
        labels = {f"{d['namespace']}::{d['name']}" for d in p[role]}
        if not labels.issubset(row[role] or ()):
            row[role] = sorted(labels.union(row[role] or ()))
    row["updated_at"] = max(row["updated_at"], when)


def _ref_dataset(
    rows: dict[Any, Any], event_id: str, ds: dict[str, Any], role: str, run_id: Any, when: Any
) -> None:
    key = (ds["namespace"], ds["name"])
    row = _ref_row(
        rows,
        key,
        {
            "namespace": key[0],
            "name": key[1],
            **dict.fromkeys(
                (
                    "qualified_name",
                    "first_seen",
                    "last_seen",
                    "last_run_id",
                    "last_event_id",
                    "schema_json",
                    "schema_seen",
                    "schema_event_id",
                    "row_count",
                )
            ),
            "roles": [],
            "observations": 0,
        },
    )
    row["observations"] += 1
    if role not in row["roles"]:
        row["roles"] = sorted({*row["roles"], role})
    row["first_seen"] = _ref_min(row["first_seen"], when)
    if row["last_seen"] is None or (when, event_id) > (row["last_seen"], row["last_event_id"]):
        row["last_seen"], row["last_event_id"], row["last_run_id"] = when, event_id, run_id
        row["qualified_name"] = _node_or_none(ds.get("qualified_name"))
        if ds.get("row_count") is not None:
            row["row_count"] = ds["row_count"]
    schema = ds.get("schema")
    if schema and (
        row["schema_seen"] is None
        or (when, event_id) > (row["schema_seen"], row["schema_event_id"] or "")
    ):
        row["schema_json"] = json.dumps(schema, sort_keys=True)
        row["schema_seen"], row["schema_event_id"] = when, event_id


def _reference(events: list[tuple[str, dict[str, Any], datetime]]) -> dict[str, Any]:
    tables: dict[str, dict[Any, Any]] = {"external_runs": {}, "datasets": {}, "edges": {}}
    for event_id, p, when in events:
        run_id = p.get("run_id") if p["kind"] == "run" else None
        if run_id:
            _ref_run(tables["external_runs"], event_id, p, when)
        for role in ("inputs", "outputs"):
            for ds in p[role]:
                _ref_dataset(tables["datasets"], event_id, ds, role[:-1], run_id, when)
        if p["kind"] in ("run", "job"):
            names = {
                role: sorted({q for d in p[role] if (q := _node_or_none(d["qualified_name"]))})
                for role in ("inputs", "outputs")
            }
            for target in names["outputs"]:
                for source in names["inputs"]:
                    if source != target:
                        key = (source, target, "derives")
                        _ref_edge(tables["edges"], key, run_id, event_id, when)
    return tables


_dataset = st.builds(
    lambda ns, name, mapped, schema, rows: {
        "namespace": ns,
        "name": name,
        "qualified_name": f"s.{name}" if mapped else None,
        "schema": [{"name": c, "type": None} for c in schema] or None,
        "row_count": rows,
    },
    st.sampled_from(["pg", "s3"]),
    st.sampled_from(["a", "b", "c"]),
    st.booleans(),
    st.lists(st.sampled_from(["x", "y"]), max_size=2),
    st.none() | st.integers(0, 5),
)
_event = st.builds(
    lambda kind, etype, run, job, parent, error, inputs, outputs, ms: (
        {
            "kind": kind,
            "event_type": etype,
            "run_id": run,
            "job_namespace": "ns" if job else None,
            "job_name": job,
            "producer": "p",
            "parent_run_id": parent,
            "parent_job_namespace": "ns" if parent else None,
            "parent_job_name": "pj" if parent else None,
            "error_message": error,
            "inputs": inputs,
            "outputs": outputs,
            "column_edges": [],
        },
        T0 + timedelta(milliseconds=ms),
    ),
    st.sampled_from(["run", "run", "job", "dataset"]),
    st.none() | st.sampled_from(["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]),
    st.sampled_from(["r1", "r2", "r3"]),
    st.none() | st.sampled_from(["j1", "j2"]),
    st.none() | st.just("pr"),
    st.none() | st.sampled_from(["boom", "bang"]),
    st.lists(_dataset, max_size=3),
    st.lists(_dataset, max_size=2),
    st.integers(0, 3),  # few distinct times: ties between events are the point
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_event, max_size=12))
def test_the_inlined_folds_give_the_reference_rows(
    events: list[tuple[dict[str, Any], datetime]],
) -> None:
    # Ids out of folding order, so that ties in time are broken both ways.
    numbered = [(f"01J{i * 7919 % 1000:023d}", p, when) for i, (p, when) in enumerate(events)]
    folder = Folder(LineageState.empty())
    for event_id, p, when in numbered:
        fold_openlineage_payload(folder, event_id, p, when)
    expected = _reference(numbered)
    for table, rows in expected.items():
        assert folder.upserts.get(table, {}) == rows, table
