"""Store URL parsing and store construction, without any network or emulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from arco.core.errors import InvalidArgumentError
from arco.core.storage import (
    LocalFolderStore,
    ObstoreStore,
    StoreConfig,
    open_store,
    parse_store_url,
)

# --------------------------------------------------------------------------- file


def test_file_absolute(tmp_path: Path) -> None:
    cfg = parse_store_url(f"file://{tmp_path}/data")
    assert cfg == StoreConfig(scheme="file", path=str(tmp_path / "data"))
    assert cfg.redacted_url() == f"file://{tmp_path}/data"


def test_file_relative_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_store_url("file://./.arco").path == str(tmp_path / ".arco")
    assert parse_store_url("file://rel/dir").path == str(tmp_path / "rel" / "dir")


def test_bare_path_means_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_store_url("some/dir") == StoreConfig(
        scheme="file", path=str(tmp_path / "some" / "dir")
    )
    assert parse_store_url(str(tmp_path / "abs")).path == str(tmp_path / "abs")
    assert parse_store_url(f"  {tmp_path}/padded  ").path == str(tmp_path / "padded")


@pytest.mark.parametrize("url", ["file://", "file://?x=1"])
def test_file_needs_a_path(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_store_url(url)


def test_file_takes_no_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no options"):
        parse_store_url(f"file://{tmp_path}?region=x")
    with pytest.raises(InvalidArgumentError, match="no options"):
        parse_store_url(f"file://{tmp_path}", {"allow_http": True})


def test_open_file_store_creates_the_folder(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/new/store")
    assert isinstance(store, LocalFolderStore)
    assert store.url == f"file://{tmp_path}/new/store"
    assert (tmp_path / "new" / "store").is_dir()
    store.put("k", b"v")
    assert (tmp_path / "new" / "store" / "k").read_bytes() == b"v"


# --------------------------------------------------------------------------- memory


def test_memory() -> None:
    assert parse_store_url("memory://cat1") == StoreConfig(scheme="memory", bucket="cat1")
    assert parse_store_url("memory://cat1/").bucket == "cat1"
    assert parse_store_url("memory://").bucket == ""
    assert parse_store_url("memory://cat1").redacted_url() == "memory://cat1"
    with pytest.raises(InvalidArgumentError, match="no options"):
        parse_store_url("memory://cat1?endpoint=x")


def test_named_memory_store_is_shared_and_anonymous_is_fresh() -> None:
    name = f"memory://factory-test-{os.getpid()}"
    first = open_store(name)
    first.put("k", b"v")
    again = open_store(name)
    assert again is first
    assert again.get("k")[0] == b"v"
    a, b = open_store("memory://"), open_store("memory://")
    assert a is not b
    a.put("k", b"v")
    assert not b.exists("k")


# --------------------------------------------------------------------------- s3

_S3_URL = (
    "s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-1"
    "&access_key_id=AKID&secret_access_key=TOPSECRET&session_token=TOKENSECRET"
    "&allow_http=true&virtual_hosted_style_request=false&timeout=30s"
)


def test_s3_options() -> None:
    cfg = parse_store_url(_S3_URL)
    assert cfg.scheme == "s3"
    assert cfg.bucket == "bucket"
    assert cfg.prefix == "some/prefix"
    assert cfg.config == {
        "endpoint": "http://127.0.0.1:9000",
        "region": "eu-west-1",
        "access_key_id": "AKID",
        "secret_access_key": "TOPSECRET",
        "session_token": "TOKENSECRET",
        "virtual_hosted_style_request": False,
    }
    assert cfg.client_options == {"allow_http": True, "timeout": "30s"}


def test_s3_secrets_are_not_in_the_redacted_url() -> None:
    cfg = parse_store_url(_S3_URL)
    redacted = cfg.redacted_url()
    assert redacted == "s3://bucket/some/prefix"
    for secret in ("TOPSECRET", "TOKENSECRET", "AKID", "endpoint"):
        assert secret not in redacted
    store = open_store(_S3_URL)
    assert store.url == "s3://bucket/some/prefix"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("1", True),
        ("YES", True),
        (" on ", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("Off", False),
    ],
)
def test_boolean_options(text: str, expected: bool) -> None:
    cfg = parse_store_url(f"s3://b?allow_http={text}&skip_signature={text}")
    assert cfg.client_options["allow_http"] is expected
    assert cfg.config["skip_signature"] is expected


def test_bad_boolean_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match="true or false"):
        parse_store_url("s3://b?allow_http=maybe")
    with pytest.raises(InvalidArgumentError, match="true or false"):
        parse_store_url("s3://b?virtual_hosted_style_request=")


def test_options_mapping_merges_and_wins() -> None:
    cfg = parse_store_url(
        "s3://b?region=us-east-1&endpoint=http://a",
        {"region": "eu-central-1", "allow_http": True, "access_key_id": "K"},
    )
    assert cfg.config == {"region": "eu-central-1", "endpoint": "http://a", "access_key_id": "K"}
    assert cfg.client_options == {"allow_http": True}


@pytest.mark.parametrize(
    "url",
    ["s3://b?regoin=us-east-1", "s3://b?service_account_path=/x", "s3://b?account_name=x"],
)
def test_unknown_option_is_rejected(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown option"):
        parse_store_url(url)


def test_unknown_option_in_mapping_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown option"):
        parse_store_url("s3://b", {"secret_key": "x"})


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "gs://", "az://?use_emulator=true"])
def test_cloud_url_needs_a_bucket(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="bucket or container"):
        parse_store_url(url)


@pytest.mark.parametrize("url", ["", "   ", "ftp://host/x", "http://host/x", "hdfs://nn/x"])
def test_bad_urls_are_rejected(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_store_url(url)


def test_scheme_is_case_insensitive() -> None:
    assert parse_store_url("S3://b/p").scheme == "s3"


def test_open_s3_store_without_network() -> None:
    store = open_store(_S3_URL)
    assert isinstance(store, ObstoreStore)
    inner = store.inner
    assert type(inner).__name__ == "S3Store"
    assert inner.prefix == "some/prefix"
    assert inner.config["region"] == "eu-west-1"
    assert inner.config["bucket"] == "bucket"
    default_region = open_store("s3://b?endpoint=http://127.0.0.1:1")
    assert default_region.inner.config["region"] == "us-east-1"


# --------------------------------------------------------------------------- gcs


def test_gcs_options() -> None:
    cfg = parse_store_url("gs://my-bucket/lake/arco?service_account_path=/etc/sa.json")
    assert cfg.scheme == "gs"
    assert cfg.bucket == "my-bucket"
    assert cfg.prefix == "lake/arco"
    assert cfg.config == {"service_account_path": "/etc/sa.json"}
    assert cfg.client_options == {}
    assert cfg.redacted_url() == "gs://my-bucket/lake/arco"


def test_gcs_service_account_key_is_redacted() -> None:
    cfg = parse_store_url("gs://b", {"service_account_key": '{"private_key": "PRIVATE"}'})
    assert "PRIVATE" not in cfg.redacted_url()
    assert cfg.redacted_url() == "gs://b"


def test_open_gcs_store_without_network() -> None:
    store = open_store("gs://my-bucket/lake")
    assert isinstance(store, ObstoreStore)
    assert type(store.inner).__name__ == "GCSStore"
    assert store.inner.prefix == "lake"
    assert store.inner.config["bucket"] == "my-bucket"
    assert store.url == "gs://my-bucket/lake"


def test_open_gcs_store_with_a_service_account_file(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        from conftest import require_or_skip

        require_or_skip("openssl not installed: cannot make an RSA key for a fake service account")
    key = tmp_path / "key.pem"
    subprocess.run(
        [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
        check=True,
        capture_output=True,
    )
    account = {
        "type": "service_account",
        "project_id": "arco-test",
        "private_key_id": "0",
        "private_key": key.read_text(),
        "client_email": "arco@arco-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:1/token",
    }
    sa_path = tmp_path / "sa.json"
    sa_path.write_text(json.dumps(account))
    store = open_store(f"gs://my-bucket?service_account_path={sa_path}")
    assert type(store.inner).__name__ == "GCSStore"
    assert store.inner.config["service_account"] == str(sa_path)
    assert str(sa_path) not in store.url


# --------------------------------------------------------------------------- azure


def test_azure_options() -> None:
    cfg = parse_store_url(
        "az://container/lake?account_name=devstoreaccount1&use_emulator=true"
        "&account_key=KEYSECRET&allow_http=1"
    )
    assert cfg.scheme == "az"
    assert cfg.bucket == "container"
    assert cfg.prefix == "lake"
    assert cfg.config == {
        "account_name": "devstoreaccount1",
        "use_emulator": True,
        "account_key": "KEYSECRET",
    }
    assert cfg.client_options == {"allow_http": True}
    assert "KEYSECRET" not in cfg.redacted_url()
    assert cfg.redacted_url() == "az://container/lake"


@pytest.mark.parametrize("scheme", ["abfs", "azure"])
def test_azure_aliases(scheme: str) -> None:
    cfg = parse_store_url(f"{scheme}://container?account_name=acct&sas_key=SASSECRET")
    assert cfg.scheme == "az"
    assert cfg.config == {"account_name": "acct", "sas_key": "SASSECRET"}
    assert cfg.redacted_url() == "az://container"


def test_open_azure_store_without_network() -> None:
    store = open_store("az://container/lake?use_emulator=true&allow_http=true")
    assert isinstance(store, ObstoreStore)
    inner = store.inner
    assert type(inner).__name__ == "AzureStore"
    assert inner.prefix == "lake"
    assert inner.config["container_name"] == "container"
    assert str(inner.config["use_emulator"]).lower() == "true"
    assert store.url == "az://container/lake"


def test_azure_emulator_endpoint_becomes_the_well_known_account() -> None:
    from arco.core.storage.factory import AZURITE_ACCOUNT, _azure_config

    endpoint = "http://127.0.0.1:18000/devstoreaccount1"
    cfg = parse_store_url(f"az://c/p?use_emulator=true&endpoint={endpoint}&allow_http=true")
    assert cfg.config == {"use_emulator": True, "endpoint": endpoint}
    azure = _azure_config(cfg.config)
    assert azure["account_name"] == AZURITE_ACCOUNT
    assert azure["endpoint"] == endpoint
    assert "use_emulator" not in azure
    assert len(azure["account_key"]) == 88  # the emulator's public base64 key
    # Without an endpoint obstore's own emulator mode (127.0.0.1:10000) is kept.
    assert _azure_config({"use_emulator": True}) == {"use_emulator": True}
    # An explicit account wins over the emulator defaults.
    assert (
        _azure_config({"use_emulator": True, "endpoint": endpoint, "account_name": "x"})[
            "account_name"
        ]
        == "x"
    )
    store = open_store(f"az://c/p?use_emulator=true&endpoint={endpoint}&allow_http=true")
    assert store.inner.config["account_name"] == AZURITE_ACCOUNT
    assert store.url == "az://c/p"


# --------------------------------------------------------------------------- gcs (more)


def test_gcs_client_options_and_every_credential_kind() -> None:
    cfg = parse_store_url(
        "gs://b/deep/prefix/?timeout=30s&connect_timeout=5s&allow_http=false"
        "&application_credentials=/etc/adc.json"
    )
    assert cfg.prefix == "deep/prefix"
    assert cfg.config == {"application_credentials": "/etc/adc.json"}
    assert cfg.client_options == {"timeout": "30s", "connect_timeout": "5s", "allow_http": False}
    key = parse_store_url("gs://b", {"service_account_key": "{}"})
    assert key.config == {"service_account_key": "{}"}


@pytest.mark.parametrize(
    "option",
    ["endpoint=http://x", "region=eu", "access_key_id=A", "account_name=x", "use_emulator=true"],
)
def test_gcs_refuses_options_of_other_clouds(option: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"unknown option .* for gs://"):
        parse_store_url(f"gs://b?{option}")


def test_gcs_bucket_and_prefix_shapes() -> None:
    assert parse_store_url("gs://b").prefix == ""
    assert parse_store_url("gs://b/").prefix == ""
    assert parse_store_url("GS://b/x").scheme == "gs"
    with pytest.raises(InvalidArgumentError, match="bucket"):
        parse_store_url("gs:///x")


def test_gcs_store_presigns_without_network_given_a_service_account(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        from conftest import require_or_skip

        require_or_skip("openssl not installed: cannot make an RSA key for a fake service account")
    key = tmp_path / "key.pem"
    subprocess.run(
        [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
        check=True,
        capture_output=True,
    )
    account = {
        "type": "service_account",
        "project_id": "arco-test",
        "private_key_id": "0",
        "private_key": key.read_text(),
        "client_email": "arco@arco-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:1/token",
    }
    sa_path = tmp_path / "sa.json"
    sa_path.write_text(json.dumps(account))
    store = open_store(f"gs://my-bucket/lake?service_account_path={sa_path}")
    url = store.signed_get_url("tenant=t/workspace=w/snapshots/x.parquet", 600)
    assert url is not None
    split = urlsplit(url)
    assert split.netloc == "storage.googleapis.com"
    assert unquote(split.path) == "/my-bucket/lake/tenant=t/workspace=w/snapshots/x.parquet"
    assert "X-Goog-Expires=600" in url
    assert "X-Goog-Signature=" in url
    assert "arco%40arco-test.iam.gserviceaccount.com" in url
