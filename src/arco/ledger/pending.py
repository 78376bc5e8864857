"""What a Tier-2 domain will look like once compacted: its state plus the events not folded yet.

Readers that must not wait for the compactor (the runs view, asset sensors) fold
the ledger objects the compactor has not reached into a scratch
:class:`~arco.ledger.folds.Folder` over the compacted state, exactly as the
compactor would: same validation and upcasting, same de-duplication by
idempotency key, same event time. Nothing is written.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from arco.domain.store import Snapshot
from arco.ledger.compactor import DEFAULT_WINDOW, event_time
from arco.ledger.events import REGISTRY, Envelope, InvalidEventError
from arco.ledger.folds import Folder, RowMapState
from arco.ledger.log import Ledger, decode_object, ulid_time


def fold_pending(
    ledger: Ledger,
    domain: str,
    snap: Snapshot[RowMapState],
    *,
    window: timedelta = DEFAULT_WINDOW,
) -> tuple[Folder, list[Envelope]]:
    """Fold ``domain``'s uncompacted events over ``snap``: the folder and the envelopes folded.

    Invalid events are skipped (the compactor quarantines them); so are objects
    older than the watermark minus ``window``, which the compactor would not fold
    either.
    """
    state = snap.state
    folder = Folder(state)
    meta = snap.manifest.meta if snap.manifest else {}
    watermark = meta.get("watermark")
    since: datetime | None = ulid_time(watermark) - window if watermark else None
    objs = sorted(
        (o for o in ledger.list_objects(domain, since=since) if not state.has_object(o.object_id)),
        key=lambda o: o.object_id,
    )
    envelopes = []
    for obj, data in ledger.read_many(objs):
        if data is None:
            continue
        try:
            for env in decode_object(data, obj.is_batch):
                payload = REGISTRY.validate(domain, env.event_type, env.event_version, env.payload)
                upcast = REGISTRY.upcast(env.event_type, env.event_version, payload)
                envelopes.append(replace(env, payload=upcast))
        except InvalidEventError:
            continue
    seen: set[str] = set()
    folded = []
    for env in sorted(envelopes, key=lambda e: e.event_id):
        key = env.idempotency_key
        if key in seen or state.has_event_key(key):
            continue
        seen.add(key)
        folder.fold(env, event_time(env.occurred_at, env.event_id))
        folded.append(env)
    return folder, folded
