"""The S3 remote signer's policy and signatures, without a server (ADR 014).

The live tests (``test_iceberg_clients.py``) sign real requests for pyiceberg on
SeaweedFS; these pin the rules: which URLs are refused, and that the signature
is AWS SigV4 exactly as botocore computes it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from arco.iceberg.signer import (
    S3Signer,
    SignRefusedError,
    SignRequest,
    authorize,
    folder_test,
    signer_for,
)

ENDPOINT = "http://127.0.0.1:8333"
PATH = "/test/pfx/tenant%3Dacme/workspace%3Dlake/warehouse/sales/orders-01/data/a.parquet"
FOLDERS = folder_test(["tenant=acme/workspace=lake/warehouse/sales/orders-01/"])
SIGNER = S3Signer(
    bucket="test",
    store_prefix="pfx",
    region="us-east-1",
    access_key_id="AKIDEXAMPLE",
    secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    session_token=None,
    endpoint=ENDPOINT,
    path_style=True,
)


def req(method: str, url: str, **headers: str) -> SignRequest:
    return SignRequest.parse(
        {"method": method, "uri": url, "headers": {k: [v] for k, v in headers.items()}}
    )


def test_requests_inside_a_table_folder_are_signed() -> None:
    key, writes = authorize(SIGNER, req("GET", ENDPOINT + PATH), FOLDERS)
    assert key == "tenant=acme/workspace=lake/warehouse/sales/orders-01/data/a.parquet"
    assert not writes
    assert authorize(SIGNER, req("PUT", ENDPOINT + PATH + "?x-id=PutObject"), FOLDERS)[1]
    assert authorize(SIGNER, req("POST", ENDPOINT + PATH + "?uploads"), FOLDERS)[1]
    assert authorize(SIGNER, req("PUT", ENDPOINT + PATH + "?partNumber=2&uploadId=u"), FOLDERS)[1]
    listing = (
        f"{ENDPOINT}/test?list-type=2&prefix="
        "pfx/tenant%3Dacme/workspace%3Dlake/warehouse/sales/orders-01/metadata/"
    )
    assert authorize(SIGNER, req("GET", listing), FOLDERS)[0].endswith("orders-01/metadata/")


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("GET", ENDPOINT + PATH.replace("acme", "evil"), {}),
        ("GET", ENDPOINT + PATH.replace("orders-01", "orders-02"), {}),
        ("GET", ENDPOINT + PATH.replace("orders-01", "orders-01x"), {}),
        ("GET", ENDPOINT + PATH.replace("/pfx/", "/other/"), {}),
        ("GET", ENDPOINT + PATH.replace("/test/", "/test2/"), {}),
        ("GET", "http://169.254.169.254" + PATH, {}),
        ("GET", "https://127.0.0.1:8333" + PATH, {}),
        ("GET", "http://user:pw@127.0.0.1:8333" + PATH, {}),
        ("GET", ENDPOINT + PATH.replace("data/a.parquet", "../../../../catalog/_pointer"), {}),
        ("GET", ENDPOINT + PATH.replace("data/", "data/%2e%2e/%2E%2E/"), {}),
        ("GET", ENDPOINT + PATH.replace("data/", "data%2F..%2F..%2F"), {}),
        ("GET", ENDPOINT + PATH.replace("data/", "data%5c..%5c"), {}),
        ("GET", ENDPOINT + PATH.replace("data/", "data//"), {}),
        ("GET", ENDPOINT + PATH.replace("data/", "./data/"), {}),
        ("GET", ENDPOINT + PATH + "%00", {}),
        ("GET", ENDPOINT + PATH + "%252F", {}),
        ("GET", ENDPOINT + PATH + "?acl", {}),
        ("GET", ENDPOINT + PATH + "?tagging", {}),
        ("PUT", ENDPOINT + PATH + "?policy", {}),
        ("POST", ENDPOINT + PATH, {}),
        ("GET", ENDPOINT + PATH + "?uploads", {}),
        ("POST", ENDPOINT + "/test?delete", {}),
        ("PATCH", ENDPOINT + PATH, {}),
        ("GET", ENDPOINT + "/test", {}),
        ("GET", ENDPOINT + "/test?list-type=2", {}),
        ("GET", ENDPOINT + "/test?list-type=2&prefix=", {}),
        ("GET", ENDPOINT + "/test?list-type=2&prefix=pfx/tenant%3Dacme/", {}),
        (
            "GET",
            ENDPOINT
            + "/test?list-type=2&prefix=pfx/tenant=acme/workspace=lake/warehouse/sales/"
            + "orders-01/../../",
            {},
        ),
        ("DELETE", ENDPOINT + "/test/", {}),
        ("PUT", ENDPOINT + PATH, {"x-amz-copy-source": "/test/pfx/tenant=evil/x"}),
        ("PUT", ENDPOINT + PATH, {"X-Amz-Acl": "public-read"}),
        ("PUT", ENDPOINT + PATH, {"x-amz-grant-read": "uri=AllUsers"}),
    ],
)
def test_requests_outside_the_callers_table_folders_are_refused(
    method: str, url: str, headers: dict[str, str]
) -> None:
    with pytest.raises(SignRefusedError):
        authorize(SIGNER, req(method, url, **headers), FOLDERS)


def test_virtual_hosted_style_addresses_the_bucket_by_host() -> None:
    aws = S3Signer("test", "", "eu-west-1", "k", "s", None, None, False)
    path = "/tenant%3Dacme/workspace%3Dlake/warehouse/sales/orders-01/data/a.parquet"
    url = "https://test.s3.eu-west-1.amazonaws.com" + path
    assert authorize(aws, req("GET", url), FOLDERS)[0].startswith("tenant=acme/")
    for bad in ("https://evil.s3.eu-west-1.amazonaws.com", "https://test.s3.evil.com"):
        with pytest.raises(SignRefusedError):
            authorize(aws, req("GET", bad + path), FOLDERS)


def test_the_signature_is_sigv4_as_botocore_computes_it() -> None:
    pytest.importorskip("botocore")
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = ENDPOINT + PATH + "?partNumber=2&uploadId=abc~d"
    headers = {"x-amz-meta-owner": "arco", "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg=="}
    theirs = AWSRequest(method="PUT", url=url, headers={**headers}, data=b"")
    creds = Credentials(SIGNER.access_key_id, SIGNER.secret_access_key)
    S3SigV4Auth(creds, "s3", "us-east-1").add_auth(theirs)

    # Same instant and the payload hash botocore sent: the signatures must agree.
    when = datetime.strptime(theirs.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    sent = {**headers, "x-amz-content-sha256": theirs.headers["X-Amz-Content-SHA256"]}
    answer = SIGNER.sign(req("PUT", url, **sent), now=when)
    ours = {k: v[0] for k, v in answer["headers"].items()}
    assert ours["authorization"] == theirs.headers["Authorization"]
    assert ours["x-amz-date"] == theirs.headers["X-Amz-Date"]
    # Without a client payload hash the request is signed as UNSIGNED-PAYLOAD.
    bare = SIGNER.sign(req("GET", ENDPOINT + PATH), now=when)["headers"]
    assert bare["x-amz-content-sha256"] == ["UNSIGNED-PAYLOAD"]


def test_a_store_without_s3_credentials_has_no_signer() -> None:
    assert signer_for("file:///tmp/x", {}) is None
    assert signer_for("s3://b/p?endpoint=http://h:1&allow_http=true", {}) is None
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    found = signer_for("s3://b/p?endpoint=http://h:1&allow_http=true", env)
    assert found is not None
    assert (found.bucket, found.store_prefix, found.path_style) == ("b", "p", True)
