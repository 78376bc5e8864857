"""The rule that maps an OpenLineage dataset (namespace, name) to an Arco qualified name.

Rules are tried in order; the first whose ``namespace`` and ``name`` globs match
decides. A rule may ``ignore`` the dataset (it stays unmapped), ``strip`` leading
name segments and add a dotted ``prefix``. Without any rule, and after the rules'
``strip``/``prefix``, the default is:

1. a dataset in Arco's own namespace (``arco://{tenant}/{workspace}``) is named by
   its qualified name already;
2. otherwise the name is split on ``.`` and ``/`` into segments (empty ones
   dropped), every character outside ``[A-Za-z0-9_-]`` becomes ``_`` and a segment
   that does not start with a letter or ``_`` gets a leading ``_``;
3. at least two segments (namespace + table) and at most 128 characters, or the
   dataset is *unmapped* (listed, never an edge).

So dbt-duckdb's ``shop.main.customers`` becomes ``shop.main.customers`` (namespace
``shop.main``, table ``customers``), and with ``strip = 1`` ``main.customers``.
Every result is validated as a dotted name before it is used anywhere.

Configured in the ``[openlineage]`` section of ``arco.toml`` (or the file named by
``ARCO_OPENLINEAGE_CONFIG``)::

    [[openlineage.mapping]]
    namespace = "duckdb://*"    # glob on the dataset namespace (default "*")
    name = "*"                  # glob on the dataset name (default "*")
    strip = 1                   # drop the first name segment (the database)
    prefix = "dbt"              # then prepend "dbt."
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arco.core.errors import InvalidArgumentError, InvalidNameError
from arco.core.scope import Scope, validate_dotted

_SPLIT = re.compile(r"[./]+")
_BAD = re.compile(r"[^A-Za-z0-9_-]")
MAX_RULES = 256
_MISSING = object()


def arco_namespace(scope: Scope) -> str:
    """The OpenLineage dataset and job namespace of Arco's own scope."""
    return f"arco://{scope.tenant}/{scope.workspace}"


@dataclass(frozen=True)
class MappingRule:
    """One mapping rule (see the module docstring)."""

    namespace: str = "*"
    name: str = "*"
    strip: int = 0
    prefix: str = ""
    ignore: bool = False

    def matches(self, namespace: str, name: str) -> bool:
        """True when both globs match."""
        return fnmatch.fnmatchcase(namespace, self.namespace) and fnmatch.fnmatchcase(
            name, self.name
        )


def _segment(part: str) -> str:
    clean = _BAD.sub("_", part)
    return clean if clean[:1].isalpha() or clean[:1] == "_" else f"_{clean}"


@dataclass(frozen=True)
class DatasetMapper:
    """Maps datasets of OpenLineage events to Arco qualified names."""

    rules: tuple[MappingRule, ...] = ()
    own_namespaces: frozenset[str] = field(default_factory=frozenset)
    #: Results by (namespace, name): events name the same datasets over and over.
    _cache: dict[tuple[str, str], str | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def map(self, namespace: str, name: str) -> str | None:
        """The qualified name of a dataset, or None when it stays unmapped."""
        key = (namespace, name)
        found = self._cache.get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        result = self._map(namespace, name)
        if len(self._cache) >= 65_536:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _map(self, namespace: str, name: str) -> str | None:
        if namespace in self.own_namespaces:
            try:
                return validate_dotted("qualified name", name)
            except InvalidNameError:
                return None
        rule = next((r for r in self.rules if r.matches(namespace, name)), MappingRule())
        if rule.ignore:
            return None
        parts = [_segment(p) for p in _SPLIT.split(name) if p]
        parts = parts[rule.strip :]
        if rule.prefix:
            parts = [*rule.prefix.split("."), *parts]
        if len(parts) < 2:
            return None
        try:
            return validate_dotted("qualified name", ".".join(parts))
        except InvalidNameError:
            return None


def rules_from(raw: Any) -> tuple[MappingRule, ...]:
    """Rules from a parsed ``[[openlineage.mapping]]`` list; typed errors for bad ones."""
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise InvalidArgumentError("openlineage.mapping must be a list of tables")
    if len(raw) > MAX_RULES:
        raise InvalidArgumentError(f"openlineage.mapping holds at most {MAX_RULES} rules")
    rules = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidArgumentError(f"openlineage.mapping[{i}] must be a table")
        unknown = set(item) - {"namespace", "name", "strip", "prefix", "ignore"}
        if unknown:
            raise InvalidArgumentError(
                f"openlineage.mapping[{i}]: unknown keys {', '.join(sorted(unknown))}"
            )
        strip = item.get("strip", 0)
        if not isinstance(strip, int) or isinstance(strip, bool) or not 0 <= strip <= 16:
            raise InvalidArgumentError(f"openlineage.mapping[{i}].strip must be 0 to 16")
        prefix = item.get("prefix", "")
        if not isinstance(prefix, str):
            raise InvalidArgumentError(f"openlineage.mapping[{i}].prefix must be a string")
        if prefix:
            try:
                validate_dotted("prefix", prefix)
            except InvalidNameError as exc:
                raise InvalidArgumentError(f"openlineage.mapping[{i}].{exc}") from exc
        for glob in ("namespace", "name"):
            if not isinstance(item.get(glob, "*"), str):
                raise InvalidArgumentError(f"openlineage.mapping[{i}].{glob} must be a string")
        rules.append(
            MappingRule(
                namespace=item.get("namespace", "*"),
                name=item.get("name", "*"),
                strip=strip,
                prefix=prefix,
                ignore=bool(item.get("ignore", False)),
            )
        )
    return tuple(rules)


@dataclass(frozen=True)
class OpenLineageConfig:
    """The ``[openlineage]`` section: mapping rules, auto-registration, emitting."""

    rules: tuple[MappingRule, ...] = ()
    auto_register: bool = False
    url: str | None = None
    api_key: str | None = None
    endpoint: str = "api/v1/lineage"
    buffer: int = 10_000
    timeout: float = 5.0

    @classmethod
    def from_section(cls, section: Any) -> OpenLineageConfig:
        """Parse an ``[openlineage]`` table."""
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise InvalidArgumentError("[openlineage] must be a table")
        unknown = set(section) - {
            "mapping",
            "auto_register",
            "url",
            "api_key",
            "endpoint",
            "buffer",
            "timeout",
        }
        if unknown:
            raise InvalidArgumentError(f"[openlineage]: unknown keys {', '.join(sorted(unknown))}")
        buffer = section.get("buffer", 10_000)
        if not isinstance(buffer, int) or not 1 <= buffer <= 1_000_000:
            raise InvalidArgumentError("[openlineage] buffer must be 1 to 1,000,000")
        return cls(
            rules=rules_from(section.get("mapping")),
            auto_register=bool(section.get("auto_register", False)),
            url=section.get("url") or None,
            api_key=section.get("api_key") or None,
            endpoint=str(section.get("endpoint", "api/v1/lineage")),
            buffer=buffer,
            timeout=float(section.get("timeout", 5.0)),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> OpenLineageConfig:
        """The ``[openlineage]`` section of a TOML file (``arco.toml``)."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgumentError(f"cannot read OpenLineage config {path}: {exc}") from exc
        return cls.from_section(data.get("openlineage"))

    def mapper(self, scope: Scope) -> DatasetMapper:
        """The dataset mapper for ``scope``."""
        return DatasetMapper(self.rules, frozenset({arco_namespace(scope)}))
