"""``arco serve`` (the REST API under uvicorn) and ``arco token`` (a local HS256 token)."""

from __future__ import annotations

import os
import re
from typing import Annotated

import typer

from arco.cli.context import CliUsageError, refuse_json, settings

_TTL_RE = re.compile(r"^(\d+)([smhd]?)$")


def parse_ttl(text: str) -> int:
    """Seconds from ``90``, ``90s``, ``15m``, ``1h`` or ``7d``."""
    match = _TTL_RE.match(text.strip().lower())
    if not match:
        raise CliUsageError(f"--ttl {text!r} must look like 3600, 90s, 15m, 1h or 7d")
    value, unit = int(match.group(1)), match.group(2) or "s"
    seconds = value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    if not 1 <= seconds <= 30 * 86400:
        raise CliUsageError("--ttl must be between 1 second and 30 days")
    return seconds


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8484,
    store: Annotated[
        str | None, typer.Option("--store", metavar="URL", help="Store URL (overrides global).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    module: Annotated[
        str | None,
        typer.Option("--module", help="Asset module for the flow routes (else arco.toml here)."),
    ] = None,
) -> None:
    """Serve the REST API (needs ARCO_JWT_SECRET or ARCO_JWKS)."""
    import uvicorn

    from arco.api.settings import MAX_REQUEST_HEAD_BYTES

    refuse_json(ctx, "serve")
    opts = settings(ctx)
    # Resolved here (--store > global --store > ARCO_STORE > arco.toml > ./.arco, file://
    # paths absolute) and handed to uvicorn's workers through the environment.
    if store:
        from arco.core.config import resolve_store

        os.environ["ARCO_STORE"] = resolve_store(store).url
    else:
        os.environ["ARCO_STORE"] = opts.store_url
    # Through the environment: uvicorn builds the app (in each worker) from it.
    os.environ.setdefault("ARCO_PROJECT_DIR", os.getcwd())
    if module:
        os.environ["ARCO_PROJECT_MODULE"] = module
    if not os.environ.get("ARCO_JWT_SECRET") and not os.environ.get("ARCO_JWKS"):
        raise CliUsageError("set ARCO_JWT_SECRET (HS256) or ARCO_JWKS (RS256) before serving")
    from arco.api.settings import Settings
    from arco.core.storage import check_signer_store_url

    # A signer store that cannot presign this store's keys: one error line here,
    # rather than a traceback from every uvicorn worker.
    signer_url = Settings.from_env().signer_store_url
    if signer_url:
        check_signer_store_url(signer_url, os.environ["ARCO_STORE"])
    from arco.core.logs import resolve_format, uvicorn_log_config

    # --log-format / ARCO_LOG_FORMAT: uvicorn's own lines and Arco's, in one format.
    log_format = resolve_format(None)
    uvicorn.run(
        "arco.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=uvicorn_log_config(log_format),
        # h11 (when httptools is absent) resets connections whose headers pass its
        # 16 KiB default; a larger bound lets the app answer 431 with a problem body.
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
    )


def token(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: global --tenant).")] = None,
    workspace: Annotated[
        str | None, typer.Option(help="Workspace (default: global --workspace).")
    ] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="reader, writer or admin (repeatable).")
    ] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: 3600, 15m, 1h, 7d.")] = "1h",
    sub: Annotated[str | None, typer.Option(help="Subject (who the token names).")] = None,
) -> None:
    """Mint a local HS256 token from ARCO_JWT_SECRET."""
    from arco.api.auth import mint_token

    opts = settings(ctx)
    secret = os.environ.get("ARCO_JWT_SECRET")
    if not secret:
        raise CliUsageError("set ARCO_JWT_SECRET to mint a token")
    try:
        value = mint_token(
            secret,
            tenant=tenant or opts.tenant,
            workspace=workspace or opts.workspace,
            roles=role or ["reader"],
            ttl_seconds=parse_ttl(ttl),
            sub=sub,
            issuer=os.environ.get("ARCO_JWT_ISSUER", "arco"),
            audience=os.environ.get("ARCO_JWT_AUDIENCE", "arco"),
        )
    except ValueError as exc:
        raise CliUsageError(str(exc)) from exc
    if opts.json:
        from arco.cli.output import emit_json

        emit_json({"token": value})
    else:
        typer.echo(value)
