"""Helpers shared by the Tier-2 tests.

They write ledger objects with chosen ids (so tests can play writers whose clocks
are skewed), copy ledgers between stores and read a domain's compacted state as
plain, comparable data.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from arco.core import Keys, ObjectStore, Scope, open_store
from arco.ledger.compactor import Compactor, tier2_store
from arco.ledger.events import Envelope, build_envelope
from arco.ledger.log import ulid_time

SCOPE = Scope("acme", "prod")

#: Bookkeeping tables of every Tier-2 domain: not part of the observable state.
BOOKKEEPING = frozenset({"ledger_objects", "event_keys"})
STATE_TABLES = {
    "executions": ("runs", "tasks", "materializations", "logs", "quarantine"),
    "lineage": ("edges", "quarantine"),
}


def memory_store() -> ObjectStore:
    """A fresh named in-process store."""
    return open_store(f"memory://{uuid.uuid4().hex}")


def ulid_at(when: datetime) -> str:
    """A new ULID whose timestamp is ``when`` (random part random)."""
    return str(ULID.from_timestamp(when.timestamp()))


def ulid_ms(ms: int) -> str:
    """A new ULID at epoch milliseconds ``ms``."""
    return str(ULID.from_timestamp(int(ms)))


def envelope(
    domain: str,
    event_type: str,
    payload: dict[str, Any],
    *,
    at: datetime | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
    version: int | None = None,
) -> Envelope:
    """A validated envelope whose id carries the time ``at`` (a writer's clock)."""
    if event_id is None:
        event_id = ulid_at(at or datetime.now(UTC))
    return build_envelope(
        domain,
        event_type,
        payload,
        event_id=event_id,
        occurred_at=occurred_at or ulid_time(event_id),
        idempotency_key=idempotency_key,
        version=version,
    )


def event_key(scope: Scope, domain: str, object_id: str) -> str:
    """The ledger key of a single-event object."""
    return Keys(scope).ledger_event(domain, ulid_time(object_id), object_id)


def batch_key(scope: Scope, domain: str, object_id: str) -> str:
    """The ledger key of a batch object."""
    return Keys(scope).ledger_batch(domain, ulid_time(object_id), object_id)


def put_event(store: ObjectStore, scope: Scope, domain: str, env: Envelope) -> str:
    """Write one envelope as a single-event ledger object named by its id; returns the key."""
    key = event_key(scope, domain, env.event_id)
    store.put(key, json.dumps(env.to_dict(), separators=(",", ":")).encode(), "create")
    return key


def put_batch(
    store: ObjectStore,
    scope: Scope,
    domain: str,
    envelopes: Sequence[Envelope],
    object_id: str,
) -> str:
    """Write envelopes as one batch object named ``object_id``; returns the key."""
    key = batch_key(scope, domain, object_id)
    body = {"events": [e.to_dict() for e in envelopes]}
    store.put(key, json.dumps(body, separators=(",", ":")).encode(), "create")
    return key


def write_event(
    store: ObjectStore,
    scope: Scope,
    domain: str,
    event_type: str,
    payload: dict[str, Any],
    **kwargs: Any,
) -> tuple[Envelope, str]:
    """Build an envelope (see :func:`envelope`) and write it; returns it and its key."""
    env = envelope(domain, event_type, payload, **kwargs)
    return env, put_event(store, scope, domain, env)


def copy_prefix(src: ObjectStore, dst: ObjectStore, prefix: str) -> int:
    """Copy every object under ``prefix``; returns how many."""
    n = 0
    for meta in src.list(prefix):
        data, _ = src.get(meta.key)
        dst.put(meta.key, data, "create")
        n += 1
    return n


def copy_ledger(src: ObjectStore, dst: ObjectStore, scope: Scope = SCOPE) -> int:
    """Copy a scope's whole ledger to another store."""
    return copy_prefix(src, dst, f"{Keys(scope).root}ledger/")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def table_rows(store: ObjectStore, scope: Scope, domain: str, table: str) -> list[dict[str, Any]]:
    """The live rows of one compacted table, as sorted JSON-ready dicts."""
    dstore = tier2_store(store, scope, domain)
    snap = dstore.read()
    rows = [_plain(r) for r in dstore.load_table(snap, table).to_pylist()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def state_of(
    store: ObjectStore,
    scope: Scope = SCOPE,
    domains: Iterable[str] = ("executions", "lineage"),
    *,
    with_quarantine: bool = True,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The observable state of Tier-2 domains: every table but the bookkeeping ones.

    Quarantine rows keep only their object id and reason (their time is the
    compactor's clock).
    """
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for domain in domains:
        tables: dict[str, list[dict[str, Any]]] = {}
        for table in STATE_TABLES[domain]:
            if table == "quarantine":
                if with_quarantine:
                    tables[table] = sorted(
                        (
                            {"object_id": r["object_id"], "reason": r["reason"]}
                            for r in table_rows(store, scope, domain, table)
                        ),
                        key=lambda r: r["object_id"],
                    )
                continue
            tables[table] = table_rows(store, scope, domain, table)
        out[domain] = tables
    return out


def meta_of(store: ObjectStore, scope: Scope, domain: str) -> dict[str, Any]:
    """The manifest meta of a domain's head (empty before the first commit)."""
    snap = tier2_store(store, scope, domain).read()
    return dict(snap.manifest.meta) if snap.manifest else {}


def counters(store: ObjectStore, scope: Scope, domain: str) -> dict[str, Any]:
    """The compactor's manifest counters and watermark (no wall-clock fields)."""
    meta = meta_of(store, scope, domain)
    keep = ("watermark", "events_total", "duplicates_total", "quarantined_total")
    return {k: meta.get(k) for k in keep}


def compact_worker(url: str, scope_parts: tuple[str, str], max_objects: int) -> dict[str, int]:
    """Run in a spawned process: compact every Tier-2 domain until nothing is pending."""
    store = open_store(url)
    scope = Scope(*scope_parts)
    compactor = Compactor(store, scope, max_objects=max_objects)
    totals = {"events": 0, "duplicates": 0, "objects": 0, "commits": 0, "quarantined": 0}
    for _ in range(1000):
        reports = compactor.compact_all()
        for report in reports:
            for name in totals:
                totals[name] += getattr(report, name)
        if not any(compactor.pending(d) for d in ("executions", "lineage")):
            break
    return totals
