"""The storage interface every backend implements (docs/architecture.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What a HEAD or a listing tells about one object."""

    key: str
    size: int
    version: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class Match:
    """Put mode: compare-and-swap, succeed only if the object's version is ``version``.

    ``volatile``: the writer can live with losing this write's bytes in a crash of
    the machine (not of the process), the object then reading as empty. Only the
    domain lease lock says so: an unreadable lock counts as free and its next token
    continues above the head pointer's (``arco.domain.lock``). A local folder then
    replaces the file without the data flush ext4 does when a file is renamed over
    another, and without a new inode (a reader that stalls across two replaces
    may then read newer bytes under the older version, which fails any CAS; see
    ``arco.core.storage.local_files``); other backends ignore it.
    """

    version: str
    volatile: bool = False


PutMode = Literal["create", "overwrite"] | Match


class ObjectStore(ABC):
    """Byte storage with conditional writes.

    Keys are ``/``-separated strings relative to the store's root. Versions are
    opaque strings (an ETag, a generation, a counter). A failed precondition
    raises :class:`~arco.core.errors.PreconditionFailedError` on every backend and
    a missing key :class:`~arco.core.errors.ObjectNotFoundError`.
    """

    #: The URL the store was opened from (credentials removed).
    url: str = ""

    @abstractmethod
    def get(self, key: str) -> tuple[bytes, str]:
        """Read a whole object; return its bytes and version."""

    @abstractmethod
    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Read bytes ``[start, end)`` of an object."""

    @abstractmethod
    def head(self, key: str) -> ObjectMeta:
        """Metadata of one object."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectMeta]:
        """Every object whose key starts with ``prefix``, in no guaranteed order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete an object; deleting a missing key is not an error."""

    @abstractmethod
    def put(self, key: str, data: bytes, mode: PutMode = "overwrite") -> str:
        """Write an object and return its new version.

        ``"create"`` fails if the key exists; :class:`Match` fails unless the current
        version equals the given one; ``"overwrite"`` always writes.
        """

    @abstractmethod
    def sign(self, key: str, ttl_seconds: int) -> str:
        """A URL that lets its holder GET ``key`` until the TTL runs out."""

    def signed_get_url(self, key: str, ttl_seconds: int) -> str | None:
        """The store's own presigned GET URL for ``key``, or None when it cannot presign.

        S3, GCS and Azure answer a real presigned URL; a local folder or memory
        store answers None and the caller falls back to Arco's HMAC blob route.
        No attached signer is consulted: that is what the fallback is for.
        """
        return None

    def exists(self, key: str) -> bool:
        """True if ``key`` exists."""
        from arco.core.errors import ObjectNotFoundError

        try:
            self.head(key)
        except ObjectNotFoundError:
            return False
        return True

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release resources held by the store."""
