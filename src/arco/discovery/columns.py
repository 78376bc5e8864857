"""Column lineage: declared and observed column edges (``source.col -> target.col``),
and walks over them.

Column edges live in the lineage domain's ``column_edges`` table, next to the
table edges of :mod:`arco.discovery.lineage`, and are walked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from arco.core.errors import InvalidArgumentError
from arco.core.ids import utc_now_ms
from arco.core.scope import validate_dotted
from arco.discovery.walk import DEFAULT_DEPTH, Adjacency, Direction, check_walk, walk_dict
from arco.domain.store import Change, Snapshot
from arco.ledger.folds import RowMapState

if TYPE_CHECKING:
    from arco.discovery.lineage import LineageGraph


@dataclass(frozen=True)
class ColumnEdge:
    """``source.source_column -> target.target_column`` (declared or observed)."""

    source: str
    source_column: str
    target: str
    target_column: str
    transformation: str | None
    declared: bool
    observations: int
    last_seen: datetime | None
    last_run_id: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "source_column": self.source_column,
            "target": self.target,
            "target_column": self.target_column,
            "transformation": self.transformation,
            "declared": self.declared,
            "observations": self.observations,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "run_id": self.last_run_id,
        }


def _column_edge(row: dict[str, Any]) -> ColumnEdge:
    return ColumnEdge(
        source=row["source"],
        source_column=row["source_column"],
        target=row["target"],
        target_column=row["target_column"],
        transformation=row["transformation"],
        declared=bool(row["declared"]),
        observations=int(row["observations"]),
        last_seen=row["last_seen"],
        last_run_id=row["last_run_id"],
    )


@dataclass(frozen=True)
class ColumnNode:
    """A column reached by a column traversal."""

    table: str
    column: str
    depth: int
    direction: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "table": self.table,
            "column": self.column,
            "depth": self.depth,
            "direction": self.direction,
        }


@dataclass
class ColumnTraversal:
    """The result of :meth:`ColumnLineage.traverse`."""

    table: str
    column: str
    direction: str
    depth: int
    nodes: list[ColumnNode] = field(default_factory=list)
    edges: list[ColumnEdge] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"table": self.table, "column": self.column, **walk_dict(self)}


_Col = tuple[str, str]


def _check_column(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 256 or not value.isprintable():
        raise InvalidArgumentError("a column name must be 1 to 256 printable characters")
    return value


class ColumnLineage:
    """Column-level lineage of one scope: declare, list and traverse column edges.

    Column edges live in the ``lineage`` domain's ``column_edges`` table; the
    compactor adds observed ones from OpenLineage ``columnLineage`` facets.
    """

    def __init__(self, graph: LineageGraph) -> None:
        self.graph = graph
        self._index: Adjacency[_Col] | None = None

    def add(
        self,
        source: str,
        source_column: str,
        target: str,
        target_column: str,
        *,
        transformation: str | None = None,
    ) -> ColumnEdge:
        """Declare ``source.source_column -> target.target_column`` (Tier-1, idempotent)."""
        source = validate_dotted("lineage node", source)
        target = validate_dotted("lineage node", target)
        source_column = _check_column(source_column)
        target_column = _check_column(target_column)
        if (source, source_column) == (target, target_column):
            raise InvalidArgumentError("a column edge needs two different columns")
        if transformation is not None and len(transformation) > 1024:
            raise InvalidArgumentError("transformation is at most 1024 characters")
        key = (source, source_column, target, target_column)

        def mutate(snap: Snapshot[RowMapState]) -> Change:
            old = snap.state.table("column_edges").get(key)
            if (
                old is not None
                and old["declared"]
                and (transformation is None or old["transformation"] == transformation)
            ):
                return Change(result=_column_edge(old))
            now = utc_now_ms()
            row: dict[str, Any] = (
                dict(old)
                if old is not None
                else {
                    "source": source,
                    "source_column": source_column,
                    "target": target,
                    "target_column": target_column,
                    "transformation": None,
                    "observations": 0,
                    "first_seen": None,
                    "last_seen": None,
                    "last_run_id": None,
                    "last_event_id": None,
                    "transformation_seen": None,
                    "transformation_event_id": None,
                }
            )
            row["declared"] = True
            row["transformation"] = transformation or row["transformation"]
            row["updated_at"] = now
            change = Change(
                operation={
                    "ops": [{"op": "declare_column_edge", "source": source, "target": target}]
                },
                result=_column_edge(row),
            )
            change.upsert("column_edges", row)
            return change

        return self.graph.domain.commit(mutate).result  # type: ignore[no-any-return]

    def edges(self, table: str | None = None) -> list[ColumnEdge]:
        """Column edges, all or those into or out of ``table``, sorted."""
        rows = self.graph.snapshot().state.table("column_edges")
        if table is not None:
            table = validate_dotted("lineage node", table)
        return [
            _column_edge(rows[k])
            for k in sorted(rows)
            if table is None or k[0] == table or k[2] == table
        ]

    def upstream_of(self, table: str) -> dict[str, list[ColumnEdge]]:
        """For each column of ``table``: the column edges that feed it."""
        out: dict[str, list[ColumnEdge]] = {}
        for e in self.edges(table):
            if e.target == table:
                out.setdefault(e.target_column, []).append(e)
        return out

    def _build(self, snap: Snapshot[RowMapState]) -> Adjacency[_Col]:
        idx = self._index
        if idx is None or idx.version != snap.version:
            edges = snap.state.table("column_edges")
            idx = self._index = Adjacency.of(
                snap.version, edges, lambda k: ((k[0], k[1]), (k[2], k[3]))
            )
        return idx

    def traverse(
        self,
        table: str,
        column: str,
        *,
        direction: Direction = "upstream",
        depth: int = DEFAULT_DEPTH,
    ) -> ColumnTraversal:
        """Breadth-first walk over column edges from ``table.column``; cycles visited once."""
        table = validate_dotted("lineage node", table)
        column = _check_column(column)
        check_walk(direction, depth)
        snap = self.graph.snapshot()
        reached, keys = self._build(snap).walk((table, column), direction, depth)
        rows = snap.state.table("column_edges")
        nodes = [ColumnNode(t, c, dist, way) for (t, c), dist, way in reached]
        return ColumnTraversal(
            table,
            column,
            direction,
            depth,
            nodes=sorted(nodes, key=lambda n: (n.direction, n.depth, n.table, n.column)),
            edges=[_column_edge(rows[k]) for k in sorted(keys)],
        )


def render_columns(traversal: ColumnTraversal) -> str:
    """A column traversal as indented text."""
    lines = [f"{traversal.table}.{traversal.column}"]
    for n in traversal.nodes:
        arrow = "<-" if n.direction == "upstream" else "->"
        lines.append(f"{'  ' * n.depth}{arrow} {n.table}.{n.column}  (depth {n.depth})")
    if not traversal.nodes:
        lines.append("  (no column lineage within depth)")
    return "\n".join(lines)
