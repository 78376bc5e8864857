"""Lineage: declared edges (Tier-1 commits) and observed edges (Tier-2 events), traversal.

Both kinds live in the ``lineage`` domain's ``edges`` table. Declaring an edge is
a Tier-1 commit that sets ``declared``; observing one is a ledger event the
compactor folds. Traversal runs over an adjacency index built once per
immutable snapshot version (:mod:`arco.discovery.walk`). Column lineage is
:mod:`arco.discovery.columns`, its names re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from arco.core.errors import InvalidArgumentError, NotFoundError
from arco.core.ids import utc_now_ms
from arco.core.scope import Scope, validate_dotted
from arco.core.storage import ObjectStore

# Column lineage and the walks have their own modules; the names stay importable
# from here, as before.
from arco.discovery.columns import ColumnEdge as ColumnEdge
from arco.discovery.columns import ColumnLineage as ColumnLineage
from arco.discovery.columns import ColumnNode as ColumnNode
from arco.discovery.columns import ColumnTraversal as ColumnTraversal
from arco.discovery.columns import render_columns as render_columns
from arco.discovery.walk import DEFAULT_DEPTH as DEFAULT_DEPTH
from arco.discovery.walk import MAX_DEPTH as MAX_DEPTH
from arco.discovery.walk import Adjacency, check_walk, walk_dict
from arco.discovery.walk import Direction as Direction
from arco.domain.store import Change, Snapshot
from arco.ledger.compactor import tier2_store
from arco.ledger.folds import RowMapState


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
        return {"root": self.root, **walk_dict(self)}


class LineageGraph:
    """Declare, list and traverse lineage edges of one scope."""

    def __init__(self, store: ObjectStore, scope: Scope, *, max_staleness: float = 0.0) -> None:
        self.domain = tier2_store(store, scope, "lineage", max_staleness=max_staleness)
        self._index: Adjacency[str] | None = None

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

    def _build(self, snap: Snapshot[RowMapState]) -> Adjacency[str]:
        idx = self._index
        if idx is None or idx.version != snap.version:
            edges = snap.state.table("edges")
            idx = self._index = Adjacency.of(snap.version, edges, lambda k: (k[0], k[1]))
        return idx

    def traverse(
        self, node: str, *, direction: Direction = "both", depth: int = DEFAULT_DEPTH
    ) -> Traversal:
        """Breadth-first walk from ``node`` up to ``depth`` hops; cycles are visited once."""
        node = validate_dotted("lineage node", node)
        check_walk(direction, depth)
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
