"""A validated set of assets, discovered from a module or package."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from arco.core.errors import ArcoError
from arco.flow.assets import AssetDef
from arco.flow.automation.checks import AssetCheckDef
from arco.flow.automation.freshness import FreshnessPolicy
from arco.flow.automation.schedules import ScheduleDef
from arco.flow.automation.sensors import SensorDef

#: What a definitions module may declare besides assets.
Declared = AssetDef | AssetCheckDef | ScheduleDef | SensorDef | FreshnessPolicy


class DefinitionError(ArcoError):
    """Definitions are inconsistent: cycle, unknown dependency, duplicate key..."""

    code = "definition-error"


@dataclass(frozen=True)
class Upstream:
    """One resolved upstream of an asset."""

    key: str
    param: str | None  # None for ordering-only deps
    mapping: object | None


class Definitions:
    """Assets by key, with resolved upstreams, and the schedules, sensors and asset
    checks declared next to them; raises :class:`DefinitionError` early."""

    def __init__(self, assets: Iterable[Declared]) -> None:
        self.assets: dict[str, AssetDef] = {}
        self.schedules: dict[str, ScheduleDef] = {}
        self.sensors: dict[str, SensorDef] = {}
        #: Checks by asset key, in declaration order.
        self.checks: dict[str, list[AssetCheckDef]] = {}
        self.freshness: dict[str, FreshnessPolicy] = {}
        items = list(assets)
        for item in items:
            self._add_automation(item)
        for a in items:
            if not isinstance(a, AssetDef):
                continue
            if a.key in self.assets:
                other = self.assets[a.key]
                raise DefinitionError(
                    f"duplicate asset key {a.key} at {a.source} (first defined at {other.source})"
                )
            self.assets[a.key] = a
        by_name: dict[str, list[str]] = {}
        for key, a in self.assets.items():
            by_name.setdefault(a.name, []).append(key)
        self.upstreams: dict[str, tuple[Upstream, ...]] = {}
        for key, a in sorted(self.assets.items()):
            ups: list[Upstream] = []
            for param, spec in a.ins:
                ups.append(Upstream(self._resolve(a, spec.key, by_name), param, spec.mapping))
            for dep in a.deps:
                ups.append(Upstream(self._resolve(a, dep, by_name), None, None))
            self.upstreams[key] = tuple(ups)
        self.downstreams: dict[str, tuple[str, ...]] = {k: () for k in self.assets}
        down: dict[str, set[str]] = {k: set() for k in self.assets}
        for key, resolved in self.upstreams.items():
            for up in resolved:
                down[up.key].add(key)
        self.downstreams = {k: tuple(sorted(v)) for k, v in down.items()}
        self.order = self._toposort()
        for key, found in self.checks.items():
            if key not in self.assets:
                raise DefinitionError(f"check {found[0].name} is on unknown asset {key!r}")
        for key in self.freshness:
            if key not in self.assets:
                raise DefinitionError(f"freshness policy of unknown asset {key!r}")

    def _add_automation(self, item: object) -> None:
        if isinstance(item, ScheduleDef):
            if item.name in self.schedules:
                raise DefinitionError(f"duplicate schedule name {item.name!r}")
            self.schedules[item.name] = item
        elif isinstance(item, SensorDef):
            if item.name in self.sensors:
                raise DefinitionError(f"duplicate sensor name {item.name!r}")
            self.sensors[item.name] = item
        elif isinstance(item, AssetCheckDef):
            same = self.checks.setdefault(item.asset, [])
            if any(c.name == item.name for c in same):
                raise DefinitionError(f"duplicate check {item.name!r} on asset {item.asset}")
            same.append(item)
        elif isinstance(item, FreshnessPolicy):
            if item.asset in self.freshness:
                raise DefinitionError(f"two freshness policies for asset {item.asset}")
            self.freshness[item.asset] = item
        elif not isinstance(item, AssetDef):
            raise DefinitionError(f"not an asset, schedule, sensor or check: {item!r}")

    def _resolve(self, asset: AssetDef, ref: str, by_name: dict[str, list[str]]) -> str:
        if ref in self.assets:
            return ref
        local = f"{asset.namespace}.{ref}"
        if local in self.assets:
            return local
        matches = by_name.get(ref, [])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise DefinitionError(
                f"asset {asset.key} ({asset.source}): upstream {ref!r} is ambiguous: "
                f"{', '.join(sorted(matches))}; use ins={{...: 'namespace.name'}}"
            )
        raise DefinitionError(f"asset {asset.key} ({asset.source}): unknown upstream asset {ref!r}")

    def _toposort(self) -> list[str]:
        indeg = {k: len({u.key for u in ups}) for k, ups in self.upstreams.items()}
        ready = sorted(k for k, d in indeg.items() if d == 0)
        out: list[str] = []
        import heapq

        heapq.heapify(ready)
        while ready:
            key = heapq.heappop(ready)
            out.append(key)
            for d in self.downstreams[key]:
                indeg[d] -= 1
                if indeg[d] == 0:
                    heapq.heappush(ready, d)
        if len(out) != len(self.assets):
            cycle = self._find_cycle({k for k in self.assets if k not in set(out)})
            where = ", ".join(f"{k} ({self.assets[k].source})" for k in cycle)
            raise DefinitionError(
                f"dependency cycle: {' -> '.join(cycle)} -> {cycle[0]}; at {where}"
            )
        return out

    def _find_cycle(self, remaining: set[str]) -> list[str]:
        start = sorted(remaining)[0]
        path: list[str] = []
        seen: dict[str, int] = {}
        node = start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = sorted(u.key for u in self.upstreams[node] if u.key in remaining)[0]
        return list(reversed(path[seen[node] :]))

    def __len__(self) -> int:
        return len(self.assets)

    def __getitem__(self, key: str) -> AssetDef:
        return self.assets[key]


def _collect(module: ModuleType) -> list[Declared]:
    kinds = (AssetDef, AssetCheckDef, ScheduleDef, SensorDef, FreshnessPolicy)
    return [v for v in vars(module).values() if isinstance(v, kinds)]


def load_definitions(module_name: str, *, path: str | Path | None = None) -> Definitions:
    """Import ``module_name`` (and, for a package, its submodules) and collect assets."""
    if path is not None and str(path) not in sys.path:
        sys.path.insert(0, str(path))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DefinitionError(f"cannot import definitions module {module_name!r}: {exc}") from exc
    found: dict[int, Declared] = {id(a): a for a in _collect(module)}
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, prefix=module_name + "."):
            sub = importlib.import_module(info.name)
            found.update({id(a): a for a in _collect(sub)})
    return Definitions(found.values())
