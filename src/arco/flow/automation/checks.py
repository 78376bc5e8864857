"""Asset checks: judgements on a materialized asset partition.

``@asset_check(asset=...)`` declares a check function that receives the asset's
value (and, if its first parameter is ``context``, the :class:`AssetContext`)
and returns a bool or a :class:`CheckResult`. An asset can also return its
checks inline: ``return Output(value, checks=[CheckResult(...)])``.

A check has a ``severity`` (``warn`` or ``error``) and may be ``blocking``: a
failed blocking check with severity ``error`` stops the downstream assets of
*that partition* in the run (they end ``SKIPPED``), while the asset itself stays
materialized. Results are ``asset_check.evaluated`` events, folded into
``system.asset_checks``. A check that raises counts as failed, with the error.
"""

from __future__ import annotations

import inspect
import json
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from arco.core.errors import InvalidArgumentError
from arco.core.scope import validate_identifier

Severity = Literal["warn", "error"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    passed: bool
    name: str | None = None
    severity: Severity | None = None
    blocking: bool | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Output:
    """An asset's value together with inline check results."""

    value: Any
    checks: Sequence[CheckResult] = ()


@dataclass(frozen=True)
class AssetCheckDef:
    """One declared check of one asset."""

    name: str
    asset: str
    fn: Callable[..., Any]
    severity: Severity = "error"
    blocking: bool = False
    description: str | None = None
    takes_context: bool = False

    def __post_init__(self) -> None:
        validate_identifier("check name", self.name)
        if self.severity not in ("warn", "error"):
            raise InvalidArgumentError(f"check {self.name}: severity must be 'warn' or 'error'")

    @property
    def key(self) -> str:
        """``asset:check`` (unique in a project)."""
        return f"{self.asset}:{self.name}"

    def describe(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "asset": self.asset,
            "severity": self.severity,
            "blocking": self.blocking,
            "description": self.description,
        }


def asset_check(
    *,
    asset: Any,
    name: str | None = None,
    severity: Severity = "error",
    blocking: bool = False,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], AssetCheckDef]:
    """Declare a check of ``asset`` (an asset or its key)."""
    key = asset.key if hasattr(asset, "key") else str(asset)

    def wrap(fn: Callable[..., Any]) -> AssetCheckDef:
        params = list(inspect.signature(fn).parameters)
        return AssetCheckDef(
            name=name or fn.__name__,
            asset=key,
            fn=fn,
            severity=severity,
            blocking=blocking,
            description=description or (fn.__doc__ or "").strip() or None,
            takes_context=bool(params) and params[0] == "context" and len(params) >= 2,
        )

    return wrap


def result_dict(
    check: str, result: CheckResult, *, severity: Severity, blocking: bool
) -> dict[str, Any]:
    """The JSON form of a result, as carried from an attempt to the scheduler."""
    return {
        "check": check,
        "passed": bool(result.passed),
        "severity": result.severity or severity,
        "blocking": bool(blocking if result.blocking is None else result.blocking),
        "description": result.description,
        "metadata": json.loads(json.dumps(result.metadata, default=str)),
        "error": None,
    }


def run_checks(checks: Sequence[AssetCheckDef], value: Any, context: Any) -> list[dict[str, Any]]:
    """Evaluate ``checks`` on ``value``; a check that raises is a failed result."""
    out = []
    for chk in checks:
        try:
            got = chk.fn(context, value) if chk.takes_context else chk.fn(value)
            result = got if isinstance(got, CheckResult) else CheckResult(passed=bool(got))
            out.append(result_dict(chk.name, result, severity=chk.severity, blocking=chk.blocking))
        except Exception as exc:
            row = result_dict(
                chk.name, CheckResult(passed=False), severity=chk.severity, blocking=chk.blocking
            )
            first = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            row["error"] = first + "\n" + traceback.format_exc(limit=4)[-2000:]
            out.append(row)
    return out


def inline_results(output: Output) -> list[dict[str, Any]]:
    """The results an asset returned with its value."""
    out = []
    for i, res in enumerate(output.checks):
        if not isinstance(res, CheckResult):
            raise InvalidArgumentError("Output(checks=...) takes CheckResult items")
        name = validate_identifier("check name", res.name or f"inline_{i}")
        out.append(result_dict(name, res, severity="error", blocking=False))
    return out


def blocks(result: dict[str, Any]) -> bool:
    """True when a result stops the downstream of its partition."""
    return not result["passed"] and bool(result["blocking"]) and result["severity"] == "error"
