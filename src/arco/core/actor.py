"""Who is acting: the name recorded as ``actor`` on every commit and ledger event.

The actor is a person or service, not a process: the verified token's subject for
an API request, the operating-system user for the CLI and the library, and the
user who queued a run for the run worker that executes it. The process that did
the write is recorded separately (a commit's ``writer``, an event's ``source``).

The current actor lives in a :class:`~contextvars.ContextVar`, so one process can
serve many callers at once: the API sets it per request, the run worker per run.
Code that starts its own threads and wants them to act for the caller must copy
the context (``contextvars.copy_context().run``); a fresh thread acts as the OS user.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache

#: Longest actor name kept; a longer token subject is cut, never refused.
MAX_ACTOR_LENGTH = 256

#: Shown where a record predates actors (written before they were recorded).
UNKNOWN_ACTOR = "-"

_CURRENT: ContextVar[str | None] = ContextVar("arco_actor", default=None)


def clean_actor(value: object) -> str | None:
    """``value`` as a printable, bounded actor name, or None if nothing is left.

    Control characters become ``?`` and the name is cut to :data:`MAX_ACTOR_LENGTH`,
    so a stored record can always be shown on one line.
    """
    if value is None:
        return None
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value)).strip()
    return text[:MAX_ACTOR_LENGTH] or None


@cache
def os_user() -> str:
    """The operating-system user running this process (``uid:N`` if it has no name)."""
    try:
        name = clean_actor(getpass.getuser())
    except (OSError, KeyError, ImportError):  # e.g. a container uid with no passwd entry
        name = None
    if name:
        return name
    getuid = getattr(os, "getuid", None)
    return f"uid:{getuid()}" if getuid is not None else "unknown"


def current_actor() -> str:
    """The actor of the running request or run, else the OS user."""
    return _CURRENT.get() or os_user()


@contextmanager
def acting_as(actor: str | None) -> Iterator[None]:
    """Record ``actor`` on every commit and event made inside the block.

    ``None`` (or a name with nothing printable) keeps the current actor.
    """
    name = clean_actor(actor)
    if name is None:
        yield
        return
    token = _CURRENT.set(name)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def set_actor(actor: str | None) -> None:
    """Set the actor of the current context until it ends (one API request's task)."""
    _CURRENT.set(clean_actor(actor))
