"""Structured logging: one JSON object per line, or plain text on a terminal.

:func:`configure_logging` is called once by each entry point (the server, the
run worker, the daemon, the CLI) with ``--log-format`` or ``ARCO_LOG_FORMAT``.
In JSON form every line carries ``time``, ``level``, ``logger``, ``message``,
and — from the context of the work being done, never from the message — the
``request_id``, ``trace_id``, ``tenant``, ``workspace`` and ``actor``; an
exception adds ``exc_type`` and ``exc``. Text (the default) is for people.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from arco.core.actor import current_actor
from arco.core.errors import InvalidArgumentError
from arco.core.telemetry import current_request, current_trace_id

LOG_FORMATS = ("text", "json")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Attributes every LogRecord has; anything else passed as ``extra=`` is kept in JSON.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one compact JSON object (no newline inside)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record and its context as one JSON line."""
        request = current_request()
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request.request_id,
            "trace_id": current_trace_id(),
            "tenant": request.tenant,
            "workspace": request.workspace,
            "actor": current_actor(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def resolve_format(value: str | None) -> str:
    """``value``, else ``$ARCO_LOG_FORMAT``, else text; an unknown name is refused."""
    chosen = (value or os.environ.get("ARCO_LOG_FORMAT") or "text").strip().lower()
    if chosen not in LOG_FORMATS:
        raise InvalidArgumentError(f"log format {chosen!r} is not one of {', '.join(LOG_FORMATS)}")
    return chosen


def make_handler(fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) with the formatter of ``fmt``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT))
    return handler


def configure_logging(
    fmt: str | None = None, *, level: str | int | None = None, stream: TextIO | None = None
) -> str:
    """Send Arco's (and uvicorn's) logs to one handler in ``fmt``; returns the format used.

    Replaces the handlers this function installed before, so calling it twice
    does not print every line twice. ``level`` defaults to ``$ARCO_LOG_LEVEL`` or INFO.
    """
    chosen = resolve_format(fmt)
    handler = make_handler(chosen, stream)
    handler.set_name("arco")
    lvl = level or os.environ.get("ARCO_LOG_LEVEL") or "INFO"
    for name in ("arco", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if h.get_name() != "arco"]
        if name in ("arco", "uvicorn"):
            logger.addHandler(handler)
            logger.setLevel(lvl if isinstance(lvl, int) else str(lvl).upper())
        else:
            # uvicorn.error/access propagate to "uvicorn": drop their own handlers.
            logger.handlers = []
            logger.propagate = True
        if name == "arco":
            logger.propagate = False
    return chosen


def uvicorn_log_config(fmt: str) -> dict[str, Any]:
    """A ``logging.config`` dict for uvicorn that formats like :func:`configure_logging`."""
    formatter: dict[str, Any] = (
        {"()": "arco.core.logs.JsonFormatter"} if fmt == "json" else {"format": _TEXT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"arco": formatter},
        "handlers": {
            "arco": {
                "class": "logging.StreamHandler",
                "formatter": "arco",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["arco"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["arco"], "level": "INFO", "propagate": False},
            "arco": {"handlers": ["arco"], "level": "INFO", "propagate": False},
        },
    }
