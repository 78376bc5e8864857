"""Tenant scope and name validation.

Every object key is derived from a validated :class:`Scope`; nothing else may
contribute a path segment without passing :func:`validate_key_part`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from arco.core.errors import InvalidNameError

MAX_NAME_LENGTH = 128
_SCOPE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# Percent-encoded '/', '\', '.' and '%' itself: a decoder further down the stack
# could turn them back into separators or traversal.
_ENCODED_RE = re.compile(r"%(2[eEfF]|5[cC]|25)")


def _reject_common(kind: str, name: object, max_length: int = MAX_NAME_LENGTH) -> str:
    if not isinstance(name, str):
        raise InvalidNameError(f"{kind} must be a string, got {type(name).__name__}")
    if name == "":
        raise InvalidNameError(f"{kind} must not be empty")
    if len(name) > max_length:
        raise InvalidNameError(f"{kind} is {len(name)} characters long; the limit is {max_length}")
    # Printable ASCII has no control or invisible characters: skip the per-character
    # Unicode lookup, which dominated event validation on the run hot path.
    if not (name.isascii() and name.isprintable()) and any(
        unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name
    ):
        raise InvalidNameError(f"{kind} {name!r} contains control or invisible characters")
    if name.startswith("/") or name.startswith("\\"):
        raise InvalidNameError(f"{kind} {name!r} must not be an absolute path")
    if ".." in name:
        raise InvalidNameError(f"{kind} {name!r} must not contain '..'")
    if _ENCODED_RE.search(name):
        raise InvalidNameError(f"{kind} {name!r} must not contain percent-encoded separators")
    if "/" in name or "\\" in name:
        raise InvalidNameError(f"{kind} {name!r} must not contain path separators")
    return name


def validate_scope_part(kind: str, name: object) -> str:
    """Validate a tenant or workspace id: lowercase ``[a-z0-9][a-z0-9_-]*``, at most 63 chars."""
    value = _reject_common(kind, name, max_length=63)
    if not _SCOPE_RE.match(value):
        raise InvalidNameError(
            f"{kind} {value!r} must match [a-z0-9][a-z0-9_-]* (lowercase letters, digits, '_', '-')"
        )
    return value


def validate_identifier(kind: str, name: object) -> str:
    """Validate one identifier segment (namespace part, table or column name)."""
    value = _reject_common(kind, name)
    if not _IDENT_RE.match(value):
        raise InvalidNameError(
            f"{kind} {value!r} must start with a letter or '_' and contain only "
            "letters, digits, '_' and '-'"
        )
    return value


def validate_dotted(kind: str, name: object) -> str:
    """Validate a dotted name such as a nested namespace ``sales.emea``."""
    value = _reject_common(kind, name)
    for part in value.split("."):
        if part == "":
            raise InvalidNameError(f"{kind} {value!r} has an empty segment")
        validate_identifier(kind, part)
    return value


def validate_key_part(kind: str, name: object) -> str:
    """Validate any other string that becomes part of a storage key."""
    value = _reject_common(kind, name, max_length=200)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.=-]*$", value):
        raise InvalidNameError(f"{kind} {value!r} contains characters not allowed in a key")
    return value


@dataclass(frozen=True, slots=True)
class Scope:
    """The (tenant, workspace) pair that prefixes every object key."""

    tenant: str
    workspace: str

    def __post_init__(self) -> None:
        validate_scope_part("tenant", self.tenant)
        validate_scope_part("workspace", self.workspace)

    @property
    def prefix(self) -> str:
        """The key prefix ``tenant={t}/workspace={w}/`` owned by this scope."""
        return f"tenant={self.tenant}/workspace={self.workspace}/"

    def __str__(self) -> str:
        return f"{self.tenant}/{self.workspace}"
