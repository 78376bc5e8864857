"""The OpenLineage folds through the real compactor: split ledgers, old state files.

The same events written as one ledger object and compacted once, or spread over
several objects with a compaction after each, give the rows the specification of
``test_openlineage_fold_property`` computes from the set. A lineage state written
before the folds kept provenance columns (``row_count_seen``, ``job_seen``...)
still loads, and later compactions fold into it by the documented rule.
"""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arco.core import ObjectStore
from arco.domain.tableset import TableDef
from arco.domain.types import Change
from arco.ledger.compactor import Compactor, tier2_store
from arco.ledger.external_lineage import BOOKKEEPING, COLUMN_EDGES, DATASETS, EXTERNAL_RUNS
from arco.ledger.folds import LineageState
from arco.sql.tables import SystemTables

from ._support import SCOPE, envelope, memory_store, put_batch, table_rows, ulid_at
from .test_openlineage_fold_property import T0, TABLES, Event, spec

_NAMES = st.sampled_from(["s.a", "s.b", "s.c"])


def _payloads() -> st.SearchStrategy[dict[str, Any]]:
    # As the property test's events, with the names ingest would accept (an invalid
    # one quarantines its ledger object, which is another test's business).
    dataset = st.fixed_dictionaries(
        {
            "namespace": st.just("pg"),
            "name": st.sampled_from(["a", "b"]),
            "qualified_name": st.none() | _NAMES,
            "schema": st.none() | st.just([{"name": "x", "type": None}]),
            "row_count": st.none() | st.integers(0, 3),
        }
    )
    column_edge = st.fixed_dictionaries(
        {
            "source": st.just("s.a"),
            "source_column": st.just("x"),
            "target": st.just("s.b"),
            "target_column": st.just("x"),
            "transformation": st.none() | st.sampled_from(["IDENTITY", "AGG"]),
        }
    )
    return st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["run", "run", "job"]),
            "event_type": st.sampled_from(["START", "COMPLETE", "FAIL", "OTHER"]),
            "run_id": st.sampled_from(["r1", "r2"]),
            "job_namespace": st.just("ns"),
            "job_name": st.none() | st.sampled_from(["j1", "j2"]),
            "producer": st.sampled_from(["p1", "p2"]),
            "parent_run_id": st.none() | st.sampled_from(["pr1", "pr2"]),
            "parent_job_namespace": st.none() | st.just("pns"),
            "parent_job_name": st.none() | st.just("pj"),
            "error_message": st.none() | st.sampled_from(["boom", "bang"]),
            "inputs": st.lists(dataset, max_size=2),
            "outputs": st.lists(dataset, max_size=2),
            "column_edges": st.lists(column_edge, max_size=1),
        }
    )


def _write(store: ObjectStore, events: list[Event], cuts: list[int]) -> None:
    """Write ``events`` as ledger objects split at ``cuts``, compacting after each."""
    compactor = Compactor(store, SCOPE)
    for lo, hi in itertools.pairwise([0, *sorted(set(cuts)), len(events)]):
        if lo == hi:
            continue
        envs = [
            envelope(
                "lineage",
                "openlineage.event",
                {**p, "event_time": when.isoformat(), "raw_json": None},
                event_id=event_id,
                occurred_at=when,
                # Distinct events even when two payloads are equal (a duplicate key
                # would count once, whichever copy came first: ADR 004's dedupe).
                idempotency_key=f"ol-{event_id}",
            )
            for event_id, p, when in events[lo:hi]
        ]
        put_batch(store, SCOPE, "lineage", envs, ulid_at(datetime.now(UTC)))
        compactor.compact("lineage")


def _plain(rows: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
    out = [
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()}
        for r in rows.values()
    ]
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(_payloads(), st.integers(0, 2).map(lambda ms: T0 + timedelta(milliseconds=ms))),
        min_size=1,
        max_size=8,
    ),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 8), max_size=3),
)
def test_compactions_of_any_split_of_the_ledger_give_the_rows_of_the_set(
    raw: list[tuple[dict[str, Any], datetime]], rnd: random.Random, cuts: list[int]
) -> None:
    # Ledger order (by object, then event id) unrelated to event time.
    ids = sorted(f"01J{n:023d}" for n in rnd.sample(range(10**6), len(raw)))
    events = [(i, p, when) for i, (p, when) in zip(ids, raw, strict=True)]
    rnd.shuffle(events)
    whole, split = memory_store(), memory_store()
    _write(whole, events, [])
    _write(split, events, [c for c in cuts if c < len(events)])
    expected = spec(events)
    for table in TABLES:
        assert table_rows(whole, SCOPE, "lineage", table) == _plain(expected[table]), table
        assert table_rows(split, SCOPE, "lineage", table) == table_rows(
            whole, SCOPE, "lineage", table
        ), table


# ----------------------------------------------------------------- old state files

#: The provenance columns the folds added (nullable, so old files still load).
_ADDED = {
    "external_runs": {
        "job_seen",
        "job_event_id",
        "parent_seen",
        "parent_event_id",
        "fail_message",
        "fail_seen",
        "fail_event_id",
    },
    "datasets": {"row_count_seen", "row_count_event_id"},
    "column_edges": {"transformation_seen", "transformation_event_id"},
}


def _old_schema(tdef: TableDef) -> TableDef:
    kept = [f for f in tdef.schema if f.name not in _ADDED[tdef.name]]
    return TableDef(tdef.name, pa.schema(kept), tdef.key)


def test_the_added_columns_are_nullable_bookkeeping_left_out_of_sql() -> None:
    for table, added in _ADDED.items():
        schema = LineageState.TABLES[table].schema
        assert all(schema.field(c).nullable for c in added), table
        assert added <= set(BOOKKEEPING[table]), table


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _legacy_state(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commit rows as the fold before provenance columns wrote them, in that schema."""
    with monkeypatch.context() as m:
        for tdef in (EXTERNAL_RUNS, DATASETS, COLUMN_EDGES):
            m.setitem(LineageState.TABLES, tdef.name, _old_schema(tdef))
        dataset = {
            "namespace": "pg",
            "qualified_name": "s.t",
            "roles": ["output"],
            "observations": 1,
            "first_seen": _at(5),
            "last_seen": _at(5),
            "last_run_id": "r0",
            "last_event_id": "01J00000000000000000000005",
            "schema_json": None,
            "schema_seen": None,
            "schema_event_id": None,
            "row_count": 10,
        }
        run = {
            "run_id": "r1",
            "job_namespace": "ns",
            "job_name": "j_old",
            "parent_run_id": "p_old",
            "parent_job_namespace": "pns",
            "parent_job_name": "pj",
            "state": "FAIL",
            "producer": "p_old",
            "started_at": _at(1),
            "finished_at": _at(5),
            "error_message": "boom",
            "inputs": [],
            "outputs": [],
            "events": 2,
            "last_event_time": _at(5),
            "last_rank": 2,
            "last_event_id": "01J00000000000000000000005",
            "updated_at": _at(5),
        }
        edge = {
            "source": "s.a",
            "source_column": "x",
            "target": "s.b",
            "target_column": "x",
            "transformation": "IDENTITY",
            "declared": False,
            "observations": 1,
            "first_seen": _at(5),
            "last_seen": _at(5),
            "last_run_id": "r1",
            "last_event_id": "01J00000000000000000000005",
            "updated_at": _at(5),
        }

        def mutate(_snap: Any) -> Change:
            change = Change()
            change.upsert("datasets", {**dataset, "name": "old_wins"})
            change.upsert("datasets", {**dataset, "name": "new_wins"})
            change.upsert("external_runs", run)
            change.upsert("column_edges", edge)
            return change

        tier2_store(store, SCOPE, "lineage").commit(mutate)


def _ol(seconds: int, **fields: Any) -> Event:
    p: dict[str, Any] = {
        "kind": "run",
        "event_type": "OTHER",
        "run_id": "r1",
        "job_namespace": "ns",
        "job_name": "j_old",
        "producer": "p_new",
        "parent_run_id": None,
        "parent_job_namespace": None,
        "parent_job_name": None,
        "error_message": None,
        "inputs": [],
        "outputs": [],
        "column_edges": [],
        **fields,
    }
    return (f"01J{seconds:023d}", p, _at(seconds))


def _ds(name: str, row_count: int | None) -> dict[str, Any]:
    return {
        "namespace": "pg",
        "name": name,
        "qualified_name": "s.t",
        "schema": None,
        "row_count": row_count,
    }


def test_a_state_written_before_the_provenance_columns_loads_and_folds_by_the_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = memory_store()
    _legacy_state(store, monkeypatch)
    dstore = tier2_store(store, SCOPE, "lineage")
    snap = dstore.read()
    [entry] = [f for f in snap.files if f.table == "datasets"]
    assert "row_count_seen" not in dstore.load_file(entry).column_names  # an old file
    loaded = snap.state.table("datasets")[("pg", "old_wins")]
    assert (loaded["row_count"], loaded["row_count_seen"]) == (10, None)

    ce = {"source": "s.a", "source_column": "x", "target": "s.b", "target_column": "x"}
    _write(
        store,
        [
            # Older than what the old row holds: its count, job and parent do not win.
            _ol(
                3,
                event_type="START",
                job_name="j_late",
                parent_run_id="p_late",
                outputs=[_ds("old_wins", 3), _ds("new_wins", 3)],
                column_edges=[{**ce, "transformation": "AGG"}],
            ),
            # Newer, with no count and no message: the old count and message stay.
            _ol(6, event_type="FAIL", job_name=None, outputs=[_ds("old_wins", None)]),
            # Newer with a count, a parent and a transformation: they win.
            _ol(
                7,
                outputs=[_ds("new_wins", 4)],
                parent_run_id="p_new",
                column_edges=[{**ce, "transformation": "CAST"}],
            ),
        ],
        [1, 2],
    )
    after = tier2_store(store, SCOPE, "lineage").read().state
    datasets = after.table("datasets")
    assert datasets[("pg", "old_wins")]["row_count"] == 10
    assert datasets[("pg", "new_wins")]["row_count"] == 4
    run = after.table("external_runs")[("r1",)]
    assert (run["state"], run["error_message"], run["events"]) == ("FAIL", "boom", 5)
    assert (run["job_name"], run["producer"]) == ("j_old", "p_new")
    assert run["parent_run_id"] == "p_new"
    [edge] = after.table("column_edges").values()
    assert (edge["transformation"], edge["observations"]) == ("CAST", 3)
    # The SQL tables read the mixed old and new files alike.
    tables, _ = SystemTables(store, SCOPE).tables(["datasets", "external_runs"])
    counts = dict(
        zip(
            tables["datasets"]["name"].to_pylist(),
            tables["datasets"]["row_count"].to_pylist(),
            strict=True,
        )
    )
    assert counts == {"old_wins": 10, "new_wins": 4}
    assert tables["external_runs"]["error_message"].to_pylist() == ["boom"]
