"""Who changed what: every commit and ledger event records its actor next to its process.

The actor is the OS user by default, whoever ``acting_as`` names inside a block
(the API's token subject, the user who queued a run), and records written before
actors existed still decode and read as having none.
"""

from __future__ import annotations

import getpass
import json
import threading
import uuid

from arco.catalog import Catalog
from arco.core import Scope, open_store
from arco.core.actor import MAX_ACTOR_LENGTH, acting_as, clean_actor, current_actor, os_user
from arco.core.keys import Keys
from arco.domain.manifest import Manifest
from arco.domain.verify import verify
from arco.ledger.compactor import Compactor, tier2_store
from arco.ledger.events import Envelope
from arco.ledger.log import Ledger

SCOPE = Scope("acme", "main")


def _catalog() -> Catalog:
    return Catalog(open_store(f"memory://{uuid.uuid4().hex}"), SCOPE)


def test_commits_record_the_os_user_by_default_and_the_named_actor_inside_acting_as() -> None:
    cat = _catalog()
    cat.create_namespace("raw")
    with acting_as("alice"):
        cat.create_table("raw", "orders", ["id:long"])
        with acting_as("bob"):  # the innermost actor wins, and is undone on exit
            cat.update_table("raw", "orders", description="orders")
        cat.drop_table("raw", "orders")
    (_, v4), (_, v3), (_, v2), (_, v1) = cat.domain.history(10)
    assert [v1.actor, v2.actor, v3.actor, v4.actor] == [getpass.getuser(), "alice", "bob", "alice"]
    # The process id is still recorded, separately: the actor is who, the writer is where.
    assert all(m.writer.count(":") >= 2 and m.writer != m.actor for m in (v1, v2, v3, v4))
    assert current_actor() == os_user() == getpass.getuser()


def test_the_actor_is_per_thread_context_not_process_global() -> None:
    cat = _catalog()
    cat.create_namespace("raw")
    seen: list[str] = []
    started, release = threading.Event(), threading.Event()

    def other() -> None:
        started.wait(5)
        # A thread of its own acts as the OS user even while the main thread is alice.
        seen.append(current_actor())
        cat.create_table("raw", "b", ["id:long"])
        release.set()

    thread = threading.Thread(target=other)
    thread.start()
    with acting_as("alice"):
        started.set()
        release.wait(5)
        cat.create_table("raw", "a", ["id:long"])
    thread.join(5)
    actors = {m.operation["ops"][0]["name"]: m.actor for _, m in cat.domain.history(10)}
    assert seen == [getpass.getuser()]
    assert actors == {"raw": getpass.getuser(), "raw.b": getpass.getuser(), "raw.a": "alice"}


def test_ledger_events_and_compactions_record_the_actor() -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    ledger = Ledger(store, SCOPE)
    payload = {"edges": [{"source": "raw.a", "target": "raw.b"}]}
    other = {"edges": [{"source": "raw.a", "target": "x.y"}]}
    with acting_as("svc-ingest"):
        one = ledger.append("lineage", "lineage.edges_observed", payload)
        batch = ledger.append_batch(
            "lineage", [{"type": "lineage.edges_observed", "payload": other}]
        )
        Compactor(store, SCOPE).compact("lineage")
    assert one.actor == batch[0].actor == "svc-ingest"
    stored = [e for obj in ledger.list_objects("lineage") for e in ledger.read(obj)]
    assert sorted(e.actor or "" for e in stored) == ["svc-ingest", "svc-ingest"]
    assert all(json.loads(json.dumps(e.to_dict()))["actor"] == "svc-ingest" for e in stored)
    (_, head), *_ = tier2_store(store, SCOPE, "lineage").history(1)
    assert head.actor == "svc-ingest"
    assert ledger.append("lineage", "lineage.edges_observed", other).actor == getpass.getuser()


def test_records_written_before_actors_existed_still_decode_and_verify() -> None:
    cat = _catalog()
    cat.create_namespace("raw")
    keys = Keys(SCOPE)
    # Rewrite the head manifest exactly as the previous format wrote it (no "actor"
    # key) and re-point the head at it, as a store written by an older Arco is.
    (key, manifest), *_ = cat.domain.history(1)
    raw = json.loads(manifest.to_bytes())
    del raw["actor"]
    old = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    assert Manifest.from_bytes(old).actor is None
    old_key = key.replace(".json", "-old.json")
    cat.store.put(old_key, old, "create")
    from arco.core.ids import sha256_hex
    from arco.domain.manifest import Pointer

    pointer_bytes, _ = cat.store.get(keys.pointer("catalog"))
    pointer = json.loads(pointer_bytes)
    pointer.update(manifest=old_key, manifest_sha256=sha256_hex(old))
    cat.store.put(keys.pointer("catalog"), json.dumps(pointer).encode(), "overwrite")
    Pointer.from_bytes(json.dumps(pointer).encode())
    reopened = Catalog(cat.store, SCOPE)
    assert [m.actor for _, m in reopened.domain.history(5)] == [None]
    assert verify(cat.store, SCOPE, domains=["catalog"]).ok
    # A new commit on top of the old one records its actor as usual.
    with acting_as("alice"):
        reopened.create_namespace("staging")
    assert [m.actor for _, m in reopened.domain.history(5)] == ["alice", None]

    envelope = {
        "event_id": "01HZX3Q6W8J1Y0ZK6V7T2D4M9N",
        "event_type": "lineage.edges_observed",
        "event_version": 1,
        "idempotency_key": "k",
        "occurred_at": "2024-05-01T00:00:00+00:00",
        "source": "api",
        "payload": {"edges": [{"source": "a.b", "target": "c.d"}]},
    }
    assert Envelope.from_dict(envelope).actor is None


def test_actor_names_are_printable_and_bounded() -> None:
    assert clean_actor("alice\n\x1b[31m") == "alice??[31m"
    assert clean_actor("  ") is None
    assert clean_actor(None) is None
    long = clean_actor("x" * 10_000)
    assert long is not None
    assert len(long) == MAX_ACTOR_LENGTH
    cat = _catalog()
    with acting_as("evil\r\nname"):
        cat.create_namespace("raw")
    assert cat.domain.history(1)[0][1].actor == "evil??name"
    with acting_as(None):  # nothing to name: the current actor stays
        assert current_actor() == os_user()
