"""Whole-object reads and writes of a local folder, done in this thread.

obstore's ``LocalStore`` runs every request on its Tokio runtime: the calling
thread hands the request to a runtime thread and sleeps until it is done. The
file-system work of a small object takes tens of microseconds; the two thread
hand-offs around it cost more than that on an idle machine and milliseconds on a
loaded one (a parked runtime thread waits for a CPU). A Tier-1 commit makes four
such writes, so :class:`~arco.core.storage.obstore_backend.LocalFolderStore`
reads and writes whole objects through these functions instead.

They produce exactly what ``LocalStore`` produces, so both can work on one folder
(and the rest of the store -- ranges, listings, deletes -- still goes through
obstore):

- an object is the file ``root/key``; only keys whose file name obstore would
  not encode are handled here (:func:`plain_path`), anything else goes through
  obstore;
- a write goes to a staging file ``root/key#N`` (``N`` = 1, 2, ... the first that
  does not exist; obstore's listings hide such names), is moved into place with
  ``rename`` (overwrite) or ``link`` (create-only: fails if the key exists) and
  the staging name removed, so a reader or a crash sees the old object or the new
  one, never part of one;
- an object's version is obstore's ETag ``"{inode:x}-{mtime_us:x}-{size:x}"``.

Like ``LocalStore``, nothing is fsynced: a write survives a crash of the process
(the kernel has the data) but not necessarily a crash of the machine. ext4 does
write a file's data before a ``rename`` over an existing file commits, so a
replaced object reads as the old or the new one after a power loss; that flush
is most of the cost of replacing a small file.

A *volatile* replace (the lease lock's, see :class:`~arco.core.storage.base.Match`)
writes a spare file ``root/key#0`` (hidden like a staging name) and swaps it in
with ``renameat2(RENAME_EXCHANGE)``, which ext4 does not flush for; the spare
then holds the old object and is written over by the next replace, so the two
files take turns and no inode is allocated or freed (a new inode was the
costliest part of a small write on a busy file system: 0.1-0.3 ms). Readers and
writers see the same atomic replace and a new version; what is given up, which
the lease lock tolerates, is that a power loss may leave the new bytes empty and
that a reader that opened the object and stalled across two later replaces may
read the newer bytes (or part of them) under the older version, which then fails
any compare-and-swap. Where the exchange is missing or refused it renames.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import stat
import sys
from collections.abc import Callable

# Names obstore maps to the same file name: no characters it percent-encodes, no
# '#' (its staging suffix), no empty, '.' or '..' segments (checked below).
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.=-]+(?:/[A-Za-z0-9_.=-]+)*\Z")

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_STAGE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def local_etag(st: os.stat_result) -> str:
    """obstore LocalStore's ETag for a file: ``"{inode:x}-{mtime_us:x}-{size:x}"``."""
    return f'"{st.st_ino:x}-{st.st_mtime_ns // 1000:x}-{st.st_size:x}"'


def plain_path(root: str, key: str) -> str | None:
    """The file of ``key`` under ``root`` if obstore names it the same way, else None."""
    if not _PLAIN_KEY.match(key):
        return None
    padded = f"/{key}/"
    if "/./" in padded or "/../" in padded:
        return None
    return f"{root}/{key}"


def read_object(path: str) -> tuple[bytes, str]:
    """The bytes and version of the file ``path``.

    Raises :class:`FileNotFoundError` when there is no object there (no file, a
    directory, or a path running through a file); other :class:`OSError` as is.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except NotADirectoryError as exc:
        raise FileNotFoundError(errno.ENOENT, "no such object", path) from exc
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileNotFoundError(errno.ENOENT, "is a directory", path)
        # Objects are replaced by rename, never rewritten in place: the open file
        # keeps the bytes the version describes.
        chunks = []
        remaining = st.st_size
        while True:
            chunk = os.read(fd, max(remaining, 0) + 1)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), local_etag(st)


def write_object(path: str, data: bytes, *, create: bool, volatile: bool = False) -> str:
    """Write ``data`` as the file ``path`` atomically; return its version.

    ``create``: fail with :class:`FileExistsError` if the file exists (the check
    and the write are one ``link``). Missing parent folders are made.
    ``volatile`` (replacing an existing file only): swap the new bytes in from the
    spare file, without a new inode or the data flush of a ``rename`` over the
    file (see the module's docstring).
    """
    if volatile and not create:
        return _swap_in(path, data)
    fd, stage = _open_stage(path)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if create:
            os.link(stage, path)
        else:
            os.rename(stage, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(stage)
        raise
    if create:
        # The object is written; a left-over staging name is hidden from listings.
        with contextlib.suppress(OSError):
            os.unlink(stage)
    return local_etag(st)


def _swap_in(path: str, data: bytes) -> str:
    """Replace the existing file ``path`` by ``data`` written into its spare; return its version."""
    spare = f"{path}#0"
    fd = os.open(spare, _SPARE_FLAGS, 0o666)
    try:
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        st = os.fstat(fd)
        if st.st_size > len(data):
            # Cut to the new length (a lease record is never empty: a cut to zero
            # would make ext4 flush the file when it is closed).
            os.ftruncate(fd, len(data))
            st = os.fstat(fd)
    finally:
        os.close(fd)
    if not _exchange(spare, path):
        os.rename(spare, path)
    return local_etag(st)


_SPARE_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: Why an exchange may be refused where a rename works: no such call or flag on
#: this kernel or file system, or nothing at ``path`` to exchange with.
_NO_EXCHANGE = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOENT, errno.EPERM}
_renameat2: Callable[..., int] | None = None
_renameat2_loaded = False


def _exchange(stage: str, path: str) -> bool:
    """Atomically swap the files ``stage`` and ``path``; False where this cannot be done."""
    global _renameat2, _renameat2_loaded
    if not _renameat2_loaded:
        _renameat2, _renameat2_loaded = _load_renameat2(), True
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(stage), _AT_FDCWD, os.fsencode(path), _RENAME_EXCHANGE):
        err = ctypes.get_errno()
        if err in _NO_EXCHANGE:
            return False
        raise OSError(err, os.strerror(err), path)
    return True


def _load_renameat2() -> Callable[..., int] | None:
    """glibc's (or musl's) ``renameat2``, or None off Linux or without it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _open_stage(path: str) -> tuple[int, str]:
    """A new staging file next to ``path`` (obstore's ``{path}#{n}`` naming)."""
    made_parent = False
    n = 1
    while True:
        stage = f"{path}#{n}"
        try:
            return os.open(stage, _STAGE_FLAGS, 0o666), stage
        except FileExistsError:
            n += 1  # another writer's (or a crashed writer's) staging file
        except FileNotFoundError:
            if made_parent:
                raise
            os.makedirs(os.path.dirname(path), exist_ok=True)
            made_parent = True
