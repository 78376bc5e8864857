"""The ``[automation]`` section of ``arco.toml`` and building the engine from it::

[automation]
claim_ttl_seconds = 300

[[automation.schedules]]          # see schedules.py
name = "nightly"
cron = "0 2 * * *"
select = "analytics.*"

[[automation.webhooks]]           # see alerts.py
name = "ops"
url = "https://hooks.example.com/T000/B000"
format = "slack"                  # or "json" (default)
events = ["run_failed", "check_failed", "freshness_overdue"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arco.core.config import find_config
from arco.core.errors import InvalidArgumentError
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.flow.automation.alerts import Webhook, webhooks_from_config
from arco.flow.automation.schedules import ScheduleDef, schedules_from_config
from arco.flow.automation.tick import DEFAULT_CLAIM_TTL, Automation
from arco.flow.definitions import Definitions
from arco.workspace import Workspace


@dataclass(frozen=True)
class AutomationConfig:
    """What ``arco.toml`` adds to the definitions in code."""

    schedules: tuple[ScheduleDef, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    claim_ttl: float = DEFAULT_CLAIM_TTL
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> AutomationConfig:
        """Parse ``[automation]``."""
        unknown = set(section) - {"schedules", "webhooks", "claim_ttl_seconds"}
        if unknown:
            raise InvalidArgumentError(f"[automation]: unknown keys {', '.join(sorted(unknown))}")
        ttl = section.get("claim_ttl_seconds", DEFAULT_CLAIM_TTL)
        if not isinstance(ttl, (int, float)) or not 5 <= ttl <= 86_400:
            raise InvalidArgumentError("[automation] claim_ttl_seconds must be from 5 to 86400")
        return cls(
            schedules=tuple(schedules_from_config(section.get("schedules"))),
            webhooks=tuple(webhooks_from_config(section.get("webhooks"))),
            claim_ttl=float(ttl),
        )


def load_config(start: Path | None = None) -> AutomationConfig:
    """The ``[automation]`` section of the nearest ``arco.toml`` (empty if none)."""
    config = find_config(start)
    if config is None:
        return AutomationConfig()
    try:
        return AutomationConfig.from_section(config.section("automation"))
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{config.path}: {exc}") from exc


def build(
    store: ObjectStore,
    scope: Scope,
    defs: Definitions,
    config: AutomationConfig | None = None,
    *,
    holder: str | None = None,
    workspace: Workspace | None = None,
) -> Automation:
    """The engine with every concept wired in: schedules and sensors (built in),
    backfills, freshness and alerts (as hooks)."""
    from arco.flow.automation import alerts, backfills, freshness

    cfg = config or AutomationConfig()
    auto = Automation(
        store,
        scope,
        defs,
        holder=holder,
        claim_ttl=cfg.claim_ttl,
        extra_schedules=list(cfg.schedules),
        workspace=workspace,
    )
    backfills.install(auto)
    freshness.install(auto)
    alerts.install(auto, list(cfg.webhooks))
    return auto
