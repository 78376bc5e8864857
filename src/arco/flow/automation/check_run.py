"""Asset checks on their own (``arco check ASSET``, ``POST /assets/{key}/checks``):
the declared checks of an asset, run on its stored value without materializing it.

The value is the newest materialization of the partition asked for (default:
the newest materialization of any partition). Results are
``asset_check.evaluated`` events like those of a run, without a run id, so they
appear in ``system.asset_checks``, ``arco assets show`` and the API at once
(the runs view folds pending events).
"""

from __future__ import annotations

import logging
from typing import Any

from arco.core.errors import InvalidArgumentError, NotFoundError
from arco.core.ids import new_ulid
from arco.core.keys import Keys
from arco.core.scope import Scope
from arco.core.storage import ObjectStore
from arco.flow.automation.checks import run_checks
from arco.flow.definitions import Definitions
from arco.ledger.log import Ledger


def check_asset(
    store: ObjectStore,
    scope: Scope,
    defs: Definitions,
    asset: str,
    *,
    partition: str | None = None,
    store_url: str | None = None,
) -> list[dict[str, Any]]:
    """Run ``asset``'s declared checks on its newest stored value (of ``partition``)
    and record the results; returns them (with ``asset``, ``partition`` and the
    ``materialization_id`` checked)."""
    from arco.flow.assets import AssetContext
    from arco.flow.io import load_value
    from arco.flow.runview import RunsReader

    if asset not in defs.assets:
        raise NotFoundError(f"no asset named {asset!r} in the project")
    checks = defs.checks.get(asset, [])
    if not checks:
        raise InvalidArgumentError(f"asset {asset} declares no checks (@asset_check)")
    reader = RunsReader(store, scope)
    latest = reader.latest(reader.view())
    rows = [
        r for (a, p), r in latest.items() if a == asset and (partition is None or p == partition)
    ]
    if not rows:
        where = f"partition {partition!r} of {asset}" if partition is not None else asset
        raise NotFoundError(f"{where} has never been materialized: nothing to check")
    row = max(rows, key=lambda r: (r["recorded_at"], r["materialization_id"]))
    value = load_value(store, row["location"], Keys(scope))
    log = logging.Logger(f"arco.check.{asset}", logging.INFO)
    ctx = AssetContext(
        run_id=str(row["run_id"] or ""),
        task_id=f"check:{asset}",
        asset_key=asset,
        attempt=0,
        partition_key=row["partition"],
        log=log,
        store_url=store_url,
        tenant=scope.tenant,
        workspace=scope.workspace,
    )
    results = run_checks(checks, value, ctx)
    evaluation = new_ulid()
    events = [
        {
            "type": "asset_check.evaluated",
            "payload": {
                **res,
                "asset": asset,
                "partition": row["partition"],
                "run_id": None,
                "task_id": None,
            },
            "idempotency_key": f"asset_check.evaluated:standalone:{evaluation}:{res['check']}",
        }
        for res in results
    ]
    Ledger(store, scope).append_batch("executions", events, source="checks")
    return [
        {
            **res,
            "asset": asset,
            "partition": row["partition"],
            "materialization_id": row["materialization_id"],
        }
        for res in results
    ]
