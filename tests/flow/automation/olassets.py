"""An asset fed by a table another tool writes, and an asset sensor that watches it."""

from __future__ import annotations

from typing import Any

from arco import asset
from arco.flow.automation import asset_sensor

SEEN: list[list[dict[str, Any]]] = []


@asset(namespace="mart")
def report() -> int:
    return 1


@asset_sensor(assets=["shop.orders"], selection="mart.report", interval_seconds=1)
def orders_landed(context, materializations):  # type: ignore[no-untyped-def]
    SEEN.append(list(materializations))
