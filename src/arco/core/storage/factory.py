"""Open a store from a URL: ``file://``, ``memory://``, ``s3://``, ``gs://``, ``az://``.

Parsing is a pure function (:func:`parse_store_url`) so option handling is
unit-testable without any cloud; :func:`open_store` turns the result into a backend.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from arco.core.errors import InvalidArgumentError
from arco.core.storage.base import ObjectStore
from arco.core.storage.obstore_backend import LocalFolderStore, ObstoreStore

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# Option names accepted in the URL query or the ``options`` mapping, per scheme,
# with the obstore config key each one maps to. Anything else is a typo and is refused.
_S3_KEYS = {
    "endpoint": "endpoint",
    "region": "region",
    "access_key_id": "access_key_id",
    "secret_access_key": "secret_access_key",
    "session_token": "session_token",
    "virtual_hosted_style_request": "virtual_hosted_style_request",
    "skip_signature": "skip_signature",
    "conditional_put": "conditional_put",
}
_GCS_KEYS = {
    "service_account_path": "service_account_path",
    "service_account_key": "service_account_key",
    "application_credentials": "application_credentials",
}
_AZURE_KEYS = {
    "account_name": "account_name",
    "account_key": "account_key",
    "sas_key": "sas_key",
    "use_emulator": "use_emulator",
    "endpoint": "endpoint",
    "client_id": "client_id",
    "client_secret": "client_secret",
    "tenant_id": "tenant_id",
}
_CLIENT_KEYS = {"allow_http", "timeout", "connect_timeout"}
_SECRET_KEYS = {
    "secret_access_key",
    "session_token",
    "service_account_key",
    "account_key",
    "sas_key",
    "client_secret",
}


@dataclass(frozen=True)
class StoreConfig:
    """A parsed store URL."""

    scheme: str
    bucket: str = ""
    prefix: str = ""
    path: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    client_options: dict[str, Any] = field(default_factory=dict)

    def redacted_url(self) -> str:
        """The URL with secrets left out, safe to log."""
        if self.scheme == "file":
            return f"file://{self.path}"
        if self.scheme == "memory":
            return f"memory://{self.bucket}"
        base = f"{self.scheme}://{self.bucket}"
        return f"{base}/{self.prefix}" if self.prefix else base


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidArgumentError(f"store option {name}={value!r} must be true or false")


def parse_store_url(url: str, options: dict[str, Any] | None = None) -> StoreConfig:
    """Parse a store URL and options into a :class:`StoreConfig`.

    Query parameters and ``options`` are merged (``options`` wins). Unknown
    option names raise :class:`InvalidArgumentError` rather than being ignored.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidArgumentError("store URL must not be empty")
    url = url.strip()
    if "://" not in url:
        return StoreConfig(scheme="file", path=os.path.abspath(url))
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    merged: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    merged.update(options or {})
    if scheme == "file":
        raw = url[len("file://") :].split("?", 1)[0]
        if not raw:
            raise InvalidArgumentError("file:// URL needs a path, e.g. file://./.arco")
        if merged:
            raise InvalidArgumentError(f"file:// takes no options, got {sorted(merged)}")
        return StoreConfig(scheme="file", path=os.path.abspath(raw))
    if scheme == "memory":
        if merged:
            raise InvalidArgumentError(f"memory:// takes no options, got {sorted(merged)}")
        return StoreConfig(scheme="memory", bucket=parts.netloc + parts.path.rstrip("/"))
    if scheme not in ("s3", "gs", "az", "abfs", "azure"):
        raise InvalidArgumentError(
            f"unsupported store scheme {scheme!r}; use file://, memory://, s3://, gs:// or az://"
        )
    if not parts.netloc:
        raise InvalidArgumentError(f"{scheme}:// URL needs a bucket or container name")
    allowed = {"s3": _S3_KEYS, "gs": _GCS_KEYS}.get(scheme, _AZURE_KEYS)
    config: dict[str, Any] = {}
    client: dict[str, Any] = {}
    for name, value in merged.items():
        if name in _CLIENT_KEYS:
            client[name] = _bool(name, value) if name == "allow_http" else str(value)
        elif name in allowed:
            is_flag = name in ("use_emulator", "virtual_hosted_style_request", "skip_signature")
            config[allowed[name]] = _bool(name, value) if is_flag else value
        else:
            raise InvalidArgumentError(
                f"unknown option {name!r} for {scheme}://; known: "
                f"{', '.join(sorted(set(allowed) | _CLIENT_KEYS))}"
            )
    return StoreConfig(
        scheme="az" if scheme in ("abfs", "azure") else scheme,
        bucket=parts.netloc,
        prefix=parts.path.strip("/"),
        config=config,
        client_options=client,
    )


#: The Azure Storage emulator's well-known account (public, the same in every Azurite).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _azure_config(config: dict[str, Any]) -> dict[str, Any]:
    """Azure options for obstore; ``use_emulator`` with an ``endpoint`` reaches any Azurite.

    obstore's emulator mode always dials ``127.0.0.1:10000`` (or the
    ``AZURITE_BLOB_STORAGE_URL`` environment variable), ignoring ``endpoint``; an
    emulator on another address is reached as a plain account at that endpoint with
    the emulator's well-known name and key.
    """
    if not (config.get("use_emulator") and config.get("endpoint")):
        return config
    out = {k: v for k, v in config.items() if k != "use_emulator"}
    out.setdefault("account_name", AZURITE_ACCOUNT)
    out.setdefault("account_key", AZURITE_KEY)
    return out


_MEMORY_STORES: dict[str, ObstoreStore] = {}
_MEMORY_LOCK = threading.Lock()


def open_store(
    url: str, options: dict[str, Any] | None = None, *, signer: Any = None
) -> ObjectStore:
    """Open the store named by ``url``.

    ``memory://NAME`` returns the same in-process store for the same name, so a
    catalog can be "reopened"; plain ``memory://`` is always a fresh store.
    """
    cfg = parse_store_url(url, options)
    if cfg.scheme == "file":
        return LocalFolderStore(cfg.path, cfg.redacted_url(), signer=signer)
    if cfg.scheme == "memory":
        from obstore.store import MemoryStore

        if not cfg.bucket:
            return ObstoreStore(MemoryStore(), "memory://", signer=signer)
        with _MEMORY_LOCK:
            store = _MEMORY_STORES.get(cfg.bucket)
            if store is None:
                store = ObstoreStore(MemoryStore(), cfg.redacted_url(), signer=signer)
                _MEMORY_STORES[cfg.bucket] = store
            return store
    prefix = cfg.prefix or None
    client: Any = cfg.client_options or None
    config_any: Any = cfg.config
    inner: Any
    if cfg.scheme == "s3":
        from obstore.store import S3Store

        config: Any = {"region": "us-east-1", **cfg.config}
        inner = S3Store(cfg.bucket, prefix=prefix, config=config, client_options=client)
    elif cfg.scheme == "gs":
        from obstore.store import GCSStore

        inner = GCSStore(cfg.bucket, prefix=prefix, config=config_any, client_options=client)
    else:
        from obstore.store import AzureStore

        azure: Any = _azure_config(cfg.config)
        inner = AzureStore(cfg.bucket, prefix=prefix, config=azure, client_options=client)
    return ObstoreStore(inner, cfg.redacted_url(), signer=signer)


#: Options that say *who* a store signs as, per scheme: a signer store must name
#: other values than the store itself, or its URLs would carry the API's identity.
_CREDENTIAL_KEYS = {
    "s3": ("access_key_id", "secret_access_key", "session_token"),
    "gs": ("service_account_path", "service_account_key", "application_credentials"),
    "az": ("account_key", "sas_key", "client_id", "client_secret", "tenant_id"),
}
#: Options that say *where* the bucket is: a signer must reach the same server.
_LOCATION_DEFAULTS: dict[str, dict[str, object]] = {
    "s3": {"endpoint": "", "region": "us-east-1"},
    "gs": {},
    "az": {"account_name": "", "endpoint": "", "use_emulator": False},
}


def check_signer_store_url(signer_url: str, store_url: str) -> StoreConfig:
    """Check that ``signer_url`` can presign the browser's URLs for ``store_url``.

    The signer store is a second view of the same bucket (or container) and prefix,
    opened with another, read-only identity (the ``signer`` role or service account
    of ``deploy/terraform``): the same scheme, bucket, prefix and server, and
    credentials of its own. Raises :class:`InvalidArgumentError` saying which part
    differs (URLs are named without their secrets); returns the parsed signer URL.
    """
    signer = parse_store_url(signer_url)
    store = parse_store_url(store_url)
    what = f"the signer store {signer.redacted_url()}"
    if signer.scheme not in _CREDENTIAL_KEYS:
        raise InvalidArgumentError(
            f"{what} cannot presign: only s3://, gs:// and az:// stores do (a file:// or "
            "memory:// store's URLs are signed by Arco's blob route with ARCO_URL_SECRET)"
        )
    if (signer.scheme, signer.bucket, signer.prefix) != (store.scheme, store.bucket, store.prefix):
        raise InvalidArgumentError(
            f"{what} must name the same bucket and prefix as the store "
            f"{store.redacted_url()}: it presigns keys of that store"
        )
    for name, default in _LOCATION_DEFAULTS[signer.scheme].items():
        mine, theirs = signer.config.get(name, default), store.config.get(name, default)
        if str(mine).rstrip("/") != str(theirs).rstrip("/"):
            raise InvalidArgumentError(
                f"{what} has {name}={mine!r} but the store {store.redacted_url()} has "
                f"{name}={theirs!r}: both must reach the same bucket"
            )
    keys = _CREDENTIAL_KEYS[signer.scheme]
    own = {k: signer.config[k] for k in keys if k in signer.config}
    if own == {k: store.config[k] for k in keys if k in store.config}:
        needed = {
            "s3": "access_key_id and secret_access_key",
            "gs": "service_account_path or service_account_key",
            "az": "account_key, sas_key or client_id/client_secret/tenant_id",
        }[signer.scheme]
        raise InvalidArgumentError(
            f"{what} names the same credentials as the store"
            + ("" if own else " (none: both would use the process's default credentials)")
            + f", so its URLs would be signed by the store's own identity; give it the "
            f"read-only signer identity's {needed}"
        )
    return signer


def open_signer_store(signer_url: str, store_url: str) -> ObjectStore:
    """The store that presigns browser URLs with its own identity (see
    :func:`check_signer_store_url`, which it runs first)."""
    check_signer_store_url(signer_url, store_url)
    return open_store(signer_url)
