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
from json.encoder import encode_basestring as _encode_str
from typing import Any, Literal

from arco.core.errors import InvalidArgumentError
from arco.core.ids import canonical_json, sha256_hex
from arco.flow.definitions import Definitions
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
    if partitions and partition_range:
        raise InvalidArgumentError("give partition keys or a from/to range, not both")
    mats = materializations or {}
    keys = resolve_selection(defs, selection)
    assets = defs.assets
    upstreams = defs.upstreams
    wanted = _wanted_partitions(defs, keys, partitions, partition_range)
    tasks: dict[str, PlannedTask] = {}
    explanations: list[Explanation] = []
    # With the materializations known, an upstream outside the selection must have
    # been materialized, or its consumer would be handed None.
    check_inputs = materializations is not None
    missing: list[tuple[str, str | None, str, str | None]] = []
    mats_get = mats.get
    stale_mode = mode == "stale"
    unchanged = "up to date" if stale_mode else "forced"
    partitioned = {k for k, a in assets.items() if a.partitions is not None}
    # Tasks are visited in dependency order, so an upstream task is in ``tasks``
    # by the time its consumers look for it; being there means it is included.
    # For every task, the first upstream (in declaration order) that is in the
    # plan or was materialized after it gives the "upstream ..." reason.
    for key in keys:
        a = assets[key]
        aparts = a.partitions
        code_version = a.code_version
        cv_norm = code_version or None
        key_ups = upstreams[key]
        if aparts is None and not any(up.key in partitioned for up in key_ups):
            # Fast path: an unpartitioned asset over unpartitioned upstreams is one
            # task whose task ids are the asset keys themselves.
            last = mats_get((key, None)) if mats else None
            dep_list: list[str] = []
            input_list: list[tuple[str, str | None]] = []
            upstream_reason: str | None = None
            for up in key_ups:
                ukey = up.key
                if up.param is not None:
                    input_list.append((ukey, None))
                if ukey in tasks:
                    dep_list.append(ukey)
                    if upstream_reason is None:
                        upstream_reason = "upstream in plan"
                    continue
                if check_inputs and (ukey, None) not in mats:
                    missing.append((key, None, ukey, None))
                if last is not None and upstream_reason is None:
                    umat = mats_get((ukey, None))
                    if umat is not None and umat.recorded_at > last.recorded_at:
                        upstream_reason = "upstream materialized since"
            if last is None:
                stale: str | None = "never materialized"
            elif cv_norm != (last.code_version or None):
                stale = "code version changed"
            else:
                stale = upstream_reason
            if stale is None:
                explanations.append(_explanation(key, None, not stale_mode, unchanged))
                if stale_mode:
                    continue
                reason = unchanged
            else:
                explanations.append(_explanation(key, None, True, stale))
                reason = stale
            tasks[key] = _task(
                key,
                key,
                None,
                tuple(sorted(set(dep_list))) if len(dep_list) > 1 else tuple(dep_list),
                tuple(sorted(set(input_list))) if len(input_list) > 1 else tuple(input_list),
                reason,
                code_version,
            )
            continue
        # Resolve each upstream's mapping once per asset, not once per partition;
        # ``None`` marks an unpartitioned-to-unpartitioned edge.
        ups: list[tuple[str, bool, PartitionMapping | None, PartitionsDefinition | None]] = []
        for up in key_ups:
            uparts = assets[up.key].partitions
            if aparts is None and uparts is None:
                ups.append((up.key, up.param is not None, None, None))
                continue
            explicit = up.mapping if isinstance(up.mapping, PartitionMapping) else None
            mapping = explicit or default_mapping(aparts, uparts)
            ups.append((up.key, up.param is not None, mapping, uparts))
        parts = wanted[key]
        group_start = len(explanations)
        for part in parts:
            tid = key if part is None else f"{key}[{part}]"
            deps: set[str] = set()
            inputs: list[tuple[str, str | None]] = []
            upstream_reason = None
            last = mats_get((key, part)) if mats else None
            for ukey, passes_value, up_mapping, uparts in ups:
                for upart in (
                    _NONE_PART if up_mapping is None else up_mapping.upstream(part, aparts, uparts)
                ):
                    if passes_value:
                        inputs.append((ukey, upart))
                    utid = ukey if upart is None else f"{ukey}[{upart}]"
                    if utid in tasks:
                        deps.add(utid)
                        if upstream_reason is None:
                            upstream_reason = "upstream in plan"
                        continue
                    if check_inputs and (ukey, upart) not in mats:
                        missing.append((key, part, ukey, upart))
                    if last is not None and upstream_reason is None:
                        umat = mats_get((ukey, upart))
                        if umat is not None and umat.recorded_at > last.recorded_at:
                            upstream_reason = "upstream materialized since"
            if last is None:
                stale = "never materialized"
            elif cv_norm != (last.code_version or None):
                stale = "code version changed"
            else:
                stale = upstream_reason
            include = stale is not None or not stale_mode
            reason = unchanged if stale is None else stale
            explanations.append(_explanation(key, part, include, reason))
            if include:
                tasks[tid] = _task(
                    tid,
                    key,
                    part,
                    tuple(sorted(deps)),
                    # Partition keys compare as strings, as the canonical order wants.
                    tuple(sorted(set(inputs), key=_input_order)),
                    reason,
                    code_version,
                )
        if len(parts) > 1:
            # Explanations are in selection order, then by partition key as a string.
            explanations[group_start:] = sorted(explanations[group_start:], key=_explanation_order)
    if missing:
        raise_missing_upstreams(missing)
    result = Plan(
        selection=selection,
        mode=mode,
        tasks=tuple(_order(tasks)),
        explanations=tuple(explanations),
        partitions=tuple(partitions or (partition_range or ())),
    )
    return _with_fingerprint(result)


_NONE_PART: list[str | None] = [None]


def _wanted_partitions(
    defs: Definitions,
    keys: list[str],
    partitions: Sequence[str] | None,
    partition_range: tuple[str, str] | None,
) -> dict[str, list[str | None]]:
    """The partitions to plan of each selected asset.

    Keys or a range given apply to every selected asset whose scheme they fit; an
    asset they do not fit (say, the hourly upstream of a daily asset) takes what
    its selected consumers need. A key or range that fits no selected asset, or an
    asset that it does not fit and that no selected consumer needs, is an error:
    a typo must never turn into a run of every partition.
    """
    assets = defs.assets
    requested = bool(partitions or partition_range)
    start, end = partition_range or (None, None)
    wanted: dict[str, list[str | None]] = {}
    misfits: dict[str, InvalidArgumentError] = {}
    for key in keys:
        parts = assets[key].partitions
        if parts is None:
            wanted[key] = _NONE_PART
        elif requested:
            try:
                wanted[key] = list(select_keys(parts, partitions, start, end))
            except InvalidArgumentError as exc:
                misfits[key] = exc
                wanted[key] = []
        else:
            wanted[key] = []  # decided by downstream needs below, else all keys
    if requested:
        what = (
            f"partition {', '.join(map(repr, partitions))}"
            if partitions
            else (f"partition range {start!r}..{end!r}")
        )
        fitted = [k for k in keys if assets[k].partitions is not None and k not in misfits]
        if not fitted:
            if not misfits:
                raise InvalidArgumentError(f"{what} given, but no selected asset is partitioned")
            key, err = next(iter(misfits.items()))
            raise InvalidArgumentError(f"{err} (asset {key}); nothing was planned")
    # Walk downstream-first so partitions of upstreams follow their consumers.
    in_selection = set(keys)
    for key in reversed(keys):
        a = assets[key]
        if a.partitions is not None and not wanted[key]:
            needed: list[str | None] = []
            for d in defs.downstreams[key]:
                if d not in in_selection:
                    continue
                mapping = _mapping_for(defs, d, key)
                for dp in wanted[d]:
                    needed.extend(mapping.upstream(dp, assets[d].partitions, a.partitions))
            if needed:
                wanted[key] = sorted(set(needed), key=str)
            elif key in misfits:
                raise InvalidArgumentError(
                    f"{misfits[key]} (asset {key}, which no other selected asset needs); "
                    "select it separately; nothing was planned"
                )
            else:
                wanted[key] = list(a.partitions.keys())
    return wanted


def raise_missing_upstreams(missing: Sequence[tuple[str, str | None, str, str | None]]) -> None:
    """Refuse a plan whose tasks read upstream values that were never materialized
    (asset, partition, upstream, upstream partition), naming them and the fix."""
    first_asset = missing[0][0]
    ups = list(dict.fromkeys(task_id_of(u, up) for _, _, u, up in missing))
    shown = ", ".join(ups[:5]) + (f" and {len(ups) - 5} more" if len(ups) > 5 else "")
    needing = list(dict.fromkeys(task_id_of(a, p) for a, p, _, _ in missing))
    raise InvalidArgumentError(
        f"{needing[0]}{' (and others)' if len(needing) > 1 else ''} reads {shown}, which "
        f"{'has' if len(ups) == 1 else 'have'} never been materialized; select "
        f"'+{first_asset}' to run its upstream assets too, or materialize "
        f"{'it' if len(ups) == 1 else 'them'} first; nothing was run"
    )


# A plan of thousands of tasks builds two frozen dataclasses per task; their
# generated ``__init__`` (one ``object.__setattr__`` per field, keyword call) was a
# quarter of planning time. These fill the instance dict in one step instead; the
# objects are the same (equality, hashing, repr and immutability included).
_new = object.__new__
_set = object.__setattr__


def _task(
    task_id: str,
    asset: str,
    partition: str | None,
    deps: tuple[str, ...],
    inputs: tuple[tuple[str, str | None], ...],
    reason: str,
    code_version: str | None,
) -> PlannedTask:
    t = _new(PlannedTask)
    _set(
        t,
        "__dict__",
        {
            "task_id": task_id,
            "asset": asset,
            "partition": partition,
            "deps": deps,
            "inputs": inputs,
            "reason": reason,
            "code_version": code_version,
        },
    )
    return t


def _explanation(asset: str, partition: str | None, included: bool, reason: str) -> Explanation:
    e = _new(Explanation)
    _set(
        e,
        "__dict__",
        {"asset": asset, "partition": partition, "included": included, "reason": reason},
    )
    return e


def _input_order(item: tuple[str, str | None]) -> tuple[str, str]:
    return item[0], str(item[1])


def _explanation_order(e: Explanation) -> str:
    return str(e.partition)


def _with_fingerprint(body: Plan) -> Plan:
    fingerprint = "sha256:" + sha256_hex(_body_json(body))
    return Plan(
        selection=body.selection,
        mode=body.mode,
        tasks=body.tasks,
        explanations=body.explanations,
        fingerprint=fingerprint,
        partitions=body.partitions,
    )


def _json_opt(value: str | None) -> str:
    return "null" if value is None else _encode_str(value)


def _body_json(p: Plan) -> bytes:
    """``canonical_json(p.body())``, built directly from the tasks.

    Encoding thousands of small dicts with ``sort_keys`` dominated planning; the
    task fields are strings (or None), so each task is written with its keys in
    sorted order by hand (twice as fast). Anything else (say an int
    ``code_version``) makes ``encode_basestring`` raise TypeError, and the generic
    encoder, which gives the same bytes, takes over.
    """
    enc, opt = _encode_str, _json_opt
    try:
        items = [
            f'{{"asset":{enc(t.asset)},"code_version":{opt(t.code_version)},'
            f'"deps":[{",".join(map(enc, t.deps))}],'
            f'"inputs":[{",".join([f"[{enc(a)},{opt(b)}]" for a, b in t.inputs])}],'
            f'"partition":{opt(t.partition)},"reason":{enc(t.reason)},"task_id":{enc(t.task_id)}}}'
            for t in p.tasks
        ]
        partitions = ",".join(map(enc, p.partitions))
        text = (
            f'{{"mode":{enc(p.mode)},"partitions":[{partitions}],'
            f'"selection":{enc(p.selection)},"tasks":[{",".join(items)}]}}'
        )
    except TypeError:
        return canonical_json(p.body())
    return text.encode("utf-8", "surrogatepass")


def _mapping_for(defs: Definitions, downstream: str, upstream: str) -> PartitionMapping:
    for up in defs.upstreams[downstream]:
        if up.key == upstream and isinstance(up.mapping, PartitionMapping):
            return up.mapping
    return default_mapping(defs[downstream].partitions, defs[upstream].partitions)


def _order(tasks: dict[str, PlannedTask]) -> list[PlannedTask]:
    """Topological order, smallest task id first among the ready ones (Kahn's
    algorithm); the heap holds ranks in sorted-id order, not the ids themselves."""
    ids = sorted(tasks)
    rank = {tid: i for i, tid in enumerate(ids)}
    ordered = [tasks[tid] for tid in ids]
    indeg = [0] * len(ids)
    down: list[list[int]] = [[] for _ in ids]
    for i, t in enumerate(ordered):
        indeg[i] = len(t.deps)
        for d in t.deps:
            down[rank[d]].append(i)
    ready = [i for i, n in enumerate(indeg) if n == 0]  # already a heap: ascending
    out: list[PlannedTask] = []
    pop, push = heapq.heappop, heapq.heappush
    while ready:
        i = pop(ready)
        out.append(ordered[i])
        for nxt in down[i]:
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                push(ready, nxt)
    return out


def rerun_plan(defs: Definitions, items: Sequence[tuple[str, str | None]], selection: str) -> Plan:
    """A plan of exactly ``items`` (asset, partition), e.g. the failed part of a run.

    Dependencies on tasks outside the set are dropped: their outputs already exist
    and are loaded from the store.
    """
    keys = sorted({a for a, _ in items if a in defs.assets})
    parts = sorted({p for _, p in items if p is not None})
    # Every partition of the assets, then only the items: their keys may belong to
    # different schemes (a daily and a static asset), which no one key list fits.
    full = plan(defs, " ".join(keys))
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
    return _with_fingerprint(body)
