"""The catalog's format hooks (ADR 014): a managed table never changes behind its format's back."""

from __future__ import annotations

from typing import Any

import pytest

from arco.catalog import Catalog
from arco.catalog.formats import UnsupportedTableChangeError, apply_format_hook, is_managed
from arco.core.scope import Scope
from arco.core.storage import open_store


def test_a_managed_row_without_a_store_or_hook_is_refused() -> None:
    iceberg = {"namespace": "s", "name": "t", "format": "iceberg", "metadata_location": "x"}
    assert is_managed(iceberg)
    assert not is_managed({**iceberg, "metadata_location": None})
    assert not is_managed({**iceberg, "format": "parquet"})
    with pytest.raises(UnsupportedTableChangeError, match="cannot write iceberg metadata"):
        apply_format_hook(None, None, object(), iceberg, dict(iceberg))
    plain: dict[str, Any] = {**iceberg, "format": "parquet"}
    assert apply_format_hook(None, None, object(), plain, plain) is plain


def test_an_iceberg_table_without_metadata_changes_like_any_table() -> None:
    # Created through the Arco door: no metadata file yet, Arco owns the columns.
    catalog = Catalog(open_store("memory://formats"), Scope("t", "w"))
    catalog.create_namespace("s")
    catalog.create_table("s", "t", ["a:int64"], format="iceberg")
    changed = catalog.update_table("s", "t", add_columns=["b:int8"])
    assert [c.name for c in changed.columns] == ["a", "b"]
