"""Arco catalog: Tier-1 commits, state files, readers, verification and GC. Imports only core."""

from arco.catalog.catalog import (
    Catalog,
    CatalogView,
    Transaction,
    parse_column_spec,
    split_qualified,
)
from arco.catalog.domain import Change, CommitResult, DomainStore, Snapshot
from arco.catalog.models import Column, ColumnSpec, Namespace, Page, Table

__all__ = [
    "Catalog",
    "CatalogView",
    "Change",
    "Column",
    "ColumnSpec",
    "CommitResult",
    "DomainStore",
    "Namespace",
    "Page",
    "Snapshot",
    "Table",
    "Transaction",
    "parse_column_spec",
    "split_qualified",
]
