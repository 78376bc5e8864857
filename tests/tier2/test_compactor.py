"""The Tier-2 compactor (invariant I5).

Ledger objects are create-only; compaction is idempotent (twice, or two
compactors at once, gives the same state); duplicates count once; late and
out-of-order events are not lost (folded inside the window, quarantined
outside it); watermarks are per domain; a crash at any storage call is
recovered by the next run.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arco.core import Keys, ObjectStore, open_store
from arco.core.storage import FaultInjectingStore, SimulatedCrash
from arco.domain.verify import verify
from arco.ledger.compactor import Compactor, tier2_store
from arco.ledger.events import TASK_STATES, Envelope
from arco.ledger.log import Ledger, ulid_time

from ._support import (
    SCOPE,
    compact_worker,
    copy_ledger,
    copy_prefix,
    counters,
    envelope,
    event_key,
    memory_store,
    meta_of,
    put_batch,
    put_event,
    state_of,
    table_rows,
    ulid_at,
    ulid_ms,
    write_event,
)

MAT = "materialization.recorded"
DOMAINS = ("executions", "lineage")
KEYS = Keys(SCOPE)


def mat_ids(store: ObjectStore) -> set[str]:
    return {
        r["materialization_id"] for r in table_rows(store, SCOPE, "executions", "materializations")
    }


def reference_state(store: ObjectStore, **compactor_kwargs: Any) -> dict[str, Any]:
    """State of a single, fault-free compactor run over a copy of ``store``'s ledger."""
    copy = memory_store()
    copy_ledger(store, copy)
    Compactor(copy, SCOPE, **compactor_kwargs).compact_all()
    return {"state": state_of(copy), "counters": {d: counters(copy, SCOPE, d) for d in DOMAINS}}


def observed(store: ObjectStore) -> dict[str, Any]:
    return {"state": state_of(store), "counters": {d: counters(store, SCOPE, d) for d in DOMAINS}}


# ------------------------------------------------- property: order does not matter


@dataclass(frozen=True)
class LogicalEvent:
    """An event with its identity fixed: its envelope never changes between layouts."""

    domain: str
    env: Envelope


RUN_PATHS = (
    (),
    ("RUNNING",),
    ("RUNNING", "SUCCEEDED"),
    ("RUNNING", "FAILED"),
    ("CANCELLED",),
    ("QUEUED", "RUNNING", "CANCELLED"),
)
NODES = ("raw.orders", "raw.customers", "stg.orders", "mart.revenue")


@st.composite
def logical_events(draw: st.DrawFn) -> list[LogicalEvent]:
    """A mix of runs, tasks, materializations, logs and lineage observations."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    specs: list[tuple[str, str, dict[str, Any], int | None]] = []
    for r in range(draw(st.integers(0, 2))):
        run_id = f"run-{r}"
        specs.append(
            (
                "executions",
                "run.created",
                {"run_id": run_id, "seq": 0, "selection": f"sel{r}", "tags": {"k": str(r)}},
                None,
            )
        )
        seq = 0
        for state in draw(st.sampled_from(RUN_PATHS)):
            seq += draw(st.integers(1, 3))
            reason = draw(st.sampled_from([None, "because"]))
            specs.append(
                (
                    "executions",
                    "run.state_changed",
                    {"run_id": run_id, "seq": seq, "state": state, "reason": reason},
                    None,
                )
            )
        for t in range(draw(st.integers(0, 2))):
            asset, partition = f"mart.asset{t}", draw(st.sampled_from([None, "2024-01-01"]))
            for _ in range(draw(st.integers(1, 4))):
                with_asset = draw(st.booleans())
                specs.append(
                    (
                        "executions",
                        "task.state_changed",
                        {
                            "run_id": run_id,
                            "task_id": f"task-{t}",
                            # Ties on seq are allowed: the event id breaks them.
                            "seq": draw(st.integers(0, 5)),
                            "state": draw(st.sampled_from(TASK_STATES)),
                            "asset": asset if with_asset else None,
                            "partition": partition if with_asset else None,
                            "attempt": draw(st.integers(0, 2)),
                            "error": draw(st.sampled_from([None, "boom"])),
                        },
                        None,
                    )
                )
    for m in range(draw(st.integers(0, 4))):
        version = draw(st.sampled_from([1, 2]))
        payload: dict[str, Any] = {
            "asset": draw(st.sampled_from(["mart.revenue", "stg.orders"])),
            "partition": draw(st.sampled_from([None, "p1", "p2"])),
            "row_count": m,
        }
        if version == 2:
            payload["inputs"] = [{"asset": "raw.orders"}]
            payload["metadata"] = {"m": m}
        specs.append(("executions", MAT, payload, version))
    for _ in range(draw(st.integers(0, 1))):
        specs.append(
            (
                "executions",
                "run.log",
                {"run_id": "run-0", "lines": ["a", "b"], "level": "INFO"},
                None,
            )
        )
    for _ in range(draw(st.integers(0, 3))):
        edges = [
            {
                "source": draw(st.sampled_from(NODES)),
                "target": draw(st.sampled_from(NODES)),
                "run_id": draw(st.sampled_from([None, "run-0", "run-1"])),
                "columns": draw(st.sampled_from([None, ["id"], ["id", "amount"]])),
            }
            for _ in range(draw(st.integers(1, 3)))
        ]
        specs.append(("lineage", "lineage.edges_observed", {"edges": edges}, None))
    if not specs:
        specs.append(("executions", MAT, {"asset": "mart.revenue"}, None))
    out = []
    for i, (domain, event_type, payload, version) in enumerate(specs):
        occurred = base + timedelta(milliseconds=draw(st.integers(0, 50_000)))
        env = envelope(
            domain,
            event_type,
            payload,
            event_id=ulid_ms(int(occurred.timestamp() * 1000)),
            occurred_at=occurred,
            version=version,
            # Unique keys: equal payloads are distinct events here; duplicates are
            # injected as exact copies below.
            idempotency_key=f"evt-{i}",
        )
        out.append(LogicalEvent(domain, env))
    return out


def check_model(store: ObjectStore, events: list[LogicalEvent]) -> None:
    """Independent expectations: latest (seq, event_id) wins; facts are all kept."""
    runs = {r["run_id"]: r for r in table_rows(store, SCOPE, "executions", "runs")}
    tasks = {
        (r["run_id"], r["task_id"]): r for r in table_rows(store, SCOPE, "executions", "tasks")
    }
    envs = [e.env for e in events]
    for run_id in {
        e.payload["run_id"]
        for e in envs
        if e.event_type.startswith("run.") and e.event_type != "run.log"
    }:
        changes = [
            e for e in envs if e.event_type == "run.state_changed" and e.payload["run_id"] == run_id
        ]
        last = max(changes, key=lambda e: (e.payload["seq"], e.event_id), default=None)
        assert runs[run_id]["state"] == (last.payload["state"] if last else "QUEUED")
    expected_tasks = {}
    for e in envs:
        if e.event_type == "task.state_changed":
            key = (e.payload["run_id"], e.payload["task_id"])
            if key not in expected_tasks or (e.payload["seq"], e.event_id) > (
                expected_tasks[key].payload["seq"],
                expected_tasks[key].event_id,
            ):
                expected_tasks[key] = e
    assert set(tasks) == set(expected_tasks)
    for key, e in expected_tasks.items():
        assert tasks[key]["state"] == e.payload["state"]
        assert tasks[key]["last_event_id"] == e.event_id
    assert mat_ids(store) == {e.event_id for e in envs if e.event_type == MAT}
    observations: dict[tuple[str, str, str], int] = {}
    for e in envs:
        if e.event_type == "lineage.edges_observed":
            for edge in e.payload["edges"]:
                key = (edge["source"], edge["target"], edge["edge_type"])
                observations[key] = observations.get(key, 0) + 1
    edges = table_rows(store, SCOPE, "lineage", "edges")
    assert {(r["source"], r["target"], r["edge_type"]): r["observations"] for r in edges} == (
        observations
    )


def write_layout(
    store: ObjectStore, domain: str, objects: list[tuple[str, list[Envelope], bool]]
) -> None:
    for object_id, envs, as_batch in objects:
        if as_batch:
            put_batch(store, SCOPE, domain, envs, object_id)
        else:
            [env] = envs
            key = event_key(SCOPE, domain, object_id)
            store.put(key, json.dumps(env.to_dict()).encode(), "create")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(events=logical_events(), data=st.data())
def test_any_order_duplicates_and_splits_give_the_same_state(
    events: list[LogicalEvent], data: st.DataObject
) -> None:
    # Reference: each event alone, in id order, folded by one compaction.
    ref = memory_store()
    for e in sorted(events, key=lambda e: e.env.event_id):
        put_event(ref, SCOPE, e.domain, e.env)
    Compactor(ref, SCOPE).compact_all()
    check_model(ref, events)
    expected = state_of(ref)

    # The same events in any order, with exact duplicates, grouped into objects
    # whose ids (writer clocks) are shuffled within the window, written and
    # compacted in several rounds.
    store = memory_store()
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    injected = 0
    rounds: list[list[tuple[str, str, list[Envelope], bool]]] = []
    all_objects: list[tuple[str, str, list[Envelope], bool]] = []
    for domain in DOMAINS:
        mine = [e.env for e in events if e.domain == domain]
        if not mine:
            continue
        order = data.draw(st.permutations(mine), label=f"{domain} order")
        dups = data.draw(
            st.lists(st.sampled_from(mine), min_size=1, max_size=4), label=f"{domain} dups"
        )
        for dup in dups:
            pos = data.draw(st.integers(0, len(order)), label="dup position")
            order = [*order[:pos], dup, *order[pos:]]
        injected += len(dups)
        i = 0
        while i < len(order):
            size = data.draw(st.integers(1, 4), label="object size")
            group = order[i : i + size]
            i += size
            as_batch = len(group) > 1 or data.draw(st.booleans(), label="batch of one")
            offset = data.draw(st.integers(-240_000, 0), label="writer clock")
            all_objects.append((domain, ulid_ms(now_ms + offset), group, as_batch))
    # At least two compaction rounds (the single-round case is the reference).
    cuts = (
        sorted(
            data.draw(
                st.sets(st.integers(1, len(all_objects) - 1), min_size=1, max_size=3),
                label="compactions",
            )
        )
        if len(all_objects) > 1
        else []
    )
    start = 0
    for cut in [*cuts, len(all_objects)]:
        rounds.append(all_objects[start:cut])
        start = cut
    totals = {"events": 0, "duplicates": 0, "quarantined": 0}
    for round_objects in rounds:
        for domain, object_id, envs, as_batch in round_objects:
            write_layout(store, domain, [(object_id, envs, as_batch)])
        compactor = Compactor(store, SCOPE)
        for report in compactor.compact_all():
            for name in totals:
                totals[name] += getattr(report, name)
    assert state_of(store) == expected
    check_model(store, events)
    assert totals == {"events": len(events), "duplicates": injected, "quarantined": 0}
    for domain in DOMAINS:
        meta = meta_of(store, SCOPE, domain)
        n = sum(1 for e in events if e.domain == domain)
        assert meta.get("events_total", 0) == n
        assert meta.get("quarantined_total", 0) == 0
    # Compacting again changes nothing.
    again = Compactor(store, SCOPE).compact_all()
    assert {r.domain for r in again} >= set(DOMAINS)
    assert [r.commits for r in again] == [0] * len(again)
    assert state_of(store) == expected


# ------------------------------------------------------------ late and future


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_late_event_inside_the_window_is_folded_outside_it_quarantined(
    now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    store = memory_store()
    compactor = Compactor(store, SCOPE, clock=lambda: now)
    first, _ = write_event(store, SCOPE, "executions", MAT, {"asset": "a.first"}, at=now)
    r1 = compactor.compact("executions")
    assert r1.watermark == first.event_id
    watermark = ulid_time(first.event_id)

    inside, _ = write_event(
        store, SCOPE, "executions", MAT, {"asset": "a.inside"}, at=watermark - timedelta(minutes=5)
    )
    late, late_key = write_event(
        store, SCOPE, "executions", MAT, {"asset": "a.late"}, at=watermark - timedelta(minutes=30)
    )
    with caplog.at_level(logging.WARNING, logger="arco.compactor"):
        r2 = compactor.compact("executions")
    assert (r2.events, r2.quarantined, r2.quarantine_reasons) == (1, 1, {"late": 1})
    assert r2.watermark == first.event_id  # a late object never moves the watermark
    assert mat_ids(store) == {first.event_id, inside.event_id}

    [row] = table_rows(store, SCOPE, "executions", "quarantine")
    assert row["object_id"] == late.event_id
    assert row["key"] == late_key
    assert row["reason"] == "late"
    assert row["detail"]
    copied, _ = store.get(KEYS.quarantined("executions", late.event_id))
    assert copied == store.get(late_key)[0]  # copied aside; the original is kept too
    meta = meta_of(store, SCOPE, "executions")
    assert meta["quarantined_total"] == 1
    assert meta["events_total"] == 2
    warnings = [
        r for r in caplog.records if r.name == "arco.compactor" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    assert late_key in warnings[0].getMessage()
    assert "late" in warnings[0].getMessage()

    # It stays quarantined, counted once, and never reaches the state later.
    r3 = Compactor(store, SCOPE, clock=lambda: now).compact("executions")
    assert r3.commits == 0
    assert meta_of(store, SCOPE, "executions")["quarantined_total"] == 1
    assert late.event_id not in mat_ids(store)


def test_late_boundary_follows_the_configured_window(now: datetime) -> None:
    store = memory_store()
    compactor = Compactor(store, SCOPE, window=timedelta(minutes=2), clock=lambda: now)
    first, _ = write_event(store, SCOPE, "executions", MAT, {"asset": "a.first"}, at=now)
    compactor.compact("executions")
    w = ulid_time(first.event_id)
    ok, _ = write_event(
        store, SCOPE, "executions", MAT, {"asset": "a.ok"}, at=w - timedelta(seconds=90)
    )
    _late, _ = write_event(
        store, SCOPE, "executions", MAT, {"asset": "a.late"}, at=w - timedelta(minutes=3)
    )
    report = compactor.compact("executions")
    assert report.quarantine_reasons == {"late": 1}
    assert mat_ids(store) == {first.event_id, ok.event_id}
    assert meta_of(store, SCOPE, "executions")["window_seconds"] == 120


def test_event_older_than_the_horizon_is_quarantined_not_lost(now: datetime) -> None:
    store = memory_store()
    clock = [now]
    compactor = Compactor(store, SCOPE, clock=lambda: clock[0])
    _first, _ = write_event(store, SCOPE, "executions", MAT, {"asset": "a.first"}, at=now)
    compactor.compact("executions")
    ancient, _ = write_event(
        store, SCOPE, "executions", MAT, {"asset": "a.ancient"}, at=now - timedelta(days=3)
    )
    # Within the audit interval only the recent part of the ledger is listed...
    assert compactor.compact("executions").objects == 0
    # ...and the periodic full listing finds the ancient object and quarantines it.
    clock[0] = now + compactor.audit_interval
    report = compactor.compact("executions")
    quarantined = {
        r["object_id"]: r["reason"] for r in table_rows(store, SCOPE, "executions", "quarantine")
    }
    assert quarantined == {ancient.event_id: "late"}
    assert report.quarantine_reasons == {"late": 1}


def test_watermarks_are_per_domain(now: datetime) -> None:
    store = memory_store()
    compactor = Compactor(store, SCOPE, clock=lambda: now)
    first, _ = write_event(store, SCOPE, "executions", MAT, {"asset": "a.first"}, at=now)
    compactor.compact_all()
    assert meta_of(store, SCOPE, "executions")["watermark"] == first.event_id
    assert meta_of(store, SCOPE, "lineage") == {}
    # Old for executions, but lineage has no watermark yet: folded there.
    edge, _ = write_event(
        store,
        SCOPE,
        "lineage",
        "lineage.edges_observed",
        {"edges": [{"source": "a.x", "target": "a.y"}]},
        at=now - timedelta(minutes=30),
    )
    reports = {r.domain: r for r in compactor.compact_all()}
    assert reports["lineage"].events == 1
    assert reports["lineage"].quarantined == 0
    assert reports["executions"].commits == 0
    assert meta_of(store, SCOPE, "lineage")["watermark"] == edge.event_id
    assert meta_of(store, SCOPE, "executions")["watermark"] == first.event_id
    assert len(table_rows(store, SCOPE, "lineage", "edges")) == 1


@pytest.mark.parametrize("with_watermark", [False, True])
def test_event_from_the_future_is_quarantined(now: datetime, with_watermark: bool) -> None:
    store = memory_store()
    compactor = Compactor(store, SCOPE, clock=lambda: now)
    expected = set()
    if with_watermark:
        first, _ = write_event(store, SCOPE, "executions", MAT, {"asset": "a.first"}, at=now)
        compactor.compact("executions")
        expected.add(first.event_id)
    soon, _ = write_event(
        store, SCOPE, "executions", MAT, {"asset": "a.soon"}, at=now + timedelta(minutes=5)
    )
    far, far_key = write_event(
        store, SCOPE, "executions", MAT, {"asset": "a.far"}, at=now + timedelta(hours=2)
    )
    expected.add(soon.event_id)
    report = compactor.compact("executions")
    assert report.quarantine_reasons == {"future": 1}
    assert mat_ids(store) == expected
    # A far-future object must not drag the watermark (which would make all later
    # events "late").
    assert report.watermark == soon.event_id
    [row] = table_rows(store, SCOPE, "executions", "quarantine")
    assert (row["object_id"], row["reason"], row["key"]) == (far.event_id, "future", far_key)
    assert store.exists(KEYS.quarantined("executions", far.event_id))
    assert meta_of(store, SCOPE, "executions")["quarantined_total"] == 1
    # Events written afterwards at the right time are still folded.
    later, _ = write_event(
        store, SCOPE, "executions", MAT, {"asset": "a.later"}, at=now + timedelta(minutes=6)
    )
    compactor.compact("executions")
    assert later.event_id in mat_ids(store)


def test_invalid_objects_are_quarantined_and_do_not_block_others(
    now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    store = memory_store()
    good = [
        write_event(
            store,
            SCOPE,
            "executions",
            MAT,
            {"asset": f"a.good{i}"},
            at=now - timedelta(seconds=30 - i),
        )[0]
        for i in range(3)
    ]
    bad: dict[str, bytes] = {}

    def put_raw(body: bytes, at: datetime, batch: bool = False) -> str:
        object_id = ulid_at(at)
        key = (
            KEYS.ledger_batch("executions", ulid_time(object_id), object_id)
            if batch
            else event_key(SCOPE, "executions", object_id)
        )
        store.put(key, body, "create")
        bad[object_id] = body
        return object_id

    put_raw(b"{this is not json", now - timedelta(seconds=25))
    put_raw(b'["an", "array"]', now - timedelta(seconds=24))
    wrong_payload = envelope("executions", MAT, {"asset": "a.x"}).to_dict()
    wrong_payload["payload"] = {"asset": "a.x", "row_count": "many"}
    put_raw(json.dumps(wrong_payload).encode(), now - timedelta(seconds=23))
    unknown_type = envelope("executions", MAT, {"asset": "a.y"}).to_dict()
    unknown_type["event_type"] = "materialization.exploded"
    put_raw(json.dumps(unknown_type).encode(), now - timedelta(seconds=22))
    wrong_domain = envelope(
        "lineage", "lineage.edges_observed", {"edges": [{"source": "a.b", "target": "c.d"}]}
    ).to_dict()
    put_raw(json.dumps(wrong_domain).encode(), now - timedelta(seconds=21))
    mixed = [envelope("executions", MAT, {"asset": "a.ok"}).to_dict(), {"event_id": "x"}]
    put_raw(json.dumps({"events": mixed}).encode(), now - timedelta(seconds=20), batch=True)
    put_raw(b'{"no_events": []}', now - timedelta(seconds=19), batch=True)
    later = write_event(
        store, SCOPE, "executions", MAT, {"asset": "a.later"}, at=now - timedelta(seconds=1)
    )[0]

    with caplog.at_level(logging.WARNING, logger="arco.compactor"):
        report = Compactor(store, SCOPE, clock=lambda: now).compact("executions")
    assert report.quarantine_reasons == {"invalid": len(bad)}
    assert report.events == 4
    assert mat_ids(store) == {e.event_id for e in [*good, later]}
    rows = table_rows(store, SCOPE, "executions", "quarantine")
    assert {r["object_id"]: r["reason"] for r in rows} == dict.fromkeys(bad, "invalid")
    assert all(r["detail"] for r in rows)
    for object_id, body in bad.items():
        assert store.get(KEYS.quarantined("executions", object_id))[0] == body
    assert meta_of(store, SCOPE, "executions")["quarantined_total"] == len(bad)
    assert meta_of(store, SCOPE, "executions")["watermark"] == later.event_id
    logged = [
        r for r in caplog.records if r.name == "arco.compactor" and r.levelno == logging.WARNING
    ]
    assert len(logged) == len(bad)
    # Nothing is retried forever: the next run has nothing to do.
    assert Compactor(store, SCOPE, clock=lambda: now).compact("executions").commits == 0


# ------------------------------------------------------------------- idempotence


def test_compaction_is_idempotent_and_duplicates_count_once() -> None:
    store = memory_store()
    ledger = Ledger(store, SCOPE)
    keyed = [
        ledger.append("executions", MAT, {"asset": "a.keyed"}, idempotency_key="k-1")
        for _ in range(3)
    ]
    derived = [
        ledger.append("executions", MAT, {"asset": "a.derived", "row_count": 5}) for _ in range(2)
    ]
    ledger.append_batch(
        "executions",
        [{"type": MAT, "payload": {"asset": "a.derived", "row_count": 5}}]
        + [{"type": MAT, "payload": {"asset": f"a.b{i}"}} for i in range(3)],
    )
    ledger.append(
        "lineage", "lineage.edges_observed", {"edges": [{"source": "a.x", "target": "a.y"}]}
    )
    ledger.append(
        "lineage", "lineage.edges_observed", {"edges": [{"source": "a.x", "target": "a.y"}]}
    )

    first = {r.domain: r for r in Compactor(store, SCOPE).compact_all()}
    assert (first["executions"].events, first["executions"].duplicates) == (5, 4)
    assert (first["lineage"].events, first["lineage"].duplicates) == (1, 1)
    mats = table_rows(store, SCOPE, "executions", "materializations")
    assert sorted(r["asset"] for r in mats) == ["a.b0", "a.b1", "a.b2", "a.derived", "a.keyed"]
    # Of the copies, the first written is the one kept.
    assert {keyed[0].event_id, derived[0].event_id} <= mat_ids(store)
    [edge] = table_rows(store, SCOPE, "lineage", "edges")
    assert edge["observations"] == 1
    state = state_of(store)
    versions = {d: tier2_store(store, SCOPE, d).read().version for d in DOMAINS}

    for compactor in (Compactor(store, SCOPE), Compactor(store, SCOPE)):
        again = compactor.compact_all()
        assert {r.domain for r in again} >= {"executions", "lineage"}
        assert [r.commits for r in again] == [0] * len(again)
        assert [r.events for r in again] == [0] * len(again)
    assert {d: tier2_store(store, SCOPE, d).read().version for d in DOMAINS} == versions
    assert state_of(store) == state
    assert meta_of(store, SCOPE, "executions")["duplicates_total"] == 4

    # A copy arriving in a later compaction is still a duplicate.
    ledger.append("executions", MAT, {"asset": "a.other"}, idempotency_key="k-1")
    report = Compactor(store, SCOPE).compact("executions")
    assert (report.events, report.duplicates, report.commits) == (0, 1, 1)
    assert state_of(store) == state
    meta = meta_of(store, SCOPE, "executions")
    assert (meta["events_total"], meta["duplicates_total"]) == (5, 5)


def test_pending_is_a_cheap_check() -> None:
    store = memory_store()
    ledger = Ledger(store, SCOPE)
    compactor = Compactor(store, SCOPE)
    assert compactor.pending("executions") == []
    envs = [ledger.append("executions", MAT, {"asset": f"a.t{i}"}) for i in range(3)]
    assert [o.object_id for o in compactor.pending("executions")] == [e.event_id for e in envs]
    compactor.compact("executions")
    assert compactor.pending("executions") == []
    spy = FaultInjectingStore(store)
    assert Compactor(spy, SCOPE).pending("executions") == []
    assert all(c.op in ("get", "list") for c in spy.calls)


def test_max_objects_chunks_the_work() -> None:
    store = memory_store()
    ledger = Ledger(store, SCOPE)
    envs = [ledger.append("executions", MAT, {"asset": f"a.t{i}"}) for i in range(10)]
    progress: list[tuple[int, int]] = []
    report = Compactor(store, SCOPE, max_objects=3).compact(
        "executions", progress=lambda done, total: progress.append((done, total))
    )
    assert (report.objects, report.events, report.commits) == (10, 10, 4)
    assert report.version == 4
    assert mat_ids(store) == {e.event_id for e in envs}
    assert [done for done, _ in progress] == [3, 6, 9, 10]
    assert all(total == 10 for _, total in progress)
    assert meta_of(store, SCOPE, "executions")["watermark"] == envs[-1].event_id
    history = tier2_store(store, SCOPE, "executions").history()
    assert [m.version for _, m in history] == [4, 3, 2, 1]
    assert verify(store, SCOPE).ok


def test_max_events_caps_a_chunk_of_batch_objects() -> None:
    store = memory_store()
    ledger = Ledger(store, SCOPE)
    batches = [
        ledger.append_batch(
            "executions",
            [{"type": MAT, "payload": {"asset": f"a.b{b}e{i}"}} for i in range(4)],
        )
        for b in range(5)
    ]
    one_run = memory_store()
    assert copy_prefix(store, one_run, "") == 5
    # 7 events per chunk: a chunk stops after the object that reaches the cap.
    report = Compactor(store, SCOPE, max_events=7).compact("executions")
    assert (report.objects, report.events, report.commits) == (5, 20, 3)
    assert mat_ids(store) == {e.event_id for batch in batches for e in batch}
    whole = Compactor(one_run, SCOPE).compact("executions")
    assert (whole.objects, whole.events, whole.commits) == (5, 20, 1)
    assert state_of(store) == state_of(one_run)
    watermark = meta_of(store, SCOPE, "executions")["watermark"]
    assert watermark == meta_of(one_run, SCOPE, "executions")["watermark"]
    assert verify(store, SCOPE).ok


# ------------------------------------------------------------------ concurrency


def write_workload(store: ObjectStore, batches: int, per_batch: int) -> int:
    """Batches of runs, tasks and materializations, plus lineage; returns the event count."""
    ledger = Ledger(store, SCOPE)
    total = 0
    for b in range(batches):
        run_id = f"run-{b}"
        events: list[dict[str, Any]] = [
            {"type": "run.created", "payload": {"run_id": run_id, "seq": 0, "selection": "*"}},
            {
                "type": "run.state_changed",
                "payload": {"run_id": run_id, "seq": 2, "state": "SUCCEEDED"},
            },
            {
                "type": "run.state_changed",
                "payload": {"run_id": run_id, "seq": 1, "state": "RUNNING"},
            },
        ]
        for t in range(5):
            for seq, state in ((1, "RUNNING"), (2, "SUCCEEDED"), (0, "READY")):
                events.append(
                    {
                        "type": "task.state_changed",
                        "payload": {
                            "run_id": run_id,
                            "task_id": f"t{t}",
                            "seq": seq,
                            "state": state,
                            "asset": f"m.a{t}",
                        },
                    }
                )
        while len(events) < per_batch:
            i = len(events)
            events.append(
                {
                    "type": MAT,
                    "payload": {
                        "asset": f"m.a{i % 7}",
                        "run_id": run_id,
                        "partition": f"p{i}",
                        "row_count": i,
                    },
                }
            )
        ledger.append_batch("executions", events)
        total += len(events)
        ledger.append(
            "lineage",
            "lineage.edges_observed",
            {"edges": [{"source": f"m.a{b % 7}", "target": f"m.a{(b + 1) % 7}", "run_id": run_id}]},
        )
        total += 1
    return total


def write_singles(store: ObjectStore, n: int, tag: str) -> int:
    ledger = Ledger(store, SCOPE)
    for i in range(n):
        ledger.append(
            "executions", MAT, {"asset": f"single.{tag}{i % 3}", "partition": f"{tag}{i}"}
        )
    return n


def check_against_single_compactor(store: ObjectStore, total: int, folded: int) -> None:
    assert folded == total  # every event folded exactly once across all compactors
    expected = reference_state(store)
    assert observed(store) == expected
    assert len(expected["state"]["executions"]["materializations"]) > 0
    events_total = sum(expected["counters"][d]["events_total"] for d in DOMAINS)
    assert events_total == total
    report = verify(store, SCOPE)
    assert report.ok, report.problems


@pytest.mark.slow
def test_two_compactor_processes_race(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    store = open_store(url)
    total = write_workload(store, batches=50, per_batch=100)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pending = [
            pool.apply_async(compact_worker, (url, (SCOPE.tenant, SCOPE.workspace), 6))
            for _ in range(2)
        ]
        # Writers keep appending while the compactors run.
        total += write_singles(store, 100, "p")
        results = [p.get(timeout=240) for p in pending]
    final = {r.domain: r for r in Compactor(store, SCOPE).compact_all()}
    folded = sum(r["events"] for r in results) + sum(r.events for r in final.values())
    assert sum(r["duplicates"] for r in results) == 0
    assert sum(r["commits"] for r in results) >= 150 // 6
    check_against_single_compactor(store, total, folded)
    assert len(mat_ids(store)) == 50 * (100 - 18) + 100


def test_two_compactor_threads_race() -> None:
    store = memory_store()
    total = write_workload(store, batches=20, per_batch=50)
    folded: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            compactor = Compactor(store, SCOPE, max_objects=4)
            barrier.wait()
            for _ in range(200):
                folded.extend(r.events for r in compactor.compact_all())
                if not any(compactor.pending(d) for d in DOMAINS):
                    return
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    total += write_singles(store, 30, "t")
    for t in threads:
        t.join(timeout=120)
    assert not errors
    folded.extend(r.events for r in Compactor(store, SCOPE).compact_all())
    check_against_single_compactor(store, total, sum(folded))


# -------------------------------------------------------------- crash recovery


def seed_ledger(store: ObjectStore, phase: int, now: datetime) -> None:
    """A few objects: singles, a batch, a duplicate, an invalid object, lineage."""
    ledger = Ledger(store, SCOPE)
    ledger.append("executions", MAT, {"asset": f"a.p{phase}"}, idempotency_key=f"dup-{phase}")
    ledger.append("executions", MAT, {"asset": f"a.p{phase}"}, idempotency_key=f"dup-{phase}")
    ledger.append_batch(
        "executions",
        [
            {"type": "run.created", "payload": {"run_id": f"r{phase}", "seq": 0}},
            {
                "type": "run.state_changed",
                "payload": {"run_id": f"r{phase}", "seq": 1, "state": "RUNNING"},
            },
            {
                "type": "task.state_changed",
                "payload": {"run_id": f"r{phase}", "task_id": "t", "seq": 1, "state": "SUCCEEDED"},
            },
            {"type": MAT, "payload": {"asset": f"a.q{phase}", "partition": "x"}},
        ],
    )
    object_id = ulid_at(now - timedelta(seconds=1))
    store.put(event_key(SCOPE, "executions", object_id), b"garbage", "create")
    ledger.append(
        "lineage", "lineage.edges_observed", {"edges": [{"source": "a.x", "target": f"a.p{phase}"}]}
    )


def test_crash_at_any_storage_call_is_recovered() -> None:
    now = datetime.now(UTC)
    # A store with one compaction done and new objects pending (so the crashed
    # compaction is a compare-and-swap on an existing pointer, not a create).
    template = memory_store()
    seed_ledger(template, 1, now)
    Compactor(template, SCOPE).compact_all()
    seed_ledger(template, 2, now)

    def fresh() -> ObjectStore:
        inner = memory_store()
        copy_prefix(template, inner, KEYS.root)
        return inner

    # Fault-free run, counting the storage calls of one compaction.
    clean = fresh()
    spy = FaultInjectingStore(clean)
    Compactor(spy, SCOPE, lock_ttl=0.2).compact("executions")
    n_calls = len(spy.calls)
    assert n_calls > 10
    assert {c.op for c in spy.calls} >= {"get", "put", "list"}
    expected = observed(clean)
    assert expected["counters"]["executions"]["quarantined_total"] == 2
    assert expected["counters"]["executions"]["duplicates_total"] == 2

    for call in range(n_calls):
        for when in ("before", "after"):
            inner = fresh()
            faulty = FaultInjectingStore(inner)
            faulty.arm("crash", when, call=call)
            with pytest.raises(SimulatedCrash):
                Compactor(faulty, SCOPE, lock_ttl=0.2).compact("executions")
            # The next compactor proceeds without repair (waiting out a lease the
            # crashed one may have left behind).
            Compactor(inner, SCOPE).compact("executions")
            assert observed(inner) == expected, f"crash {when} call {call}: {spy.calls[call]}"
            report = verify(inner, SCOPE)
            assert report.ok, (call, when, report.problems)
