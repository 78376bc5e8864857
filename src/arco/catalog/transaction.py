"""Several catalog changes queued and committed together as one version."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from arco.catalog.txn import _Txn


@dataclass
class Transaction:
    """Operations queued to be committed together, atomically, as one version."""

    _ops: list[Callable[[_Txn], Any]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    version: int | None = None

    def create_namespace(
        self,
        name: str,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        *,
        exist_ok: bool = False,
    ) -> None:
        """Queue a namespace creation."""
        self._ops.append(lambda t: t.create_namespace(name, description, properties, exist_ok))

    def create_table(
        self,
        namespace: str,
        name: str,
        columns: Sequence[Any] = (),
        *,
        format: str = "parquet",
        location: str | None = None,
        description: str | None = None,
        properties: Mapping[str, str] | None = None,
        exist_ok: bool = False,
    ) -> None:
        """Queue a table creation."""
        self._ops.append(
            lambda t: t.create_table(
                namespace, name, columns, format, location, description, properties, exist_ok
            )
        )

    def drop_table(self, namespace: str, name: str) -> None:
        """Queue a table drop."""
        self._ops.append(lambda t: t.drop_table(namespace, name))
