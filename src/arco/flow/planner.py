"""Deterministic, explainable planning.

``plan(defs, selection, ...)`` is a pure function of the definitions, the
selection, the partitions asked for and the latest materializations: the same
inputs give byte-identical plans (canonical JSON) and the same fingerprint in
any process. Every asset/partition in the selection gets a reason for being in
or out of the plan.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from arco.core.errors import InvalidArgumentError
from arco.core.ids import canonical_json, sha256_hex
from arco.flow.definitions import Definitions, Upstream
from arco.flow.partitions import (
    PartitionMapping,
    PartitionsDefinition,
    default_mapping,
    select_keys,
)

Mode = Literal["all", "stale"]
Reason = Literal[
    "never materialized",
    "code version changed",
    "upstream materialized since",
    "upstream in plan",
    "forced",
    "up to date",
]


@dataclass(frozen=True)
class Materialization:
    """The latest materialization of one asset partition (input to planning)."""

    asset: str
    partition: str | None
    code_version: str | None
    recorded_at: datetime
    run_id: str | None = None


@dataclass(frozen=True)
class PlannedTask:
    """One unit of work: an asset, optionally one partition."""

    task_id: str
    asset: str
    partition: str | None
    deps: tuple[str, ...]
    inputs: tuple[tuple[str, str | None], ...]
    reason: str
    code_version: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what the fingerprint covers)."""
        return {
            "task_id": self.task_id,
            "asset": self.asset,
            "partition": self.partition,
            "deps": list(self.deps),
            "inputs": [[a, p] for a, p in self.inputs],
            "reason": self.reason,
            "code_version": self.code_version,
        }


@dataclass(frozen=True)
class Explanation:
    """Why one asset/partition is in or out of the plan."""

    asset: str
    partition: str | None
    included: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "asset": self.asset,
            "partition": self.partition,
            "included": self.included,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Plan:
    """An ordered list of tasks plus the explanation and a fingerprint."""

    selection: str
    mode: str
    tasks: tuple[PlannedTask, ...]
    explanations: tuple[Explanation, ...]
    fingerprint: str = ""
    partitions: tuple[str, ...] = field(default_factory=tuple)

    def body(self) -> dict[str, Any]:
        """What the fingerprint covers: selection, mode, partitions and tasks."""
        return {
            "selection": self.selection,
            "mode": self.mode,
            "partitions": list(self.partitions),
            "tasks": [t.to_dict() for t in self.tasks],
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON form, with the explanation and the fingerprint."""
        return {
            **self.body(),
            "explanations": [e.to_dict() for e in self.explanations],
            "fingerprint": self.fingerprint,
        }

    def to_json(self) -> bytes:
        """Canonical JSON bytes (identical across processes for the same inputs)."""
        return canonical_json(self.to_dict())

    def task(self, task_id: str) -> PlannedTask:
        """A task by id."""
        for t in self.tasks:
            if t.task_id == task_id:
                return t
        raise KeyError(task_id)


def task_id_of(asset: str, partition: str | None) -> str:
    """Stable task id: ``ns.asset`` or ``ns.asset[partition]``."""
    return asset if partition is None else f"{asset}[{partition}]"


def resolve_selection(defs: Definitions, selection: str) -> list[str]:
    """Asset keys named by a selection: keys or names, ``+key``, ``key+``, ``*``,
    ``group:G``, ``tag:K`` / ``tag:K=V``; terms separated by commas or spaces."""
    terms = [t for t in selection.replace(",", " ").split() if t]
    if not terms:
        raise InvalidArgumentError("selection is empty; use '*' for every asset")
    chosen: set[str] = set()
    for term in terms:
        up, down = term.startswith("+"), term.endswith("+") and len(term) > 1
        core = term.strip("+")
        if core == "*":
            base = set(defs.assets)
        elif core.startswith("group:"):
            group = core[len("group:") :]
            base = {k for k, a in defs.assets.items() if a.group == group}
        elif core.startswith("tag:"):
            spec = core[len("tag:") :]
            name, _, value = spec.partition("=")
            base = {
                k
                for k, a in defs.assets.items()
                if a.tag(name) is not None and (not value or a.tag(name) == value)
            }
        else:
            base = {k for k, a in defs.assets.items() if core in (k, a.name)}
            if not base:
                raise InvalidArgumentError(f"selection {term!r} matches no asset")
        chosen |= base
        if up:
            chosen |= _closure(base, lambda k: [u.key for u in defs.upstreams[k]])
        if down:
            chosen |= _closure(base, lambda k: list(defs.downstreams[k]))
    if not chosen:
        raise InvalidArgumentError(f"selection {selection!r} matches no asset")
    return [k for k in defs.order if k in chosen]


def _closure(start: set[str], step: Any) -> set[str]:
    out, stack = set(start), list(start)
    while stack:
        for nxt in step(stack.pop()):
            if nxt not in out:
                out.add(nxt)
                stack.append(nxt)
    return out


def plan(
    defs: Definitions,
    selection: str = "*",
    *,
    partitions: Sequence[str] | None = None,
    partition_range: tuple[str, str] | None = None,
    mode: Mode = "all",
    materializations: Mapping[tuple[str, str | None], Materialization] | None = None,
) -> Plan:
    """Plan the selected assets; pure and deterministic."""
    if mode not in ("all", "stale"):
        raise InvalidArgumentError("mode must be 'all' or 'stale'")
    mats = materializations or {}
    keys = resolve_selection(defs, selection)
    in_selection = set(keys)
    wanted: dict[str, list[str | None]] = {}
    for key in keys:
        a = defs[key]
        if a.partitions is None:
            wanted[key] = [None]
            continue
        if partitions or partition_range:
            try:
                start, end = partition_range or (None, None)
                wanted[key] = list(select_keys(a.partitions, partitions, start, end))
                continue
            except InvalidArgumentError:
                pass
        wanted[key] = []  # decided by downstream needs below, else all keys
    # Walk downstream-first so partitions of upstreams follow their consumers.
    for key in reversed(keys):
        a = defs[key]
        if a.partitions is not None and not wanted[key]:
            needed: list[str | None] = []
            for d in defs.downstreams[key]:
                if d not in in_selection:
                    continue
                mapping = _mapping_for(defs, d, key)
                for dp in wanted[d]:
                    needed.extend(mapping.upstream(dp, defs[d].partitions, a.partitions))
            wanted[key] = sorted(set(needed), key=str) if needed else list(a.partitions.keys())
    tasks: dict[str, PlannedTask] = {}
    explanations: list[Explanation] = []
    decided: dict[str, bool] = {}
    assets = defs.assets
    for key in keys:
        a = assets[key]
        # Resolve each upstream's mapping once per asset, not once per partition.
        ups: list[tuple[Upstream, PartitionMapping | None, PartitionsDefinition | None]] = []
        for up in defs.upstreams[key]:
            uparts = assets[up.key].partitions
            if a.partitions is None and uparts is None:
                ups.append((up, None, uparts))
                continue
            explicit = up.mapping if isinstance(up.mapping, PartitionMapping) else None
            ups.append((up, explicit or default_mapping(a.partitions, uparts), uparts))
        for part in wanted[key]:
            tid = task_id_of(key, part)
            deps: set[str] = set()
            inputs: list[tuple[str, str | None]] = []
            upstream_reason: str | None = None
            last = mats.get((key, part))
            for up, up_mapping, uparts in ups:
                upstream_parts = (
                    [None]
                    if up_mapping is None
                    else up_mapping.upstream(part, a.partitions, uparts)
                )
                for upart in upstream_parts:
                    if up.param is not None:
                        inputs.append((up.key, upart))
                    utid = task_id_of(up.key, upart)
                    if utid in tasks:
                        deps.add(utid)
                        if decided.get(utid):
                            upstream_reason = upstream_reason or "upstream in plan"
                    if last is not None:
                        umat = mats.get((up.key, upart))
                        if umat is not None and umat.recorded_at > last.recorded_at:
                            upstream_reason = upstream_reason or "upstream materialized since"
            if last is None:
                stale: str | None = "never materialized"
            elif (a.code_version or None) != (last.code_version or None):
                stale = "code version changed"
            else:
                stale = upstream_reason
            include = mode == "all" or stale is not None
            reason = stale if stale is not None else ("forced" if mode == "all" else "up to date")
            decided[tid] = include
            explanations.append(Explanation(key, part, include, reason))
            if include:
                tasks[tid] = PlannedTask(
                    task_id=tid,
                    asset=key,
                    partition=part,
                    deps=tuple(sorted(deps)),
                    inputs=tuple(sorted(set(inputs), key=lambda x: (x[0], str(x[1])))),
                    reason=reason,
                    code_version=a.code_version,
                )
    ordered = _order(tasks)
    position = {k: i for i, k in enumerate(keys)}
    explanations.sort(key=lambda e: (position[e.asset], str(e.partition)))
    result = Plan(
        selection=selection,
        mode=mode,
        tasks=tuple(ordered),
        explanations=tuple(explanations),
        partitions=tuple(partitions or (partition_range or ())),
    )
    fingerprint = "sha256:" + sha256_hex(canonical_json(result.body()))
    return Plan(
        selection=result.selection,
        mode=result.mode,
        tasks=result.tasks,
        explanations=result.explanations,
        fingerprint=fingerprint,
        partitions=result.partitions,
    )


def _mapping_for(defs: Definitions, downstream: str, upstream: str) -> PartitionMapping:
    for up in defs.upstreams[downstream]:
        if up.key == upstream and isinstance(up.mapping, PartitionMapping):
            return up.mapping
    return default_mapping(defs[downstream].partitions, defs[upstream].partitions)


def _order(tasks: dict[str, PlannedTask]) -> list[PlannedTask]:
    indeg = {tid: len(t.deps) for tid, t in tasks.items()}
    down: dict[str, list[str]] = {tid: [] for tid in tasks}
    for tid, t in tasks.items():
        for d in t.deps:
            down[d].append(tid)
    ready = [tid for tid, n in indeg.items() if n == 0]
    heapq.heapify(ready)
    out: list[PlannedTask] = []
    while ready:
        tid = heapq.heappop(ready)
        out.append(tasks[tid])
        for nxt in down[tid]:
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                heapq.heappush(ready, nxt)
    return out


def rerun_plan(defs: Definitions, items: Sequence[tuple[str, str | None]], selection: str) -> Plan:
    """A plan of exactly ``items`` (asset, partition), e.g. the failed part of a run.

    Dependencies on tasks outside the set are dropped: their outputs already exist
    and are loaded from the store.
    """
    keys = sorted({a for a, _ in items if a in defs.assets})
    parts = sorted({p for _, p in items if p is not None})
    full = plan(defs, " ".join(keys), partitions=parts or None)
    wanted = {task_id_of(a, p) for a, p in items}
    tasks = {t.task_id: t for t in full.tasks if t.task_id in wanted}
    trimmed = [
        PlannedTask(
            task_id=t.task_id,
            asset=t.asset,
            partition=t.partition,
            deps=tuple(d for d in t.deps if d in tasks),
            inputs=t.inputs,
            reason="re-run",
            code_version=t.code_version,
        )
        for t in tasks.values()
    ]
    body = Plan(
        selection=selection,
        mode="all",
        tasks=tuple(_order({t.task_id: t for t in trimmed})),
        explanations=(),
        partitions=tuple(parts),
    )
    return Plan(
        selection=body.selection,
        mode=body.mode,
        tasks=body.tasks,
        explanations=(),
        fingerprint="sha256:" + sha256_hex(canonical_json(body.body())),
        partitions=body.partitions,
    )
