"""Arco: a file-native lakehouse catalog and asset orchestrator.

``from arco import asset, AssetContext, ...`` is the public SDK. Importing
``arco`` itself stays cheap: the names below are loaded on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "asset": "arco.flow.assets",
    "AssetContext": "arco.flow.assets",
    "AssetDef": "arco.flow.assets",
    "AssetIn": "arco.flow.assets",
    "RetryPolicy": "arco.flow.assets",
    "StaticPartitions": "arco.flow.partitions",
    "DailyPartitions": "arco.flow.partitions",
    "HourlyPartitions": "arco.flow.partitions",
    "MultiPartitions": "arco.flow.partitions",
    "IdentityMapping": "arco.flow.partitions",
    "AllPartitionsMapping": "arco.flow.partitions",
    "TimeWindowMapping": "arco.flow.partitions",
    "Definitions": "arco.flow.definitions",
    "Catalog": "arco.catalog.catalog",
}

if TYPE_CHECKING:
    from arco.catalog.catalog import Catalog
    from arco.flow.assets import AssetContext, AssetDef, AssetIn, RetryPolicy, asset
    from arco.flow.definitions import Definitions
    from arco.flow.partitions import (
        AllPartitionsMapping,
        DailyPartitions,
        HourlyPartitions,
        IdentityMapping,
        MultiPartitions,
        StaticPartitions,
        TimeWindowMapping,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'arco' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AllPartitionsMapping",
    "AssetContext",
    "AssetDef",
    "AssetIn",
    "Catalog",
    "DailyPartitions",
    "Definitions",
    "HourlyPartitions",
    "IdentityMapping",
    "MultiPartitions",
    "RetryPolicy",
    "StaticPartitions",
    "TimeWindowMapping",
    "__version__",
    "asset",
]
