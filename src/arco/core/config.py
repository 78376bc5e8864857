"""Project configuration (``arco.toml``) and which store a command uses.

The store is resolved the same way by every command and by the API server, in
this order (the first that applies wins):

1. ``--store URL`` on the command line;
2. the ``ARCO_STORE`` environment variable;
3. ``[store] url`` of the nearest ``arco.toml``, looking in the current folder and
   then each parent folder; a relative ``file://`` path (or bare path) there is
   relative to the folder of that ``arco.toml``, not to the current folder; an
   ``arco.toml`` without ``[store] url`` means ``.arco`` next to it;
4. ``./.arco`` in the current folder.

``file://`` URLs come out absolute, so the same store is used whichever folder a
command runs in and whichever process (a worker, an executor) reopens the URL.
Only the standard library is imported here: the CLI resolves a store before it
loads anything heavy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arco.core.errors import InvalidArgumentError

CONFIG_NAME = "arco.toml"
DEFAULT_STORE_DIR = ".arco"
STORE_ENV = "ARCO_STORE"

#: Where a store URL came from, in resolution order.
ORIGIN_OPTION = "--store"
ORIGIN_ENV = STORE_ENV
ORIGIN_CONFIG = CONFIG_NAME
ORIGIN_DEFAULT = "default"

#: One line for help texts: the resolution order.
STORE_RESOLUTION = (
    "--store URL, else $ARCO_STORE, else [store] url of the nearest arco.toml "
    "(this folder or a parent; relative paths are relative to that file), else ./.arco"
)


@dataclass(frozen=True)
class ProjectConfig:
    """A parsed ``arco.toml``."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The folder holding the ``arco.toml``: the project's root."""
        return self.path.parent

    def section(self, name: str) -> dict[str, Any]:
        """The table ``[name]`` (empty if absent); a non-table value is an error."""
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise InvalidArgumentError(f"{self.path}: [{name}] must be a table")
        return value


def find_config(start: Path | None = None) -> ProjectConfig | None:
    """The nearest ``arco.toml`` in ``start`` (default: the current folder) or above it.

    Raises :class:`InvalidArgumentError` if the nearest one is not valid TOML (a
    broken file is reported, never skipped in favour of one further up).
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        path = folder / CONFIG_NAME
        if path.is_file():
            import tomllib  # only when there is a file to parse: --store needs none

            try:
                data = tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise InvalidArgumentError(f"{path}: invalid TOML: {exc}") from exc
            except OSError as exc:
                raise InvalidArgumentError(f"{path}: cannot read: {exc.strerror}") from exc
            return ProjectConfig(path, data)
    return None


def absolute_store_url(url: str, base: Path) -> str:
    """``url`` with a relative ``file://`` path (or bare path) made absolute against ``base``.

    Other schemes, absolute paths and an empty ``file://`` (an error for the store
    factory to report) are returned unchanged.
    """
    text = url.strip()
    if not text:
        return url
    if "://" not in text:
        return f"file://{os.path.normpath(base / os.path.expanduser(text))}"
    scheme, _, rest = text.partition("://")
    if scheme.lower() != "file" or not rest:
        return text
    path, sep, query = rest.partition("?")
    if not path:
        return text
    absolute = os.path.normpath(base / os.path.expanduser(path))
    return f"file://{absolute}{sep}{query}"


@dataclass(frozen=True)
class StoreChoice:
    """The store a command uses and why."""

    url: str
    origin: str
    #: The ``arco.toml`` that named the store (origin ``arco.toml``), else None.
    config: Path | None = None

    def describe(self) -> str:
        """Where the URL came from, for people: ``arco.toml (/p/arco.toml)``."""
        if self.origin == ORIGIN_CONFIG and self.config is not None:
            return f"{CONFIG_NAME} ({self.config})"
        if self.origin == ORIGIN_DEFAULT:
            return "default (./.arco: no --store, ARCO_STORE or arco.toml)"
        return self.origin


def resolve_store(
    option: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    start: Path | None = None,
) -> StoreChoice:
    """The store URL by ``--store`` > ``ARCO_STORE`` > nearest ``arco.toml`` > ``./.arco``.

    ``start`` is the folder the search for ``arco.toml`` starts in and the base of
    relative paths given by ``--store`` or ``ARCO_STORE`` (default: the current folder).
    """
    cwd = (start or Path.cwd()).resolve()
    environ = os.environ if env is None else env
    if option is not None and option.strip():
        return StoreChoice(absolute_store_url(option, cwd), ORIGIN_OPTION)
    from_env = environ.get(STORE_ENV, "")
    if from_env.strip():
        return StoreChoice(absolute_store_url(from_env, cwd), ORIGIN_ENV)
    config = find_config(cwd)
    if config is not None:
        url = config.section("store").get("url", f"file://./{DEFAULT_STORE_DIR}")
        if not isinstance(url, str) or not url.strip():
            raise InvalidArgumentError(
                f'{config.path}: [store] url must be a URL string, e.g. "file://./.arco"'
            )
        return StoreChoice(absolute_store_url(url, config.root), ORIGIN_CONFIG, config.path)
    return StoreChoice(f"file://{cwd / DEFAULT_STORE_DIR}", ORIGIN_DEFAULT)
