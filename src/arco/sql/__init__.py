"""SQL over the metadata and over registered tables' data.

* :mod:`~arco.sql.tables` - the ``system.*`` tables: the one description of which
  exist and their columns (:data:`~arco.sql.tables.SYSTEM_TABLES`), and their builders;
* :mod:`~arco.sql.engine` - :func:`~arco.sql.engine.run_query`, the sandboxed engine;
* :mod:`~arco.sql.resolve` - the names a query uses, rewritten to registered tables;
* :mod:`~arco.sql.pool` - the query worker processes, seen from the server;
* :mod:`~arco.sql.worker` - the memory-capped worker process each query runs in;
* :mod:`~arco.sql.limits` - the engine's budgets and :class:`~arco.sql.limits.QueryLimits`;
* :mod:`~arco.sql.errors` - the errors a query fails with;
* :mod:`~arco.sql.convert` - result values as JSON;
* :mod:`~arco.sql.tabledata` - which files of a registered table a query may read;
* :mod:`~arco.sql.browser` - the same system tables as views for DuckDB-WASM, derived
  from :data:`~arco.sql.tables.SYSTEM_TABLES`.
"""
