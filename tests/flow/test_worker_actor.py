"""A run executed by a run worker records who queued it as the actor of its events."""

from __future__ import annotations

import getpass
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from arco.core import Scope
from arco.core.actor import acting_as
from arco.core.storage import open_store
from arco.flow.definitions import load_definitions
from arco.flow.executors import InlineExecutor
from arco.flow.planner import plan
from arco.flow.queue import enqueue, load_request
from arco.flow.worker import RunWorker
from arco.ledger.log import Ledger

HERE = Path(__file__).resolve().parent
SCOPE = Scope("acme", "main")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ARCO_TEST_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("ARCO_TEST_SLOW", "0")
    monkeypatch.syspath_prepend(str(HERE))
    sys.modules.pop("workerassets", None)
    yield tmp_path
    sys.modules.pop("workerassets", None)


def test_worker_events_carry_the_actor_who_queued_the_run(state: Path) -> None:
    assert os.environ["ARCO_TEST_SLOW"] == "0"
    url = f"memory://{uuid.uuid4().hex}"
    store = open_store(url)
    defs = load_definitions("workerassets", path=HERE)
    with acting_as("alice"):  # e.g. an API request with a token whose subject is alice
        request = enqueue(store, SCOPE, plan(defs, "+w.second"))
    assert load_request(store, SCOPE, request.run_id).requested_by == "alice"
    # Queued without a name, a run is requested by the OS user who queued it.
    assert enqueue(store, SCOPE, plan(defs, "w.first")).requested_by == getpass.getuser()

    with acting_as("worker-bot"):  # whoever runs the worker process is not the actor
        worker = RunWorker(store, SCOPE, defs, store_url=url, executor=InlineExecutor)
        handled = worker.poll_once()
    assert request.run_id in handled
    ledger = Ledger(store, SCOPE)
    events = [e for obj in ledger.list_objects("executions") for e in ledger.read(obj)]
    mine = [e for e in events if e.payload.get("run_id") == request.run_id]
    assert {e.event_type for e in mine} >= {"run.created", "task.state_changed"}
    assert {e.actor for e in mine} == {"alice"}
