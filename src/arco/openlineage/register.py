"""Auto-registration: mapped OpenLineage datasets become catalog tables.

With ``auto_register = true`` in ``[openlineage]``, every mapped dataset of an
accepted event that carries a ``schema`` facet and is not yet in the catalog is
registered (its namespaces created as needed) with the facet's columns. Column
types are producers' own words (``INTEGER``, ``varchar``, ``timestamp``...):
those Arco's type parser knows are kept, any other becomes ``string`` with the
original recorded in the column's description. Existing tables are never changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from arco.catalog.catalog import Catalog
from arco.catalog.datatypes import normalize_type
from arco.core.errors import ArcoError, InvalidNameError, NotFoundError
from arco.core.scope import validate_identifier

log = logging.getLogger("arco.openlineage")

_ALIASES = {
    "integer": "int32",
    "int": "int32",
    "bigint": "int64",
    "smallint": "int16",
    "tinyint": "int8",
    "varchar": "string",
    "text": "string",
    "char": "string",
    "character varying": "string",
    "boolean": "bool",
    "real": "float32",
    "double precision": "float64",
    "double": "float64",
    "float": "float64",
    "timestamp with time zone": "timestamp[us, UTC]",
    "timestamptz": "timestamp[us, UTC]",
    "timestamp": "timestamp[us]",
}


def column_type(raw: str | None) -> tuple[str, str | None]:
    """An Arco type for a producer's type name, and a note when it had to guess."""
    if not raw:
        return "string", "type not reported"
    text = raw.strip()
    for candidate in (_ALIASES.get(text.lower()), text, text.lower()):
        if candidate is None:
            continue
        try:
            return normalize_type(candidate), None
        except ArcoError:
            continue
    return "string", f"reported type: {text[:200]}"


def register_datasets(catalog: Catalog, payloads: Iterable[dict[str, Any]]) -> list[str]:
    """Register the unknown mapped datasets with a schema; returns the names registered."""
    wanted: dict[str, list[dict[str, Any]]] = {}
    for p in payloads:
        for ds in [*p.get("inputs", ()), *p.get("outputs", ())]:
            if ds.get("qualified_name") and ds.get("schema"):
                wanted.setdefault(ds["qualified_name"], ds["schema"])
    view = catalog.view()
    done = []
    for qualified, schema in sorted(wanted.items()):
        namespace, _, name = qualified.rpartition(".")
        try:
            view.get_table(namespace, name)
            continue
        except NotFoundError:
            pass
        columns = []
        seen: set[str] = set()
        for col in schema:
            try:
                col_name = validate_identifier("column name", col["name"])
            except InvalidNameError:
                continue  # a name Arco cannot hold (spaces, dots): the dataset stays listed
            if col_name.lower() in seen:
                continue
            seen.add(col_name.lower())
            dtype, note = column_type(col.get("type"))
            columns.append({"name": col_name, "type": dtype, "description": note})
        try:
            with catalog.transaction() as tx:
                parts = namespace.split(".")
                for i in range(1, len(parts) + 1):
                    tx.create_namespace(".".join(parts[:i]), exist_ok=True)
                tx.create_table(
                    namespace,
                    name,
                    columns,
                    description="registered from OpenLineage",
                    properties={"openlineage": "auto-registered"},
                    exist_ok=True,
                )
            done.append(qualified)
        except ArcoError as exc:
            # Registration is a convenience: the event itself is already accepted.
            log.warning("could not auto-register %s: %s", qualified, exc)
    return done
