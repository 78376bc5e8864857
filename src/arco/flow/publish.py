"""What follows a finished run: its events folded into Tier-2 state, its tables registered.

The :class:`~arco.flow.runner.Scheduler` calls :func:`publish` once a run is
closed; :class:`~arco.flow.taskrun.RunOptions` says which of the two happen.
"""

from __future__ import annotations

from arco.core.errors import InvalidArgumentError
from arco.core.keys import Keys
from arco.flow.definitions import Definitions
from arco.flow.taskrun import RunOptions, TaskRun
from arco.workspace import Workspace


def publish(
    ws: Workspace,
    defs: Definitions,
    options: RunOptions,
    tasks: dict[str, TaskRun],
    *,
    keys: Keys,
    store_url: str,
) -> None:
    """Fold the run's events into Tier-2 state and register its tables (per options)."""
    if options.compact_after:
        compactor = ws.compactor
        compactor.compact("executions")
        compactor.compact("lineage")
    if options.register_tables:
        register_tables(ws, defs, tasks, keys=keys, store_url=store_url)


def register_tables(
    ws: Workspace,
    defs: Definitions,
    tasks: dict[str, TaskRun],
    *,
    keys: Keys,
    store_url: str,
) -> None:
    """Create (or add the new columns of) the catalog table of every asset a task of
    the run wrote as parquet; an asset the catalog refuses is left out."""
    schemas: dict[str, list[dict[str, str]]] = {}
    for tr in tasks.values():
        if tr.state == "SUCCEEDED" and tr.outcome and tr.outcome.kind == "parquet":
            schemas[tr.task.asset] = tr.outcome.schema or []
    if not schemas:
        return
    catalog = ws.catalog
    for key, schema in sorted(schemas.items()):
        asset = defs[key]
        parts = asset.namespace.split(".")
        for i in range(1, len(parts) + 1):
            catalog.create_namespace(".".join(parts[:i]), exist_ok=True)
        columns = [{"name": c["name"], "type": c["type"]} for c in schema]
        location = f"{store_url.rstrip('/')}/{keys.asset_prefix(key)}"
        try:
            existing = catalog.get_table(asset.namespace, asset.name)
        except Exception:
            existing = None
        try:
            if existing is None:
                catalog.create_table(
                    asset.namespace,
                    asset.name,
                    columns,
                    format="parquet",
                    location=location,
                    description=asset.description,
                    properties={"arco.asset": key},
                    exist_ok=True,
                )
            else:
                have = {c.name for c in existing.columns}
                new = [c for c in columns if c["name"] not in have]
                if new:
                    catalog.update_table(asset.namespace, asset.name, add_columns=new)
        except InvalidArgumentError:
            continue
