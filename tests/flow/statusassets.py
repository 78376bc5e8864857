"""Assets of the asset-status tests: ``s.up`` feeds ``s.down``; ``s.daily`` is partitioned."""

from __future__ import annotations

import pyarrow as pa

from arco import DailyPartitions, asset


@asset(namespace="s", code_version="1")
def up() -> pa.Table:
    return pa.table({"n": [1, 2, 3]})


@asset(namespace="s", code_version="1")
def down(up: pa.Table) -> int:
    return up.num_rows


@asset(namespace="s", partitions=DailyPartitions(start="2024-01-01", end="2024-01-03"))
def daily() -> pa.Table:
    return pa.table({"n": [1]})
