"""Tier 1, the catalog: namespaces, tables, columns and types, committed on the domain protocol.

A table create or drop is one compare-and-swap of the catalog domain's pointer
(:class:`~arco.catalog.catalog.Catalog` over :class:`~arco.domain.store.DomainStore`);
cold reads of one table or one listing go through :mod:`arco.catalog.pointread`
without folding the catalog. Imports only ``arco.core`` and ``arco.domain``.
"""

from arco.catalog.catalog import Catalog
from arco.catalog.models import Column, ColumnSpec, Namespace, Page, Table
from arco.catalog.parse import parse_column_spec, split_qualified
from arco.catalog.reads import CatalogView
from arco.catalog.transaction import Transaction
from arco.domain.store import Change, CommitResult, DomainStore, Snapshot

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
