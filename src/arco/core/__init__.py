"""Arco core: ids, canonical JSON, errors, scopes and keys, storage. Imports nothing of arco."""

from arco.core.errors import (
    AlreadyExistsError,
    ArcoError,
    CommitConflictError,
    ConflictError,
    FencedError,
    IntegrityError,
    InvalidArgumentError,
    InvalidNameError,
    LockUnavailableError,
    NotFoundError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
    UnsupportedOperationError,
)
from arco.core.ids import canonical_json, new_ulid, sha256_hex, utc_now
from arco.core.keys import Keys, validate_domain
from arco.core.scope import Scope
from arco.core.storage import Match, ObjectMeta, ObjectStore, open_store

__all__ = [
    "AlreadyExistsError",
    "ArcoError",
    "CommitConflictError",
    "ConflictError",
    "FencedError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidNameError",
    "Keys",
    "LockUnavailableError",
    "Match",
    "NotFoundError",
    "ObjectMeta",
    "ObjectNotFoundError",
    "ObjectStore",
    "PreconditionFailedError",
    "Scope",
    "StorageError",
    "UnsupportedOperationError",
    "canonical_json",
    "new_ulid",
    "open_store",
    "sha256_hex",
    "utc_now",
    "validate_domain",
]
