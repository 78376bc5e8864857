"""Assets of the key-scope tests (importable, so process workers can load them)."""

from __future__ import annotations

from arco import asset


@asset(namespace="vault", code_version="1")
def secret() -> dict[str, str]:
    return {"secret": "beta-payroll-secret"}


@asset(namespace="vault", code_version="1")
def reader(secret: dict[str, str]) -> dict[str, str]:
    return secret
