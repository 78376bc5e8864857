"""S3 remote signing for Iceberg clients (``POST /iceberg/v1/aws/s3/sign``).

A client configured with ``s3.signer = S3V4RestSigner`` (pyiceberg's fsspec
FileIO, Java's S3FileIO with ``s3.remote-signing-enabled``) sends each S3
request it is about to make — method, URL, headers — to the catalog, and sends
it to S3 with the headers the catalog answers. The catalog signs with its own
store credentials (AWS Signature V4, header form, ``UNSIGNED-PAYLOAD``) only
after :func:`authorize` established that the request touches objects inside an
Iceberg table folder of the caller's own scope: the client needs nothing but its
bearer token, and the store keys never leave the server.

What is refused (:class:`SignRefusedError`, HTTP 403): another host or bucket;
a bucket-level request other than a listing whose ``prefix`` lies in a table
folder; any key outside the caller's table folders (another tenant's, the
catalog's own state, the warehouse root); ``..``, ``//``, ``\\``, control
characters and encoded separators (``%2F``, ``%5C``) and encoded dots in the
path; sub-resources other than multipart upload and listing parameters (no
``?acl``, ``?policy``, ``?delete``…); copies (``x-amz-copy-source``) and ACL,
grant, object-lock and retention headers; methods other than GET, HEAD, PUT,
POST (multipart only) and DELETE.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from arco.core.errors import ArcoError, InvalidArgumentError
from arco.core.storage import parse_store_url

__all__ = [
    "S3Signer",
    "SignRefusedError",
    "SignRequest",
    "authorize",
    "signer_for",
]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: Query parameters that only address an object (or a listing): never a sub-resource.
_OBJECT_PARAMS = frozenset({"uploads", "uploadId", "partNumber", "x-id", "versionId"})
_LIST_PARAMS = frozenset(
    {
        "list-type",
        "prefix",
        "delimiter",
        "continuation-token",
        "start-after",
        "max-keys",
        "encoding-type",
        "fetch-owner",
        "x-id",
    }
)
_REFUSED_HEADERS = ("x-amz-copy-source", "x-amz-acl", "x-amz-grant-", "x-amz-object-lock-")
_REFUSED_HEADERS_EXACT = frozenset(
    {"x-amz-bypass-governance-retention", "x-amz-website-redirect-location"}
)
_WRITE_METHODS = frozenset({"PUT", "POST", "DELETE"})


class SignRefusedError(ArcoError):
    """The request would touch objects outside the caller's table folders (HTTP 403)."""

    code = "forbidden-location"


@dataclass(frozen=True)
class SignRequest:
    """The body pyiceberg's and Java's ``S3V4RestSigner`` post."""

    method: str
    uri: str
    headers: dict[str, list[str]]

    @classmethod
    def parse(cls, body: Any) -> SignRequest:
        """Validate a signing request body."""
        if not isinstance(body, dict):
            raise InvalidArgumentError("a sign request must be a JSON object")
        method, uri, headers = body.get("method"), body.get("uri"), body.get("headers") or {}
        if not isinstance(method, str) or not isinstance(uri, str) or not isinstance(headers, dict):
            raise InvalidArgumentError("a sign request needs method, uri and headers")
        clean: dict[str, list[str]] = {}
        for key, values in headers.items():
            vals = values if isinstance(values, list) else [values]
            if not isinstance(key, str) or not all(isinstance(v, str) for v in vals):
                raise InvalidArgumentError("sign request headers must map names to strings")
            clean[key.lower()] = [str(v) for v in vals]
        return cls(method.upper(), uri, clean)


@dataclass(frozen=True)
class S3Signer:
    """The server's S3 credentials and where its bucket lives."""

    bucket: str
    store_prefix: str
    region: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    #: ``scheme://host[:port]`` of the endpoint (path-style) or None for AWS
    endpoint: str | None
    path_style: bool

    def hosts(self) -> tuple[set[str], set[str]]:
        """Hosts that address the bucket by path, and hosts that are the bucket."""
        if self.endpoint:
            host = urlsplit(self.endpoint).netloc.lower()
            return {host}, ({f"{self.bucket}.{host}"} if not self.path_style else set())
        regional = {f"s3.{self.region}.amazonaws.com", "s3.amazonaws.com"}
        return regional, {f"{self.bucket}.{h}" for h in regional}

    def sign(self, request: SignRequest, now: datetime | None = None) -> dict[str, Any]:
        """Headers that make ``request`` a valid SigV4 request (the caller authorized it)."""
        when = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        day = when[:8]
        parts = urlsplit(request.uri)
        given = {k: ", ".join(v).strip() for k, v in request.headers.items()}
        added: dict[str, str] = {"x-amz-date": when}
        if "x-amz-content-sha256" not in given:
            added["x-amz-content-sha256"] = UNSIGNED_PAYLOAD
        if self.session_token:
            added["x-amz-security-token"] = self.session_token
        signed = {k: v for k, v in given.items() if k.startswith("x-amz-") or k == "content-md5"}
        signed.update(added)
        signed["host"] = parts.netloc.lower()
        names = sorted(signed)
        canonical_headers = "".join(f"{n}:{' '.join(signed[n].split())}\n" for n in names)
        query = sorted(
            (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        canonical = "\n".join(
            [
                request.method,
                # S3's canonical URI: the key encoded once, whatever the client escaped.
                quote(unquote(parts.path or "/"), safe="/-_.~"),
                "&".join(f"{k}={v}" for k, v in query),
                canonical_headers,
                ";".join(names),
                signed["x-amz-content-sha256"],
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", when, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = f"AWS4{self.secret_access_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        added["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key_id}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return {"uri": request.uri, "headers": {k: [v] for k, v in added.items()}}


def signer_for(store_url: str, environ: Mapping[str, str] | None = None) -> S3Signer | None:
    """The signer of an ``s3://`` store with credentials (from its URL or the environment)."""
    env = os.environ if environ is None else environ
    try:
        cfg = parse_store_url(store_url)
    except ArcoError:
        return None
    if cfg.scheme != "s3" or cfg.config.get("skip_signature"):
        return None
    key_id = cfg.config.get("access_key_id") or env.get("AWS_ACCESS_KEY_ID")
    secret = cfg.config.get("secret_access_key") or env.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        return None
    endpoint = cfg.config.get("endpoint") or env.get("AWS_ENDPOINT_URL") or None
    return S3Signer(
        bucket=cfg.bucket,
        store_prefix=cfg.prefix.strip("/"),
        region=str(cfg.config.get("region") or env.get("AWS_REGION") or "us-east-1"),
        access_key_id=str(key_id),
        secret_access_key=str(secret),
        session_token=cfg.config.get("session_token") or env.get("AWS_SESSION_TOKEN"),
        endpoint=str(endpoint).rstrip("/") if endpoint else None,
        path_style=cfg.config.get("virtual_hosted_style_request") is False or bool(endpoint),
    )


def _refuse(request: SignRequest, why: str) -> SignRefusedError:
    return SignRefusedError(f"will not sign {request.method} {request.uri}: {why}")


def _decoded(request: SignRequest, raw: str) -> str:
    """Percent-decode a path or prefix once, refusing encodings that hide structure."""
    lowered = raw.lower()
    if any(enc in lowered for enc in ("%2f", "%5c", "%2e", "%00", "%25")):
        raise _refuse(request, "encoded separators, dots or percent signs")
    text = unquote(raw)
    bad = (
        ".." in text.split("/")
        or "." in text.split("/")
        or "//" in text
        or "\\" in text
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in text)
    )
    if bad:
        raise _refuse(request, "'.', '..', '//', '\\' or control characters in the path")
    return text


def authorize(
    signer: S3Signer,
    request: SignRequest,
    in_table_folder: Callable[[str], bool],
) -> tuple[str, bool]:
    """Check ``request`` may be signed; answer its store key and whether it writes.

    ``in_table_folder(key)`` tells whether a store key (relative to the store's
    prefix) lies inside an Iceberg table folder of the caller's scope.
    """
    if request.method not in ("GET", "HEAD", "PUT", "POST", "DELETE"):
        raise _refuse(request, "method not allowed")
    for name in request.headers:
        if name in _REFUSED_HEADERS_EXACT or any(name.startswith(p) for p in _REFUSED_HEADERS):
            raise _refuse(request, f"header {name} is not allowed")
    parts = urlsplit(request.uri)
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        raise _refuse(request, "not an S3 URL")
    if parts.fragment:
        raise _refuse(request, "URL fragments are not allowed")
    path_hosts, bucket_hosts = signer.hosts()
    host = parts.netloc.lower()
    if signer.endpoint and urlsplit(signer.endpoint).scheme != parts.scheme:
        raise _refuse(request, "wrong scheme for the store's endpoint")
    raw_path = parts.path
    if host in path_hosts:
        bucket, _, raw_key = raw_path.lstrip("/").partition("/")
        if unquote(bucket) != signer.bucket or not raw_path.startswith("/"):
            raise _refuse(request, "another bucket")
    elif host in bucket_hosts:
        raw_key = raw_path.lstrip("/")
    else:
        raise _refuse(request, "another host")
    params = parse_qsl(parts.query, keep_blank_values=True)
    names = {k for k, _ in params}
    prefix = signer.store_prefix + "/" if signer.store_prefix else ""
    if not raw_key:
        # Bucket level: only a listing, and only of a prefix inside a table folder.
        if request.method != "GET" or not names <= _LIST_PARAMS:
            raise _refuse(request, "bucket-level requests other than a listing")
        listed = dict(params).get("prefix", "")
        if len([1 for k, _ in params if k == "prefix"]) != 1 or not listed:
            raise _refuse(request, "a listing needs exactly one prefix")
        key = _decoded(request, quote(listed, safe="/"))
        if not key.startswith(prefix) or not in_table_folder(key[len(prefix) :]):
            raise _refuse(request, "the listed prefix is outside the caller's table folders")
        return key[len(prefix) :], False
    if not names <= _OBJECT_PARAMS:
        raise _refuse(request, f"sub-resources {sorted(names - _OBJECT_PARAMS)} are not allowed")
    if request.method == "POST" and not names & {"uploads", "uploadId"}:
        raise _refuse(request, "POST is only for multipart uploads")
    if "uploads" in names and request.method != "POST":
        # Some stores read ``GET key?uploads`` as the bucket's upload listing.
        raise _refuse(request, "?uploads is only for starting a multipart upload")
    key = _decoded(request, raw_key)
    if not key.startswith(prefix) or not in_table_folder(key[len(prefix) :]):
        raise _refuse(request, "the object is outside the caller's table folders")
    return key[len(prefix) :], request.method in _WRITE_METHODS


def folder_test(folders: Iterable[str]) -> Callable[[str], bool]:
    """``in_table_folder`` for a set of table folder keys (each ending with ``/``)."""
    ordered = sorted(folders)

    def inside(key: str) -> bool:
        return any(key.startswith(folder) for folder in ordered)

    return inside
