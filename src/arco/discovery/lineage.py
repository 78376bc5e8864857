"""Lineage: declared edges (Tier-1 commits) and observed edges (Tier-2 events), traversal.

Both kinds live in the ``lineage`` domain's ``edges`` table. Declaring an edge is
a Tier-1 commit that sets ``declared``; observing one is a ledger event the
compactor folds. Traversal runs over an adjacency index built once per
immutable snapshot version.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from arco.core.errors import InvalidArgumentError, NotFoundError
from arco.core.ids import utc_now_ms
from arco.core.scope import Scope, validate_dotted
from arco.core.storage import ObjectStore
from arco.domain.store import Change, Snapshot
from arco.ledger.compactor import tier2_store
from arco.ledger.folds import RowMapState

Direction = Literal["upstream", "downstream", "both"]
DEFAULT_DEPTH = 5
MAX_DEPTH = 50
#: A node of a lineage graph: a table's name, or a ``(table, column)`` pair.
_N = TypeVar("_N", bound=Hashable)


@dataclass(frozen=True)
class Edge:
    """A lineage edge."""

    source: str
    target: str
    edge_type: str
    declared: bool
    observations: int
    first_seen: datetime | None
    last_seen: datetime | None
    last_run_id: str | None
    columns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "target": self.target,
            "edge_type": self.edge_type,
            "declared": self.declared,
            "observed": self.observations > 0,
            "observations": self.observations,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "run_id": self.last_run_id,
            "columns": list(self.columns),
        }


def _edge(row: dict[str, Any]) -> Edge:
    return Edge(
        source=row["source"],
        target=row["target"],
        edge_type=row["edge_type"],
        declared=bool(row["declared"]),
        observations=int(row["observations"]),
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        last_run_id=row["last_run_id"],
        columns=tuple(row["columns"] or ()),
    )


@dataclass(frozen=True)
class TraversalNode:
    """A node reached by a traversal, with its distance from the root."""

    name: str
    depth: int
    direction: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "depth": self.depth, "direction": self.direction}


@dataclass
class Traversal:
    """The result of :meth:`LineageGraph.traverse`."""

    root: str
    direction: str
    depth: int
    nodes: list[TraversalNode] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"root": self.root, **_walk_dict(self)}


def _walk_dict(walk: Traversal | ColumnTraversal) -> dict[str, Any]:
    """The JSON-ready fields of a traversal after its root's: the same for tables
    and columns."""
    return {
        "direction": walk.direction,
        "depth": walk.depth,
        "nodes": [n.to_dict() for n in walk.nodes],
        "edges": [e.to_dict() for e in walk.edges],
    }


@dataclass(frozen=True)
class _Adjacency(Generic[_N]):
    """The edges of one snapshot version by node: ``out`` to their targets, ``inc``
    to their sources, each with the edge's key (built once per version)."""

    version: int
    out: dict[_N, list[tuple[_N, tuple[Any, ...]]]]
    inc: dict[_N, list[tuple[_N, tuple[Any, ...]]]]

    @classmethod
    def of(
        cls,
        version: int,
        keys: Iterable[tuple[Any, ...]],
        ends: Callable[[tuple[Any, ...]], tuple[_N, _N]],
    ) -> _Adjacency[_N]:
        """The adjacency of the edges with these keys (``ends``: source and target)."""
        out: dict[_N, list[tuple[_N, tuple[Any, ...]]]] = {}
        inc: dict[_N, list[tuple[_N, tuple[Any, ...]]]] = {}
        for key in keys:
            source, target = ends(key)
            out.setdefault(source, []).append((target, key))
            inc.setdefault(target, []).append((source, key))
        return cls(version, out, inc)

    def walk(
        self, root: _N, direction: Direction, depth: int
    ) -> tuple[list[tuple[_N, int, str]], set[tuple[Any, ...]]]:
        """Breadth-first from ``root`` up to ``depth`` hops, each way ``direction``
        asks; cycles are visited once. The nodes reached as ``(node, distance, way)``
        in the order reached, and the keys of the edges crossed."""
        reached: list[tuple[_N, int, str]] = []
        edge_keys: set[tuple[Any, ...]] = set()
        for way in ["upstream", "downstream"] if direction == "both" else [direction]:
            adjacency = self.inc if way == "upstream" else self.out
            seen = {root}
            queue: deque[tuple[_N, int]] = deque([(root, 0)])
            while queue:
                current, dist = queue.popleft()
                if dist >= depth:
                    continue
                for neighbour, key in adjacency.get(current, ()):
                    edge_keys.add(key)
                    if neighbour not in seen:
                        seen.add(neighbour)
                        reached.append((neighbour, dist + 1, way))
                        queue.append((neighbour, dist + 1))
        return reached, edge_keys


def _check_walk(direction: str, depth: int) -> None:
    if direction not in ("upstream", "downstream", "both"):
        raise InvalidArgumentError("direction must be upstream, downstream or both")
    if not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidArgumentError(f"depth must be between 1 and {MAX_DEPTH}")


class LineageGraph:
    """Declare, list and traverse lineage edges of one scope."""

    def __init__(self, store: ObjectStore, scope: Scope, *, max_staleness: float = 0.0) -> None:
        self.domain = tier2_store(store, scope, "lineage", max_staleness=max_staleness)
        self._index: _Adjacency[str] | None = None

    def snapshot(self) -> Snapshot[RowMapState]:
        """The latest lineage snapshot."""
        return self.domain.read()

    def add_edge(
        self,
        source: str,
        target: str,
        *,
        edge_type: str = "derives",
        columns: Iterable[str] | None = None,
    ) -> Edge:
        """Declare ``source -> target`` (a Tier-1 commit; idempotent)."""
        source = validate_dotted("lineage node", source)
        target = validate_dotted("lineage node", target)
        _check_edge_type(edge_type)
        if source == target:
            raise InvalidArgumentError("an edge needs two different nodes")
        cols = sorted(set(columns or ()))

        def mutate(snap: Snapshot[RowMapState]) -> Change:
            key = (source, target, edge_type)
            old = snap.state.table("edges").get(key)
            now = utc_now_ms()
            row: dict[str, Any] = (
                dict(old)
                if old is not None
                else {
                    "source": source,
                    "target": target,
                    "edge_type": edge_type,
                    "observations": 0,
                    "first_seen": None,
                    "last_seen": None,
                    "last_run_id": None,
                    "last_event_id": None,
                    "columns": [],
                    "updated_at": now,
                }
            )
            if old is not None and old["declared"] and set(old["columns"] or ()) >= set(cols):
                return Change(result=_edge(old))
            row["declared"] = True
            row["columns"] = sorted(set(row["columns"] or ()) | set(cols))
            row["updated_at"] = now
            change = Change(
                operation={"ops": [{"op": "declare_edge", "source": source, "target": target}]},
                result=_edge(row),
            )
            change.upsert("edges", row)
            return change

        return self.domain.commit(mutate).result  # type: ignore[no-any-return]

    def remove_edge(self, source: str, target: str, *, edge_type: str = "derives") -> None:
        """Withdraw a declared edge (observed history is kept)."""
        source = validate_dotted("lineage node", source)
        target = validate_dotted("lineage node", target)
        _check_edge_type(edge_type)

        def mutate(snap: Snapshot[RowMapState]) -> Change:
            key = (source, target, edge_type)
            old = snap.state.table("edges").get(key)
            if old is None or not old["declared"]:
                raise NotFoundError(f"no declared edge {source} -> {target} ({edge_type})")
            change = Change(
                operation={"ops": [{"op": "remove_edge", "source": source, "target": target}]}
            )
            if old["observations"]:
                change.upsert("edges", {**old, "declared": False, "updated_at": utc_now_ms()})
            else:
                change.delete("edges", old)
            return change

        self.domain.commit(mutate)

    def edges(self) -> list[Edge]:
        """Every edge, sorted by (source, target, type)."""
        rows = self.snapshot().state.table("edges")
        return [_edge(rows[k]) for k in sorted(rows)]

    def _build(self, snap: Snapshot[RowMapState]) -> _Adjacency[str]:
        idx = self._index
        if idx is None or idx.version != snap.version:
            edges = snap.state.table("edges")
            idx = self._index = _Adjacency.of(snap.version, edges, lambda k: (k[0], k[1]))
        return idx

    def traverse(
        self, node: str, *, direction: Direction = "both", depth: int = DEFAULT_DEPTH
    ) -> Traversal:
        """Breadth-first walk from ``node`` up to ``depth`` hops; cycles are visited once."""
        node = validate_dotted("lineage node", node)
        _check_walk(direction, depth)
        snap = self.snapshot()
        reached, edge_keys = self._build(snap).walk(node, direction, depth)
        rows = snap.state.table("edges")
        nodes = [TraversalNode(name, dist, way) for name, dist, way in reached]
        return Traversal(
            root=node,
            direction=direction,
            depth=depth,
            nodes=sorted(nodes, key=lambda n: (n.direction, n.depth, n.name)),
            edges=[_edge(rows[k]) for k in sorted(edge_keys)],
        )


def _check_edge_type(edge_type: str) -> None:
    if not isinstance(edge_type, str) or not edge_type or len(edge_type) > 64:
        raise InvalidArgumentError("edge_type must be 1 to 64 characters")
    if not edge_type.replace("_", "").replace("-", "").isalnum():
        raise InvalidArgumentError("edge_type may contain only letters, digits, '_' and '-'")


def render(traversal: Traversal, fmt: str) -> str:
    """Render a traversal as ``text``, ``json``, ``dot`` or ``mermaid``."""
    if fmt == "json":
        return json.dumps(traversal.to_dict(), indent=2)
    if fmt == "dot":
        lines = ["digraph lineage {", "  rankdir=LR;", f'  "{traversal.root}" [style=bold];']
        for e in traversal.edges:
            style = "solid" if e.declared else "dashed"
            lines.append(f'  "{e.source}" -> "{e.target}" [label="{e.edge_type}", style={style}];')
        lines.append("}")
        return "\n".join(lines)
    if fmt == "mermaid":
        ids: dict[str, str] = {}

        def nid(name: str) -> str:
            if name not in ids:
                ids[name] = f"n{len(ids)}"
            return ids[name]

        lines = ["graph LR"]
        nid(traversal.root)
        for n in traversal.nodes:
            nid(n.name)
        for name, ident in ids.items():
            lines.append(f'  {ident}["{name}"]')
        for e in traversal.edges:
            arrow = "-->" if e.declared else "-.->"
            lines.append(f"  {nid(e.source)} {arrow}|{e.edge_type}| {nid(e.target)}")
        return "\n".join(lines)
    if fmt != "text":
        raise InvalidArgumentError("format must be text, json, dot or mermaid")
    lines = [traversal.root]
    for n in traversal.nodes:
        arrow = "<-" if n.direction == "upstream" else "->"
        lines.append(f"{'  ' * n.depth}{arrow} {n.name}  (depth {n.depth})")
    if not traversal.nodes:
        lines.append("  (no lineage within depth)")
    return "\n".join(lines)


# ------------------------------------------------------------ column lineage
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
        return {"table": self.table, "column": self.column, **_walk_dict(self)}


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
        self._index: _Adjacency[_Col] | None = None

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

    def _build(self, snap: Snapshot[RowMapState]) -> _Adjacency[_Col]:
        idx = self._index
        if idx is None or idx.version != snap.version:
            edges = snap.state.table("column_edges")
            idx = self._index = _Adjacency.of(
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
        _check_walk(direction, depth)
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


# ------------------------------------------------------------------ coverage
_ARCO_FINISHED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_OL_FINISHED = frozenset({"COMPLETE", "FAIL", "ABORT"})


@dataclass(frozen=True)
class Coverage:
    """Finished runs, and how many of them recorded at least one input or output."""

    source: str
    finished: int
    with_io: int

    @property
    def share(self) -> float | None:
        """``with_io / finished`` (None when nothing finished)."""
        return self.with_io / self.finished if self.finished else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "finished": self.finished,
            "with_io": self.with_io,
            "share": self.share,
        }


def lineage_coverage(store: ObjectStore, scope: Scope) -> list[Coverage]:
    """Lineage coverage of finished runs: Arco's own, external (OpenLineage), and all.

    An Arco run counts as covered when it recorded a materialization or one of its
    tasks started on an asset (the output the run attempted, which is what its
    OpenLineage FAIL event reports); an external run when any of its events named
    an input or an output dataset. Reads the compacted state only.
    """
    executions = tier2_store(store, scope, "executions")
    snap = executions.read()
    finished = {r["run_id"] for r in snap.state.rows("runs") if r["state"] in _ARCO_FINISHED}
    with_io = {
        r["run_id"]
        for r in snap.state.rows("tasks")
        if r["run_id"] in finished and r["asset"] and r["started_at"] is not None
    }
    if finished - with_io:
        mats = executions.load_table(snap, "materializations").column("run_id").to_pylist()
        with_io |= finished & set(mats)
    arco = Coverage("arco", len(finished), len(with_io))
    runs = tier2_store(store, scope, "lineage").read().state.rows("external_runs")
    done = [r for r in runs if r["state"] in _OL_FINISHED]
    external = Coverage(
        "openlineage", len(done), sum(1 for r in done if r["inputs"] or r["outputs"])
    )
    total = Coverage("all", arco.finished + external.finished, arco.with_io + external.with_io)
    return [arco, external, total]
