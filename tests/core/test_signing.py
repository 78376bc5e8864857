"""HmacSigner: URLs for Arco's blob route on stores that cannot presign."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from arco.core.storage import HmacSigner, open_store

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
