"""Lineage: declared edges (Tier-1 commits), observed edges (Tier-2 events folded by
the compactor), their merge, traversal and rendering."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from arco.core import InvalidArgumentError, InvalidNameError, NotFoundError, ObjectStore
from arco.discovery.lineage import MAX_DEPTH, LineageGraph, Traversal, render
from arco.domain.store import Change, Snapshot
from arco.ledger.compactor import Compactor
from arco.ledger.folds import RowMapState
from arco.ledger.log import Ledger

from ._support import SCOPE, memory_store

T0 = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def store() -> ObjectStore:
    return memory_store()


@pytest.fixture
def graph(store: ObjectStore) -> LineageGraph:
    return LineageGraph(store, SCOPE)


def observe(
    store: ObjectStore,
    edges: Iterable[tuple[str, str]],
    *,
    at: datetime,
    run_id: str | None = None,
    columns: list[str] | None = None,
) -> None:
    Ledger(store, SCOPE).append(
        "lineage",
        "lineage.edges_observed",
        {
            "edges": [
                {"source": s, "target": t, "run_id": run_id, "columns": columns} for s, t in edges
            ]
        },
        occurred_at=at,
    )


def compact(store: ObjectStore) -> None:
    Compactor(store, SCOPE).compact("lineage")


def edge_map(graph: LineageGraph) -> dict[tuple[str, str], Any]:
    return {(e.source, e.target): e for e in graph.edges()}


# ------------------------------------------------------------ declared edges


def test_add_edge_is_idempotent(graph: LineageGraph) -> None:
    edge = graph.add_edge("raw.orders", "stg.orders", columns=["id"])
    assert (edge.source, edge.target, edge.edge_type) == ("raw.orders", "stg.orders", "derives")
    assert edge.declared
    assert edge.observations == 0
    assert edge.columns == ("id",)
    assert graph.snapshot().version == 1

    again = graph.add_edge("raw.orders", "stg.orders", columns=["id"])
    assert again == edge
    assert graph.snapshot().version == 1  # no new version
    subset = graph.add_edge("raw.orders", "stg.orders")
    assert subset.columns == ("id",)
    assert graph.snapshot().version == 1

    wider = graph.add_edge("raw.orders", "stg.orders", columns=["amount"])
    assert wider.columns == ("amount", "id")
    assert graph.snapshot().version == 2
    other_type = graph.add_edge("raw.orders", "stg.orders", edge_type="copies")
    assert other_type.edge_type == "copies"
    assert graph.snapshot().version == 3
    assert [(e.source, e.target, e.edge_type) for e in graph.edges()] == [
        ("raw.orders", "stg.orders", "copies"),
        ("raw.orders", "stg.orders", "derives"),
    ]
    # Another reader of the same files sees the same edges.
    assert LineageGraph(graph.domain.store, SCOPE).edges() == graph.edges()


@pytest.mark.parametrize(
    ("source", "target", "edge_type", "error"),
    [
        ("a.b", "a.b", "derives", InvalidArgumentError),
        ("a.b", "c.d", "", InvalidArgumentError),
        ("a.b", "c.d", "has space", InvalidArgumentError),
        ("a.b", "c.d", "x" * 65, InvalidArgumentError),
        ("a/../b", "c.d", "derives", InvalidNameError),
        ("a.b", "c..d", "derives", InvalidNameError),
        ("", "c.d", "derives", InvalidNameError),
    ],
)
def test_add_edge_validates(
    graph: LineageGraph, source: str, target: str, edge_type: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        graph.add_edge(source, target, edge_type=edge_type)
    assert graph.snapshot().version == 0


def test_remove_declared_edge(graph: LineageGraph) -> None:
    graph.add_edge("a.x", "a.y")
    graph.add_edge("a.y", "a.z")
    graph.remove_edge("a.x", "a.y")
    assert list(edge_map(graph)) == [("a.y", "a.z")]
    with pytest.raises(NotFoundError):
        graph.remove_edge("a.x", "a.y")
    with pytest.raises(NotFoundError):
        graph.remove_edge("a.y", "a.z", edge_type="copies")
    version = graph.snapshot().version
    assert graph.traverse("a.x").nodes == []
    assert graph.snapshot().version == version


# ------------------------------------------------------------ observed edges


def test_observed_edges_merge_with_declared(store: ObjectStore, graph: LineageGraph) -> None:
    graph.add_edge("raw.orders", "stg.orders", columns=["id"])
    t1, t2, t3 = T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=9)
    # Written out of order: the latest observation (by time) wins last_*.
    observe(store, [("raw.orders", "stg.orders")], at=t2, run_id="run-2", columns=["amount"])
    observe(
        store,
        [("raw.orders", "stg.orders"), ("stg.orders", "mart.revenue")],
        at=t1,
        run_id="run-1",
    )
    compact(store)

    edges = edge_map(graph)
    assert set(edges) == {("raw.orders", "stg.orders"), ("stg.orders", "mart.revenue")}
    both = edges[("raw.orders", "stg.orders")]
    assert both.declared
    assert both.observations == 2
    assert both.first_seen == t1
    assert both.last_seen == t2
    assert both.last_run_id == "run-2"
    assert both.columns == ("amount", "id")
    assert both.to_dict()["observed"] is True
    assert both.to_dict()["declared"] is True
    seen_only = edges[("stg.orders", "mart.revenue")]
    assert not seen_only.declared
    assert seen_only.observations == 1
    assert seen_only.first_seen == seen_only.last_seen == t1
    assert seen_only.to_dict()["observed"] is True

    # Declaring an observed edge keeps its history; observing a declared one too.
    declared = graph.add_edge("stg.orders", "mart.revenue")
    assert declared.declared
    assert declared.observations == 1
    observe(store, [("stg.orders", "mart.revenue")], at=t3, run_id="run-3")
    compact(store)
    merged = edge_map(graph)[("stg.orders", "mart.revenue")]
    assert (merged.declared, merged.observations, merged.last_run_id) == (True, 2, "run-3")
    assert (merged.first_seen, merged.last_seen) == (t1, t3)

    # Withdrawing the declaration keeps the observed edge and its history.
    graph.remove_edge("raw.orders", "stg.orders")
    kept = edge_map(graph)[("raw.orders", "stg.orders")]
    assert not kept.declared
    assert kept.observations == 2
    with pytest.raises(NotFoundError):
        graph.remove_edge("raw.orders", "stg.orders")
    # Reopened from the files: the same edges.
    assert LineageGraph(store, SCOPE).edges() == graph.edges()
    assert len(graph.edges()) == 2  # one row per (source, target, type)


def test_declaring_while_compacting_loses_nothing(store: ObjectStore) -> None:
    """Declarations (Tier 1) and compactions (Tier 2) share the lineage domain."""
    graph = LineageGraph(store, SCOPE)
    for i in range(20):
        observe(store, [(f"a.n{i}", f"a.n{i + 1}")], at=T0 + timedelta(seconds=i))

    def declare() -> None:
        for i in range(20):
            LineageGraph(store, SCOPE).add_edge(f"b.n{i}", f"b.n{i + 1}")

    thread = threading.Thread(target=declare)
    thread.start()
    Compactor(store, SCOPE, max_objects=2).compact("lineage")
    thread.join(timeout=60)
    edges = edge_map(graph)
    assert len(edges) == 40
    assert sum(e.declared for e in edges.values()) == 20
    assert sum(e.observations for e in edges.values()) == 20


# ------------------------------------------------------------------ traversal


@pytest.fixture
def cyclic(graph: LineageGraph, store: ObjectStore) -> LineageGraph:
    """a -> b -> c -> a (a cycle), c -> d, x -> a; d -> e only observed."""
    for source, target in [("g.a", "g.b"), ("g.b", "g.c"), ("g.c", "g.a"), ("g.c", "g.d")]:
        graph.add_edge(source, target)
    graph.add_edge("g.x", "g.a")
    observe(store, [("g.d", "g.e")], at=T0, run_id="run-1")
    compact(store)
    return graph


def nodes_of(t: Traversal) -> list[tuple[str, int, str]]:
    return [(n.name, n.depth, n.direction) for n in t.nodes]


def edges_of(t: Traversal) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in t.edges}


def test_traverse_downstream_with_depth_and_cycles(cyclic: LineageGraph) -> None:
    one = cyclic.traverse("g.a", direction="downstream", depth=1)
    assert nodes_of(one) == [("g.b", 1, "downstream")]
    assert edges_of(one) == {("g.a", "g.b")}
    two = cyclic.traverse("g.a", direction="downstream", depth=2)
    assert nodes_of(two) == [("g.b", 1, "downstream"), ("g.c", 2, "downstream")]
    assert edges_of(two) == {("g.a", "g.b"), ("g.b", "g.c")}
    full = cyclic.traverse("g.a", direction="downstream", depth=10)
    assert nodes_of(full) == [
        ("g.b", 1, "downstream"),
        ("g.c", 2, "downstream"),
        ("g.d", 3, "downstream"),
        ("g.e", 4, "downstream"),
    ]
    # The edge closing the cycle is listed; its root is not repeated as a node.
    assert edges_of(full) == {
        ("g.a", "g.b"),
        ("g.b", "g.c"),
        ("g.c", "g.a"),
        ("g.c", "g.d"),
        ("g.d", "g.e"),
    }
    assert full.root == "g.a"
    assert full.depth == 10
    assert full.direction == "downstream"


def test_traverse_upstream_and_both(cyclic: LineageGraph) -> None:
    up = cyclic.traverse("g.a", direction="upstream", depth=2)
    assert nodes_of(up) == [("g.c", 1, "upstream"), ("g.x", 1, "upstream"), ("g.b", 2, "upstream")]
    assert edges_of(up) == {("g.c", "g.a"), ("g.x", "g.a"), ("g.b", "g.c")}
    both = cyclic.traverse("g.d", direction="both", depth=1)
    assert nodes_of(both) == [("g.e", 1, "downstream"), ("g.c", 1, "upstream")]
    assert edges_of(both) == {("g.c", "g.d"), ("g.d", "g.e")}
    default = cyclic.traverse("g.d")
    assert default.direction == "both"
    assert default.depth == 5
    # A node may appear once per direction (a cycle puts it both up- and downstream).
    around = cyclic.traverse("g.b", direction="both", depth=3)
    assert ("g.a", 2, "downstream") in nodes_of(around)
    assert ("g.a", 1, "upstream") in nodes_of(around)
    lonely = cyclic.traverse("g.nowhere")
    assert lonely.nodes == []
    assert lonely.edges == []


@pytest.mark.parametrize("depth", [0, -1, MAX_DEPTH + 1, 51, "3", 2.0, None])
def test_traverse_depth_bounds(cyclic: LineageGraph, depth: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        cyclic.traverse("g.a", depth=depth)


def test_traverse_accepts_max_depth_and_checks_arguments(cyclic: LineageGraph) -> None:
    assert MAX_DEPTH == 50
    assert nodes_of(cyclic.traverse("g.a", depth=MAX_DEPTH)) == [
        ("g.b", 1, "downstream"),
        ("g.c", 2, "downstream"),
        ("g.d", 3, "downstream"),
        ("g.e", 4, "downstream"),
        ("g.c", 1, "upstream"),
        ("g.x", 1, "upstream"),
        ("g.b", 2, "upstream"),
    ]
    with pytest.raises(InvalidArgumentError):
        cyclic.traverse("g.a", direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError):
        cyclic.traverse("g/../a")


def test_traversal_follows_new_versions(cyclic: LineageGraph, store: ObjectStore) -> None:
    before = cyclic.traverse("g.e", direction="downstream", depth=3)
    assert before.nodes == []
    observe(store, [("g.e", "g.f")], at=T0 + timedelta(hours=1))
    compact(store)
    after = cyclic.traverse("g.e", direction="downstream", depth=3)
    assert nodes_of(after) == [("g.f", 1, "downstream")]


# ------------------------------------------------------------------- rendering


def test_render_formats(cyclic: LineageGraph) -> None:
    t = cyclic.traverse("g.c", direction="downstream", depth=2)
    text = render(t, "text").splitlines()
    assert text[0] == "g.c"
    assert "  -> g.a  (depth 1)" in text
    assert "  -> g.d  (depth 1)" in text
    assert "    -> g.b  (depth 2)" in text
    assert "    -> g.e  (depth 2)" in text
    up = render(cyclic.traverse("g.c", direction="upstream", depth=1), "text").splitlines()
    assert up == ["g.c", "  <- g.b  (depth 1)"]
    assert "(no lineage within depth)" in render(cyclic.traverse("g.zzz"), "text")

    parsed = json.loads(render(t, "json"))
    assert parsed == json.loads(json.dumps(t.to_dict()))
    assert parsed["root"] == "g.c"
    assert {(e["source"], e["target"]) for e in parsed["edges"]} == edges_of(t)
    assert {n["name"] for n in parsed["nodes"]} == {"g.a", "g.b", "g.d", "g.e"}
    observed = next(e for e in parsed["edges"] if e["target"] == "g.e")
    assert (observed["declared"], observed["observed"], observed["run_id"]) == (
        False,
        True,
        "run-1",
    )

    dot = render(t, "dot")
    assert dot.startswith("digraph lineage {")
    assert dot.rstrip().endswith("}")
    assert '"g.c" -> "g.a" [label="derives", style=solid];' in dot
    assert '"g.d" -> "g.e" [label="derives", style=dashed];' in dot
    assert dot.count(" -> ") == len(t.edges)

    mermaid = render(t, "mermaid").splitlines()
    assert mermaid[0] == "graph LR"
    ids = {}
    for line in mermaid[1:]:
        if "[" in line and "|" not in line:
            ident, label = line.strip().split("[", 1)
            ids[label.strip('"]')] = ident
    assert set(ids) == {"g.c", "g.a", "g.b", "g.d", "g.e"}
    assert f"  {ids['g.c']} -->|derives| {ids['g.a']}" in mermaid
    assert f"  {ids['g.d']} -.->|derives| {ids['g.e']}" in mermaid

    with pytest.raises(InvalidArgumentError):
        render(t, "svg")


# ---------------------------------------------------------- a large random graph


def reference_traverse(
    out: dict[str, list[str]],
    inc: dict[str, list[str]],
    root: str,
    direction: str,
    depth: int,
) -> tuple[set[tuple[str, int, str]], set[tuple[str, str]]]:
    """Level-by-level BFS: shortest distances, and every edge leaving a level < depth."""
    nodes: set[tuple[str, int, str]] = set()
    edges: set[tuple[str, str]] = set()
    for way in ("upstream", "downstream") if direction == "both" else (direction,):
        adjacency = inc if way == "upstream" else out
        distance = {root: 0}
        frontier = [root]
        for level in range(depth):
            following = []
            for u in frontier:
                for v in adjacency.get(u, ()):
                    edges.add((v, u) if way == "upstream" else (u, v))
                    if v not in distance:
                        distance[v] = level + 1
                        following.append(v)
            frontier = following
        nodes |= {(n, d, way) for n, d in distance.items() if n != root}
    return nodes, edges


@pytest.mark.slow
def test_traversal_of_a_random_100k_edge_graph_matches_a_reference_bfs(
    store: ObjectStore,
) -> None:
    rng = random.Random(20240601)
    n_nodes, n_edges = 40_000, 100_000
    names = [f"g{i % 97}.n{i}" for i in range(n_nodes)]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < n_edges:
        a, b = rng.randrange(n_nodes), rng.randrange(n_nodes)
        if a != b:
            pairs.add((a, b))
    edge_list = sorted((names[a], names[b]) for a, b in pairs)
    out: dict[str, list[str]] = {}
    inc: dict[str, list[str]] = {}
    for s, t in edge_list:
        out.setdefault(s, []).append(t)
        inc.setdefault(t, []).append(s)

    writer = LineageGraph(store, SCOPE)

    def mutate(snap: Snapshot[RowMapState]) -> Change:
        change = Change(operation={"ops": [{"op": "bulk_declare", "edges": n_edges}]})
        for s, t in edge_list:
            change.upsert(
                "edges",
                {
                    "source": s,
                    "target": t,
                    "edge_type": "derives",
                    "declared": True,
                    "observations": 0,
                    "first_seen": None,
                    "last_seen": None,
                    "last_run_id": None,
                    "last_event_id": None,
                    "columns": [],
                    "updated_at": T0,
                },
            )
        return change

    started = time.monotonic()
    result = writer.domain.commit(mutate)
    assert result.committed
    graph = writer
    assert len(graph.snapshot().state.table("edges")) == n_edges

    cases = [
        (names[rng.randrange(n_nodes)], rng.choice(["upstream", "downstream", "both"]), d)
        for d in [1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 2, 3, 4, 1, 6, 7, 4, 2]
    ]
    reached = 0
    for root, direction, depth in cases:
        t = graph.traverse(root, direction=direction, depth=depth)  # type: ignore[arg-type]
        want_nodes, want_edges = reference_traverse(out, inc, root, direction, depth)
        reached += len(want_nodes)
        got_nodes = nodes_of(t)
        assert len(got_nodes) == len(set(got_nodes)), (root, direction, depth)
        assert set(got_nodes) == want_nodes, (root, direction, depth)
        assert edges_of(t) == want_edges, (root, direction, depth)
        assert len(t.edges) == len(want_edges)
        assert got_nodes == sorted(got_nodes, key=lambda n: (n[2], n[1], n[0]))
    assert reached > 1_000  # the walks are not trivially small
    assert time.monotonic() - started < 120
