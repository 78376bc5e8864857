"""The OpenLineage folds are a function of the SET of events (ADR 013).

A specification below computes every row straight from the set of events (a
maximum, a minimum, a count or a union per field, as the docstring of
:mod:`arco.ledger.external_folds` states the rules). The fold must give exactly
those rows whatever order the events come in and however compactions split them,
with the state written to Parquet and read back between compactions as the
compactor does. Events share few times (ties are the point), leave fields out,
and several runs, datasets and column edges recur.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from arco.domain import tableset
from arco.ledger.external_folds import fold_openlineage_payload, node_or_none
from arco.ledger.external_lineage import OL_RANK, OL_TERMINAL
from arco.ledger.folds import Folder, LineageState

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TABLES = ("external_runs", "datasets", "edges", "column_edges")
Event = tuple[str, dict[str, Any], datetime]


def _newest(items: Iterable[Any], key: Callable[[Any], Any]) -> Any:
    return max(items, key=key, default=None)


def _provenance(e: Event | None, state: Event | None) -> tuple[Any, Any]:
    # Stored null when the field came with the run's last (state) event.
    if e is None or (state is not None and e[0] == state[0]):
        return None, None
    return e[2], e[0]


def _spec_runs(events: list[Event]) -> dict[Any, dict[str, Any]]:
    by_run: dict[str, list[Event]] = {}
    for e in events:
        if e[1]["kind"] == "run" and e[1]["run_id"]:
            by_run.setdefault(e[1]["run_id"], []).append(e)
    rows = {}
    for run_id, evs in by_run.items():

        def etype(e: Event) -> str:
            return str(e[1]["event_type"] or "OTHER")

        ranked = [e for e in evs if etype(e) in OL_RANK]
        state = _newest(ranked, lambda e: (e[2], OL_RANK[etype(e)], e[0]))
        job = _newest(evs, lambda e: (bool(e[1]["job_name"]), e[2], e[0]))
        parent = _newest((e for e in evs if e[1]["parent_run_id"]), lambda e: (e[2], e[0]))
        fail = _newest(
            (e for e in evs if etype(e) == "FAIL" and e[1]["error_message"] is not None),
            lambda e: (e[2], e[0]),
        )
        state_name = etype(state) if state else "OTHER"

        starts = [e[2] for e in evs if etype(e) in ("START", "RUNNING")]
        rows[(run_id,)] = {
            "run_id": run_id,
            "job_namespace": job[1]["job_namespace"],
            "job_name": job[1]["job_name"],
            "producer": job[1]["producer"],
            "job_seen": _provenance(job, state)[0],
            "job_event_id": _provenance(job, state)[1],
            "parent_run_id": parent[1]["parent_run_id"] if parent else None,
            "parent_job_namespace": parent[1]["parent_job_namespace"] if parent else None,
            "parent_job_name": parent[1]["parent_job_name"] if parent else None,
            "parent_seen": _provenance(parent, state)[0],
            "parent_event_id": _provenance(parent, state)[1],
            "state": state_name,
            "started_at": min(starts, default=None),
            "finished_at": state[2] if state and state_name in OL_TERMINAL else None,
            "error_message": fail[1]["error_message"] if fail and state_name == "FAIL" else None,
            "fail_message": fail[1]["error_message"] if fail else None,
            "fail_seen": fail[2] if fail else None,
            "fail_event_id": fail[0] if fail else None,
            "inputs": sorted(
                {f"{d['namespace']}::{d['name']}" for e in evs for d in e[1]["inputs"]}
            ),
            "outputs": sorted(
                {f"{d['namespace']}::{d['name']}" for e in evs for d in e[1]["outputs"]}
            ),
            "events": len(evs),
            "last_event_time": state[2] if state else None,
            "last_rank": OL_RANK[etype(state)] if state else -1,
            "last_event_id": state[0] if state else "",
            "updated_at": max(e[2] for e in evs),
        }
    return rows


def _spec_datasets(events: list[Event]) -> dict[Any, dict[str, Any]]:
    # One mention per (event, position): within an event the first mention wins ties.
    mentions: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for event_id, p, when in events:
        run_id = p["run_id"] if p["kind"] == "run" else None
        both = [(d, "input") for d in p["inputs"]] + [(d, "output") for d in p["outputs"]]
        for pos, (d, role) in enumerate(both):
            mentions.setdefault((d["namespace"], d["name"]), []).append(
                (when, event_id, -pos, d, role, run_id)
            )
    rows = {}
    for key, ms in mentions.items():
        last = max(ms, key=lambda m: m[:3])
        counted = _newest((m for m in ms if m[3]["row_count"] is not None), lambda m: m[:3])
        schema = _newest((m for m in ms if m[3]["schema"]), lambda m: m[:3])
        rows[key] = {
            "namespace": key[0],
            "name": key[1],
            "qualified_name": node_or_none(last[3]["qualified_name"]),
            "roles": sorted({m[4] for m in ms}),
            "observations": len(ms),
            "first_seen": min(m[0] for m in ms),
            "last_seen": last[0],
            "last_run_id": last[5],
            "last_event_id": last[1],
            "schema_json": json.dumps(schema[3]["schema"], sort_keys=True) if schema else None,
            "schema_seen": schema[0] if schema else None,
            "schema_event_id": schema[1] if schema else None,
            "row_count": counted[3]["row_count"] if counted else None,
            "row_count_seen": counted[0] if counted else None,
            "row_count_event_id": counted[1] if counted else None,
        }
    return rows


def _spec_edges(events: list[Event]) -> dict[Any, dict[str, Any]]:
    seen: dict[tuple[str, str, str], list[tuple[Any, ...]]] = {}
    for event_id, p, when in events:
        if p["kind"] not in ("run", "job"):
            continue
        run_id = p["run_id"] if p["kind"] == "run" else None
        sources = {q for d in p["inputs"] if (q := node_or_none(d["qualified_name"]))}
        targets = {q for d in p["outputs"] if (q := node_or_none(d["qualified_name"]))}
        for s in sources:
            for t in targets - {s}:
                seen.setdefault((s, t, "derives"), []).append((when, event_id, run_id))
    rows = {}
    for key, obs in seen.items():
        last = max(obs, key=lambda o: o[:2])
        rows[key] = {
            "source": key[0],
            "target": key[1],
            "edge_type": key[2],
            "declared": False,
            "observations": len(obs),
            "first_seen": min(o[0] for o in obs),
            "last_seen": last[0],
            "last_run_id": last[2],
            "last_event_id": last[1],
            "columns": [],
            "updated_at": last[0],
        }
    return rows


def _spec_column_edges(events: list[Event]) -> dict[Any, dict[str, Any]]:
    seen: dict[tuple[str, str, str, str], list[tuple[Any, ...]]] = {}
    for event_id, p, when in events:
        run_id = p["run_id"] if p["kind"] == "run" else None
        for pos, ce in enumerate(p["column_edges"]):
            key = (ce["source"], ce["source_column"], ce["target"], ce["target_column"])
            seen.setdefault(key, []).append((when, event_id, -pos, ce["transformation"], run_id))
    rows = {}
    for key, obs in seen.items():
        last = max(obs, key=lambda o: o[:3])
        named = _newest((o for o in obs if o[3]), lambda o: o[:3])
        rows[key] = {
            "source": key[0],
            "source_column": key[1],
            "target": key[2],
            "target_column": key[3],
            "transformation": named[3] if named else None,
            "transformation_seen": named[0] if named else None,
            "transformation_event_id": named[1] if named else None,
            "declared": False,
            "observations": len(obs),
            "first_seen": min(o[0] for o in obs),
            "last_seen": last[0],
            "last_run_id": last[4],
            "last_event_id": last[1],
            "updated_at": last[0],
        }
    return rows


def spec(events: list[Event]) -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of the four tables, computed from the set of events."""
    return {
        "external_runs": _spec_runs(events),
        "datasets": _spec_datasets(events),
        "edges": _spec_edges(events),
        "column_edges": _spec_column_edges(events),
    }


def _through_parquet(state: LineageState, folder: Folder) -> LineageState:
    """The state after a compaction: its rows written as delta files and read back."""
    for table, by_key in folder.upserts.items():
        tdef = LineageState.TABLES[table]
        rows = [{**r, "_op": tableset.OP_UPSERT} for r in by_key.values()]
        data = tableset.encode(tableset.delta_table_of(tdef, rows, 1))
        state = state.apply(table, tableset.to_rows(tableset.decode(data)))
    return state


def fold_in_batches(events: list[Event], cuts: list[int]) -> dict[str, dict[Any, Any]]:
    """Fold ``events`` in this order, one compaction per slice between ``cuts``."""
    state = LineageState.empty()
    for lo, hi in itertools.pairwise([0, *sorted(cuts), len(events)]):
        folder = Folder(state)
        for event_id, p, when in events[lo:hi]:
            fold_openlineage_payload(folder, event_id, p, when)
        state = _through_parquet(state, folder)
    return {t: dict(state.table(t)) for t in TABLES}


_dataset = st.fixed_dictionaries(
    {
        "namespace": st.sampled_from(["pg", "s3"]),
        "name": st.sampled_from(["a", "b", "c"]),
        "qualified_name": st.none() | st.sampled_from(["s.a", "s.b", "s.c", "bad name"]),
        "schema": st.none()
        | st.lists(
            st.builds(lambda c: {"name": c, "type": None}, st.sampled_from(["x", "y"])),
            max_size=2,
        ),
        "row_count": st.none() | st.integers(0, 5),
    }
)
_column_edge = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["s.a", "s.b"]),
        "source_column": st.sampled_from(["x", "y"]),
        "target": st.just("s.c"),
        "target_column": st.just("x"),
        "transformation": st.none() | st.sampled_from(["IDENTITY", "AGG"]),
    }
)
_payload = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["run", "run", "run", "job", "dataset"]),
        "event_type": st.none()
        | st.sampled_from(["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]),
        "run_id": st.none() | st.sampled_from(["r1", "r2", "r3"]),
        "job_namespace": st.none() | st.sampled_from(["ns", "ns2"]),
        "job_name": st.none() | st.sampled_from(["j1", "j2"]),
        "producer": st.sampled_from(["p1", "p2"]),
        "parent_run_id": st.none() | st.sampled_from(["pr1", "pr2"]),
        "parent_job_namespace": st.none() | st.just("pns"),
        "parent_job_name": st.none() | st.sampled_from(["pj1", "pj2"]),
        "error_message": st.none() | st.sampled_from(["boom", "bang"]),
        "inputs": st.lists(_dataset, max_size=3),
        "outputs": st.lists(_dataset, max_size=2),
        "column_edges": st.lists(_column_edge, max_size=2),
    }
)
# Few distinct times (milliseconds, as the compactor folds them): ties are the point.
_events = st.lists(
    st.tuples(_payload, st.integers(0, 3).map(lambda ms: T0 + timedelta(milliseconds=ms))),
    max_size=14,
)


def _numbered(events: list[tuple[dict[str, Any], datetime]], rnd: random.Random) -> list[Event]:
    # Ids unique but unrelated to time or list order, so ties are broken both ways.
    ids = rnd.sample(range(10**6), len(events))
    return [(f"01J{n:023d}", p, when) for n, (p, when) in zip(ids, events, strict=True)]


@settings(max_examples=250, deadline=None)
@given(_events, st.randoms(use_true_random=False), st.data())
def test_any_order_and_any_split_into_compactions_give_the_rows_of_the_set(
    raw: list[tuple[dict[str, Any], datetime]], rnd: random.Random, data: st.DataObject
) -> None:
    events = _numbered(raw, rnd)
    expected = spec(events)
    results = []
    for _ in range(3):
        order = data.draw(st.permutations(events))
        cuts = data.draw(st.lists(st.integers(0, len(events)), max_size=4))
        got = fold_in_batches(order, cuts)
        for table in TABLES:
            assert got[table] == expected[table], table
        results.append(got)
    assert results[0] == results[1] == results[2]


def _event(p: dict[str, Any], **changes: Any) -> dict[str, Any]:
    base = {
        "kind": "run",
        "event_type": "RUNNING",
        "run_id": "r1",
        "job_namespace": "ns",
        "job_name": "j1",
        "producer": "p",
        "parent_run_id": None,
        "parent_job_namespace": None,
        "parent_job_name": None,
        "error_message": None,
        "inputs": [],
        "outputs": [],
        "column_edges": [],
    }
    return {**base, **p, **changes}


def _ds(row_count: int | None) -> dict[str, Any]:
    return {
        "namespace": "pg",
        "name": "t",
        "qualified_name": "s.t",
        "schema": None,
        "row_count": row_count,
    }


def test_the_row_count_of_the_newest_event_that_has_one_wins_in_either_split() -> None:
    # The reported defect: an event newer than the last without a row count kept
    # the older count in one order and lost it in the other.
    old = ("01JA", _event({}, outputs=[_ds(7)]), T0)
    new = ("01JB", _event({}, outputs=[_ds(None)]), T0 + timedelta(seconds=1))
    for order, cuts in (([old, new], [1]), ([new, old], [1]), ([new, old], [])):
        row = fold_in_batches(order, cuts)["datasets"][("pg", "t")]
        assert (row["row_count"], row["last_event_id"]) == (7, "01JB")


def test_parent_and_job_come_from_the_newest_event_that_carries_them() -> None:
    first = _event({}, event_type="START", parent_run_id="pa", parent_job_name="dag")
    later = _event({}, event_type="COMPLETE", job_name="j2", parent_run_id="pb")
    late_start = _event({}, event_type="START", job_name=None, parent_run_id=None)
    events = [
        ("01JA", first, T0),
        ("01JC", late_start, T0 + timedelta(seconds=2)),
        ("01JB", later, T0 + timedelta(seconds=1)),
    ]
    for order in (events, events[::-1], [events[1], events[0], events[2]]):
        row = fold_in_batches(order, [1])["external_runs"][("r1",)]
        assert (row["job_name"], row["parent_run_id"], row["parent_job_name"]) == (
            "j2",
            "pb",
            None,
        )
        # The state follows the newest ranked event: the START two seconds later.
        assert (row["state"], row["finished_at"]) == ("START", None)


def test_a_failed_run_keeps_the_message_of_its_newest_fail_event_that_has_one() -> None:
    told = ("01JA", _event({}, event_type="FAIL", error_message="boom"), T0)
    silent = ("01JB", _event({}, event_type="FAIL"), T0 + timedelta(seconds=1))
    done = ("01JC", _event({}, event_type="COMPLETE"), T0 + timedelta(seconds=2))
    for order in ([told, silent], [silent, told]):
        row = fold_in_batches(order, [1])["external_runs"][("r1",)]
        assert (row["state"], row["error_message"]) == ("FAIL", "boom")
    row = fold_in_batches([silent, done, told], [1, 2])["external_runs"][("r1",)]
    assert (row["state"], row["error_message"]) == ("COMPLETE", None)
