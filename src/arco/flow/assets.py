"""The ``@asset`` decorator, asset definitions and the context passed to them."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from arco.core.errors import InvalidArgumentError
from arco.core.scope import validate_dotted, validate_identifier
from arco.flow.partitions import PartitionMapping, PartitionsDefinition

IoKind = Literal["auto", "parquet", "json", "pickle", "none"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before retrying a failed attempt."""

    max_retries: int = 0
    backoff_seconds: float = 1.0
    backoff_factor: float = 2.0
    max_backoff_seconds: float = 300.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (2 = first retry)."""
        raw = self.backoff_seconds * self.backoff_factor ** max(0, attempt - 2)
        return float(min(raw, self.max_backoff_seconds))


@dataclass(frozen=True)
class AssetIn:
    """An explicit upstream for a parameter: key and optional partition mapping."""

    key: str
    mapping: PartitionMapping | None = None


@dataclass(frozen=True)
class AssetDef:
    """One asset: its function, key, upstreams and options."""

    fn: Callable[..., Any]
    name: str
    namespace: str
    description: str | None
    partitions: PartitionsDefinition | None
    code_version: str | None
    retry: RetryPolicy
    timeout: float | None
    tags: tuple[tuple[str, str], ...]
    owners: tuple[str, ...]
    group: str
    io: IoKind
    ins: tuple[tuple[str, AssetIn], ...]
    deps: tuple[str, ...]
    takes_context: bool
    source: str

    @property
    def key(self) -> str:
        """``namespace.name``."""
        return f"{self.namespace}.{self.name}"

    def tag(self, name: str) -> str | None:
        """The value of tag ``name``."""
        return dict(self.tags).get(name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (handy in unit tests)."""
        return self.fn(*args, **kwargs)


def _source(fn: Callable[..., Any]) -> str:
    """``file:line`` of a function's definition (its first decorator's line).

    Read from the code object: ``inspect.getsourcelines`` tokenises the function's
    source and made up half of loading a project of thousands of assets.
    """
    try:
        code = inspect.unwrap(fn).__code__
    except (AttributeError, ValueError):
        return "<unknown>"
    return f"{code.co_filename}:{code.co_firstlineno}"


def _default_namespace(fn: Callable[..., Any]) -> str:
    return _module_namespace(getattr(fn, "__module__", "") or "default")


# A module declares many assets: derive and validate its namespace once, not per asset.
@functools.lru_cache(maxsize=1024)
def _module_namespace(module: str) -> str:
    last = module.rsplit(".", 1)[-1]
    if last in ("__main__", "assets", "definitions", "__init__") and "." in module:
        last = module.rsplit(".", 2)[-2]
    if last == "__main__":
        last = "default"
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in last) or "default"
    return cleaned if not cleaned[0].isdigit() else f"_{cleaned}"


def _valid_namespace(namespace: object) -> str:
    if isinstance(namespace, str):
        return _valid_namespace_str(namespace)
    return validate_dotted("asset namespace", namespace)  # raises: not a string


@functools.lru_cache(maxsize=1024)
def _valid_namespace_str(namespace: str) -> str:
    return validate_dotted("asset namespace", namespace)


@overload
def asset(fn: Callable[..., Any], /) -> AssetDef: ...


@overload
def asset(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    namespace: str | None = None,
    description: str | None = None,
    partitions: PartitionsDefinition | None = None,
    code_version: str | None = None,
    retries: int | RetryPolicy = 0,
    timeout: float | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Sequence[str] = (),
    group: str = "default",
    io: IoKind = "auto",
    ins: Mapping[str, str | AssetIn] | None = None,
    deps: Iterable[str | AssetDef] = (),
) -> Callable[[Callable[..., Any]], AssetDef]: ...


def asset(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    namespace: str | None = None,
    description: str | None = None,
    partitions: PartitionsDefinition | None = None,
    code_version: str | None = None,
    retries: int | RetryPolicy = 0,
    timeout: float | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Sequence[str] = (),
    group: str = "default",
    io: IoKind = "auto",
    ins: Mapping[str, str | AssetIn] | None = None,
    deps: Iterable[str | AssetDef] = (),
) -> AssetDef | Callable[[Callable[..., Any]], AssetDef]:
    """Declare a function as an asset.

    Upstream assets are the function's parameters (matched by name, or mapped
    explicitly with ``ins``); ``deps`` orders without passing values. If the
    first parameter is annotated ``AssetContext`` (or named ``context``) it
    receives the run context.
    """

    def wrap(func: Callable[..., Any]) -> AssetDef:
        if not callable(func):
            raise InvalidArgumentError("@asset decorates a function")
        asset_name = validate_identifier("asset name", name or func.__name__)
        ns = _valid_namespace(namespace or _default_namespace(func))
        policy = retries if isinstance(retries, RetryPolicy) else RetryPolicy(max_retries=retries)
        if policy.max_retries < 0 or policy.max_retries > 100:
            raise InvalidArgumentError("retries must be between 0 and 100")
        if timeout is not None and timeout <= 0:
            raise InvalidArgumentError("timeout must be positive")
        if io not in ("auto", "parquet", "json", "pickle", "none"):
            raise InvalidArgumentError(f"io {io!r} must be auto, parquet, json, pickle or none")
        params = list(inspect.signature(func).parameters.values())
        takes_context = False
        if params:
            first = params[0]
            ann = first.annotation
            ann_name = ann if isinstance(ann, str) else getattr(ann, "__name__", "")
            if first.name == "context" or str(ann_name).endswith("AssetContext"):
                takes_context = True
                params = params[1:]
        mapped: dict[str, AssetIn] = {}
        for pname, spec in (ins or {}).items():
            mapped[pname] = spec if isinstance(spec, AssetIn) else AssetIn(spec)
        arg_ins = []
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise InvalidArgumentError(f"asset {asset_name}: *args/**kwargs are not supported")
            arg_ins.append((p.name, mapped.pop(p.name, AssetIn(p.name))))
        if mapped:
            raise InvalidArgumentError(
                f"asset {asset_name}: ins name unknown parameters {', '.join(sorted(mapped))}"
            )
        dep_keys = tuple(d.key if isinstance(d, AssetDef) else str(d) for d in deps)
        return AssetDef(
            fn=func,
            name=asset_name,
            namespace=ns,
            description=description or inspect.getdoc(func),
            partitions=partitions,
            code_version=code_version,
            retry=policy,
            timeout=timeout,
            tags=tuple(sorted((tags or {}).items())),
            owners=tuple(owners),
            group=group,
            io=io,
            ins=tuple(arg_ins),
            deps=dep_keys,
            takes_context=takes_context,
            source=_source(func),
        )

    if fn is not None:
        return wrap(fn)
    return wrap


@dataclass
class AssetContext:
    """What a running asset can see: ids, partition, logger, metadata, the store."""

    run_id: str
    task_id: str
    asset_key: str
    attempt: int
    partition_key: str | None
    log: logging.Logger
    store_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tenant: str = "default"
    workspace: str = "default"

    def add_metadata(self, **values: Any) -> None:
        """Attach JSON-able metadata to this materialization."""
        self.metadata.update(values)
