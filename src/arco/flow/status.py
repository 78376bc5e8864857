"""Asset status: the one place the CLI, the API and the runner ask about it.

* :func:`latest_rows` — the newest materialization of every asset partition,
  compacted and (given) pending; :func:`as_materializations` turns them into the
  planner's input.
* :func:`asset_statuses` — per asset: its newest materialization, how many
  partitions are materialized, why it is stale and whether it is fresh.
* :class:`PlanRequest` and :func:`plan_request` — the checks of a plan request and
  the plan itself, from the materializations recorded so far.

Staleness means one thing everywhere: an asset is stale when a ``stale`` plan of
the whole project (``'*'``) includes it, so ``arco assets list``, ``arco assets
show``, ``GET /assets`` and ``arco plan '*' --stale-only`` agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arco.core.errors import InvalidArgumentError
from arco.flow.planner import Materialization, Plan, plan

if TYPE_CHECKING:
    from arco.domain.store import DomainStore
    from arco.flow.definitions import Definitions
    from arco.flow.runview import RunsReader
    from arco.ledger.compactor import Compactor
    from arco.ledger.folds import RowMapState

#: An asset partition: ``(asset key, partition key or None)``.
Key = tuple[str, str | None]
#: The columns of ``system.materializations`` a status needs.
COLUMNS = (
    "materialization_id",
    "asset",
    "partition",
    "run_id",
    "location",
    "row_count",
    "code_version",
    "recorded_at",
)
#: The staleness reason of an asset a stale plan leaves out.
UP_TO_DATE = "up to date"


def _newer(row: Mapping[str, Any], than: Mapping[str, Any] | None) -> bool:
    # Ties on the time are broken by the materialization id (a ULID): deterministic.
    if than is None:
        return True
    return (row["recorded_at"], row["materialization_id"]) > (
        than["recorded_at"],
        than["materialization_id"],
    )


def latest_rows(
    domain: DomainStore[RowMapState], pending: Iterable[Mapping[str, Any]] = ()
) -> dict[Key, dict[str, Any]]:
    """The newest materialization row of every asset partition.

    ``domain`` is the scope's ``executions`` domain (its compacted
    ``materializations``); ``pending`` are rows folded from ledger objects the
    compactor has not reached yet (:attr:`RunsView.pending_materializations`).
    Each row carries :data:`COLUMNS`.
    """
    snap = domain.read()
    rows: list[dict[str, Any]] = []
    if snap.manifest is not None:
        table = domain.load_table(snap, "materializations")
        rows = table.select(list(COLUMNS)).to_pylist()
    newest: dict[Key, dict[str, Any]] = {}
    for row in [*rows, *(dict(r) for r in pending)]:
        key = (row["asset"], row["partition"])
        if _newer(row, newest.get(key)):
            newest[key] = row
    return newest


def as_materialization(row: Mapping[str, Any]) -> Materialization:
    """The planner's view of one materialization row."""
    return Materialization(
        row["asset"], row["partition"], row["code_version"], row["recorded_at"], row["run_id"]
    )


def as_materializations(latest: Mapping[Key, Mapping[str, Any]]) -> dict[Key, Materialization]:
    """The planner's input from :func:`latest_rows`."""
    return {key: as_materialization(row) for key, row in latest.items()}


# ------------------------------------------------------------------ staleness


@dataclass(frozen=True)
class AssetStatus:
    """What is known about one asset now."""

    key: str
    #: The newest materialization row of any partition (:data:`COLUMNS`), or None.
    last: dict[str, Any] | None
    #: How many partitions (1 for an unpartitioned asset) were ever materialized.
    materialized_partitions: int
    #: Why a stale plan includes the asset (sorted); empty when it is up to date.
    stale_reasons: list[str] = field(default_factory=list)
    #: The freshness policy's verdict now (``state``, ``deadline``, ...); None without one.
    freshness: dict[str, Any] | None = None

    @property
    def stale(self) -> bool:
        """True when a stale plan of the project would materialize the asset."""
        return bool(self.stale_reasons)


def newest_per_asset(latest: Mapping[Key, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The newest materialization row of each asset (over its partitions)."""
    newest: dict[str, dict[str, Any]] = {}
    for (asset, _), row in latest.items():
        if _newer(row, newest.get(asset)):
            newest[asset] = dict(row)
    return newest


def freshness_now(
    defs: Definitions, latest: Mapping[Key, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each freshness policy's verdict now (``fresh``/``overdue``), by asset."""
    if not defs.freshness:
        return {}
    from arco.flow.automation.views import freshness

    newest = {k: row["recorded_at"] for k, row in newest_per_asset(latest).items()}
    return freshness(defs, newest)


def stale_reasons(
    defs: Definitions, materializations: Mapping[Key, Materialization]
) -> dict[str, list[str]]:
    """Why each asset of the project is stale (an empty list: up to date)."""
    found: dict[str, set[str]] = {key: set() for key in defs.order}
    stale_plan = plan(defs, "*", mode="stale", materializations=materializations)
    for e in stale_plan.explanations:
        found.setdefault(e.asset, set()).add(e.reason)
    return {key: sorted(reasons - {UP_TO_DATE}) for key, reasons in found.items()}


def asset_statuses(
    defs: Definitions, latest: Mapping[Key, Mapping[str, Any]]
) -> dict[str, AssetStatus]:
    """The status of every asset of the project, in dependency order.

    ``latest`` is :func:`latest_rows` (or :meth:`RunsReader.latest`): the same
    materializations give the same answer on every surface.
    """
    reasons = stale_reasons(defs, as_materializations(latest))
    fresh = freshness_now(defs, latest)
    newest = newest_per_asset(latest)
    counts: dict[str, int] = {}
    for asset, _ in latest:
        counts[asset] = counts.get(asset, 0) + 1
    return {
        key: AssetStatus(
            key=key,
            last=newest.get(key),
            materialized_partitions=counts.get(key, 0),
            stale_reasons=reasons.get(key, []),
            freshness=fresh.get(key),
        )
        for key in defs.order
    }


# ------------------------------------------------------------------ planning


@dataclass(frozen=True)
class PlanRequest:
    """What a caller asks to plan: a selection, partitions or a range, stale only."""

    selection: str = "*"
    partitions: Sequence[str] = ()
    start: str | None = None
    end: str | None = None
    stale_only: bool = False

    def validate(self) -> None:
        """Refuse a request that cannot be planned (``InvalidArgumentError``),
        before anything is read or compacted."""
        if (self.start is None) != (self.end is None):
            raise InvalidArgumentError("'from' and 'to' go together")
        if self.partitions and self.start is not None:
            raise InvalidArgumentError("give partitions, or a 'from'/'to' range, not both")

    @property
    def partition_range(self) -> tuple[str, str] | None:
        """``(from, to)``, or None without a range."""
        if self.start is None or self.end is None:
            return None
        return (self.start, self.end)


def plan_request(
    defs: Definitions,
    request: PlanRequest,
    reader: RunsReader,
    *,
    compactor: Compactor | None = None,
) -> Plan:
    """Validate ``request`` and plan it against every materialization recorded so far.

    A plan must see every materialization (else ``stale`` re-does finished work and
    the missing-upstream check refuses inputs that exist). ``reader`` folds the
    ledger objects not compacted yet in memory, which needs no write rights (the
    API's readers plan too). A caller that may write Tier-2 state passes its
    ``compactor``: the ``executions`` domain is compacted first, so ``system.runs``
    and ``system.materializations`` agree with the plan it shows (the CLI).
    """
    request.validate()
    if compactor is not None:
        compactor.compact("executions")
    latest = reader.latest(reader.view())
    return plan(
        defs,
        request.selection,
        partitions=list(request.partitions) or None,
        partition_range=request.partition_range,
        mode="stale" if request.stale_only else "all",
        materializations=as_materializations(latest),
    )
