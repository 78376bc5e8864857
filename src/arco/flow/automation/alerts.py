"""Alerts: webhooks on run failure, blocking check failure and freshness misses.

Configured in ``arco.toml`` (``[[automation.webhooks]]``: ``name``, ``url``,
``format`` = ``json`` or ``slack``, ``events``). The daemon decides an alert
like anything else — into the state document's outbox under a key that names
what it is about (``run_failed:{run_id}``) — and the flush posts it with
retries and backoff, then records ``alert.delivered`` (``sent`` or ``failed``).
Alerts are sent by the daemon, never by a run, so a slow or dead webhook never
holds a run up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arco.core.errors import InvalidArgumentError
from arco.core.scope import validate_identifier
from arco.flow.automation.state import AutomationState

if TYPE_CHECKING:
    from arco.flow.automation.tick import Automation, TickReport

KINDS = ("run_failed", "check_failed", "freshness_overdue")
#: Attempts per webhook and alert, and the first backoff (doubling).
ATTEMPTS = 3
BACKOFF_SECONDS = 0.5
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Webhook:
    """One webhook target."""

    name: str
    url: str
    format: str = "json"
    events: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        validate_identifier("webhook name", self.name)
        if not self.url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"webhook {self.name}: url must be http(s)")
        if self.format not in ("json", "slack"):
            raise InvalidArgumentError(f"webhook {self.name}: format must be 'json' or 'slack'")
        bad = [e for e in self.events if e not in KINDS]
        if bad:
            raise InvalidArgumentError(
                f"webhook {self.name}: unknown events {', '.join(bad)}; known: {', '.join(KINDS)}"
            )

    def body(self, alert: dict[str, Any]) -> dict[str, Any]:
        """The request body: Arco's JSON, or a Slack-compatible ``{"text": ...}``."""
        if self.format == "slack":
            return {"text": f":rotating_light: {alert['text']}"}
        return {
            "kind": alert["kind"],
            "subject": alert["subject"],
            "text": alert["text"],
            "details": alert.get("details") or {},
            "alert_key": alert["key"],
        }


def webhooks_from_config(section: Any) -> list[Webhook]:
    """Webhooks declared in ``arco.toml``."""
    if section is None:
        return []
    if not isinstance(section, list):
        raise InvalidArgumentError("[[automation.webhooks]] must be a list of tables")
    out = []
    for item in section:
        if not isinstance(item, dict) or "name" not in item or "url" not in item:
            raise InvalidArgumentError("each [[automation.webhooks]] needs a name and a url")
        out.append(
            Webhook(
                name=str(item["name"]),
                url=str(item["url"]),
                format=str(item.get("format", "json")),
                events=tuple(item.get("events", KINDS)),
            )
        )
    return out


def queue_alert(
    state: AutomationState,
    key: str,
    kind: str,
    subject: str,
    text: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Decide an alert: into the outbox (once per key)."""
    state.pending[f"alert:{key}"] = {
        "kind": "alert",
        "alert_kind": kind,
        "subject": subject[:1024],
        "text": text[:2000],
        "details": details or {},
    }


def _watch(auto: Automation, state: AutomationState, now: datetime) -> bool:
    """Runs that failed and blocking checks that failed since the last look."""
    from arco.flow.runview import RunsReader

    cursors = state.alerts.setdefault("cursors", {})
    reader = RunsReader.of(auto.ws)
    view = auto.scratch.get("runs_view") or reader.view()
    auto.scratch["runs_view"] = view
    changed = False
    failed = sorted(
        (str(row["last_event_id"]), run_id, row)
        for run_id, row in view.runs.items()
        if row["state"] == "FAILED"
    )
    runs_cursor = cursors.get("runs")
    if runs_cursor is None:
        cursors["runs"] = failed[-1][0] if failed else ""
        changed = True
    else:
        for event_id, run_id, row in failed:
            if event_id <= runs_cursor:
                continue
            queue_alert(
                state,
                f"run_failed:{run_id}",
                "run_failed",
                run_id,
                f"run {run_id} failed ({row.get('selection')}): {row.get('reason') or ''}".strip(),
                {"run_id": run_id, "selection": row.get("selection"), "reason": row.get("reason")},
            )
            cursors["runs"] = event_id
            changed = True
    checks = sorted(
        (r for r in _check_rows(reader, view) if r["blocking"] and not r["passed"]),
        key=lambda r: str(r["event_id"]),
    )
    checks_cursor = cursors.get("checks")
    if checks_cursor is None:
        cursors["checks"] = str(checks[-1]["event_id"]) if checks else ""
        changed = True
    else:
        for row in checks:
            if str(row["event_id"]) <= checks_cursor:
                continue
            where = f"{row['asset']}[{row['partition']}]" if row["partition"] else row["asset"]
            queue_alert(
                state,
                f"check_failed:{row['event_id']}",
                "check_failed",
                where,
                f"blocking check {row['check']} failed on {where} (run {row['run_id']})",
                {"check": row["check"], "asset": row["asset"], "partition": row["partition"]},
            )
            cursors["checks"] = str(row["event_id"])
            changed = True
    return changed


def _check_rows(reader: Any, view: Any) -> list[dict[str, Any]]:
    snap = reader.domain.read()
    rows: list[dict[str, Any]] = []
    if snap.manifest is not None:
        rows = reader.domain.load_table(snap, "asset_checks").to_pylist()
    seen = {r["event_id"] for r in rows}
    rows += [r for r in getattr(view, "pending_asset_checks", []) if r["event_id"] not in seen]
    return rows


def post(url: str, body: dict[str, Any]) -> int:
    """POST ``body`` as JSON; the HTTP status (raises on a transport error)."""
    import httpx

    resp = httpx.post(url, json=body, timeout=TIMEOUT_SECONDS)
    return resp.status_code


def deliver(
    auto: Automation, webhooks: list[Webhook], item: dict[str, Any], report: TickReport
) -> None:
    """Send one alert to every webhook that wants its kind; record each outcome."""
    alert = {
        "key": item["key"],
        "kind": item["alert_kind"],
        "subject": item["subject"],
        "text": item["text"],
        "details": item.get("details"),
    }
    for hook in webhooks:
        if alert["kind"] not in hook.events:
            continue
        status: int | None = None
        error: str | None = None
        attempts = 0
        for attempts in range(1, ATTEMPTS + 1):
            try:
                status = post(hook.url, hook.body(alert))
                error = None if status < 300 else f"HTTP {status}"
            except Exception as exc:  # a network error is one failed attempt
                error = f"{type(exc).__name__}: {exc}"[:1000]
            if error is None:
                break
            if attempts < ATTEMPTS:
                time.sleep(BACKOFF_SECONDS * 2 ** (attempts - 1))
        auto.ledger.append(
            "executions",
            "alert.delivered",
            {
                "alert_key": alert["key"][:255],
                "channel": hook.name,
                "kind": alert["kind"],
                "subject": alert["subject"],
                "status": "sent" if error is None else "failed",
                "attempts": attempts,
                "http_status": status,
                "error": error,
            },
            idempotency_key=f"alert.delivered:{hook.name}:{alert['key']}"[:255],
            source="automation",
            occurred_at=datetime.now(UTC),
        )
        report.events += 1
        if error is not None:
            report.errors.append(f"webhook {hook.name}: {error}")


def install(auto: Automation, webhooks: list[Webhook]) -> None:
    """Watch for failures and deliver alerts (only when webhooks are configured:
    without them, alerts are not decided and an idle tick stays one GET)."""
    if not webhooks:
        return
    auto.hooks.append(_watch)
    auto.flushers["alert"] = lambda a, item, report: deliver(a, webhooks, item, report)
