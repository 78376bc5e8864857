"""What asset and run-status sensors are called with: facts since their cursor.

Both start from "now" on their first evaluation (the cursor is set to the newest
fact and nothing is requested), like a schedule that starts when it is created:
turning a sensor on never replays history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arco.flow.automation.requests import RunRequest
from arco.flow.automation.sensors import SensorContext, SensorDef, SensorResult, normalise

if TYPE_CHECKING:
    from arco.flow.automation.tick import Automation


def _view(auto: Automation) -> tuple[Any, Any]:
    view = auto.scratch.get("runs_view")
    if view is None:
        from arco.flow.runview import RunsReader

        reader = RunsReader.of(auto.ws)
        view = reader.view()
        auto.scratch["runs_reader"] = reader
        auto.scratch["runs_view"] = view
    return auto.scratch["runs_reader"], view


def all_materializations(auto: Automation) -> list[dict[str, Any]]:
    """Every materialization (compacted and pending), oldest first; cached per tick."""
    rows = auto.scratch.get("materializations")
    if rows is None:
        reader, view = _view(auto)
        snap = reader.domain.read()
        rows = []
        if snap.manifest is not None:
            cols = ["materialization_id", "asset", "partition", "run_id", "recorded_at"]
            rows = reader.domain.load_table(snap, "materializations").select(cols).to_pylist()
        seen = {r["materialization_id"] for r in rows}
        rows += [r for r in view.pending_materializations if r["materialization_id"] not in seen]
        rows.sort(key=lambda r: r["materialization_id"])
        auto.scratch["materializations"] = rows
    return list(rows)


def external_materializations(auto: Automation) -> list[dict[str, Any]]:
    """Outputs of finished external OpenLineage runs, as materialization rows; cached per tick.

    A ``COMPLETE`` run of another tool (dbt, Airflow, Spark ...) that wrote a
    dataset mapped to an Arco name (see docs/openlineage.md) counts as a
    materialization of that asset, with the run's last event id as its id, so it
    orders with Arco's own. Events not compacted yet count too, as for Arco's runs.
    """
    rows = auto.scratch.get("external_materializations")
    if rows is None:
        from arco.ledger.external_lineage import dataset_label
        from arco.ledger.pending import fold_pending

        domain = auto.ws.compactor.domain_store("lineage")
        snap = domain.read()
        folder, _ = fold_pending(auto.ws.ledger, "lineage", snap)
        runs = dict(snap.state.table("external_runs"))
        runs.update(folder.upserts.get("external_runs", {}))
        datasets = dict(snap.state.table("datasets"))
        datasets.update(folder.upserts.get("datasets", {}))
        names = {
            dataset_label(*key): row["qualified_name"]
            for key, row in datasets.items()
            if row.get("qualified_name")
        }
        rows = [
            {
                "materialization_id": run["last_event_id"],
                "asset": names[label],
                "partition": None,
                "run_id": run["run_id"],
                "recorded_at": run["finished_at"],
                "source": "openlineage",
            }
            for run in runs.values()
            if run["state"] == "COMPLETE"
            for label in run["outputs"] or ()
            if label in names
        ]
        rows.sort(key=lambda r: (r["materialization_id"], r["asset"]))
        auto.scratch["external_materializations"] = rows
    return list(rows)


def call_sensor(auto: Automation, sensor: SensorDef, ctx: SensorContext) -> Any:
    """Call the sensor's function with what its kind needs."""
    if sensor.kind == "custom":
        return sensor.fn(ctx)
    if sensor.kind == "asset":
        return _asset_sensor(auto, sensor, ctx)
    return _run_status_sensor(auto, sensor, ctx)


def _asset_sensor(auto: Automation, sensor: SensorDef, ctx: SensorContext) -> SensorResult:
    watched = set(sensor.assets)
    rows = [r for r in all_materializations(auto) if r["asset"] in watched]
    external = [r for r in external_materializations(auto) if r["asset"] in watched]
    if external:
        rows = sorted(rows + external, key=lambda r: str(r["materialization_id"]))
    newest = rows[-1]["materialization_id"] if rows else ""
    if ctx.cursor is None:
        return SensorResult(cursor=newest, skip_reason="first evaluation: starts from now")
    new = [r for r in rows if r["materialization_id"] > ctx.cursor]
    if not new:
        return SensorResult(skip_reason="no new materializations")
    got = normalise(sensor.fn(ctx, new), sensor.name)
    reqs = list(got.run_requests)
    if not reqs and got.skip_reason is None and sensor.selection:
        reqs = [RunRequest(sensor.selection, (), f"after:{new[-1]['materialization_id']}")]
    return SensorResult(reqs, got.cursor or new[-1]["materialization_id"], got.skip_reason)


def _run_status_sensor(auto: Automation, sensor: SensorDef, ctx: SensorContext) -> SensorResult:
    _, view = _view(auto)
    states = set(sensor.run_states)
    finished = sorted(
        (
            (str(row["last_event_id"]), run_id, row)
            for run_id, row in view.runs.items()
            if row["state"] in states
        ),
        key=lambda t: (t[0], t[1]),
    )
    newest = finished[-1][0] if finished else ""
    if ctx.cursor is None:
        return SensorResult(cursor=newest, skip_reason="first evaluation: starts from now")
    reqs: list[RunRequest] = []
    for event_id, run_id, row in finished:
        if event_id <= ctx.cursor:
            continue
        tags = row.get("tags_json")
        run = {
            "run_id": run_id,
            "state": row["state"],
            "selection": row.get("selection"),
            "reason": row.get("reason"),
            "tags": tags,
            "finished_at": str(row.get("finished_at") or ""),
        }
        got = normalise(sensor.fn(ctx, run), sensor.name)
        for i, req in enumerate(got.run_requests):
            reqs.append(
                RunRequest(req.selection, req.partitions, req.run_key or f"{run_id}:{i}", req.tags)
            )
    return SensorResult(reqs, newest or ctx.cursor)
