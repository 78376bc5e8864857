"""The API records the verified token's subject as the actor of every commit and event."""

from __future__ import annotations

import getpass

from fastapi import FastAPI
from fastapi.testclient import TestClient

from arco.core import Scope
from arco.ledger.compactor import tier2_store
from arco.ledger.log import Ledger

from .conftest import Tokens

API = "/api/v1"


def test_token_subject_is_the_actor_of_commits_and_events(
    app: FastAPI, client: TestClient, tokens: Tokens
) -> None:
    alice_token = tokens(sub="alice")
    alice = {"Authorization": f"Bearer {alice_token}"}
    bob = tokens.headers(sub="bob")
    assert client.post(f"{API}/namespaces", json={"name": "raw"}, headers=alice).status_code == 201
    r = client.post(
        f"{API}/namespaces/raw/tables",
        json={"name": "orders", "columns": [{"name": "id", "type": "long"}]},
        headers=bob,
    )
    assert r.status_code == 201, r.text

    history = client.get(f"{API}/catalog/history", headers=alice).json()
    assert [(h["version"], h["actor"]) for h in history] == [(2, "bob"), (1, "alice")]
    # The process that wrote is still there, apart from who asked for the write.
    assert all(h["writer"].count(":") >= 2 and h["writer"] != h["actor"] for h in history)

    run_created = {"type": "run.created", "payload": {"run_id": "r1", "seq": 0}}
    assert (
        client.post(f"{API}/events/executions", json=run_created, headers=alice).status_code == 202
    )
    batch = {"events": [{"type": "run.log", "payload": {"run_id": "r1", "lines": ["x"]}}]}
    assert client.post(f"{API}/events/executions/batch", json=batch, headers=bob).status_code == 202
    tail = client.get(f"{API}/events/executions", headers=alice).json()
    assert sorted((e["event_type"], e["actor"]) for e in tail) == [
        ("run.created", "alice"),
        ("run.log", "bob"),
    ]
    assert client.post(f"{API}/compaction", json={"domain": "executions"}, headers=bob).is_success
    compacted = tier2_store(app.state.store, Scope("acme", "main"), "executions").history(1)
    assert compacted[0][1].actor == "bob"

    # Nothing secret is stored: the token appears in no object, only its subject does.
    store = app.state.store
    blobs = [store.get(meta.key)[0] for meta in store.list("")]
    assert blobs
    assert not any(alice_token.encode() in blob for blob in blobs)
    assert not any(alice_token.split(".")[2].encode() in blob for blob in blobs)

    # A request's actor does not leak into work done outside requests.
    env = Ledger(store, Scope("acme", "main")).append(
        "executions", "run.created", {"run_id": "r2", "seq": 0}
    )
    assert env.actor == getpass.getuser()


def test_a_caller_cannot_choose_the_actor_of_its_events(client: TestClient, tokens: Tokens) -> None:
    alice = tokens.headers(sub="alice")
    spoof = {"type": "run.created", "payload": {"run_id": "r1", "seq": 0}, "actor": "mallory"}
    r = client.post(f"{API}/events/executions", json=spoof, headers=alice)
    assert r.status_code in (400, 422), r.text
    r = client.post(f"{API}/events/executions/batch", json={"events": [spoof]}, headers=alice)
    assert r.status_code in (400, 422), r.text
    assert client.get(f"{API}/events/executions", headers=alice).json() == []
