"""The Iceberg REST requests' inputs, checked and parsed: namespace levels, page
tokens and sizes, commit bodies (``CommitTableRequest``) and metrics reports."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import TypeAdapter
from pyiceberg.table.update import TableRequirement, TableUpdate

from arco.core.errors import InvalidArgumentError
from arco.core.scope import validate_identifier

_MAX_PAGE = 1000


def namespace_name(levels: Sequence[str]) -> str:
    """Arco's dotted name of an Iceberg namespace; each level is one Arco identifier."""
    if not levels:
        raise InvalidArgumentError("namespace must have at least one level")
    for level in levels:
        if not isinstance(level, str) or "." in level:
            raise InvalidArgumentError(
                f"namespace level {level!r} must not contain '.' (Arco nests namespaces by '.')"
            )
        validate_identifier("namespace level", level)
    return ".".join(levels)


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode().rstrip("=")


def _decode_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError("pageToken is malformed") from exc


def paginate(names: list[str], token: str | None, size: int | None) -> tuple[list[str], str | None]:
    """The page of sorted ``names`` after ``token``, at most ``size`` long, and the
    token of the next page (None on the last)."""
    after = _decode_token(token)
    if after is not None:
        names = [n for n in names if n > after]
    if size is None:
        return names, None
    if not 1 <= size <= _MAX_PAGE:
        raise InvalidArgumentError(f"pageSize must be between 1 and {_MAX_PAGE}")
    chunk = names[:size]
    return chunk, (_encode_token(chunk[-1]) if len(names) > size and chunk else None)


@dataclass(frozen=True)
class TableChange:
    """One table's part of a commit: requirements to check, updates to apply."""

    namespace: tuple[str, ...]
    name: str
    requirements: tuple[TableRequirement, ...]
    updates: tuple[TableUpdate, ...]


@cache
def _adapters() -> tuple[TypeAdapter[list[TableRequirement]], TypeAdapter[list[TableUpdate]]]:
    # Built once: a TypeAdapter over the update union builds its whole validator,
    # which cost more CPU than validating a commit's updates with it.
    return TypeAdapter(list[TableRequirement]), TypeAdapter(list[TableUpdate])


def table_changes(body: Any, default: tuple[tuple[str, ...], str] | None) -> TableChange:
    """Parse one ``CommitTableRequest`` (the identifier may come from the path)."""
    if not isinstance(body, dict):
        raise InvalidArgumentError("a table change must be a JSON object")
    ident = body.get("identifier")
    if ident is not None:
        if not isinstance(ident, dict) or not isinstance(ident.get("name"), str):
            raise InvalidArgumentError("identifier must be {namespace: [...], name: ...}")
        namespace = ident.get("namespace")
        if not isinstance(namespace, list) or not all(isinstance(p, str) for p in namespace):
            raise InvalidArgumentError("identifier.namespace must be a list of strings")
        target = (tuple(namespace), ident["name"])
        if default is not None and target != default:
            raise InvalidArgumentError("the identifier in the body does not match the path")
    elif default is not None:
        target = default
    else:
        raise InvalidArgumentError("every table change needs an identifier")
    requirement_adapter, update_adapter = _adapters()
    requirements = requirement_adapter.validate_python(body.get("requirements") or [])
    updates = update_adapter.validate_python(body.get("updates") or [])
    return TableChange(target[0], target[1], tuple(requirements), tuple(updates))


def metrics_summary(body: Any) -> str:
    """One log line for a scan or commit metrics report."""
    if not isinstance(body, dict):
        raise InvalidArgumentError("a metrics report must be a JSON object")
    return json.dumps(
        {k: body.get(k) for k in ("report-type", "table-name", "snapshot-id", "operation")},
        sort_keys=True,
    )
