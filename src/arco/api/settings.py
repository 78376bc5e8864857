"""Server settings, read from the environment (``ARCO_*``) or passed explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from arco.core.config import absolute_store_url, find_config, resolve_store
from arco.core.errors import InvalidArgumentError

#: Request header bytes beyond which the API answers 431: bearer tokens are ~1 KB, so
#: 32 KiB leaves room for every real client and stops a header used as a payload.
MAX_HEADER_BYTES = 32 * 1024
#: The most a server's HTTP parser buffers for one request head, so that the app (not
#: a connection reset) answers the requests between the two bounds.
MAX_REQUEST_HEAD_BYTES = 1024 * 1024


def _float(name: str, default: float) -> float:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def _threads(name: str) -> int | None:
    """A positive thread count from ``name``, or None when it is unset."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 1024:
        raise ValueError(f"{name} must be a whole number from 1 to 1024, not {raw!r}")
    return int(raw)


def _store_url(overrides: dict[str, object]) -> str:
    """The CLI's order: ``ARCO_STORE`` (relative to the working folder), else the nearest
    arco.toml above the project folder (``ARCO_PROJECT_DIR``, else the working folder),
    else ``./.arco``."""
    from_env = os.environ.get("ARCO_STORE", "")
    if from_env.strip():
        return absolute_store_url(from_env, Path.cwd())
    project_dir = overrides.get("project_dir") or os.environ.get("ARCO_PROJECT_DIR")
    return resolve_store(env={}, start=Path(str(project_dir)) if project_dir else None).url


def _signer_store_url(overrides: dict[str, object]) -> str | None:
    """``ARCO_SIGNER_STORE_URL``, else ``[server] signer_store_url`` of the nearest
    arco.toml above the project folder, else None (presign with the store itself)."""
    from_env = os.environ.get("ARCO_SIGNER_STORE_URL", "")
    if from_env.strip():
        return from_env.strip()
    project_dir = overrides.get("project_dir") or os.environ.get("ARCO_PROJECT_DIR")
    config = find_config(Path(str(project_dir)) if project_dir else None)
    if config is None:
        return None
    section = config.section("server")
    unknown = sorted(set(section) - {"signer_store_url"})
    if unknown:
        raise InvalidArgumentError(
            f"{config.path}: unknown key(s) in [server]: {', '.join(unknown)} "
            "(known: signer_store_url)"
        )
    value = section.get("signer_store_url")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(
            f"{config.path}: [server] signer_store_url must be a store URL string, "
            'e.g. "s3://bucket/prefix?access_key_id=...&secret_access_key=..."'
        )
    return value.strip()


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``rate`` tokens per second, bursts of up to ``burst``."""

    rate: float
    burst: float


@dataclass(frozen=True)
class Settings:
    """Everything the API server is configured with."""

    store_url: str = "file://./.arco"
    jwt_secret: str | None = None
    jwt_issuer: str = "arco"
    jwt_audience: str = "arco"
    jwks: str | None = None
    leeway_seconds: float = 30.0
    max_body_bytes: int = 8 * 1024 * 1024
    max_staleness: float = 0.0
    #: Threads that run request handlers at once (``ARCO_REQUEST_THREADS``); None:
    #: :func:`arco.api.app.request_threads` picks them from the store (ADR 028).
    request_threads: int | None = None
    query_seconds: float = 10.0
    query_rows: int = 10_000
    query_bytes: int = 10 * 1024 * 1024
    signed_url_ttl_max: int = 3600
    #: A second URL of the same bucket and prefix, with a read-only identity of its
    #: own, that presigns the browser's URLs (``ARCO_SIGNER_STORE_URL`` or ``[server]
    #: signer_store_url``); None: the store's own credentials presign them.
    signer_store_url: str | None = None
    #: Secret of the blob route's signed URLs (``ARCO_URL_SECRET``); when unset it is
    #: derived from ``jwt_secret`` under a label of its own, else random per process.
    url_secret: str | None = None
    dev_mode: bool = False
    #: The scope ``GET /api/v1/dev/token`` signs tokens for (dev mode only).
    dev_tenant: str = "default"
    dev_workspace: str = "default"
    #: The asset project served by the flow routes: a module (``arco serve --module``),
    #: else the ``arco.toml`` found in ``project_dir`` (default: the working directory).
    project_module: str | None = None
    project_dir: str | None = None
    #: A TOML file whose ``[openlineage]`` section configures OpenLineage ingest
    #: (dataset mapping rules, auto-registration): ``ARCO_OPENLINEAGE_CONFIG``.
    openlineage_config: str | None = None
    rate_limits: dict[str, RateLimit] = field(
        default_factory=lambda: {
            "write": RateLimit(rate=50.0, burst=200.0),
            "ingest": RateLimit(rate=500.0, burst=2000.0),
            "query": RateLimit(rate=20.0, burst=50.0),
        }
    )

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from ``ARCO_*`` environment variables, then ``overrides``."""
        env: dict[str, object] = {
            "store_url": None if "store_url" in overrides else _store_url(overrides),
            "jwt_secret": os.environ.get("ARCO_JWT_SECRET") or None,
            "jwt_issuer": os.environ.get("ARCO_JWT_ISSUER", "arco"),
            "jwt_audience": os.environ.get("ARCO_JWT_AUDIENCE", "arco"),
            "jwks": os.environ.get("ARCO_JWKS") or None,
            "max_staleness": _float("ARCO_MAX_STALENESS", 0.0),
            "request_threads": _threads("ARCO_REQUEST_THREADS"),
            "query_seconds": _float("ARCO_QUERY_SECONDS", 10.0),
            "url_secret": os.environ.get("ARCO_URL_SECRET") or None,
            "signed_url_ttl_max": int(_float("ARCO_SIGNED_URL_TTL_MAX", 3600)),
            "signer_store_url": (
                None if "signer_store_url" in overrides else _signer_store_url(overrides)
            ),
            "dev_tenant": os.environ.get("ARCO_TENANT") or "default",
            "dev_workspace": os.environ.get("ARCO_WORKSPACE") or "default",
            "project_module": os.environ.get("ARCO_PROJECT_MODULE") or None,
            "project_dir": os.environ.get("ARCO_PROJECT_DIR") or None,
            "openlineage_config": os.environ.get("ARCO_OPENLINEAGE_CONFIG") or None,
        }
        limits = {}
        for kind, default in cls().rate_limits.items():
            rate = _float(f"ARCO_RATE_{kind.upper()}", default.rate)
            burst = _float(f"ARCO_BURST_{kind.upper()}", default.burst)
            limits[kind] = RateLimit(rate, burst)
        env["rate_limits"] = limits
        env.update(overrides)
        return cls(**env)  # type: ignore[arg-type]
