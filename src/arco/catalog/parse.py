"""Parse and check what callers hand the catalog: qualified names, column specs, text, properties.

The limits bound what one catalog row may hold; every write path checks through them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arco.catalog.models import ColumnSpec
from arco.core.errors import InvalidArgumentError
from arco.core.scope import validate_dotted, validate_identifier

MAX_PROPERTIES = 256
MAX_PROPERTY_KEY = 256
MAX_PROPERTY_VALUE = 16_384
MAX_DESCRIPTION = 16_384
MAX_COLUMNS = 4_096
MAX_LOCATION = 2_048


def split_qualified(name: str) -> tuple[str, str]:
    """Split ``ns.table`` (``ns`` may itself be dotted) into namespace and table."""
    if not isinstance(name, str) or "." not in name:
        raise InvalidArgumentError(f"{name!r} is not a qualified name NAMESPACE.TABLE")
    namespace, table = name.rsplit(".", 1)
    return validate_dotted("namespace", namespace), validate_identifier("table name", table)


def parse_column_spec(text: str) -> ColumnSpec:
    """Parse the CLI's ``NAME:TYPE[:not-null]`` column syntax."""
    if not isinstance(text, str) or ":" not in text:
        raise InvalidArgumentError(f"column {text!r} must look like NAME:TYPE[:not-null]")
    name, rest = text.split(":", 1)
    nullable = True
    lowered = rest.lower()
    for suffix in (":not-null", ":not_null", ":notnull", ":required"):
        if lowered.endswith(suffix):
            rest, nullable = rest[: -len(suffix)], False
            break
    return ColumnSpec(name=name.strip(), data_type=rest.strip(), nullable=nullable)


def _check_text(kind: str, value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{kind} must be a string")
    if len(value) > limit:
        raise InvalidArgumentError(f"{kind} is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidArgumentError(f"{kind} must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates survive JSON decoding but cannot be stored as UTF-8.
            raise InvalidArgumentError(
                f"{kind} must be valid Unicode text (it holds an unpaired surrogate)"
            ) from None
    return value


def _check_properties(props: Mapping[str, Any] | None) -> dict[str, str]:
    if props is None:
        return {}
    if not isinstance(props, Mapping):
        raise InvalidArgumentError("properties must be a mapping of strings to strings")
    if len(props) > MAX_PROPERTIES:
        raise InvalidArgumentError(f"at most {MAX_PROPERTIES} properties are allowed")
    out: dict[str, str] = {}
    for key, value in props.items():
        if not isinstance(key, str) or not key or len(key) > MAX_PROPERTY_KEY:
            raise InvalidArgumentError(
                f"property key {key!r} must be a non-empty string of at most "
                f"{MAX_PROPERTY_KEY} characters"
            )
        if any(ord(ch) < 32 for ch in key):
            raise InvalidArgumentError(f"property key {key!r} contains control characters")
        _check_text("property key", key, MAX_PROPERTY_KEY)
        if not isinstance(value, str):
            raise InvalidArgumentError(f"property {key!r} must have a string value")
        _check_text(f"property {key!r}", value, MAX_PROPERTY_VALUE)
        out[key] = value
    return out


def _as_spec(col: ColumnSpec | Mapping[str, Any] | tuple[Any, ...] | str) -> ColumnSpec:
    if isinstance(col, ColumnSpec):
        return col
    if isinstance(col, str):
        return parse_column_spec(col)
    if isinstance(col, tuple):
        return ColumnSpec(*col)
    if isinstance(col, Mapping):
        unknown = set(col) - {"name", "type", "data_type", "nullable", "description"}
        if unknown:
            raise InvalidArgumentError(f"unknown column fields: {', '.join(sorted(unknown))}")
        nullable = col.get("nullable", True)
        if not isinstance(nullable, bool):
            raise InvalidArgumentError("column 'nullable' must be true or false")
        return ColumnSpec(
            name=col.get("name"),  # type: ignore[arg-type]
            data_type=col.get("type", col.get("data_type")),
            nullable=nullable,
            description=col.get("description"),
        )
    raise InvalidArgumentError(f"cannot read a column from {type(col).__name__}")


def _spec_json(col: Any) -> Any:
    spec = _as_spec(col)
    return [spec.name, spec.data_type, spec.nullable, spec.description]
