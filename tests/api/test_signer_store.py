"""A separate, read-only identity that presigns the browser's URLs (issue #16, ADR 022).

``ARCO_SIGNER_STORE_URL`` / ``[server] signer_store_url`` names the same bucket and
prefix as the store with the signer's own credentials. It is checked at startup;
against SeaweedFS (a second identity that may only read the bucket) the URLs it
mints read the files, and a PUT presigned with the same identity is refused by
the store itself.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import obstore
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arco.api.settings import Settings
from arco.catalog import Catalog
from arco.core.errors import InvalidArgumentError
from arco.core.keys import Keys
from arco.core.storage import check_signer_store_url, open_store

from .conftest import Tokens, in_process_client, make_app
from .test_browser_urls import SCOPE, TENANT, WORKSPACE, mint, populate_tier2

S3 = "s3://lake/arco?endpoint=http://127.0.0.1:9&access_key_id=API&secret_access_key=SECRETAPI"
SIGNER = (
    "s3://lake/arco?endpoint=http://127.0.0.1:9&access_key_id=SIGN&secret_access_key=SECRETSIGN"
)


# ------------------------------------------------------------------ the check
@pytest.mark.parametrize(
    ("signer", "store", "message"),
    [
        ("file:///tmp/x", "file:///tmp/x", "cannot presign"),
        ("memory://m", "memory://m", "cannot presign"),
        (SIGNER.replace("lake/arco", "other/arco"), S3, "same bucket and prefix"),
        (SIGNER.replace("lake/arco", "lake/elsewhere"), S3, "same bucket and prefix"),
        (SIGNER.replace("lake/arco", "lake"), S3, "same bucket and prefix"),
        (SIGNER, "file:///tmp/x", "same bucket and prefix"),
        ("gs://lake/arco?service_account_path=/k.json", S3, "same bucket and prefix"),
        (SIGNER.replace("127.0.0.1:9", "127.0.0.1:10"), S3, "endpoint="),
        (SIGNER + "&region=eu-west-1", S3, "region="),
        (S3, S3, "same credentials as the store"),
        (
            "s3://lake/arco?endpoint=http://127.0.0.1:9",
            "s3://lake/arco?endpoint=http://127.0.0.1:9",
            "none: both would use the process's default credentials",
        ),
        ("gs://lake/arco", "gs://lake/arco", "service_account_path or service_account_key"),
        ("az://c/arco?account_name=b&sas_key=X", "az://c/arco?account_name=a", "account_name="),
    ],
)
def test_a_signer_store_that_cannot_presign_this_store_is_refused(
    signer: str, store: str, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(")) as caught:
        check_signer_store_url(signer, store)
    for secret in ("SECRETAPI", "SECRETSIGN", "sas_key=X"):
        assert secret not in str(caught.value)  # never a secret in the error


@pytest.mark.parametrize(
    ("signer", "store"),
    [
        (SIGNER, S3),
        (SIGNER + "&region=us-east-1", S3),  # the default region, spelled out
        (SIGNER.replace("http://127.0.0.1:9", "http://127.0.0.1:9/"), S3),
        # The store uses the environment's credentials; the signer names its own.
        (SIGNER, "s3://lake/arco/?endpoint=http://127.0.0.1:9"),
        ("gs://lake/arco?service_account_path=/signer.json", "gs://lake/arco"),
        ("az://c/arco?account_name=a&sas_key=X", "az://c/arco?account_name=a&account_key=K"),
    ],
)
def test_a_signer_store_of_the_same_bucket_with_its_own_identity_is_accepted(
    signer: str, store: str
) -> None:
    assert check_signer_store_url(signer, store).scheme == signer.split(":")[0]


def test_the_app_refuses_to_start_with_a_mismatched_signer() -> None:
    with pytest.raises(InvalidArgumentError, match="same bucket and prefix"):
        make_app(S3, signer_store_url=SIGNER.replace("lake/arco", "lake/other"))
    # Unset: the store presigns itself, as before.
    app = make_app()
    assert app.state.presigner is app.state.store
    app = make_app(S3, signer_store_url=SIGNER)
    assert app.state.presigner is not app.state.store
    assert app.state.presigner.url == "s3://lake/arco"


def test_settings_read_the_environment_then_arco_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARCO_SIGNER_STORE_URL", raising=False)
    monkeypatch.delenv("ARCO_STORE", raising=False)
    monkeypatch.setenv("ARCO_PROJECT_DIR", str(tmp_path))
    assert Settings.from_env().signer_store_url is None
    (tmp_path / "arco.toml").write_text(
        f'[store]\nurl = "{S3}"\n[server]\nsigner_store_url = "{SIGNER}"\n'
    )
    assert Settings.from_env().signer_store_url == SIGNER
    assert Settings.from_env().store_url == S3
    monkeypatch.setenv("ARCO_SIGNER_STORE_URL", "s3://from/env")
    assert Settings.from_env().signer_store_url == "s3://from/env"
    assert Settings.from_env(signer_store_url=None).signer_store_url is None
    monkeypatch.delenv("ARCO_SIGNER_STORE_URL")
    (tmp_path / "arco.toml").write_text('[server]\nsigner_store_url = ""\n')
    with pytest.raises(InvalidArgumentError, match="must be a store URL string"):
        Settings.from_env()
    (tmp_path / "arco.toml").write_text('[server]\nsigner_url = "s3://x"\n')
    with pytest.raises(InvalidArgumentError, match=r"unknown key.*signer_url"):
        Settings.from_env()


def test_arco_serve_refuses_a_mismatched_signer_before_serving(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ARCO_JWT_SECRET": "x" * 40,
        "ARCO_STORE": S3,
        "ARCO_SIGNER_STORE_URL": SIGNER.replace("lake/arco", "other/arco"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "arco.cli.main", "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "same bucket and prefix" in done.stderr
    assert "SECRETSIGN" not in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------ S3 (SeaweedFS)
def _credential(url: str) -> str:
    """The access key a presigned S3 URL was signed with."""
    return parse_qs(urlsplit(url).query)["X-Amz-Credential"][0].split("/")[0]


@pytest.mark.s3
def test_urls_minted_by_the_signer_identity_read_but_cannot_write(
    seaweed: Any, tokens: Tokens
) -> None:
    prefix = os.urandom(8).hex()
    url, signer_url = seaweed.url(prefix), seaweed.url(prefix, signer=True)
    store = open_store(url)
    catalog = Catalog(store, SCOPE)
    catalog.create_namespace("sales")
    folder = Keys(SCOPE).warehouse_prefix() + "sales/orders/"
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2, 3]}), sink)
    store.put(folder + "a.parquet", sink.getvalue())
    catalog.create_table("sales", "orders", ["id:int64"], location=folder)
    populate_tier2(store, SCOPE)

    # Unset: the store's own (read-write) identity presigns, as before.
    with in_process_client(make_app(url)) as client:
        before = mint(client, tokens)["urls"]
    assert {_credential(u["url"]) for u in before} == {seaweed.access_key}

    with in_process_client(make_app(url, signer_store_url=signer_url)) as client:
        urls = mint(client, tokens)["urls"]
        tables = client.post(
            "/api/v1/browser/tables",
            json={"tables": ["sales.orders"]},
            headers=tokens.headers(TENANT, WORKSPACE, ("reader",)),
        )
        assert tables.status_code == 200, tables.text
        urls += tables.json()["tables"][0]["urls"]
        # The API itself still writes with its own identity.
        assert client.get("/readyz").json()["status"] == "ok"
        created = client.post(
            "/api/v1/namespaces",
            json={"name": "more"},
            headers=tokens.headers(TENANT, WORKSPACE, ("writer",)),
        )
        assert created.status_code == 201, created.text
    assert any(u["path"].endswith("a.parquet") for u in urls)
    for item in urls:
        assert _credential(item["url"]) == seaweed.signer_key
        got = httpx.get(item["url"], timeout=10)
        assert got.status_code == 200, got.text
        assert got.content == store.get(item["path"])[0]

    # The same identity presigning a PUT: the store refuses it, and nothing changes.
    signer = open_store(signer_url)
    key = urls[0]["path"]
    original = store.get(key)[0]
    for target in (key, Keys(SCOPE).pointer("catalog"), key + ".new"):
        put = str(obstore.sign(signer.inner, "PUT", target, timedelta(seconds=60)))  # type: ignore[attr-defined]
        answer = httpx.put(put, content=b"overwritten", timeout=10)
        assert answer.status_code == 403, (target, answer.text)
    assert store.get(key)[0] == original
    assert not store.exists(key + ".new")
    # The refusal is the identity's: the API's own identity may write there.
    put = str(obstore.sign(store.inner, "PUT", key + ".new", timedelta(seconds=60)))  # type: ignore[attr-defined]
    assert httpx.put(put, content=b"x", timeout=10).status_code == 200
