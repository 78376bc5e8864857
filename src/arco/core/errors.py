"""Typed errors shared by every layer.

Every failure a caller can act on has its own class; the API maps each class to a
stable problem ``type`` and the CLI to an exit code, so these names are a contract.
"""

from __future__ import annotations


class ArcoError(Exception):
    """Base class of every error Arco raises on purpose."""

    #: Stable, machine-readable identifier (used as the problem+json ``type`` suffix).
    code = "arco-error"


class InvalidNameError(ArcoError, ValueError):
    """A name (tenant, workspace, namespace, table, column, key part) is not allowed."""

    code = "invalid-name"


class InvalidArgumentError(ArcoError, ValueError):
    """An argument is malformed (bad type string, bad property, bad URL, ...)."""

    code = "invalid-argument"


class NotFoundError(ArcoError, LookupError):
    """The requested object does not exist."""

    code = "not-found"


class AlreadyExistsError(ArcoError):
    """An object with that name already exists."""

    code = "already-exists"


class ConflictError(ArcoError):
    """The request conflicts with the current state (non-empty drop, idempotency reuse...)."""

    code = "conflict"


class PermissionDeniedError(ArcoError):
    """The caller is known but lacks the role the operation needs (HTTP 403)."""

    code = "forbidden"


class StorageError(ArcoError):
    """A storage backend failed for a reason other than a precondition."""

    code = "storage-error"


class ObjectNotFoundError(StorageError, LookupError):
    """A storage key does not exist."""

    code = "object-not-found"


class PreconditionFailedError(StorageError):
    """A conditional write lost: create on an existing key, or a stale version on CAS.

    Every backend raises exactly this class, so commit loops can retry on it alone.
    """

    code = "precondition-failed"


class UnsupportedOperationError(StorageError):
    """The backend cannot perform this operation (e.g. signing on a plain folder)."""

    code = "unsupported"


class LockUnavailableError(ArcoError):
    """The domain's lease lock is held by another writer and was not released in time."""

    code = "lock-unavailable"


class FencedError(ArcoError):
    """A writer's fencing token is stale: a newer writer has taken over the domain."""

    code = "fenced"


class CommitConflictError(ArcoError):
    """A commit kept losing the compare-and-swap race and gave up after its retries."""

    code = "commit-conflict"


class IntegrityError(ArcoError):
    """Stored metadata is missing, truncated or altered (checksum or size mismatch)."""

    code = "integrity"


class PointerMissingError(IntegrityError):
    """A domain has committed manifests but no head pointer: its head was lost.

    Reading it as empty, or starting a new history at version 1, would hide (and
    let ``gc`` delete) everything committed so far; ``arco repair`` re-points it.
    """

    code = "pointer-missing"
