"""HmacSigner: URLs for Arco's blob route on stores that cannot presign."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from arco.core.errors import UnsupportedOperationError
from arco.core.storage import FaultInjectingStore, HmacSigner, open_store
from arco.core.storage.signing import url_signing_secret

NOW = 1_800_000_000.0
BASE = "http://127.0.0.1:8080/api"


def _parts(url: str) -> tuple[str, int, str]:
    """(key, expires, sig) as the blob route would read them."""
    split = urlsplit(url)
    assert split.path.startswith("/api/blob/")
    key = unquote(split.path[len("/api/blob/") :])
    query = parse_qs(split.query)
    return key, int(query["expires"][0]), query["sig"][0]


@pytest.fixture
def signer() -> HmacSigner:
    return HmacSigner(secret=b"s3cr3t-key", base_url=BASE + "/")


def test_signed_url_verifies(signer: HmacSigner) -> None:
    url = signer.sign("tenant=t/workspace=w/snapshots/x.parquet", 300, now=NOW)
    assert url.startswith(f"{BASE}/blob/")  # no double slash from the base URL
    key, expires, sig = _parts(url)
    assert key == "tenant=t/workspace=w/snapshots/x.parquet"
    assert expires == int(NOW) + 300
    assert len(sig) == 64
    assert signer.verify(key, expires, sig, now=NOW)
    assert signer.verify(key, expires, sig, now=NOW + 299)


def test_signature_is_deterministic_and_key_specific(signer: HmacSigner) -> None:
    assert signer.sign("a", 60, now=NOW) == signer.sign("a", 60, now=NOW)
    assert _parts(signer.sign("a", 60, now=NOW))[2] != _parts(signer.sign("b", 60, now=NOW))[2]


def test_special_characters_in_keys_roundtrip(signer: HmacSigner) -> None:
    raw = "dir with space/é?x=1&y#frag"
    key, expires, sig = _parts(signer.sign(raw, 60, now=NOW))
    assert key == raw
    assert signer.verify(key, expires, sig, now=NOW)


def test_tampered_key_fails(signer: HmacSigner) -> None:
    key, expires, sig = _parts(signer.sign("snapshots/a.parquet", 60, now=NOW))
    assert not signer.verify("snapshots/b.parquet", expires, sig, now=NOW)
    assert not signer.verify(key + "x", expires, sig, now=NOW)


def test_tampered_expiry_fails(signer: HmacSigner) -> None:
    key, expires, sig = _parts(signer.sign("k", 60, now=NOW))
    assert not signer.verify(key, expires + 3600, sig, now=NOW)
    assert not signer.verify(key, expires - 1, sig, now=NOW)


def test_tampered_signature_fails(signer: HmacSigner) -> None:
    key, expires, sig = _parts(signer.sign("k", 60, now=NOW))
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert not signer.verify(key, expires, flipped, now=NOW)
    assert not signer.verify(key, expires, sig.upper(), now=NOW)
    assert not signer.verify(key, expires, "", now=NOW)


def test_other_secret_fails(signer: HmacSigner) -> None:
    key, expires, sig = _parts(signer.sign("k", 60, now=NOW))
    other = HmacSigner(secret=b"another-key", base_url=BASE)
    assert not other.verify(key, expires, sig, now=NOW)


def test_expired_fails(signer: HmacSigner) -> None:
    key, expires, sig = _parts(signer.sign("k", 60, now=NOW))
    assert signer.verify(key, expires, sig, now=NOW + 60)  # valid up to the second
    assert not signer.verify(key, expires, sig, now=NOW + 61)
    assert not signer.verify(key, expires, sig, now=NOW + 86_400)


def test_default_clock(signer: HmacSigner) -> None:
    key, expires, sig = _parts(signer.sign("k", 60))
    assert signer.verify(key, expires, sig)
    key, expires, sig = _parts(signer.sign("k", -1))
    assert not signer.verify(key, expires, sig)


def test_store_with_a_signer_returns_hmac_urls(signer: HmacSigner, tmp_path: Path) -> None:
    for url in ("memory://", f"file://{tmp_path}/store"):
        store = open_store(url, signer=signer)
        store.put("obj", b"x")
        key, expires, sig = _parts(store.sign("obj", 120))
        assert key == "obj"
        assert signer.verify(key, expires, sig)


# ----------------------------------------------------------------- the API's signer


def test_request_base_url_overrides_the_default(signer: HmacSigner) -> None:
    url = signer.sign("k", 60, now=NOW, base_url="https://arco.example/root/")
    assert url.startswith("https://arco.example/root/blob/k?")
    key, expires, sig = _parts(url.replace("https://arco.example/root", BASE))
    assert signer.verify(
        key, expires, sig, now=NOW
    )  # the base is not signed: proxies may rewrite it


def test_a_non_ascii_signature_is_refused_not_an_error(signer: HmacSigner) -> None:
    key, expires, _ = _parts(signer.sign("k", 60, now=NOW))
    assert not signer.verify(key, expires, "\u0080" * 64, now=NOW)
    assert not signer.verify(key, expires, "é", now=NOW)


def test_signing_secret_configured_wins() -> None:
    assert url_signing_secret("configured", "jwt") == b"configured"


def test_signing_secret_is_derived_from_the_jwt_secret_under_its_own_label() -> None:
    derived = url_signing_secret(None, "jwt-secret")
    assert derived == url_signing_secret(None, "jwt-secret")  # every process agrees
    assert derived != b"jwt-secret"
    assert derived != hmac.new(b"jwt-secret", b"", hashlib.sha256).digest()
    assert derived != url_signing_secret(None, "another-jwt-secret")
    assert len(derived) == 32
    # A URL signed with the JWT secret itself does not verify under the derived key.
    raw = HmacSigner(secret=b"jwt-secret", base_url=BASE)
    key, expires, sig = _parts(raw.sign("k", 60, now=NOW))
    assert not HmacSigner(secret=derived, base_url=BASE).verify(key, expires, sig, now=NOW)


def test_signing_secret_without_configuration_is_random_per_call() -> None:
    first, second = url_signing_secret(None, None), url_signing_secret(None, None)
    assert len(first) == 32
    assert first != second


def test_local_and_memory_stores_do_not_presign(tmp_path: Path) -> None:
    for url in ("memory://", f"file://{tmp_path}/store"):
        store = open_store(url)
        store.put("obj", b"x")
        assert store.signed_get_url("obj", 60) is None
        wrapped = FaultInjectingStore(store)
        assert wrapped.signed_get_url("obj", 60) is None
        assert [c.op for c in wrapped.calls] == ["signed_get_url"]


def test_cloud_stores_presign_locally_without_network() -> None:
    """S3 signing is local arithmetic: no request leaves the process."""
    store = open_store(
        "s3://bucket/pre?endpoint=http://127.0.0.1:1&access_key_id=AKID&secret_access_key=S"
        "&allow_http=true&virtual_hosted_style_request=false"
    )
    url = store.signed_get_url("tenant=t/workspace=w/snapshots/x.parquet", 900)
    assert url is not None
    split = urlsplit(url)
    assert split.netloc == "127.0.0.1:1"
    assert unquote(split.path) == "/bucket/pre/tenant=t/workspace=w/snapshots/x.parquet"
    query = parse_qs(split.query)
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Credential"][0].startswith("AKID/")
    with pytest.raises(UnsupportedOperationError):
        store.signed_get_url("k", 0)
