"""Backends built on obstore (Rust's object_store): memory, local folder, S3, GCS, Azure."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import obstore
from obstore.exceptions import AlreadyExistsError, PreconditionError

from arco.core import metrics
from arco.core.errors import (
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
    UnsupportedOperationError,
)
from arco.core.storage.base import Match, ObjectMeta, ObjectStore, PutMode
from arco.core.storage.local_files import local_etag, plain_path, read_object, write_object
from arco.core.storage.signing import note_mint
from arco.core.telemetry import storage_call


def _meta(raw: Any) -> ObjectMeta:
    modified = raw.get("last_modified") or datetime.fromtimestamp(0, UTC)
    return ObjectMeta(
        key=str(raw["path"]),
        size=int(raw["size"]),
        version=str(raw.get("e_tag") or raw.get("version") or ""),
        last_modified=modified,
    )


def _can_presign(inner: Any) -> bool:
    """Only the cloud stores presign (obstore raises a misleading ValueError otherwise)."""
    return type(inner).__name__ in ("S3Store", "GCSStore", "AzureStore")


def _is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError) or type(exc).__name__ == "NotFoundError"


class _Runtime:
    """Whether obstore's I/O runtime has run in this process, and whether we forked since.

    obstore drives every request of a file or cloud store on one process-wide Tokio
    runtime. Its worker threads do not survive ``fork()``, and the runtime cannot
    be rebuilt from Python: in a child forked after the parent made a request, every
    request -- through any store, even one opened in the child -- waits forever.
    A request there fails at once with :class:`UnsupportedOperationError` instead.
    In-memory stores answer without the runtime and keep working.
    """

    used = False
    forked = False


def _after_fork_in_child() -> None:
    if _Runtime.used:
        _Runtime.forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)

FORKED_MESSAGE = (
    "this process was forked after it used the object store, and the store's I/O "
    "runtime does not survive fork() (the request would hang); open the store in a "
    "process started with the 'spawn' or 'forkserver' method instead, e.g. "
    "multiprocessing.get_context('forkserver')"
)


class ObstoreStore(ObjectStore):
    """An :class:`ObjectStore` over any obstore store that supports conditional puts.

    A store other than ``memory://`` refuses every request in a child forked
    after this process made one (see :class:`_Runtime`), rather than hanging.
    """

    def __init__(self, inner: Any, url: str, *, signer: Any = None) -> None:
        self._inner = inner
        self.url = url
        # Local and memory stores cannot presign; an HMAC signer (Arco's blob route)
        # can be attached instead.
        self._signer = signer
        self._uses_runtime = type(inner).__name__ != "MemoryStore"

    def _runtime(self) -> None:
        """Fail fast in a forked child; otherwise note that the runtime is in use."""
        if self._uses_runtime:
            if _Runtime.forked:
                raise UnsupportedOperationError(f"{self._scrub(self.url)}: {FORKED_MESSAGE}")
            _Runtime.used = True

    @property
    def inner(self) -> Any:
        """The wrapped obstore store."""
        return self._inner

    def get(self, key: str) -> tuple[bytes, str]:
        """Read a whole object."""
        self._runtime()
        with storage_call("get", key) as call:
            try:
                result = obstore.get(self._inner, key)
                data = bytes(result.bytes())
            except Exception as exc:
                raise self._translate(exc, key) from exc
            call.received(len(data))
        meta = result.meta
        return data, str(meta.get("e_tag") or meta.get("version") or "")

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Read part of an object."""
        self._runtime()
        with storage_call("get_range", key) as call:
            try:
                data = bytes(obstore.get_range(self._inner, key, start=start, end=end))
            except Exception as exc:
                raise self._translate(exc, key) from exc
            call.received(len(data))
            return data

    def head(self, key: str) -> ObjectMeta:
        """Metadata of one object."""
        self._runtime()
        with storage_call("head", key):
            try:
                return _meta(obstore.head(self._inner, key))
            except Exception as exc:
                raise self._translate(exc, key) from exc

    def list(self, prefix: str) -> Iterator[ObjectMeta]:
        """Every object under ``prefix``."""
        # Azure lists ETags bare but answers HEAD, GET and PUT with them quoted: quote
        # them so a listed version equals the one every other call reports.
        self._runtime()
        quote = type(self._inner).__name__ == "AzureStore"
        try:
            for batch in obstore.list(self._inner, prefix or None, chunk_size=1000):
                for raw in batch:
                    meta = _meta(raw)
                    if quote and meta.version and not meta.version.startswith(('"', "W/")):
                        meta = replace(meta, version=f'"{meta.version}"')
                    yield meta
        except Exception as exc:
            if "Not a directory" in str(exc):
                return  # the prefix runs through an object: nothing lies under it
            raise self._translate(exc, prefix, reading=False) from exc

    def delete(self, key: str) -> None:
        """Delete an object (missing keys are ignored)."""
        self._runtime()
        with storage_call("delete", key):
            try:
                obstore.delete(self._inner, key)
            except Exception as exc:
                if _is_not_found(exc):
                    return
                raise self._translate(exc, key) from exc

    def put(self, key: str, data: bytes, mode: PutMode = "overwrite") -> str:
        """Write an object under the given mode."""
        obs_mode: Any
        if isinstance(mode, Match):
            obs_mode = {"e_tag": mode.version}
        elif mode in ("create", "overwrite"):
            obs_mode = mode
        else:  # pragma: no cover - guarded by the type
            raise ValueError(f"unknown put mode {mode!r}")
        self._runtime()
        with storage_call("put", key, len(data)):
            return self._put(key, data, mode, obs_mode)

    def _put(self, key: str, data: bytes, mode: PutMode, obs_mode: Any) -> str:
        """The write itself, uncounted (a CAS on a local folder counts its own call)."""
        try:
            result = obstore.put(self._inner, key, data, mode=obs_mode)
        except Exception as exc:
            if isinstance(mode, Match) and _is_not_found(exc):
                raise PreconditionFailedError(f"{key}: object is gone, CAS lost") from exc
            raise self._translate(exc, key, reading=False) from exc
        return str(result.get("e_tag") or result.get("version") or "")

    def sign(self, key: str, ttl_seconds: int) -> str:
        """A presigned GET URL (S3, GCS, Azure) or an HMAC URL from the attached signer."""
        if self._signer is not None:
            return str(self._signer.sign(key, ttl_seconds))
        from datetime import timedelta

        note_mint("presigned")
        try:
            return str(obstore.sign(self._inner, "GET", key, timedelta(seconds=ttl_seconds)))
        except Exception as exc:
            raise UnsupportedOperationError(
                f"{self._scrub(self.url)}: this store cannot sign URLs ({exc})"
            ) from exc

    def signed_get_url(self, key: str, ttl_seconds: int) -> str | None:
        """A presigned GET URL from S3, GCS or Azure; None for local and memory stores."""
        if not _can_presign(self._inner):
            return None
        from datetime import timedelta

        if ttl_seconds < 1:
            raise UnsupportedOperationError(f"{key}: a signed URL needs a positive TTL")
        self._runtime()
        note_mint("presigned")
        try:
            return str(obstore.sign(self._inner, "GET", key, timedelta(seconds=ttl_seconds)))
        except Exception as exc:
            raise self._translate(exc, key) from exc

    def _scrub(self, text: str) -> str:
        """``text`` without anything of the server's own layout (see LocalFolderStore)."""
        return text

    def _translate(self, exc: BaseException, key: str, *, reading: bool = True) -> Exception:
        if isinstance(exc, AlreadyExistsError):
            return PreconditionFailedError(f"{key}: already exists")
        if isinstance(exc, PreconditionError):
            return PreconditionFailedError(f"{key}: version does not match")
        if _is_not_found(exc):
            return ObjectNotFoundError(f"{key}: no such object")
        if isinstance(exc, NotImplementedError):
            return UnsupportedOperationError(f"{key}: {exc}")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if reading and "Not a directory" in first:
            # A key below an existing object's key (``a.json/b``): there is no such object.
            return ObjectNotFoundError(f"{key}: no such object")
        metrics.STORAGE_ERRORS.labels(
            self.url.split(":", 1)[0], "read" if reading else "write"
        ).inc()
        # Messages reach API clients: never the server's absolute folder.
        return StorageError(f"{key}: {self._scrub(first)}")


def _os_error(exc: OSError, key: str) -> StorageError:
    """A local file-system failure as the storage error every backend raises."""
    reason = exc.strerror or type(exc).__name__
    metrics.STORAGE_ERRORS.labels("file", "local").inc()
    # As obstore's own messages once scrubbed: the place relative to the store,
    # never the server's absolute folder.
    return StorageError(f"{key}: local store failed at <store>/{key}: {reason}")


class LocalFolderStore(ObstoreStore):
    """A local folder, with compare-and-swap supplied by Arco.

    obstore's LocalStore writes atomically (staging file + rename) and supports
    create-only, but not compare-and-swap. We add it with an ``flock`` on a lock
    file per key, held across read-compare-rename, which excludes other threads
    and other processes on the same machine.

    Whole-object GETs and PUTs of plain keys are done in the calling thread
    (:mod:`arco.core.storage.local_files`: the same files, staging names and
    versions as LocalStore) rather than on obstore's I/O runtime, whose thread
    hand-offs cost more than the file-system work of a small object.
    """

    def __init__(self, root: str, url: str, *, signer: Any = None) -> None:
        from obstore.store import LocalStore

        self.root = os.path.abspath(root)
        self._lock_dir = os.path.join(self.root, ".cas-locks")
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise _os_error(exc, root) from exc
        # A read-only folder still serves reads: the lock folder is made on the first CAS.
        with contextlib.suppress(OSError):
            os.makedirs(self._lock_dir, exist_ok=True)
        super().__init__(LocalStore(self.root, mkdir=True), url, signer=signer)

    def get(self, key: str) -> tuple[bytes, str]:
        """Read a whole object."""
        path = plain_path(self.root, key)
        if path is None:
            return super().get(key)
        self._runtime()
        with storage_call("get", key) as call:
            try:
                data, version = read_object(path)
            except FileNotFoundError as exc:
                raise ObjectNotFoundError(f"{key}: no such object") from exc
            except OSError as exc:
                raise _os_error(exc, key) from exc
            call.received(len(data))
        return data, version

    def put(self, key: str, data: bytes, mode: PutMode = "overwrite") -> str:
        """Write an object; :class:`Match` runs under a cross-process file lock.

        File-system failures (read-only or full disk, permissions) raise
        :class:`StorageError` like every other backend failure.
        """
        if not isinstance(mode, Match):
            if mode not in ("create", "overwrite"):  # pragma: no cover - guarded by the type
                raise ValueError(f"unknown put mode {mode!r}")
            self._runtime()
            with storage_call("put", key, len(data)):
                return self._write_object(key, data, mode)
        self._runtime()
        with storage_call("put", key, len(data), {"arco.cas": True}):
            try:
                return self._put_match(key, data, mode)
            except OSError as exc:
                raise _os_error(exc, key) from exc

    def _write_object(self, key: str, data: bytes, mode: PutMode, *, volatile: bool = False) -> str:
        """Create or overwrite ``key`` (uncounted; the CAS path calls it under its lock)."""
        path = plain_path(self.root, key)
        if path is None:
            return self._put(key, data, mode, mode)
        try:
            return write_object(path, data, create=mode == "create", volatile=volatile)
        except FileExistsError as exc:
            raise PreconditionFailedError(f"{key}: already exists") from exc
        except OSError as exc:
            raise _os_error(exc, key) from exc

    def _put_match(self, key: str, data: bytes, mode: Match) -> str:
        import fcntl
        import hashlib

        lock_path = os.path.join(self._lock_dir, hashlib.sha256(key.encode()).hexdigest())
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the lock folder is made on the first CAS
            os.makedirs(self._lock_dir, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path = os.path.join(self.root, key)
            try:
                # os.stat gives the same version string as obstore's LocalStore
                # (inode-mtime_us-size) at a fraction of the cost of a HEAD.
                before = os.stat(path)
            except FileNotFoundError as exc:
                raise PreconditionFailedError(f"{key}: object is gone, CAS lost") from exc
            if local_etag(before) != mode.version:
                raise PreconditionFailedError(f"{key}: version does not match")
            self._write_object(key, data, "overwrite", volatile=mode.volatile)
            self._bump_mtime(path, before.st_mtime_ns)
            version = local_etag(os.stat(path))
            return version
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    @staticmethod
    def _bump_mtime(path: str, old_mtime_ns: int) -> bool:
        """Make the new file's mtime (in whole microseconds) later than the old one's.

        The LocalStore version is ``inode-mtime_us-size`` and the rename frees the old
        inode, which the next write usually gets back. With a coarse file clock (ext4
        on kernels before 6.13 stamps files at jiffy resolution) two CAS writes later
        the version of an older object can come back, and a stale CAS would succeed
        even though the content differs. A strictly growing mtime per key rules it out.
        """
        try:
            st = os.stat(path)
        except OSError:  # pragma: no cover - key not a plain path; nothing to do
            return False
        if st.st_mtime_ns // 1000 > old_mtime_ns // 1000:
            return False
        # Try the smallest step the file system can store (us, ms, s, FAT's 2 s).
        for step in (1_000, 1_000_000, 1_000_000_000, 2_000_000_000):
            target = (old_mtime_ns // 1000) * 1000 + step
            os.utime(path, ns=(st.st_atime_ns, target))
            if os.stat(path).st_mtime_ns // 1000 > old_mtime_ns // 1000:
                break
        return True

    def _scrub(self, text: str) -> str:
        """Replace the folder's absolute path (obstore's I/O errors name it) by ``<store>``."""
        return text.replace(self.root, "<store>")

    def list(self, prefix: str) -> Iterator[ObjectMeta]:
        """Every object under ``prefix`` (the CAS lock folder is not listed)."""
        for meta in super().list(prefix):
            if not meta.key.startswith(".cas-locks/"):
                yield meta
