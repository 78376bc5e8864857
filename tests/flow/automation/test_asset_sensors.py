"""Asset sensors fire on Arco's own materializations and on external OpenLineage runs."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from arco.core.storage import ObjectStore
from arco.flow.automation.config import build
from arco.flow.automation.tick import Automation
from arco.flow.definitions import Definitions, load_definitions
from arco.ledger.compactor import Compactor
from arco.ledger.log import Ledger
from arco.openlineage.ingest import ingest
from arco.openlineage.mapping import OpenLineageConfig

from .conftest import HERE, SCOPE

T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)
PRODUCER = "https://example.com/dbt"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


@pytest.fixture
def ol_defs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Definitions]:
    monkeypatch.syspath_prepend(str(HERE))
    sys.modules.pop("olassets", None)
    yield load_definitions("olassets", path=HERE)
    sys.modules.pop("olassets", None)


def _auto(store: ObjectStore, defs: Definitions) -> Automation:
    auto = build(store, SCOPE, defs)
    auto.schedules = {}
    return auto


def _run_event(run_id: str, state: str, outputs: list[str], when: datetime) -> dict[str, Any]:
    return {
        "eventType": state,
        "eventTime": when.isoformat(),
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
        "run": {"runId": run_id},
        "job": {"namespace": "dbt", "name": "shop.orders"},
        "inputs": [],
        "outputs": [{"namespace": "postgres://db", "name": n} for n in outputs],
    }


def _emit(store: ObjectStore, *events: dict[str, Any]) -> None:
    ingest(Ledger(store, SCOPE), list(events), OpenLineageConfig().mapper(SCOPE))


def _launched(auto: Automation, when: datetime) -> list[Any]:
    return list(auto.tick(when).launched)


@pytest.mark.parametrize("compact_first", [False, True])
def test_a_completed_external_run_that_writes_the_watched_table_fires_the_sensor(
    store: ObjectStore, ol_defs: Definitions, compact_first: bool
) -> None:
    seen = sys.modules["olassets"].SEEN
    auto = _auto(store, ol_defs)
    assert _launched(auto, T0) == []  # the first evaluation starts from now
    run_id = str(uuid.uuid4())
    _emit(store, _run_event(run_id, "START", ["shop.orders"], T0))
    assert _launched(auto, T0 + timedelta(seconds=10 * 1)) == []  # started, not finished
    _emit(store, _run_event(run_id, "COMPLETE", ["shop.orders"], T0 + timedelta(seconds=10 * 2)))
    if compact_first:
        Compactor(store, SCOPE).compact("lineage")

    launched = _launched(auto, T0 + timedelta(seconds=10 * 3))

    assert len(launched) == 1
    assert seen[-1][0]["asset"] == "shop.orders"
    assert seen[-1][0]["run_id"] == run_id
    assert seen[-1][0]["source"] == "openlineage"
    # Nothing new: the cursor moved past that run.
    assert _launched(auto, T0 + timedelta(seconds=10 * 4)) == []


def test_failed_external_runs_and_other_tables_do_not_fire(
    store: ObjectStore, ol_defs: Definitions
) -> None:
    auto = _auto(store, ol_defs)
    _launched(auto, T0)
    failed, other = str(uuid.uuid4()), str(uuid.uuid4())
    _emit(store, _run_event(failed, "FAIL", ["shop.orders"], T0))
    _emit(store, _run_event(other, "COMPLETE", ["shop.customers"], T0))
    assert _launched(auto, T0 + timedelta(seconds=10 * 1)) == []


def test_arco_and_external_materializations_share_one_cursor(
    store: ObjectStore, ol_defs: Definitions
) -> None:
    seen = sys.modules["olassets"].SEEN
    auto = _auto(store, ol_defs)
    _launched(auto, T0)
    Ledger(store, SCOPE).append("executions", "materialization.recorded", {"asset": "shop.orders"})
    run_id = str(uuid.uuid4())
    _emit(store, _run_event(run_id, "COMPLETE", ["shop.orders"], T0))

    assert len(_launched(auto, T0 + timedelta(seconds=10 * 1))) == 1
    assert [m.get("source", "arco") for m in seen[-1]] == ["arco", "openlineage"]
    assert _launched(auto, T0 + timedelta(seconds=10 * 2)) == []
