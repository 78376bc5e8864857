"""Every error class of the hierarchy maps to its HTTP status and problem ``type`` (issue #10).

The table below is the contract. A new error class fails
:func:`test_every_error_class_is_in_the_table` until it is given a status here
and, if needed, in ``arco.api.problems.STATUS``.
"""

from __future__ import annotations

import importlib
import os
import uuid
from pathlib import Path

import pytest
from fastapi import FastAPI

from arco.api import problems
from arco.core.errors import ArcoError, StorageError
from arco.core.storage import Match, open_store

from .conftest import PROBLEM_JSON, Tokens, in_process_client, make_app

#: "module:Class" -> (HTTP status, problem type suffix)
EXPECTED: dict[str, tuple[int, str]] = {
    "arco.core.errors:ArcoError": (400, "arco-error"),
    "arco.core.errors:InvalidNameError": (400, "invalid-name"),
    "arco.core.errors:InvalidArgumentError": (400, "invalid-argument"),
    "arco.core.errors:NotFoundError": (404, "not-found"),
    "arco.core.errors:AlreadyExistsError": (409, "already-exists"),
    "arco.core.errors:ConflictError": (409, "conflict"),
    "arco.core.errors:StorageError": (503, "storage-error"),
    "arco.core.errors:ObjectNotFoundError": (503, "object-not-found"),
    "arco.core.errors:PreconditionFailedError": (503, "precondition-failed"),
    "arco.core.errors:UnsupportedOperationError": (400, "unsupported"),
    "arco.core.errors:LockUnavailableError": (503, "lock-unavailable"),
    "arco.core.errors:FencedError": (409, "fenced"),
    "arco.core.errors:CommitConflictError": (503, "commit-conflict"),
    "arco.core.errors:IntegrityError": (500, "integrity"),
    "arco.core.errors:PointerMissingError": (500, "pointer-missing"),
    "arco.ledger.events:InvalidEventError": (400, "invalid-event"),
    "arco.ledger.events:EventTooLargeError": (400, "invalid-event"),
    "arco.sql.errors:QueryRejectedError": (400, "query-rejected"),
    "arco.sql.errors:QueryError": (400, "query-error"),
    "arco.sql.errors:QueryTooLargeError": (413, "query-too-large"),
    "arco.sql.errors:QueryTimeoutError": (422, "query-timeout"),
    "arco.flow.states:IllegalTransitionError": (409, "illegal-transition"),
    "arco.flow.definitions:DefinitionError": (400, "definition-error"),
    "arco.api.auth:AuthenticationError": (401, "unauthenticated"),
    "arco.core.errors:PermissionDeniedError": (403, "forbidden"),
    "arco.api.governance:WorkspaceRetiredError": (403, "workspace-retired"),
    "arco.api.governance:QuotaRejectedError": (429, "quota-exceeded"),
    "arco.governance.tenants:QuotaExceededError": (429, "quota-exceeded"),
    "arco.sql.tabledata:TableDataError": (422, "table-data-unreadable"),
    "arco.sql.tabledata:TableLocationError": (422, "table-location-forbidden"),
    "arco.sql.tabledata:TableFileMissingError": (404, "table-file-missing"),
    "arco.catalog.formats:UnsupportedTableChangeError": (400, "unsupported-table-change"),
    "arco.iceberg.service:NoSuchNamespaceError": (404, "no-such-namespace"),
    "arco.iceberg.service:NoSuchTableError": (404, "no-such-table"),
    "arco.iceberg.service:NamespaceNotEmptyError": (409, "namespace-not-empty"),
    "arco.iceberg.service:TableAlreadyExistsError": (409, "already-exists"),
    "arco.iceberg.views:NoSuchViewError": (404, "no-such-view"),
    "arco.iceberg.views:ViewAlreadyExistsError": (409, "already-exists"),
    "arco.iceberg.errors:CommitRejectedError": (409, "commit-failed"),
    "arco.iceberg.errors:ForbiddenLocationError": (422, "forbidden-location"),
    "arco.iceberg.signer:SignRefusedError": (403, "forbidden-location"),
    "arco.api.ratelimit:RateLimitedError": (429, "rate-limited"),
    "arco.api.problems:PayloadTooLargeError": (413, "payload-too-large"),
    "arco.flow.project:NoProjectError": (404, "no-project"),
    "arco.openlineage.schema:InvalidOpenLineageEventError": (400, "invalid-openlineage-event"),
}


def _load(name: str) -> type[ArcoError]:
    module, cls = name.split(":")
    found: type[ArcoError] | None = getattr(importlib.import_module(module), cls, None)
    if found is None:
        pytest.fail(f"{name} is not in this tree: update the table after a move or rename")
    return found


def _all_subclasses() -> set[type[ArcoError]]:
    importlib.import_module("arco.api.app")  # every route module, hence every error
    # Loaded by the first request that needs them, not with the app: the Iceberg
    # app's modules and the SQL engine.
    for module in ("arco.iceberg.routes", "arco.iceberg.service", "arco.sql.engine"):
        importlib.import_module(module)
    seen: set[type[ArcoError]] = {ArcoError}
    stack: list[type[ArcoError]] = [ArcoError]
    while stack:
        for sub in stack.pop().__subclasses__():
            # Private classes (``_ForbiddenError``) never leave their module's handler.
            if sub.__module__.startswith("arco.") and sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return seen


def _instance(cls: type[ArcoError]) -> ArcoError:
    if cls.__name__ in ("RateLimitedError", "QuotaRejectedError"):
        return cls("slow down", 2.5)  # type: ignore[call-arg]
    if cls.__name__ == "QuotaExceededError":
        return cls("over quota", "ingest_per_minute", 2.5)  # type: ignore[call-arg]
    return cls(f"a {cls.__name__}")


def test_every_error_class_is_in_the_table() -> None:
    known = {f"{c.__module__}:{c.__name__}" for c in _all_subclasses() if c.__name__[0] != "_"}
    assert known - set(EXPECTED) == set(), "give these error classes a status in EXPECTED"


@pytest.fixture(scope="module")
def raising_app() -> FastAPI:
    """An app with the real problem handlers and one route that raises the named class."""
    app = FastAPI()
    problems.install(app)

    @app.get("/raise/{name}")
    def raise_it(name: str) -> None:
        raise _instance(_load(name))

    return app


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_each_error_class_has_its_status_and_type(
    raising_app: FastAPI, name: str, expected: tuple[int, str]
) -> None:
    status, code = expected
    cls = _load(name)
    assert cls.code == code
    assert problems.status_for(_instance(cls)) == status
    with in_process_client(raising_app) as client:
        response = client.get(f"/raise/{name}")
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == problems.PROBLEM_BASE + code
    assert body["status"] == status
    assert body["detail"] == str(_instance(cls))
    if status in (429, 503):
        assert int(response.headers["retry-after"]) >= 1


def test_a_subclass_is_not_shadowed_by_its_base() -> None:
    """The nearest class in the MRO wins, whatever order the table lists them in."""
    from arco.sql.errors import QueryTimeoutError, QueryTooLargeError

    class SlowerError(QueryTimeoutError):
        pass

    class BiggerError(QueryTooLargeError):
        pass

    assert problems.status_for(SlowerError("x")) == 422
    assert problems.status_for(BiggerError("x")) == 413
    assert problems.status_for(ValueError("not arco")) == 500


# ------------------------------------------------------- storage failures: 503
def _break_cas_locks(root: Path) -> None:
    """Make the file store's lock folder unusable, as a read-only or full disk does.

    Tests run as root here, where permission bits do not stop writes; a plain file
    where the lock folder should be fails ``os.open`` the same way (an ``OSError``).
    """
    locks = root / ".cas-locks"
    for child in locks.iterdir():
        child.unlink()
    locks.rmdir()
    locks.write_text("not a folder")


def test_file_store_cas_failures_are_storage_errors(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    version = store.put("k", b"1", "create")
    _break_cas_locks(tmp_path)
    with pytest.raises(StorageError, match="local store failed") as exc:
        store.put("k", b"2", Match(version))
    assert str(tmp_path) not in str(exc.value)  # no server paths in messages


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_read_only_file_store_opens_and_reads(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    version = store.put("k", b"1", "create")
    tmp_path.chmod(0o555)
    (tmp_path / ".cas-locks").chmod(0o555)
    try:
        again = open_store(f"file://{tmp_path}")
        assert again.get("k")[0] == b"1"
        with pytest.raises(StorageError):
            again.put("k", b"2", Match(version))
    finally:
        (tmp_path / ".cas-locks").chmod(0o755)
        tmp_path.chmod(0o755)


def test_a_write_on_a_broken_store_is_503_problem_json(tmp_path: Path, tokens: Tokens) -> None:
    app = make_app(f"file://{tmp_path}/store-{uuid.uuid4().hex}")
    headers = tokens.headers()
    with in_process_client(app) as client:
        assert client.post("/api/v1/namespaces", json={"name": "one"}, headers=headers).is_success
        root = Path(app.state.store.root)
        _break_cas_locks(root)
        response = client.post("/api/v1/namespaces", json={"name": "two"}, headers=headers)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == problems.PROBLEM_BASE + "storage-error"
    assert str(root) not in response.text


def test_an_os_error_outside_the_store_is_503_not_500() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/disk")
    def disk() -> None:
        raise OSError(28, "No space left on device", "/secret/path")

    with in_process_client(app) as client:
        response = client.get("/disk")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "No space left on device" in response.json()["detail"]
    assert "/secret/path" not in response.text
