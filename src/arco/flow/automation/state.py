"""The automation state document: one JSON object per scope, replaced by
compare-and-swap, holding what the daemons must agree on between ticks.

- ``schedules[name]``: ``cursor`` (every tick up to this instant is decided),
  ``next_at`` (the next tick, so an idle check costs no cron arithmetic),
  ``enabled`` (an on/off override of the definition's default), last outcome;
- ``sensors[name]``: ``cursor`` (the sensor's own), ``next_at``, ``evaluation``
  (a counter, also the fencing token of ``claim``), ``claim`` (holder and expiry:
  the per-sensor lease), ``failures`` and ``last_error``;
- ``backfills[id]``: state and per-chunk runs;
- ``pending[run_key]``: launches decided but perhaps not done (a daemon died
  between deciding and enqueueing); any tick finishes them — enqueueing is
  idempotent by run key — and removes them.

The ledger holds every decision as an event; this document is the index that
lets an idle tick cost one GET (ADR 016).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pydantic_core

from arco.core.errors import ObjectNotFoundError, PreconditionFailedError
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import Match, ObjectStore


@dataclass
class AutomationState:
    """The decoded document (plain JSON-able dicts, edited in place by a tick)."""

    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    sensors: dict[str, dict[str, Any]] = field(default_factory=dict)
    backfills: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    freshness: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Compact JSON, keys in insertion order.

        The document holds every schedule's and sensor's recent history and a tick
        writes it up to four times: it is encoded by pydantic-core's serializer (a
        third of the time of ``json.dumps``; non-ASCII text as UTF-8 instead of
        escapes, the same JSON), and by ``json.dumps`` if that refuses a value
        (a lone surrogate in a sensor's cursor).
        """
        body = {
            "format": 1,
            "schedules": self.schedules,
            "sensors": self.sensors,
            "backfills": self.backfills,
            "pending": self.pending,
            "freshness": self.freshness,
            "alerts": self.alerts,
        }
        try:
            return pydantic_core.to_json(body, inf_nan_mode="constants")
        except pydantic_core.PydanticSerializationError:
            return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> AutomationState:
        """Decode a stored document (pydantic-core's parser; ``json.loads`` for
        anything it refuses, so every document readable before still is)."""
        try:
            raw = pydantic_core.from_json(data)
        except ValueError:
            raw = json.loads(data)
        return cls(
            schedules=dict(raw.get("schedules") or {}),
            sensors=dict(raw.get("sensors") or {}),
            backfills=dict(raw.get("backfills") or {}),
            pending=dict(raw.get("pending") or {}),
            freshness=dict(raw.get("freshness") or {}),
            alerts=dict(raw.get("alerts") or {}),
        )


class StateStore:
    """Reads and compare-and-swaps the automation state of one scope."""

    def __init__(self, store: ObjectStore, scope: Scope) -> None:
        self.store = store
        self.key = Keys(scope).automation_state()
        #: The state this object last wrote and its version (see ``update(fresh=False)``).
        self._written: tuple[AutomationState, str] | None = None

    def load(self) -> tuple[AutomationState, str | None]:
        """The state and its version (None: never written)."""
        try:
            data, version = self.store.get(self.key)
        except ObjectNotFoundError:
            return AutomationState(), None
        return AutomationState.from_bytes(data), version

    def save(self, state: AutomationState, version: str | None) -> str:
        """Replace the state if it is still at ``version``; raises
        :class:`PreconditionFailedError` when another daemon wrote it first."""
        mode: Any = "create" if version is None else Match(version)
        return self.store.put(self.key, state.to_bytes(), mode)

    def update(self, change: Any, *, attempts: int = 50, fresh: bool = True) -> AutomationState:
        """Apply ``change(state)`` (in place) under compare-and-swap, retrying on
        conflict with the fresh state. ``change`` returning False writes nothing.

        ``fresh=False`` (a tick's later writes) first applies ``change`` to the state
        this object wrote last, at that version, without reading it again: if
        another writer came in between, the compare-and-swap fails and the change is
        applied again to what is stored. The state returned by a previous
        ``update`` is that base: the caller must not edit it outside a change.
        """
        base = None if fresh else self._written
        self._written = None
        for _ in range(attempts):
            version: str | None
            if base is not None:
                state, version = base
                base = None
            else:
                state, version = self.load()
            if change(state) is False:
                if version is not None:
                    self._written = (state, version)  # unchanged: still a base
                return state
            try:
                written = self.save(state, version)
            except PreconditionFailedError:
                continue
            self._written = (state, written)
            return state
        raise PreconditionFailedError(f"{self.key}: too much contention, gave up")
