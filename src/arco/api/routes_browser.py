"""``POST /api/v1/browser/urls``: signed GET URLs for the caller's state files (contract 1).

The browser reads the catalog with DuckDB-WASM straight from the files
(docs/architecture.md): this route names the files a live manifest of the caller's
scope references, signs a short-lived GET URL for each (a presigned URL from S3, GCS or
Azure; an HMAC URL of Arco's own blob route for local and memory stores), and
returns the DuckDB SQL of every ``system.*`` view over those files.

Nothing else can be signed: the keys come from the manifests the pointers name,
never from the request (``paths`` only narrows that set), so ledger objects,
locks, pointers, manifests and other scopes' keys are out of reach. Each mint is
audited on the ``arco.audit`` logger, without the URLs or their signatures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from arco.api.auth import PermissionDeniedError, Principal
from arco.api.deps import Querier
from arco.core.errors import (
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    ObjectNotFoundError,
)
from arco.core.keys import DOMAINS_BUILTIN, Keys
from arco.core.storage import HmacSigner, ObjectStore
from arco.core.storage.signing import expiry_of
from arco.domain.manifest import FileEntry, Manifest, Pointer, fetch_manifest
from arco.domain.repair import find_stranded, pointer_missing
from arco.domain.retention import require_retained
from arco.sql.browser import VIEW_DOMAINS, build_views, state_tables_used

router = APIRouter(prefix="/api/v1", tags=["browser"])
audit = logging.getLogger("arco.audit")

DEFAULT_TTL_SECONDS = 900
#: The hard ceiling of any signed URL's lifetime, whatever the settings say.
MAX_TTL_SECONDS = 3600
MAX_PATHS = 10_000


class BrowserUrlsIn(BaseModel):
    """Body of ``POST /browser/urls``."""

    model_config = ConfigDict(extra="forbid")

    domains: list[str] = Field(
        default_factory=lambda: ["catalog", "lineage", "executions"],
        min_length=1,
        max_length=len(DOMAINS_BUILTIN),
        description="Domains whose current files to sign: " + ", ".join(DOMAINS_BUILTIN),
    )
    paths: list[str] | None = Field(
        default=None,
        max_length=MAX_PATHS,
        description="Sign only these keys; each must be a file a live manifest references",
    )
    ttl_seconds: int | None = Field(
        default=None, ge=1, description="URL lifetime (default 900 s, capped by the server)"
    )
    as_of_version: int | None = Field(
        default=None, ge=0, description="Catalog version to read (other domains: latest)"
    )


class SignedUrlOut(BaseModel):
    """One signed state file."""

    path: str = Field(description="The store key; the view SQL names it 'arco://<path>'")
    url: str = Field(description="Signed GET URL (fetch it with GET, never HEAD)")
    expires_at: str
    domain: str
    table: str
    kind: str
    level: int
    min_version: int
    max_version: int
    rows: int
    size: int


class BrowserUrlsOut(BaseModel):
    """Signed URLs of the caller's current state files, and the ``system.*`` view SQL."""

    expires_at: str
    versions: dict[str, int]
    urls: list[SignedUrlOut]
    views: dict[str, str] = Field(
        description="DuckDB SELECT per system table over the 'arco://<path>' files"
    )


# ------------------------------------------------------------------ manifests
class _Manifests:
    """Reads pointers and manifests (verified by checksum); manifests cached by key."""

    def __init__(self, store: ObjectStore, size: int = 512) -> None:
        self.store = store
        self.size = size
        self._cache: OrderedDict[str, tuple[Manifest, str]] = OrderedDict()
        self._lock = threading.Lock()

    def _manifest(self, keys: Keys, key: str, sha256: str) -> Manifest:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[1] == sha256 and keys.is_within(key):
                self._cache.move_to_end(key)
                return hit[0]
        manifest = fetch_manifest(self.store, keys, key, sha256)
        with self._lock:
            self._cache[key] = (manifest, sha256)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return manifest

    def at(self, keys: Keys, domain: str, version: int | None) -> Manifest | None:
        """The manifest of ``domain`` at ``version`` (None: latest); None before any commit."""
        pointer_key = keys.pointer(domain)
        try:
            data, _ = self.store.get(pointer_key)
        except ObjectNotFoundError:
            # A lost head is an error, not an empty domain (see arco.domain.repair).
            evidence = find_stranded(self.store, keys, domain)
            if evidence is not None:
                raise pointer_missing(keys, domain, evidence) from None
            head = None
        else:
            pointer = Pointer.from_bytes(data, key=pointer_key)
            head = self._manifest(keys, pointer.manifest, pointer.manifest_sha256)
        latest = head.version if head is not None else 0
        if version is None or version == latest:
            return head
        if version > latest:
            raise NotFoundError(f"{domain} has no version {version} (latest is {latest})")
        if version == 0:
            return None
        require_retained(self.store, keys, domain, version)
        manifest = head
        while manifest is not None and manifest.version > version and manifest.parent:
            manifest = self._manifest(keys, manifest.parent.path, manifest.parent.sha256)
        if manifest is None or manifest.version != version:
            raise NotFoundError(f"{domain} version {version} is no longer retained")
        return manifest


def _manifests(request: Request) -> _Manifests:
    found = getattr(request.app.state, "browser_manifests", None)
    if found is None:
        found = _Manifests(request.app.state.store)
        request.app.state.browser_manifests = found
    return found


def _signer(request: Request) -> HmacSigner:
    signer: HmacSigner = request.app.state.url_signer
    return signer


def _presigner(request: Request) -> ObjectStore:
    """The store that presigns: the configured signer identity, else the store itself."""
    presigner: ObjectStore = request.app.state.presigner
    return presigner


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _domains(requested: list[str]) -> list[str]:
    out: list[str] = []
    for domain in requested:
        if domain not in DOMAINS_BUILTIN:
            raise InvalidArgumentError(
                f"unknown domain {domain!r}; domains are {', '.join(DOMAINS_BUILTIN)}"
            )
        if domain not in out:
            out.append(domain)
    return out


def _selected(
    domain: str, manifest: Manifest | None, explicit: bool
) -> list[tuple[str, FileEntry]]:
    """Files of one domain worth signing: what some view reads, or all for a viewless domain."""
    if manifest is None:
        return []
    used = state_tables_used(domain)
    if explicit or not used:
        return [(domain, f) for f in manifest.files]
    return [(domain, f) for f in manifest.files if f.table in used]


@router.post("/browser/urls", response_model=BrowserUrlsOut)
def browser_urls(request: Request, body: BrowserUrlsIn, svc: Querier) -> Any:
    """Sign GET URLs for the caller's current state files and give the ``system.*`` view SQL.

    Reader role; rate-limited like queries. Every URL expires after ``ttl_seconds``
    (default 900 s, at most the server's cap). Paths not referenced by a live
    manifest of the caller's scope are refused with 403.
    """
    settings = request.app.state.settings
    started = time.perf_counter()
    domains = _domains(body.domains)
    cap = max(1, min(int(settings.signed_url_ttl_max), MAX_TTL_SECONDS))
    ttl = min(body.ttl_seconds or DEFAULT_TTL_SECONDS, cap)
    keys = Keys(svc.scope)
    reader = _manifests(request)
    manifests = {
        d: reader.at(keys, d, body.as_of_version if d == "catalog" else None) for d in domains
    }
    explicit = body.paths is not None
    files = [pair for d in domains for pair in _selected(d, manifests[d], explicit)]
    if body.paths is not None:
        by_path = {f.path: (d, f) for d, f in files}
        missing = [p for p in body.paths if p not in by_path]
        if missing:
            raise PermissionDeniedError(
                f"{len(missing)} path(s) are not files of a live manifest of your scope "
                f"(domains {', '.join(domains)}), e.g. {missing[0][:200]!r}"
            )
        files = [by_path[p] for p in dict.fromkeys(body.paths)]
    now = datetime.now(UTC)
    # The signer's own expiry, so the advertised time matches the URLs'.
    expires_at = _iso(datetime.fromtimestamp(expiry_of(ttl, now.timestamp()), UTC))
    presigner = _presigner(request)
    signer = _signer(request)
    base = str(request.base_url)
    urls = []
    for domain, entry in files:
        if not keys.is_within(entry.path):
            # Manifests are read back from storage: never sign what they name outside
            # the caller's scope, whoever wrote it there.
            raise IntegrityError(f"{domain}: a manifest names a file outside scope {svc.scope}")
        url = presigner.signed_get_url(entry.path, ttl)
        if url is None:
            url = signer.sign(entry.path, ttl, now=now.timestamp(), base_url=base)
        urls.append(
            {
                "path": entry.path,
                "url": url,
                "expires_at": expires_at,
                "domain": domain,
                "table": entry.table,
                "kind": entry.kind,
                "level": entry.level,
                "min_version": entry.min_version,
                "max_version": entry.max_version,
                "rows": entry.rows,
                "size": entry.size,
            }
        )
    views = build_views({d: m for d, m in manifests.items() if d in _view_domains()})
    who: Principal = request.state.principal
    audit.info(
        "browser urls minted: subject=%s tenant=%s workspace=%s domains=%s urls=%d ttl=%ds",
        who.sub,
        who.tenant,
        who.workspace,
        ",".join(domains),
        len(urls),
        ttl,
        extra={
            "event": "browser.urls",
            "subject": who.sub,
            "tenant": who.tenant,
            "workspace": who.workspace,
            "domains": domains,
            "as_of_version": body.as_of_version,
            "urls": len(urls),
            "ttl_seconds": ttl,
            "request_id": getattr(request.state, "request_id", None),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
        },
    )
    return {
        "expires_at": expires_at,
        "versions": {d: (m.version if m is not None else 0) for d, m in manifests.items()},
        "urls": urls,
        "views": views,
    }


def _view_domains() -> set[str]:
    return {d for domains in VIEW_DOMAINS.values() for d in domains}


# ------------------------------------------------------------------ table data
MAX_TABLES = 20


class BrowserTablesIn(BaseModel):
    """Body of ``POST /browser/tables``."""

    model_config = ConfigDict(extra="forbid")

    tables: list[str] = Field(
        min_length=1,
        max_length=MAX_TABLES,
        description="Qualified names of catalog tables (namespace.table)",
    )
    ignore_missing: bool = Field(
        default=False,
        description="List names that are no catalog table in 'missing' instead of a 404",
    )
    ttl_seconds: int | None = Field(
        default=None, ge=1, description="URL lifetime (default 900 s, capped by the server)"
    )
    as_of_version: int | None = Field(default=None, ge=0, description="Catalog version to read")


class DataFileUrlOut(BaseModel):
    """One signed data file of a table."""

    path: str = Field(description="The store key; the table's SQL names it 'arco://<path>'")
    url: str = Field(description="Signed GET URL (fetch it with GET, never HEAD)")
    size: int


class BrowserTableOut(BaseModel):
    """The data files of one table and the SQL that reads them."""

    name: str = Field(description="namespace.table")
    namespace: str
    table: str
    format: str
    fingerprint: str = Field(description="Changes whenever the table's files do")
    sql: str = Field(description="DuckDB SELECT over the 'arco://<path>' files")
    urls: list[DataFileUrlOut]


class BrowserTablesOut(BaseModel):
    """Signed URLs of exactly the data files of the requested tables."""

    expires_at: str
    tables: list[BrowserTableOut]
    missing: list[str] = Field(description="Requested names that are no catalog table")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _empty_sql(schema: pa.Schema | None) -> str:
    """A SELECT of no rows with ``schema``'s columns (an Iceberg table with no snapshot)."""
    if schema is None or not schema.names:
        return "SELECT NULL AS empty WHERE false"
    # Imported here: the API process needs DuckDB only for this rare case (queries
    # run in worker processes), and loading it costs every server ~12 MiB.
    import duckdb

    con = duckdb.connect()
    try:
        types = con.from_arrow(schema.empty_table()).types
    finally:
        con.close()
    columns = ", ".join(
        f'CAST(NULL AS {t}) AS "{n.replace(chr(34), chr(34) * 2)}"'
        for n, t in zip(schema.names, types, strict=True)
    )
    return f"SELECT {columns} WHERE false"


@router.post("/browser/tables", response_model=BrowserTablesOut)
def browser_tables(request: Request, body: BrowserTablesIn, svc: Querier) -> Any:
    """Sign GET URLs for exactly the data files of catalog tables the caller may read.

    The same resolution as ``POST /query``: parquet files or folders, asset tables
    (newest materialization per partition), Iceberg tables (current snapshot); a
    location outside the caller's data is a 422, a missing file a 404, data over
    the query data budget a 413. Reader role; rate-limited like queries.
    """
    from arco.sql.errors import QueryTooLargeError
    from arco.sql.limits import ENGINE_DATA_BUDGET
    from arco.sql.tabledata import resolve_table

    settings = request.app.state.settings
    started = time.perf_counter()
    cap = max(1, min(int(settings.signed_url_ttl_max), MAX_TTL_SECONDS))
    ttl = min(body.ttl_seconds or DEFAULT_TTL_SECONDS, cap)
    system = svc.system
    state = system.catalog_state(as_of_version=body.as_of_version)
    keys = Keys(svc.scope)
    store: ObjectStore = request.app.state.store
    resolved = []
    missing: list[str] = []
    for name in dict.fromkeys(body.tables):
        namespace, _, table = name.rpartition(".")
        row = state.table_row(namespace, table) if namespace else None
        if row is None:
            if not body.ignore_missing:
                raise NotFoundError(f"no table {name!r} in the catalog")
            missing.append(name)
            continue
        data = resolve_table(
            store, keys, row, materializations=lambda: system.table("materializations")
        )
        resolved.append((name, row, data))
    total = sum(d.size for _, _, d in resolved)
    if total > ENGINE_DATA_BUDGET:
        raise QueryTooLargeError(
            f"the tables hold {total} bytes of data files, more than the data budget of "
            f"{ENGINE_DATA_BUDGET} bytes (ARCO_QUERY_DATA_MB)"
        )
    now = datetime.now(UTC)
    expires_at = _iso(datetime.fromtimestamp(expiry_of(ttl, now.timestamp()), UTC))
    presigner = _presigner(request)
    signer = _signer(request)
    base = str(request.base_url)
    out = []
    for name, row, data in resolved:
        urls = []
        for f in data.files:
            if not keys.is_within(f.key):  # resolve_table checked it; never sign otherwise
                raise IntegrityError(f"{name}: a data file lies outside scope {svc.scope}")
            url = presigner.signed_get_url(f.key, ttl)
            if url is None:
                url = signer.sign(f.key, ttl, now=now.timestamp(), base_url=base)
            urls.append({"path": f.key, "url": url, "size": f.size})
        files = ", ".join(_sql_string("arco://" + f.key) for f in data.files)
        if data.files:
            # Keys hold tenant=…/workspace=… segments: never read them as partition columns.
            sql = (
                f"SELECT * FROM read_parquet([{files}], union_by_name = true, "
                "hive_partitioning = false)"
            )
        else:
            sql = _empty_sql(data.schema)
        out.append(
            {
                "name": name,
                "namespace": row["namespace"],
                "table": row["name"],
                "format": row["format"],
                "fingerprint": data.fingerprint,
                "sql": sql,
                "urls": urls,
            }
        )
    who: Principal = request.state.principal
    audit.info(
        "browser table urls minted: subject=%s tenant=%s workspace=%s tables=%d urls=%d ttl=%ds",
        who.sub,
        who.tenant,
        who.workspace,
        len(out),
        sum(len(t["urls"]) for t in out),
        ttl,
        extra={
            "event": "browser.tables",
            "subject": who.sub,
            "tenant": who.tenant,
            "workspace": who.workspace,
            "tables": [t["name"] for t in out],
            "as_of_version": body.as_of_version,
            "urls": sum(len(t["urls"]) for t in out),
            "ttl_seconds": ttl,
            "request_id": getattr(request.state, "request_id", None),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
        },
    )
    return {"expires_at": expires_at, "tables": out, "missing": missing}
