"""Breadth-first walks over lineage edges, shared by table and column lineage: the
adjacency of a snapshot's edges, the checks of a walk and its JSON-ready form."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from arco.core.errors import InvalidArgumentError

Direction = Literal["upstream", "downstream", "both"]
DEFAULT_DEPTH = 5
MAX_DEPTH = 50
#: A node of a lineage graph: a table's name, or a ``(table, column)`` pair.
_N = TypeVar("_N", bound=Hashable)


class _JsonReady(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class Walk(Protocol):
    """A traversal's result (of tables or of columns), as :func:`walk_dict` reads it."""

    @property
    def direction(self) -> str: ...

    @property
    def depth(self) -> int: ...

    @property
    def nodes(self) -> Sequence[_JsonReady]: ...

    @property
    def edges(self) -> Sequence[_JsonReady]: ...


def walk_dict(walk: Walk) -> dict[str, Any]:
    """The JSON-ready fields of a traversal after its root's: the same for tables
    and columns."""
    return {
        "direction": walk.direction,
        "depth": walk.depth,
        "nodes": [n.to_dict() for n in walk.nodes],
        "edges": [e.to_dict() for e in walk.edges],
    }


@dataclass(frozen=True)
class Adjacency(Generic[_N]):
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
    ) -> Adjacency[_N]:
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


def check_walk(direction: str, depth: int) -> None:
    """Refuse a walk's direction or depth that is not one of the allowed."""
    if direction not in ("upstream", "downstream", "both"):
        raise InvalidArgumentError("direction must be upstream, downstream or both")
    if not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidArgumentError(f"depth must be between 1 and {MAX_DEPTH}")
