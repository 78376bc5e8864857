"""What one query may use: the engine's budgets (from the environment) and :class:`QueryLimits`.

The budgets are read once, at import: ``ARCO_QUERY_WORKERS`` (worker processes),
``ARCO_QUERY_MEMORY_MB`` (memory of one query, all of it) and ``ARCO_QUERY_DATA_MB``
(stored bytes of table data one query may read).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from arco.core.errors import InvalidArgumentError

MiB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, not {raw!r}")
    return int(raw)


#: Query worker processes (each runs one query at a time; more queries wait for one).
#: ``ARCO_QUERY_WORKERS``; the most memory all queries together can take is
#: ``ENGINE_WORKERS * ENGINE_MEMORY_BUDGET``.
ENGINE_WORKERS = _env_int("ARCO_QUERY_WORKERS", max(1, min(2, os.cpu_count() or 1)))
#: DuckDB threads of each worker.
ENGINE_THREADS = max(1, min(4, os.cpu_count() or 1))
#: Memory one query may use, all of it: DuckDB, the values it computes and the result
#: (the worker's address space is capped at its idle size plus this).
#: ``ARCO_QUERY_MEMORY_MB``.
ENGINE_MEMORY_BUDGET = _env_int("ARCO_QUERY_MEMORY_MB", 768) * MiB
#: DuckDB's own buffer limit, below the budget so most queries fail inside DuckDB first.
ENGINE_MEMORY_LIMIT = f"{ENGINE_MEMORY_BUDGET // 2 // MiB}MB"
#: Bytes of table data files one query may read (their stored, compressed size): the
#: worker decodes them inside its memory budget. ``ARCO_QUERY_DATA_MB``.
ENGINE_DATA_BUDGET = _env_int("ARCO_QUERY_DATA_MB", 256) * MiB


@dataclass(frozen=True)
class QueryLimits:
    """Limits of one query. ``truncate`` cuts at ``max_rows`` instead of failing."""

    max_seconds: float = 10.0
    max_rows: int = 10_000
    max_bytes: int = 10 * MiB
    max_sql_length: int = 100_000
    truncate: bool = False
    #: Bytes of table data files (as stored) the query may read.
    max_data_bytes: int = ENGINE_DATA_BUDGET

    def __post_init__(self) -> None:
        if not (isinstance(self.max_seconds, int | float) and 0 < self.max_seconds <= 3600):
            raise InvalidArgumentError("max_seconds must be between 0 and 3600")
        for name in ("max_rows", "max_bytes", "max_sql_length", "max_data_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive integer")
