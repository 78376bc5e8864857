"""OpenLineage ingest: real emitters against a real server, validation, idempotency.

openlineage-python's own ``HttpTransport`` posts events to a uvicorn server; the
compactor folds them into external runs, datasets, edges and column edges.
"""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    error_message_run,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
)
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpConfig,
    HttpTransport,
)

from .conftest import PROBLEM_JSON, LiveServer, Tokens

PRODUCER = "https://example.test/arco-tests"
NS = "postgres://db.example:5432"


def _client(server: LiveServer, token: str) -> Any:
    config = HttpConfig(
        url=server.base_url, auth=ApiKeyTokenProvider({"apiKey": token}), timeout=10.0
    )
    return OpenLineageClient(transport=HttpTransport(config))


def _schema(*cols: tuple[str, str]) -> Any:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in cols]
    )


def _event(
    state: Any,
    run_id: str,
    when: datetime,
    *,
    job: str = "etl.orders",
    inputs: list[Any] | None = None,
    outputs: list[Any] | None = None,
    run_facets: dict[str, Any] | None = None,
) -> Any:
    return RunEvent(
        eventType=state,
        eventTime=when.isoformat(),
        run=Run(runId=run_id, facets=run_facets or {}),
        job=Job(namespace="airflow-prod", name=job),
        producer=PRODUCER,
        inputs=inputs or [],
        outputs=outputs or [],
    )


def _compact(server: LiveServer, headers: dict[str, str]) -> dict[str, Any]:
    r = httpx.post(
        server.base_url + "/api/v1/compaction", json={"domain": "lineage"}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()["reports"][0]  # type: ignore[no-any-return]


def test_openlineage_python_http_transport_runs_datasets_edges_columns(
    live_server: LiveServer,
) -> None:
    tenant = f"ol{uuid.uuid4().hex[:10]}"
    token = live_server.tokens(tenant=tenant, workspace="main", roles=["writer"])
    headers = {"Authorization": f"Bearer {token}"}
    client = _client(live_server, token)
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    parent_id = str(uuid.uuid4())
    ok_id, bad_id = str(uuid.uuid4()), str(uuid.uuid4())
    parent_facet = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent_id),
        job=parent_run.Job(namespace="airflow-prod", name="etl"),
    )
    orders_in = InputDataset(
        namespace=NS,
        name="shop.public.orders",
        facets={"schema": _schema(("id", "INTEGER"), ("amount", "NUMERIC"))},
    )
    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "total": column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=NS,
                        name="shop.public.orders",
                        field="amount",
                        transformations=[
                            column_lineage_dataset.Transformation(
                                type="DIRECT", subtype="AGGREGATION"
                            )
                        ],
                    )
                ]
            )
        }
    )
    revenue_out = OutputDataset(
        namespace=NS,
        name="shop.marts.revenue",
        facets={"schema": _schema(("total", "NUMERIC")), "columnLineage": lineage},
        outputFacets={
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=42
            )
        },
    )
    client.emit(_event(RunState.START, parent_id, t0, job="etl"))
    client.emit(_event(RunState.START, ok_id, t0, run_facets={"parent": parent_facet}))
    complete = _event(
        RunState.COMPLETE,
        ok_id,
        t0 + timedelta(seconds=5),
        inputs=[orders_in],
        outputs=[revenue_out],
        run_facets={"parent": parent_facet},
    )
    client.emit(complete)
    client.emit(_event(RunState.START, bad_id, t0, job="etl.refunds"))
    client.emit(
        _event(
            RunState.FAIL,
            bad_id,
            t0 + timedelta(seconds=2),
            job="etl.refunds",
            inputs=[orders_in],
            run_facets={
                "errorMessage": error_message_run.ErrorMessageRunFacet(
                    message="division by zero", programmingLanguage="python"
                )
            },
        )
    )
    client.emit(_event(RunState.COMPLETE, parent_id, t0 + timedelta(seconds=9), job="etl"))
    report = _compact(live_server, headers)
    assert report["events"] == 6
    assert report["duplicates"] == 0

    runs = httpx.get(live_server.base_url + "/api/v1/openlineage/runs", headers=headers).json()
    by_id = {r["run_id"]: r for r in runs["items"]}
    assert by_id[ok_id]["state"] == "COMPLETE"
    assert by_id[ok_id]["parent_run_id"] == parent_id
    assert by_id[ok_id]["job_name"] == "etl.orders"
    assert by_id[ok_id]["started_at"].startswith("2026-03-01T12:00:00")
    assert by_id[ok_id]["finished_at"].startswith("2026-03-01T12:00:05")
    assert by_id[bad_id]["state"] == "FAIL"
    assert by_id[bad_id]["error_message"] == "division by zero"
    assert by_id[parent_id]["state"] == "COMPLETE"

    edges = httpx.get(live_server.base_url + "/api/v1/lineage/edges", headers=headers).json()
    pairs = {(e["source"], e["target"]) for e in edges["items"]}
    assert pairs == {("shop.public.orders", "shop.marts.revenue")}
    assert edges["items"][0]["run_id"] == ok_id

    cols = httpx.get(
        live_server.base_url + "/api/v1/lineage/shop.marts.revenue/columns", headers=headers
    ).json()
    assert cols["columns"][0]["column"] == "total"
    up = cols["columns"][0]["upstream"][0]
    assert (up["source"], up["source_column"]) == ("shop.public.orders", "amount")
    assert up["transformation"] == "DIRECT/AGGREGATION"

    ds = httpx.get(live_server.base_url + "/api/v1/openlineage/datasets", headers=headers).json()
    by_name = {d["name"]: d for d in ds["items"]}
    assert by_name["shop.marts.revenue"]["row_count"] == 42
    assert by_name["shop.marts.revenue"]["registered"] is False  # not in the catalog
    assert by_name["shop.public.orders"]["schema"] == [
        {"name": "id", "type": "INTEGER"},
        {"name": "amount", "type": "NUMERIC"},
    ]

    cov = httpx.get(live_server.base_url + "/api/v1/lineage-coverage", headers=headers).json()
    by_source = {c["source"]: c for c in cov["items"]}
    # The parent run "etl" named no dataset; the two task runs did.
    assert (by_source["openlineage"]["finished"], by_source["openlineage"]["with_io"]) == (3, 2)
    assert by_source["arco"]["finished"] == 0
    assert by_source["arco"]["share"] is None

    # Re-sent events change nothing: same run id + eventType + eventTime.
    client.emit(complete)
    again = _compact(live_server, headers)
    assert (again["events"], again["duplicates"]) == (0, 1)
    runs2 = httpx.get(live_server.base_url + "/api/v1/openlineage/runs", headers=headers).json()
    assert runs2 == runs
    edges2 = httpx.get(live_server.base_url + "/api/v1/lineage/edges", headers=headers).json()
    assert edges2 == edges

    # Another tenant sees none of it.
    other = live_server.tokens.headers(tenant=f"{tenant}x", workspace="main")
    assert (
        httpx.get(live_server.base_url + "/api/v1/openlineage/runs", headers=other).json()["items"]
        == []
    )


def _raw_event(**over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventType": "START",
        "eventTime": "2026-03-01T12:00:00.000Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "n", "name": "j"},
    }
    event.update(over)
    return event


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e["run"].update(runId="not-a-uuid"), "run.runId"),
        (lambda e: e.pop("eventTime"), "eventTime"),
        (lambda e: e.update(eventTime="2026-03-01T12:00:00"), "eventTime"),
        (lambda e: e.update(eventType="DONE"), "eventType"),
        (lambda e: e.pop("schemaURL"), "schemaURL"),
        (lambda e: e["job"].pop("name"), "job.name"),
        (
            lambda e: e.update(inputs=[{"namespace": "n", "name": "t", "facets": {"x": {}}}]),
            "inputs[0].facets.x._producer",
        ),
        (
            lambda e: e.update(
                outputs=[
                    {
                        "namespace": "n",
                        "name": "t",
                        "facets": {
                            "schema": {
                                "_producer": PRODUCER,
                                "_schemaURL": PRODUCER,
                                "fields": [{}],
                            }
                        },
                    }
                ]
            ),
            "outputs[0].facets.schema.fields[0].name",
        ),
    ],
)
def test_invalid_events_get_a_400_naming_the_field(
    client: TestClient, tokens: Tokens, mutate: Any, field: str
) -> None:
    event = _raw_event()
    mutate(event)
    r = client.post("/api/v1/lineage", json=event, headers=tokens.headers())
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert r.json()["detail"].startswith(field + ":"), r.json()
    # Nothing was written.
    assert client.get("/api/v1/events/lineage", headers=tokens.headers()).json() == []


def test_text_that_is_not_unicode_is_refused_naming_the_field(
    client: TestClient, tokens: Tokens
) -> None:
    """A lone surrogate escape (JSON ``"\\ud800"``) is valid JSON but not Unicode text.
    Accepted, it reached the ledger, and the compactor quarantined its whole ledger
    object: with group commit, other clients' acknowledged events with it."""
    h = {**tokens.headers(), "Content-Type": "application/json"}

    def failing(message: str) -> dict[str, Any]:
        facet = {
            "_producer": PRODUCER,
            "_schemaURL": PRODUCER,
            "message": message,
            "programmingLanguage": "python",
        }
        return _raw_event(
            eventType="FAIL", run={"runId": str(uuid.uuid4()), "facets": {"errorMessage": facet}}
        )

    field = "run.facets.errorMessage.message"
    for body in (json.dumps(failing("bad \ud800 text")), json.dumps(failing("\udfff"))):
        r = client.post("/api/v1/lineage", content=body, headers=h)
        assert r.status_code == 400, r.text
        assert r.json()["detail"].startswith(f"{field}: text that is not valid Unicode")
    batch = json.dumps([_raw_event(), failing("x\ud800")])
    r = client.post("/api/v1/lineage", content=batch, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(f"events[1].{field}:")
    assert client.get("/api/v1/events/lineage", headers=h).json() == []
    # A surrogate pair is one character (an emoji), escaped or not: accepted as is.
    for body in (
        json.dumps(failing("ok \U0001f600")),
        json.dumps(failing("ok \U0001f600"), ensure_ascii=False),
    ):
        assert client.post("/api/v1/lineage", content=body.encode(), headers=h).status_code == 201
    stored = client.get("/api/v1/events/lineage", headers=h).json()
    assert [e["payload"]["error_message"] for e in stored] == ["ok \U0001f600"] * 2


def test_batch_gzip_and_all_or_nothing(client: TestClient, tokens: Tokens) -> None:
    h = tokens.headers()
    good = [_raw_event(), _raw_event(eventType="COMPLETE")]
    body = gzip.compress(json.dumps(good).encode())
    r = client.post(
        "/api/v1/lineage",
        content=body,
        headers={**h, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == 2
    bad = [_raw_event(), _raw_event(run={"runId": "x"})]
    r = client.post("/api/v1/lineage", json={"events": bad}, headers=h)
    assert r.status_code == 400
    assert r.json()["detail"].startswith("events[1].run.runId:")
    assert len(client.get("/api/v1/events/lineage", headers=h).json()) == 2
    # Auth: no token, 401; a reader may not ingest.
    assert client.post("/api/v1/lineage", json=good[0]).status_code == 401
    reader = tokens.headers(roles=["reader"])
    assert client.post("/api/v1/lineage", json=good[0], headers=reader).status_code == 403


def test_each_event_keeps_its_text_as_received(client: TestClient, tokens: Tokens) -> None:
    h = {**tokens.headers(), "Content-Type": "application/json"}
    one = _raw_event(job={"namespace": "airflow", "name": "étl.orders"})
    # A single event: its body, as sent (pretty-printed, non-ASCII, a BOM, gzipped).
    text = json.dumps(one, indent=2, ensure_ascii=False)
    sent = gzip.compress(("\ufeff" + text + "\n").encode())
    r = client.post("/api/v1/lineage", content=sent, headers={**h, "Content-Encoding": "gzip"})
    assert r.status_code == 201, r.text
    # A batch: each event's own JSON.
    two = [_raw_event(eventType="COMPLETE"), _raw_event(eventType="FAIL")]
    assert client.post("/api/v1/lineage", json=two, headers=h).status_code == 201
    stored = client.get("/api/v1/events/lineage?limit=10", headers=h).json()
    texts = [e["payload"]["raw_json"] for e in stored]
    assert texts[0] == text
    assert [json.loads(t) for t in texts] == [one, *two]


def test_dataset_and_job_events(client: TestClient, tokens: Tokens) -> None:
    h = tokens.headers()
    dataset_event = {
        "eventTime": "2026-03-01T12:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": "s3://bucket", "name": "raw/events/clicks"},
    }
    job_event = {
        "eventTime": "2026-03-01T12:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "spark", "name": "sessionize"},
        "inputs": [{"namespace": "s3://bucket", "name": "raw/events/clicks"}],
        "outputs": [{"namespace": "s3://bucket", "name": "curated/sessions"}],
    }
    assert (
        client.post("/api/v1/lineage", json=[dataset_event, job_event], headers=h).status_code
        == 201
    )
    assert (
        client.post("/api/v1/compaction", json={"domain": "lineage"}, headers=h).status_code == 200
    )
    edges = client.get("/api/v1/lineage/edges", headers=h).json()["items"]
    assert [(e["source"], e["target"]) for e in edges] == [
        ("raw.events.clicks", "curated.sessions")
    ]
    ds = client.get("/api/v1/openlineage/datasets?unknown=true", headers=h).json()["items"]
    assert {d["qualified_name"] for d in ds} == {"raw.events.clicks", "curated.sessions"}
    assert client.get("/api/v1/openlineage/runs", headers=h).json()["items"] == []
    # A filter that names no OpenLineage state is an error, not an empty page.
    bogus = client.get("/api/v1/openlineage/runs?state=BOGUS", headers=h)
    assert bogus.status_code == 400
    assert bogus.headers["content-type"].startswith("application/problem+json")
    assert "COMPLETE" in bogus.json()["detail"]
    assert client.get("/api/v1/openlineage/runs?state=fail", headers=h).status_code == 200


def test_mapping_rules_and_their_errors() -> None:
    from arco.core import Scope
    from arco.core.errors import InvalidArgumentError
    from arco.openlineage.mapping import OpenLineageConfig

    config = OpenLineageConfig.from_section(
        {
            "mapping": [
                {"namespace": "duckdb://*", "strip": 1, "prefix": "dbt"},
                {"namespace": "file://*", "ignore": True},
            ]
        }
    )
    m = config.mapper(Scope("acme", "main"))
    assert m.map("duckdb:///x.duckdb", "shop.main.customers") == "dbt.main.customers"
    assert m.map("file:///tmp", "a/b") is None
    assert m.map("s3://bucket", "raw/events/clicks") == "raw.events.clicks"
    assert m.map("s3://bucket", "2024 data/orders.v1") == "_2024_data.orders.v1"
    assert m.map("pg", "orders") is None  # one segment: no namespace
    assert m.map("pg", "../../etc/passwd") == "etc.passwd"  # separators are never kept
    assert m.map("arco://acme/main", "sales.orders") == "sales.orders"
    assert m.map("arco://acme/main", "not valid!") is None
    for bad in (
        {"mapping": [{"strip": -1}]},
        {"mapping": [{"prefix": "a..b"}]},
        {"mapping": [{"nope": 1}]},
        {"unknown": 1},
    ):
        with pytest.raises(InvalidArgumentError):
            OpenLineageConfig.from_section(bad)


def test_auto_register_creates_tables_from_the_schema_facet(tmp_path: Any, tokens: Tokens) -> None:
    from .conftest import in_process_client, make_app

    config = tmp_path / "arco.toml"
    config.write_text("[openlineage]\nauto_register = true\n[[openlineage.mapping]]\nstrip = 1\n")
    facet = {
        "_producer": PRODUCER,
        "_schemaURL": PRODUCER,
        "fields": [
            {"name": "id", "type": "INTEGER"},
            {"name": "name", "type": "VARCHAR"},
            {"name": "geo", "type": "GEOGRAPHY"},
            {"name": "bad name"},
        ],
    }
    event = _raw_event(
        eventType="COMPLETE",
        outputs=[
            {"namespace": "duckdb://x", "name": "shop.main.customers", "facets": {"schema": facet}}
        ],
    )
    with in_process_client(make_app(openlineage_config=str(config))) as client:
        h = tokens.headers()
        assert client.post("/api/v1/lineage", json=event, headers=h).status_code == 201
        table = client.get("/api/v1/namespaces/main/tables/customers", headers=h)
        assert table.status_code == 200, table.text
        cols = [(c["name"], c["type"], c["description"]) for c in table.json()["columns"]]
        assert cols == [
            ("id", "int32", None),
            ("name", "string", None),
            ("geo", "string", "reported type: GEOGRAPHY"),
        ]
        # The second time the table exists: nothing changes, still accepted.
        again = client.post("/api/v1/lineage", json=event, headers=h)
        assert again.status_code == 201
