"""SQL over the metadata and over registered tables' data.

* :mod:`~arco.sql.engine` - the ``system.*`` tables and the sandboxed DuckDB engine;
* :mod:`~arco.sql.worker` - the memory-capped worker process each query runs in;
* :mod:`~arco.sql.tabledata` - which files of a registered table a query may read;
* :mod:`~arco.sql.browser` - the same system tables as views for DuckDB-WASM.
"""
