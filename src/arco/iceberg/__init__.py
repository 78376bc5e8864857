"""The Iceberg REST catalog over Arco's Tier-1 catalog (``/iceberg`` on the API server).

``metadata`` applies commits with pyiceberg's own table-metadata models,
``service`` runs each operation as one linearizable catalog commit, ``requests``
parses what those operations are given, ``records`` writes a table's catalog row
and its metadata files' manifest records, ``routes`` is the HTTP surface and
``errors`` the spec's ``ErrorModel``, ``views`` the spec's views (catalog rows of
format ``iceberg-view``). ``arco_door``
writes Arco-door schema changes of an Iceberg table into its metadata; importing
this package registers it as the catalog's format hook (pyiceberg is imported
only when an Iceberg table is changed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arco.catalog.formats import register_format_hook
from arco.core.scope import Scope
from arco.core.storage import ObjectStore


def _arco_door_hook(
    store: ObjectStore, scope: Scope, txn: Any, old: Mapping[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    from arco.iceberg.arco_door import apply_arco_change

    return apply_arco_change(store, scope, txn, old, new)


def _view_hook(
    store: ObjectStore, scope: Scope, txn: Any, old: Mapping[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    from arco.iceberg.views import refuse_arco_door_change

    return refuse_arco_door_change(store, scope, txn, old, new)


register_format_hook("iceberg", _arco_door_hook)
register_format_hook("iceberg-view", _view_hook)
