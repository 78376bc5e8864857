"""Tier-2 events: the envelope, the registry's checks, upcasting and ledger appends.

Every refused event must be refused before anything reaches storage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from ulid import ULID

from arco.core import InvalidArgumentError, Keys, ObjectStore
from arco.ledger.compactor import Compactor
from arco.ledger.events import (
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    REGISTRY,
    Envelope,
    InvalidEventError,
    build_envelope,
    derive_idempotency_key,
)
from arco.ledger.log import Ledger, decode_object, ulid_time

from ._support import SCOPE, memory_store, table_rows

MAT = "materialization.recorded"


@pytest.fixture
def store() -> ObjectStore:
    return memory_store()


@pytest.fixture
def ledger(store: ObjectStore) -> Ledger:
    return Ledger(store, SCOPE)


def all_keys(store: ObjectStore) -> list[str]:
    return sorted(m.key for m in store.list(""))


# ---------------------------------------------------------------- envelope


def test_envelope_fields() -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    env = build_envelope("executions", MAT, {"asset": "sales.orders", "row_count": 3})
    after = datetime.now(UTC) + timedelta(seconds=1)

    ULID.from_str(env.event_id)  # a canonical ULID ...
    assert len(env.event_id) == 26
    assert before <= ulid_time(env.event_id) <= after  # ... minted now
    assert env.event_type == MAT
    assert env.event_version == REGISTRY.get(MAT).latest == 2
    assert env.event_version >= 1
    occurred = datetime.fromisoformat(env.occurred_at)
    assert occurred.tzinfo is not None
    assert before <= occurred <= after
    assert env.source == "arco"
    assert env.idempotency_key.startswith("auto:")
    # The payload is normalised: defaults of the latest version are filled in.
    assert env.payload["asset"] == "sales.orders"
    assert env.payload["inputs"] == []
    assert env.payload["metadata"] == {}
    assert env.payload["partition"] is None


def test_derived_idempotency_key_is_stable_and_content_addressed() -> None:
    a = build_envelope("executions", MAT, {"asset": "sales.orders", "row_count": 3})
    b = build_envelope("executions", MAT, {"row_count": 3, "asset": "sales.orders"})
    # Explicit defaults normalise to the same payload, hence the same key.
    c = build_envelope(
        "executions", MAT, {"asset": "sales.orders", "row_count": 3, "partition": None}
    )
    other = build_envelope("executions", MAT, {"asset": "sales.orders", "row_count": 4})
    other_asset = build_envelope("executions", MAT, {"asset": "sales.refunds", "row_count": 3})
    assert a.event_id != b.event_id
    assert a.idempotency_key == b.idempotency_key == c.idempotency_key
    assert other.idempotency_key != a.idempotency_key
    assert other_asset.idempotency_key != a.idempotency_key
    # The key covers the type and the version too.
    assert a.idempotency_key == derive_idempotency_key(MAT, 2, a.payload)
    v1 = build_envelope("executions", MAT, {"asset": "sales.orders", "row_count": 3}, version=1)
    assert v1.idempotency_key != a.idempotency_key


def test_given_idempotency_key_is_kept() -> None:
    env = build_envelope("executions", MAT, {"asset": "a.b"}, idempotency_key="my-key-1")
    assert env.idempotency_key == "my-key-1"
    same = build_envelope("executions", MAT, {"asset": "other.asset"}, idempotency_key="my-key-1")
    assert same.idempotency_key == "my-key-1"
    for bad in ("", "x" * 256):
        with pytest.raises(InvalidEventError):
            build_envelope("executions", MAT, {"asset": "a.b"}, idempotency_key=bad)


def test_given_event_id_and_occurred_at_are_kept() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    event_id = str(ULID.from_datetime(when))
    env = build_envelope("executions", MAT, {"asset": "a.b"}, event_id=event_id, occurred_at=when)
    assert env.event_id == event_id
    assert datetime.fromisoformat(env.occurred_at) == when
    assert env.occurred_at.endswith("+00:00")  # stored in UTC
    with pytest.raises(InvalidEventError, match="time zone"):
        build_envelope("executions", MAT, {"asset": "a.b"}, occurred_at=datetime(2024, 1, 1))


def test_envelope_round_trips_through_json() -> None:
    env = build_envelope("executions", MAT, {"asset": "a.b"}, trace_id="trace-1", source="tests")
    back = Envelope.from_dict(json.loads(json.dumps(env.to_dict())))
    assert back == env


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {},
        {"event_id": "nope", "event_type": MAT, "event_version": 1},
        {
            "event_id": str(ULID()),
            "event_type": MAT,
            "event_version": 0,
            "idempotency_key": "k",
            "occurred_at": "2024-01-01T00:00:00+00:00",
            "payload": {},
        },
        {
            "event_id": str(ULID()),
            "event_type": MAT,
            "event_version": 1,
            "idempotency_key": "k",
            "occurred_at": "2024-01-01T00:00:00+00:00",
        },
    ],
)
def test_malformed_stored_envelope_is_invalid(raw: Any) -> None:
    with pytest.raises(InvalidEventError):
        Envelope.from_dict(raw)


def test_invalid_event_error_is_an_invalid_argument() -> None:
    assert issubclass(InvalidEventError, InvalidArgumentError)


# ---------------------------------------------------------------- registry


def test_registry_knows_the_builtin_types() -> None:
    assert {"executions", "lineage"} <= REGISTRY.domains
    for name in (
        MAT,
        "run.created",
        "run.state_changed",
        "task.state_changed",
        "run.log",
        "lineage.edges_observed",
    ):
        assert name in REGISTRY.names()


BIG = "x" * (MAX_EVENT_BYTES + 1)

REFUSED: dict[str, tuple[str, str, Any, dict[str, Any]]] = {
    "unknown type": ("executions", "materialization.deleted", {"asset": "a.b"}, {}),
    "unknown version": ("executions", MAT, {"asset": "a.b"}, {"version": 3}),
    "version zero": ("executions", MAT, {"asset": "a.b"}, {"version": 0}),
    "bool version": ("executions", MAT, {"asset": "a.b"}, {"version": True}),
    "wrong domain": ("lineage", MAT, {"asset": "a.b"}, {}),
    "wrong domain 2": (
        "executions",
        "lineage.edges_observed",
        {"edges": [{"source": "a.b", "target": "c.d"}]},
        {},
    ),
    "unknown domain": ("billing", MAT, {"asset": "a.b"}, {}),
    "bad domain name": ("../catalog", MAT, {"asset": "a.b"}, {}),
    "missing field": ("executions", MAT, {"row_count": 1}, {}),
    "extra field": ("executions", MAT, {"asset": "a.b", "colour": "red"}, {}),
    "v2 field in v1": ("executions", MAT, {"asset": "a.b", "inputs": []}, {"version": 1}),
    "negative count": ("executions", MAT, {"asset": "a.b", "row_count": -1}, {}),
    "payload not object": ("executions", MAT, ["a.b"], {}),
    "bad run state": (
        "executions",
        "run.state_changed",
        {"run_id": "r1", "seq": 1, "state": "EXPLODED"},
        {},
    ),
    "negative seq": ("executions", "run.created", {"run_id": "r1", "seq": -1}, {}),
    "empty edges": ("lineage", "lineage.edges_observed", {"edges": []}, {}),
    "bad node name": (
        "lineage",
        "lineage.edges_observed",
        {"edges": [{"source": "a/../b", "target": "c.d"}]},
        {},
    ),
    "oversized": ("executions", MAT, {"asset": "a.b", "metadata": {"blob": BIG}}, {}),
    "long source": (
        "executions",
        MAT,
        {"asset": "a.b", "location": "s3://x/" + "y" * 4000},
        {"version": 1, "source": "s" * 257},
    ),
}


VALID: dict[str, dict[str, Any]] = {
    "executions": {"type": MAT, "payload": {"asset": "fine.asset"}},
    "lineage": {
        "type": "lineage.edges_observed",
        "payload": {"edges": [{"source": "a.b", "target": "c.d"}]},
    },
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_events_write_nothing(case: str, store: ObjectStore, ledger: Ledger) -> None:
    domain, event_type, payload, kwargs = REFUSED[case]
    with pytest.raises(InvalidEventError):
        ledger.append(domain, event_type, payload, **kwargs)
    # In a batch, valid events next to the bad one are not written either.
    companions = [VALID[domain]] * 3 if domain in VALID else []
    with pytest.raises(InvalidEventError):
        ledger.append_batch(
            domain, [*companions, {"type": event_type, "payload": payload, **kwargs}]
        )
    assert all_keys(store) == []


def test_oversized_event_is_measured_on_the_whole_envelope(ledger: Ledger) -> None:
    # A payload just under the limit on its own is refused once wrapped.
    blob = "x" * (MAX_EVENT_BYTES - 50)
    with pytest.raises(InvalidEventError, match="limit"):
        ledger.append("executions", MAT, {"asset": "a.b", "metadata": {"b": blob}})
    small = ledger.append("executions", MAT, {"asset": "a.b", "metadata": {"b": "x" * 200_000}})
    assert len(json.dumps(small.to_dict())) <= MAX_EVENT_BYTES


def test_unknown_domain_is_rejected_everywhere(store: ObjectStore, ledger: Ledger) -> None:
    with pytest.raises(InvalidEventError, match="domain"):
        ledger.append("catalog", MAT, {"asset": "a.b"})
    with pytest.raises(InvalidEventError, match="domain"):
        ledger.append_batch("search", [{"type": MAT, "payload": {"asset": "a.b"}}])
    with pytest.raises(InvalidEventError, match="domain"):
        ledger.tail("nope")
    with pytest.raises(InvalidArgumentError):
        Compactor(store, SCOPE).compact("catalog")
    assert all_keys(store) == []


# -------------------------------------------------------------- upcasting


def test_upcast_materialization_v1_to_v2() -> None:
    v1 = {
        "asset": "sales.orders",
        "partition": "2024-01-01",
        "run_id": "r1",
        "location": "s3://b/k",
        "row_count": 7,
    }
    checked = REGISTRY.validate("executions", MAT, 1, v1)
    up = REGISTRY.upcast(MAT, 1, checked)
    assert up["inputs"] == []
    assert up["metadata"] == {}
    assert up["task_id"] is None
    assert up["byte_size"] is None
    for key, value in v1.items():
        assert up[key] == value
    # The result is a valid latest-version payload, and upcasting it again is a no-op.
    assert REGISTRY.validate("executions", MAT, 2, up) == up
    assert REGISTRY.upcast(MAT, 2, up) == up


def test_v1_event_is_stored_as_v1_and_folded_as_v2(store: ObjectStore, ledger: Ledger) -> None:
    env = ledger.append("executions", MAT, {"asset": "sales.orders", "row_count": 7}, version=1)
    assert env.event_version == 1
    assert "inputs" not in env.payload
    [meta] = list(store.list(Keys(SCOPE).ledger_prefix("executions")))
    stored = json.loads(store.get(meta.key)[0])
    assert stored["event_version"] == 1
    Compactor(store, SCOPE).compact("executions")
    [row] = table_rows(store, SCOPE, "executions", "materializations")
    assert row["materialization_id"] == env.event_id
    assert row["asset"] == "sales.orders"
    assert row["row_count"] == 7
    assert json.loads(row["inputs_json"]) == []
    assert json.loads(row["metadata_json"]) == {}


# ------------------------------------------------------------------ ledger


def test_append_writes_one_create_only_object(store: ObjectStore, ledger: Ledger) -> None:
    when = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)
    env = ledger.append("executions", MAT, {"asset": "a.b"}, occurred_at=when)
    assert datetime.fromisoformat(env.occurred_at) == when
    keys = all_keys(store)
    day = ulid_time(env.event_id).strftime("%Y-%m-%d")
    assert keys == [f"{Keys(SCOPE).ledger_prefix('executions')}{day}/{env.event_id}.json"]
    assert decode_object(store.get(keys[0])[0], is_batch=False) == [env]
    [obj] = list(ledger.list_objects("executions"))
    assert obj.object_id == env.event_id
    assert not obj.is_batch
    assert ledger.read(obj) == [env]


def test_append_batch_is_one_object(store: ObjectStore, ledger: Ledger) -> None:
    events = [
        {"type": MAT, "payload": {"asset": f"a.t{i}"}, "occurred_at": "2024-01-02T03:04:05+00:00"}
        for i in range(5)
    ] + [
        {"type": "run.created", "payload": {"run_id": "r1", "seq": 0}, "idempotency_key": "run-1"},
        {"type": MAT, "payload": {"asset": "a.v1"}, "version": 1, "trace_id": "t-9"},
    ]
    envs = ledger.append_batch("executions", events)
    assert len(envs) == 7
    assert len({e.event_id for e in envs}) == 7
    assert envs[5].idempotency_key == "run-1"
    assert envs[6].event_version == 1
    assert envs[6].trace_id == "t-9"
    assert datetime.fromisoformat(envs[0].occurred_at) == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    [obj] = list(ledger.list_objects("executions"))
    assert obj.is_batch
    assert obj.key.endswith(f"/{obj.object_id}.batch.json")
    assert ledger.read(obj) == envs
    assert ledger.append_batch("executions", []) == []
    assert len(all_keys(store)) == 1


BAD_BATCHES: dict[str, Callable[[], Any]] = {
    "not a list": lambda: "events",
    "item not object": lambda: [{"type": MAT, "payload": {"asset": "a.b"}}, 7],
    "no type": lambda: [{"type": MAT, "payload": {"asset": "a.b"}}, {"payload": {}}],
    "unknown field": lambda: [{"type": MAT, "payload": {"asset": "a.b"}, "colour": 1}],
    "bad occurred_at": lambda: [{"type": MAT, "payload": {"asset": "a.b"}, "occurred_at": "x"}],
    "naive occurred_at": lambda: [
        {"type": MAT, "payload": {"asset": "a.b"}, "occurred_at": "2024-01-01T00:00:00"}
    ],
    "last invalid": lambda: (
        [{"type": MAT, "payload": {"asset": f"a.t{i}"}} for i in range(50)]
        + [{"type": MAT, "payload": {"asset": ""}}]
    ),
    "too many": lambda: [{"type": MAT, "payload": {"asset": "a.b"}}] * (MAX_BATCH_EVENTS + 1),
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_batch_append_is_all_or_nothing(case: str, store: ObjectStore, ledger: Ledger) -> None:
    with pytest.raises(InvalidEventError):
        ledger.append_batch("executions", BAD_BATCHES[case]())
    assert all_keys(store) == []


def test_batch_error_names_the_event(ledger: Ledger) -> None:
    events = [{"type": MAT, "payload": {"asset": "a.b"}}] * 3 + [{"type": MAT, "payload": {}}]
    with pytest.raises(InvalidEventError, match="event 3"):
        ledger.append_batch("executions", events)


def test_tail_returns_the_newest_events_in_order(ledger: Ledger) -> None:
    first = [ledger.append("executions", MAT, {"asset": f"a.t{i}"}) for i in range(5)]
    batch = ledger.append_batch(
        "executions", [{"type": MAT, "payload": {"asset": f"b.t{i}"}} for i in range(3)]
    )
    everything = sorted([*first, *batch], key=lambda e: e.event_id)
    assert ledger.tail("executions", limit=100) == everything
    assert ledger.tail("executions", limit=4) == everything[-4:]
    assert ledger.tail("lineage") == []
