"""Hooks for table formats whose schema lives outside Arco's catalog (ADR 014).

An Iceberg table's schema is its current metadata file; Arco's columns are a
projection of it. A schema change made through the Arco door
(:meth:`Catalog.update_table`) must therefore also write a new metadata file, in
the same Tier-1 commit. The code that can do that (``arco.iceberg``, with
pyiceberg) sits above the catalog layer, so the catalog calls it through a hook
that the upper layer registers, instead of importing it.

A row is *managed* when its format is listed in :data:`MANAGED_FORMATS` and the
named field is set (an Iceberg table with a metadata file). Changing a managed
row while no hook is registered is refused: Arco's columns must never drift from
the format's own schema.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from arco.core.errors import InvalidArgumentError
from arco.core.scope import Scope
from arco.core.storage import ObjectStore

#: format -> the row field whose presence means the format owns the schema
MANAGED_FORMATS: Mapping[str, str] = {
    "iceberg": "metadata_location",
    "iceberg-view": "metadata_location",
}


class UnsupportedTableChangeError(InvalidArgumentError):
    """The table's format cannot express this change (or no hook for it is loaded)."""

    code = "unsupported-table-change"


class FormatHook(Protocol):
    """Write what a format needs for an Arco-door table change, inside the commit.

    ``txn`` is the commit's working copy (:class:`arco.catalog.txn.CatalogTxn`):
    the hook may append records to ``txn.ops``. ``old`` is the table's row before
    the change and ``new`` the row Arco's own rules produced (columns keep their
    ids, added ones get ids above ``last_column_id``). The hook answers the row to
    commit instead of ``new``, or raises :class:`UnsupportedTableChangeError`.
    The commit may run more than once (a lost race): the hook must write only
    new, never-reused objects.
    """

    def __call__(
        self,
        store: ObjectStore,
        scope: Scope,
        txn: Any,
        old: Mapping[str, Any],
        new: dict[str, Any],
    ) -> dict[str, Any]:
        """The row to commit."""
        ...


_HOOKS: dict[str, FormatHook] = {}
_LOCK = threading.Lock()


def register_format_hook(fmt: str, hook: FormatHook) -> None:
    """Let ``hook`` apply Arco-door changes to tables of format ``fmt``."""
    with _LOCK:
        _HOOKS[fmt] = hook


def is_managed(row: Mapping[str, Any]) -> bool:
    """True when the row's schema is owned by its format (see :data:`MANAGED_FORMATS`)."""
    field = MANAGED_FORMATS.get(str(row.get("format")))
    return field is not None and bool(row.get(field))


def apply_format_hook(
    store: ObjectStore | None,
    scope: Scope | None,
    txn: Any,
    old: Mapping[str, Any],
    new: dict[str, Any],
) -> dict[str, Any]:
    """The row to commit for a change of a managed table (``new`` for other tables)."""
    if not is_managed(old):
        return new
    fmt = str(old["format"])
    with _LOCK:
        hook = _HOOKS.get(fmt)
    if hook is None or store is None or scope is None:
        raise UnsupportedTableChangeError(
            f"{old['namespace']}.{old['name']} is an {fmt} table and this process cannot "
            f"write {fmt} metadata (import arco.{fmt} to enable it); nothing was changed"
        )
    return hook(store, scope, txn, old, new)
