"""Arco's REST API (FastAPI): thin composition over the catalog; no domain policy here."""

import os

# Before pyarrow loads: Arrow's C++ code (the Parquet reader's buffers among it)
# allocates from a process-wide pool chosen from this variable when the library is
# first used, and ``pa.set_memory_pool`` in ``create_app`` cannot change that one.
# Under load a 100,000-table server kept ~50 MiB more in mimalloc's pages without
# it (see ``arco.api.app.use_system_allocator``). A pool the user chose stays.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

from arco.api.app import create_app
from arco.api.settings import Settings

__all__ = ["Settings", "create_app"]
