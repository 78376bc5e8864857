"""OpenLineage ingest's fast path: validated once, encoded once, group-committed.

The payload :func:`normalise` builds is not validated again when it is appended, so
these tests hold it to the registry's model (what the compactor checks), show that
events stored before the change (``openlineage.event`` v1, with ``raw`` as a parsed
tree) still fold, and that concurrent requests share ledger objects without an
acknowledged event ever missing.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from arco.core import ObjectStore
from arco.core.errors import StorageError
from arco.core.storage.faults import FaultInjectingStore
from arco.ledger.compactor import Compactor
from arco.ledger.events import REGISTRY, Envelope, InvalidEventError
from arco.ledger.log import Ledger, decode_object
from arco.openlineage.ingest import (
    EVENT_TYPE,
    EVENT_VERSION,
    GroupWriter,
    encode,
    ingest,
    normalise,
    prepare,
)
from arco.openlineage.mapping import OpenLineageConfig
from arco.openlineage.schema import InvalidOpenLineageEventError

from ._support import SCOPE, memory_store

PRODUCER = "https://example.test/ingest"
MAPPER = OpenLineageConfig().mapper(SCOPE)


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": PRODUCER, **fields}


def run_event(i: int, etype: str = "COMPLETE", **extra: Any) -> dict[str, Any]:
    return {
        "eventType": etype,
        "eventTime": f"2026-03-01T12:00:{i % 60:02d}.{i % 1000:03d}+01:00",
        "producer": PRODUCER,
        "schemaURL": PRODUCER,
        "run": {
            "runId": str(uuid.UUID(int=i + 1)),
            "facets": {
                "parent": _facet(
                    run={"runId": str(uuid.UUID(int=10**9 + i))},
                    job={"namespace": "airflow", "name": "dag"},
                ),
                "errorMessage": _facet(message="boom", programmingLanguage="python"),
            },
        },
        "job": {"namespace": "airflow", "name": f"dag.task_{i}"},
        "inputs": [{"namespace": "pg", "name": f"raw.t{i}"}, {"namespace": "pg", "name": "x"}],
        "outputs": [
            {
                "namespace": "pg",
                "name": f"mart.t{i}",
                "facets": {
                    "schema": _facet(fields=[{"name": "id", "type": "INT"}, {"name": "v"}]),
                    "columnLineage": _facet(
                        fields={
                            "id": {
                                "inputFields": [
                                    {"namespace": "pg", "name": f"raw.t{i}", "field": "id"}
                                ],
                                "transformationType": "IDENTITY",
                            }
                        }
                    ),
                },
                "outputFacets": {"outputStatistics": _facet(rowCount=42)},
            }
        ],
        **extra,
    }


EVENTS = [
    run_event(1),
    run_event(2, "START"),
    {
        "eventTime": "2026-03-01T12:00:00Z",
        "producer": PRODUCER,
        "schemaURL": PRODUCER,
        "job": {"namespace": "dbt", "name": "model.a"},
        "inputs": [{"namespace": "pg", "name": "raw.a"}],
        "outputs": [{"namespace": "pg", "name": "mart.a"}],
    },
    {
        "eventTime": "2026-03-01T12:00:00Z",
        "producer": PRODUCER,
        "schemaURL": PRODUCER,
        "dataset": {
            "namespace": "s3://bucket",
            "name": "raw/clicks",
            "facets": {"schema": _facet(fields=[{"name": "ts", "type": "timestamp"}])},
        },
    },
]


@pytest.mark.parametrize("raw", EVENTS, ids=["run", "run-start", "job", "dataset"])
def test_the_payload_built_at_ingest_is_what_the_registry_would_validate(raw: Any) -> None:
    # Ingest skips the registry; the compactor does not. A payload the model would
    # change (or refuse) would fold differently from what was acknowledged, or be
    # quarantined with its whole batch.
    payload = normalise(raw, MAPPER).payload
    latest = REGISTRY.get(EVENT_TYPE).latest
    assert latest == EVENT_VERSION
    assert REGISTRY.validate("lineage", EVENT_TYPE, latest, payload) == payload
    assert json.loads(payload["raw_json"]) == raw


def test_each_event_is_encoded_once_and_stored_compact() -> None:
    store = memory_store()
    envelopes = ingest(Ledger(store, SCOPE), [run_event(i) for i in range(3)], MAPPER)
    [meta] = list(store.list(""))
    data, _ = store.get(meta.key)
    assert meta.key.endswith(".batch.json")
    stored = decode_object(data, True)
    assert [e.to_dict() for e in stored] == [e.to_dict() for e in envelopes]
    assert b": " not in data
    assert b", " not in data
    assert all(e.event_version == EVENT_VERSION for e in stored)


def test_an_event_too_big_with_its_text_keeps_the_normalised_fields() -> None:
    store = memory_store()
    big = run_event(1)
    big["job"]["facets"] = {"notes": _facet(text="x" * 200_000)}
    [env] = ingest(Ledger(store, SCOPE), [big], MAPPER)
    assert env.payload["raw_json"] is None
    [stored] = decode_object(store.get(next(iter(store.list(""))).key)[0], False)
    assert stored.payload["raw_json"] is None
    assert stored.payload["run_id"] == env.payload["run_id"]


def test_prepared_envelopes_are_still_checked_for_domain_and_size() -> None:
    store = memory_store()
    ledger = Ledger(store, SCOPE)
    [env] = prepare([run_event(1)], MAPPER)
    with pytest.raises(InvalidEventError, match="not of domain"):
        ledger.append_prepared("executions", [env])
    huge = Envelope(**{**env.__dict__, "payload": {**env.payload, "error_message": "x" * 300_000}})
    with pytest.raises(InvalidEventError, match="limit"):
        ledger.append_prepared("lineage", [env, huge])
    assert list(store.list("")) == []


def test_a_v1_event_with_a_parsed_raw_copy_still_folds() -> None:
    # Ledgers written before v2 hold ``raw`` as a tree; they must fold the same.
    store = memory_store()
    ledger = Ledger(store, SCOPE)
    v2 = normalise(run_event(7), MAPPER).payload
    v1 = {k: v for k, v in v2.items() if k != "raw_json"}
    v1["raw"] = run_event(7)
    ledger.append("lineage", EVENT_TYPE, v1, version=1, occurred_at=datetime.now(UTC))
    assert REGISTRY.upcast(EVENT_TYPE, 1, v1)["raw_json"] == json.dumps(
        run_event(7), separators=(",", ":"), ensure_ascii=False
    )
    report = Compactor(store, SCOPE).compact("lineage")
    assert (report.events, report.quarantined) == (1, 0)
    snap = Compactor(store, SCOPE).domain_store("lineage").read(max_staleness=0)
    [run] = snap.state.rows("external_runs")
    assert run["run_id"] == v2["run_id"]
    assert run["state"] == "COMPLETE"


def _ledger_objects(store: ObjectStore) -> list[list[Envelope]]:
    return [
        decode_object(store.get(m.key)[0], m.key.endswith(".batch.json"))
        for m in store.list("")
        if "/ledger/" in f"/{m.key}"
    ]


def test_concurrent_requests_share_ledger_objects_and_all_are_written() -> None:
    store = memory_store()
    ledger = Ledger(store, SCOPE)
    writer = GroupWriter(ledger)
    requests = [prepare([run_event(i)], MAPPER) for i in range(20)]

    async def main() -> None:
        await asyncio.gather(*(writer.write(encode(ledger, envs)) for envs in requests))

    asyncio.run(main())
    objects = _ledger_objects(store)
    # The first request is written at once; the other 19 arrive while it is in
    # flight and share the next object.
    assert len(objects) <= 2
    written = sorted(e.event_id for obj in objects for e in obj)
    assert written == sorted(envs[0].event_id for envs in requests)
    report = Compactor(store, SCOPE).compact("lineage")
    assert (report.events, report.duplicates, report.quarantined) == (20, 0, 0)


def test_a_failed_group_write_fails_every_request_of_the_group_and_writes_nothing() -> None:
    faulty = FaultInjectingStore(memory_store())
    ledger = Ledger(faulty, SCOPE)
    writer = GroupWriter(ledger)
    faulty.arm("fail", op="put", times=1)
    requests = [prepare([run_event(i)], MAPPER) for i in range(5)]

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(writer.write(encode(ledger, envs)) for envs in requests), return_exceptions=True
        )

    results = asyncio.run(main())
    failed = [r for r in results if isinstance(r, StorageError)]
    assert failed
    assert all(r is None or isinstance(r, StorageError) for r in results)
    written = {e.event_id for obj in _ledger_objects(faulty.inner) for e in obj}
    # Whoever was acknowledged is in the ledger; whoever got the error is not.
    for envs, result in zip(requests, results, strict=True):
        assert (envs[0].event_id in written) == (result is None)
    # The writer recovers: the next request is written.
    more = prepare([run_event(99)], MAPPER)
    asyncio.run(writer.write(encode(ledger, more)))
    assert more[0].event_id in {e.event_id for obj in _ledger_objects(faulty.inner) for e in obj}


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("field", ["inputs", "column_edges", "error_message", "raw_json"])
def test_a_deep_payload_is_refused_without_the_depth_walk(field: str) -> None:
    # openlineage.event v2 skips the registry's depth walk (FIXED_DEPTH): its shape
    # must refuse a deeply nested value anywhere, as a typed error, never a crash.
    payload = normalise(run_event(1), MAPPER).payload
    with pytest.raises(InvalidEventError, match=f"at {field}"):
        REGISTRY.validate("lineage", EVENT_TYPE, EVENT_VERSION, {**payload, field: _nested(5000)})


def test_fixed_depth_models_hold_no_free_form_json() -> None:
    # What FIXED_DEPTH promises, checked on the model itself: every field, at any
    # nesting, has a concrete type (no Any, no dict of anything, no self-reference).
    from arco.ledger.external_lineage import OpenLineageEventV2

    text = json.dumps(OpenLineageEventV2.model_json_schema())
    schema = OpenLineageEventV2.model_json_schema()
    assert "additionalProperties" not in text.replace('"additionalProperties": false', "")
    for name, definition in schema.get("$defs", {}).items():
        assert f'"#/$defs/{name}"' not in json.dumps(definition), name

    def typed(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                for sub in node["properties"].values():
                    assert any(k in sub for k in ("type", "$ref", "anyOf", "enum", "const")), sub
            for value in node.values():
                typed(value)
        elif isinstance(node, list):
            for value in node:
                typed(value)

    typed(schema)


# The compactor's fast path (ADR 013): objects in the route's exact shape are decoded
# and validated in one pydantic-core call and folded from dicts. It must fold exactly
# what the general path folds and refuse everything the models refuse.


def _lineage_state(store: ObjectStore) -> dict[str, list[dict[str, Any]]]:
    snap = Compactor(store, SCOPE).domain_store("lineage").read(max_staleness=0)
    return {
        t: sorted(snap.state.rows(t), key=repr)
        for t in ("external_runs", "datasets", "edges", "column_edges", "event_keys")
    }


def _mixed_ledger(store: ObjectStore) -> None:
    ledger = Ledger(store, SCOPE)
    ingest(
        ledger, [run_event(i, etype) for i in range(6) for etype in ("START", "COMPLETE")], MAPPER
    )
    ingest(ledger, EVENTS, MAPPER)
    ingest(ledger, [run_event(3, "FAIL")], MAPPER)  # a single-event object
    ingest(ledger, [run_event(1), run_event(2, "START")], MAPPER)  # duplicates


def test_the_fast_path_folds_what_the_general_path_folds() -> None:
    fast_store, slow_store = memory_store(), memory_store()
    _mixed_ledger(fast_store)
    for m in fast_store.list(""):
        slow_store.put(m.key, fast_store.get(m.key)[0], "create")
    fast = Compactor(fast_store, SCOPE).compact("lineage")
    slow_compactor = Compactor(slow_store, SCOPE)
    slow_compactor._fast_domain = None  # the general path: envelopes, models, upcast
    slow = slow_compactor.compact("lineage")
    assert (fast.events, fast.duplicates, fast.quarantined) == (15, 4, 0)
    assert (slow.events, slow.duplicates, slow.quarantined) == (15, 4, 0)
    state = _lineage_state(fast_store)
    assert state == _lineage_state(slow_store)
    assert len(state["external_runs"]) == 6
    assert len(state["column_edges"]) == 6
    assert {r["state"] for r in state["external_runs"]} == {"COMPLETE", "FAIL"}


def _trusted_batch(**changes: Any) -> bytes:
    envelopes = prepare([run_event(1), run_event(2)], MAPPER)
    docs = [e.to_dict() for e in envelopes]
    docs[1]["payload"].update(changes)
    return json.dumps({"events": docs}).encode()


@pytest.mark.parametrize(
    "changes",
    [
        {
            "outputs": [
                {
                    "namespace": "pg",
                    "name": "m",
                    "qualified_name": "bad name!",
                    "schema": None,
                    "row_count": None,
                }
            ]
        },
        {
            "column_edges": [
                {
                    "source": "a.b",
                    "source_column": "",
                    "target": "c.d",
                    "target_column": "x",
                    "transformation": None,
                }
            ]
        },
        {"run_id": "x" * 65},
        {"kind": "other"},
        {"event_time": "yesterday"},
        {
            "inputs": [
                {
                    "namespace": "pg",
                    "name": "t",
                    "qualified_name": None,
                    "schema": None,
                    "row_count": -1,
                }
            ]
        },
    ],
    ids=["qualified-name", "empty-column", "long-run-id", "kind", "event-time", "row-count"],
)
def test_an_object_the_models_refuse_is_quarantined_whole_not_folded(
    changes: dict[str, Any],
) -> None:
    from arco.ledger.external_lineage import decode_fast

    data = _trusted_batch(**changes)
    assert decode_fast(data, True) is None
    store = memory_store()
    Ledger(store, SCOPE).write_encoded(
        "lineage", [(e["event_id"], json.dumps(e).encode()) for e in json.loads(data)["events"]]
    )
    report = Compactor(store, SCOPE).compact("lineage")
    assert (report.events, report.quarantined) == (0, 1)
    assert _lineage_state(store)["external_runs"] == []


def test_other_shapes_take_the_general_path_and_still_fold() -> None:
    from arco.ledger.external_lineage import decode_fast

    # Lax JSON types (a float row count), a missing optional key and an unknown
    # envelope key are not the route's shape, but the models accept them.
    envelopes = prepare([run_event(1), run_event(2)], MAPPER)
    docs = [e.to_dict() for e in envelopes]
    docs[0]["payload"]["outputs"][0]["row_count"] = 42.0
    del docs[1]["payload"]["raw_json"]
    docs[1]["written_by"] = "an older writer"
    store = memory_store()
    Ledger(store, SCOPE).write_encoded(
        "lineage", [(d["event_id"], json.dumps(d).encode()) for d in docs]
    )
    [key] = [m.key for m in store.list("") if m.key.endswith(".batch.json")]
    assert decode_fast(store.get(key)[0], True) is None
    report = Compactor(store, SCOPE).compact("lineage")
    assert (report.events, report.quarantined) == (2, 0)
    datasets = {r["name"]: r for r in _lineage_state(store)["datasets"]}
    assert datasets["mart.t1"]["row_count"] == 42


def test_text_that_is_not_unicode_never_reaches_the_ledger_on_any_path() -> None:
    """Stored, a lone surrogate is JSON the compactor refuses: its object would go to
    quarantine with every event in it. Each write path refuses it, naming the field."""
    store = memory_store()
    ledger = Ledger(store, SCOPE)
    bad = run_event(3, "FAIL")
    bad["run"]["facets"]["errorMessage"] = _facet(message="a \ud800 b", programmingLanguage="py")
    with pytest.raises(InvalidOpenLineageEventError, match=r"events\[1\]\.run\.facets\.error"):
        ingest(ledger, [run_event(4), bad], MAPPER)
    [env] = prepare([run_event(5)], MAPPER)
    poisoned = Envelope(**{**env.__dict__, "payload": {**env.payload, "job_name": "\udc80"}})
    with pytest.raises(InvalidEventError, match=r"event 1: field payload\.job_name"):
        ledger.append_prepared("lineage", [env, poisoned])
    with pytest.raises(InvalidEventError, match=r"at asset"):
        ledger.append("executions", "materialization.recorded", {"asset": "a\ud800"})
    assert list(store.list("")) == []
    # Text UTF-8 can hold goes through every path, astral characters included.
    good = run_event(6, "FAIL")
    good["run"]["facets"]["errorMessage"] = _facet(message="Größe 😀", programmingLanguage="py")
    ingest(ledger, [good], MAPPER)
    ledger.append("executions", "materialization.recorded", {"asset": "a.größe😀"})
    assert Compactor(store, SCOPE).compact("lineage").events == 1
    snap = Compactor(store, SCOPE).domain_store("lineage").read(max_staleness=0)
    assert [r["error_message"] for r in snap.state.rows("external_runs")] == ["Größe 😀"]
