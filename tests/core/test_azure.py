"""The storage contract on ``az://`` against Azurite (the Azure Blob emulator, from npm).

``azurite`` (module scope) installs the pinned Azurite of ``tools/azurite`` with
``npm ci`` when ``node_modules`` is missing, runs ``azurite-blob`` on a free loopback
port with ``--disableTelemetry``, and creates a container with an account SAS (the
emulator's account and key are public). Every test of the storage conformance
suite (tests/core/test_storage_conformance.py) then runs on an ``az://`` store
opened through :func:`open_store`, plus Azure's presigned GET URLs.

Missing node/npm or a failed install skips, or fails under ``ARCO_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import test_storage_conformance as conformance

from arco.core.storage import ObjectStore, open_store, parse_store_url
from arco.core.storage.factory import AZURITE_ACCOUNT, AZURITE_KEY
from conftest import free_port, require_or_skip

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "azurite"
CONTAINER = "arco-test"
_START_TIMEOUT_S = 30.0


def _azurite_binary() -> Path:
    binary = TOOLS / "node_modules" / ".bin" / "azurite-blob"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        require_or_skip("node/npm not installed: cannot install Azurite (tools/azurite)")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 or not binary.exists():
        require_or_skip(f"npm ci in tools/azurite failed: {done.stderr[-1000:]}")
    return binary


def account_sas(expiry: timedelta = timedelta(hours=2)) -> str:
    """An account SAS query string for the emulator account (container create, etc.)."""
    version = "2019-12-12"
    expires = (datetime.now(UTC) + expiry).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = [AZURITE_ACCOUNT, "rwdlac", "b", "sco", "", expires, "", "", version, ""]
    digest = hmac.new(
        base64.b64decode(AZURITE_KEY), "\n".join(fields).encode(), hashlib.sha256
    ).digest()
    query = {"sv": version, "ss": "b", "srt": "sco", "sp": "rwdlac", "se": expires}
    return urlencode({**query, "sig": base64.b64encode(digest).decode()})


class Azurite:
    """A running ``azurite-blob`` with one container."""

    def __init__(self, port: int) -> None:
        self.endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"

    def url(self, prefix: str) -> str:
        """The ``az://`` store URL of ``prefix`` in the test container."""
        return (
            f"az://{CONTAINER}/{prefix}?use_emulator=true&endpoint={self.endpoint}&allow_http=true"
        )

    def fresh_url(self) -> str:
        """A store URL under a new, empty prefix."""
        return self.url(uuid.uuid4().hex)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service on loopback for this module."""
    binary = _azurite_binary()
    workdir = tmp_path_factory.mktemp("azurite")
    port = free_port()
    cmd = [
        str(binary),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(workdir),
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
    ]
    log = (workdir / "azurite.log").open("wb")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir
    )
    server = Azurite(port)
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                response = httpx.put(
                    f"{server.endpoint}/{CONTAINER}?restype=container&{account_sas()}", timeout=2
                )
                if response.status_code in (201, 409):
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (workdir / "azurite.log").read_text(errors="replace")[-1500:]
                require_or_skip(f"Azurite did not start: {tail}")
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture
def store_url(azurite: Azurite) -> str:
    """Overrides the backend-parametrized fixture: every test here runs on ``az://``."""
    return azurite.fresh_url()


# Azure ETags change on every write, even of identical bytes: a stale CAS always fails.
conformance.STALE_CAS_WINS_AFTER_ABA.setdefault("az", False)
store = conformance.store
_NOT_HERE = {
    "test_sign",  # Azure presigns; checked below with its own expectations
    "test_cross_process_cas_counter_on_a_folder",  # local folders only
    "test_file_cas_versions_stay_unique_with_a_coarse_file_clock",  # local folders only
}
for _name in dir(conformance):
    if _name.startswith("test_") and _name not in _NOT_HERE:
        globals()[_name] = getattr(conformance, _name)


def test_the_factory_reaches_azurite_through_use_emulator_and_endpoint(azurite: Azurite) -> None:
    cfg = parse_store_url(azurite.url("x"))
    assert cfg.scheme == "az"
    assert cfg.config == {"use_emulator": True, "endpoint": azurite.endpoint}
    assert cfg.redacted_url() == f"az://{CONTAINER}/x"
    opened = open_store(azurite.url("x"))
    assert opened.url == f"az://{CONTAINER}/x"
    assert opened.inner.config["account_name"] == AZURITE_ACCOUNT  # type: ignore[attr-defined]


def test_presigned_get(store: ObjectStore) -> None:
    store.put("signed/obj", b"secret bytes")
    url = store.signed_get_url("signed/obj", 60)
    assert url is not None
    assert url == store.sign("signed/obj", 60) or "sig=" in url
    got = httpx.get(url, headers={"Origin": "http://elsewhere.example"}, timeout=10)
    assert got.status_code == 200
    assert got.content == b"secret bytes"
    tampered = url.replace("signed/obj", "signed/other", 1)
    assert httpx.get(tampered, timeout=10).status_code == 403
    flipped = url.replace("sp=r", "sp=rw", 1)
    assert flipped != url
    assert httpx.get(flipped, timeout=10).status_code == 403
    short = store.signed_get_url("signed/obj", 1)
    assert short is not None
    time.sleep(2.1)
    assert httpx.get(short, timeout=10).status_code == 403


def test_the_browser_urls_route_presigns_on_azure(azurite: Azurite, tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from api.conftest import Tokens, in_process_client, make_app
    from arco.catalog import Catalog
    from arco.core.scope import Scope

    url = azurite.fresh_url()
    cat = Catalog(open_store(url), Scope("acme", "main"))
    cat.create_namespace("sales")
    cat.create_table("sales", "orders", ["id:int64"])
    tokens = Tokens()
    with in_process_client(make_app(url)) as client:
        response = client.post(
            "/api/v1/browser/urls",
            json={"domains": ["catalog"]},
            headers=tokens.headers("acme", "main", ("reader",)),
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
    assert answer["urls"]
    for item in answer["urls"]:
        assert item["url"].startswith(azurite.endpoint + "/" + CONTAINER + "/")
        got = httpx.get(item["url"], timeout=10)
        assert got.status_code == 200
        assert len(got.content) == item["size"]
