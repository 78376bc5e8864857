"""Catalog reads: the read-only :class:`CatalogView` of one state, and the read paths
of :class:`~arco.catalog.catalog.Catalog` (folded state or cold point reads).
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from arco.catalog.models import Namespace, Page, Table
from arco.catalog.pointread import Key, StateReader, namespace_from_row, table_from_row
from arco.catalog.state import NAMESPACES, TABLES, CatalogState
from arco.catalog.tablejson import table_json_texts
from arco.core.errors import InvalidArgumentError, NotFoundError
from arco.core.scope import validate_dotted, validate_identifier
from arco.domain import tableset
from arco.domain.manifest import Manifest
from arco.domain.store import DomainStore, Snapshot


class CatalogView:
    """Read-only queries over one immutable catalog state."""

    def __init__(self, state: CatalogState, version: int) -> None:
        self.state = state
        self.version = version

    def get_namespace(self, name: str) -> Namespace:
        """The namespace called ``name``."""
        validate_dotted("namespace", name)
        ns = self.state.namespace(name)
        if ns is None:
            raise NotFoundError(f"namespace {name!r} does not exist")
        return ns

    def get_table(self, namespace: str, name: str) -> Table:
        """The table ``namespace.name``."""
        table = self.state.table(namespace, name)
        if table is None:
            validate_dotted("namespace", namespace)
            validate_identifier("table name", name)
            if self.state.namespace(namespace) is None:
                raise NotFoundError(f"namespace {namespace!r} does not exist")
            raise NotFoundError(f"table {namespace}.{name} does not exist")
        return table

    def list_namespaces(
        self,
        prefix: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Namespace]:
        """Namespaces sorted by name."""
        names = sorted(n for n in self.state.namespaces if not prefix or n.startswith(prefix))
        after = _decode_token(page_token)
        if after is not None:
            names = [n for n in names if n > after[0]]
        size = _page_size(page_size)
        chunk = names[:size]
        items = [self.state.namespace(n) for n in chunk]
        token = _encode_token([chunk[-1]]) if len(names) > size and chunk else None
        return Page([i for i in items if i is not None], token)

    def list_tables(
        self,
        namespace: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Table]:
        """Tables sorted by (namespace, name)."""
        if namespace is not None:
            self.get_namespace(namespace)
            keys = [k for k in self.state.by_name if k[0] == namespace]
        else:
            keys = list(self.state.by_name)
        if prefix:
            keys = [k for k in keys if k[1].startswith(prefix)]
        keys.sort()
        after = _decode_token(page_token)
        if after is not None:
            if len(after) != 2:
                raise InvalidArgumentError("page token is not valid for this listing")
            marker = (after[0], after[1])
            keys = [k for k in keys if k > marker]
        size = _page_size(page_size)
        chunk = keys[:size]
        items = [self.state.table(ns, n) for ns, n in chunk]
        token = _encode_token(list(chunk[-1])) if len(keys) > size and chunk else None
        return Page([i for i in items if i is not None], token)

    def list_tables_json(
        self,
        namespace: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[str]:
        """:meth:`list_tables` with each table as the compact JSON text of its ``to_dict()``."""
        page = self.list_tables(
            namespace, prefix=prefix, page_size=page_size, page_token=page_token
        )
        return _json_page(page)


class CatalogReader:
    """The catalog at one manifest, answered by point reads instead of a full fold."""

    #: Resolved tables (and namespace rows) kept per reader, so repeated reads stay in memory.
    TABLE_CACHE_SIZE = 4096

    def __init__(self, domain: DomainStore[Any], manifest: Manifest) -> None:
        self.version = manifest.version
        self.namespaces = StateReader(domain, manifest, NAMESPACES)
        self.tables = StateReader(domain, manifest, TABLES)
        self.indexed = self.namespaces.indexed and self.tables.indexed
        # Tables by (namespace, name), namespace rows by (name,).
        self._hot: OrderedDict[Key, Any] = OrderedDict()
        self._hot_lock = threading.Lock()

    def namespace_row(self, name: str) -> dict[str, Any] | None:
        """The row of namespace ``name`` (kept: every listing and table read checks it)."""
        row: dict[str, Any] | None = self._kept((name,))
        if row is None:
            row = self.namespaces.get((name,))
            self._keep((name,), row)
        return row

    def table(self, namespace: str, name: str) -> Table | None:
        """The :class:`~arco.catalog.models.Table` ``namespace.name``, or None."""
        table: Table | None = self._kept((namespace, name))
        if table is None:
            row = self.tables.get((namespace, name))
            table = None if row is None else table_from_row(row)
            self._keep((namespace, name), table)
        return table

    def _kept(self, key: Key) -> Any:
        with self._hot_lock:
            return self._hot.get(key)

    def _keep(self, key: Key, value: object) -> None:
        if value is not None:
            with self._hot_lock:
                self._hot[key] = value
                while len(self._hot) > self.TABLE_CACHE_SIZE:
                    self._hot.popitem(last=False)


class CatalogReads:
    """The read side of :class:`~arco.catalog.catalog.Catalog`.

    Answers from the folded state when this process holds one, else reads only
    what each question needs through a point reader (ADR 015).
    """

    def __init__(self, domain: DomainStore[CatalogState]) -> None:
        self.domain = domain
        self._point: tuple[str, CatalogReader] | None = None

    def snapshot(self, max_staleness: float | None = None) -> Snapshot[CatalogState]:
        """The latest snapshot (see :meth:`DomainStore.read`)."""
        return self.domain.read(max_staleness)

    @property
    def version(self) -> int:
        """The latest committed version (0 before the first commit)."""
        return self.domain.read_head(0).version

    def _reader(self) -> CatalogReader | None:
        """A point reader of the latest version, or None when the folded state answers.

        A catalog that has folded its state (it committed, or someone asked for
        :meth:`view`) keeps answering from memory; a cold one reads only what each
        question needs (ADR 015). Catalogs written before sorted bases existed have
        no index to read by, and are folded until their next commit rewrites the base.
        """
        if self.domain.folded:
            return None
        head = self.domain.read_head()
        if head.manifest is None or head.manifest_key is None:
            return None
        point = self._point
        if point is None or point[0] != head.manifest_key:
            point = (head.manifest_key, CatalogReader(self.domain, head.manifest))
            self._point = point
        return point[1] if point[1].indexed else None

    def at_version(self, version: int) -> CatalogView:
        """A read-only view of the catalog as of ``version``."""
        return CatalogView(self.domain.read_version(version).state, version)

    def view(self) -> CatalogView:
        """A read-only view of the latest snapshot (consistent across calls on it)."""
        snap = self.snapshot()
        return CatalogView(snap.state, snap.version)

    def get_namespace(self, name: str) -> Namespace:
        """The namespace called ``name``."""
        reader = self._reader()
        if reader is None:
            return self.view().get_namespace(name)
        validate_dotted("namespace", name)
        row = reader.namespace_row(name)
        if row is None:
            raise NotFoundError(f"namespace {name!r} does not exist")
        return namespace_from_row(row)

    def list_namespaces(
        self,
        prefix: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Namespace]:
        """Namespaces sorted by name, optionally only those starting with ``prefix``."""
        reader = self._reader()
        if reader is None:
            return self.view().list_namespaces(prefix, page_size=page_size, page_token=page_token)
        after = _decode_token(page_token)
        marker = (after[0],) if after else None
        rows = _first(reader.namespaces.scan(after=marker), _page_size(page_size) + 1, prefix)
        items = [namespace_from_row(r) for r in rows]
        return _page(items, _page_size(page_size), lambda n: [n.name])

    def get_table(self, namespace: str, name: str) -> Table:
        """The table ``namespace.name``."""
        reader = self._reader()
        if reader is None:
            return self.view().get_table(namespace, name)
        table: Table | None = reader.table(namespace, name)
        if table is not None:
            return table
        validate_dotted("namespace", namespace)
        validate_identifier("table name", name)
        if reader.namespace_row(namespace) is None:
            raise NotFoundError(f"namespace {namespace!r} does not exist")
        raise NotFoundError(f"table {namespace}.{name} does not exist")

    def list_tables(
        self,
        namespace: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[Table]:
        """Tables sorted by (namespace, name), optionally in one namespace / by name prefix."""
        reader = self._reader()
        if reader is None:
            return self.view().list_tables(
                namespace, prefix=prefix, page_size=page_size, page_token=page_token
            )
        size = _page_size(page_size)
        after = _decode_token(page_token)
        page = self._table_page(reader, namespace, after, prefix, size)
        items = [table_from_row(r) for r in tableset.to_rows(page)]
        return _page(items, size, lambda t: [t.namespace, t.name])

    def list_tables_json(
        self,
        namespace: str | None = None,
        *,
        prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[str]:
        """:meth:`list_tables` with each table as the compact JSON text of its ``to_dict()``.

        The same page, token and errors, for a caller that writes JSON (the API):
        a point reader renders the page's Arrow rows column by column
        (:mod:`arco.catalog.tablejson`) without a ``Table`` or a dict per table.
        """
        reader = self._reader()
        if reader is None:
            return _json_page(
                self.view().list_tables(
                    namespace, prefix=prefix, page_size=page_size, page_token=page_token
                )
            )
        size = _page_size(page_size)
        page = self._table_page(reader, namespace, _decode_token(page_token), prefix, size)
        texts = table_json_texts(page.slice(0, size), compact=True)
        token = None
        if page.num_rows > size:
            last = page.slice(size - 1, 1)
            token = _encode_token(
                [last.column("namespace")[0].as_py(), last.column("name")[0].as_py()]
            )
        return Page(texts, token)

    def iter_tables(self, namespace: str | None = None) -> Iterator[list[Table]]:
        """Every table sorted by (namespace, name), in batches, read as they are yielded.

        One version throughout; the first batch comes before the last is read, so a
        caller can print rows while the rest are fetched (``arco table list``).
        """
        reader = self._reader()
        if reader is None:
            yield self.view().list_tables(namespace).items
            return
        for batch in self._scan_tables(reader, namespace, None, None):
            yield [table_from_row(r) for r in batch]

    def iter_table_batches(self, namespace: str | None = None) -> Iterator[pa.Table]:
        """Every table sorted by (namespace, name), as Arrow tables of ``tables`` rows.

        The rows of the ``tables`` state table (schema ``state.TABLES``), a batch
        per row group of the base, read as they are yielded: for renderers that
        work column by column (``arco table list``), with no Python object per row.
        """
        reader = self._reader()
        if reader is None:
            view = self.view()
            if namespace is not None:
                view.get_namespace(namespace)
            rows = sorted(
                (r for r in view.state.tables.values() if namespace in (None, r["namespace"])),
                key=lambda r: (r["namespace"], r["name"]),
            )
            for start in range(0, len(rows), tableset.GROUP_ROWS):
                chunk = rows[start : start + tableset.GROUP_ROWS]
                yield pa.Table.from_pylist(
                    [{**r, "properties": list(r["properties"].items())} for r in chunk],
                    schema=TABLES.schema,
                )
            return
        _check_namespace(reader, namespace)
        yield from reader.tables.scan_arrow((namespace,) if namespace is not None else ())

    @staticmethod
    def _scan_tables(
        reader: CatalogReader,
        namespace: str | None,
        after: tuple[str, ...] | None,
        prefix: str | None,
    ) -> Iterator[list[dict[str, Any]]]:
        _check_namespace(reader, namespace)
        key = (namespace,) if namespace is not None else ()
        return reader.tables.scan(key, after=after, name_prefix=prefix)

    @staticmethod
    def _table_page(
        reader: CatalogReader,
        namespace: str | None,
        after: list[str] | None,
        prefix: str | None,
        size: int,
    ) -> pa.Table:
        """Up to ``size + 1`` rows of a page of tables (one more: is there a next page)."""
        if after is not None and len(after) != 2:
            raise InvalidArgumentError("page token is not valid for this listing")
        _check_namespace(reader, namespace)
        key = (namespace,) if namespace is not None else ()
        marker = tuple(after) if after else None
        return reader.tables.scan_page(key, after=marker, name_prefix=prefix, limit=size + 1)


def _check_namespace(reader: CatalogReader, namespace: str | None) -> None:
    """Raise unless ``namespace`` is None or an existing namespace."""
    if namespace is not None:
        validate_dotted("namespace", namespace)
        if reader.namespace_row(namespace) is None:
            raise NotFoundError(f"namespace {namespace!r} does not exist")


def _first(
    batches: Iterator[list[dict[str, Any]]], n: int, prefix: str | None = None
) -> list[dict[str, Any]]:
    """The first ``n`` rows of ``batches`` (whose name starts with ``prefix``)."""
    out: list[dict[str, Any]] = []
    for batch in batches:
        for row in batch:
            if prefix and not row["name"].startswith(prefix):
                continue
            out.append(row)
            if len(out) >= n:
                return out
    return out


def _json_page(page: Page[Table]) -> Page[str]:
    """``page`` with each table as the compact JSON text of its ``to_dict()``."""
    dump = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return Page([dump(t.to_dict()) for t in page.items], page.next_page_token)


def _page(items: list[Any], size: int, marker: Callable[[Any], list[str]]) -> Page[Any]:
    """A page of at most ``size`` items, with a token when ``items`` has more."""
    if len(items) > size:
        return Page(items[:size], _encode_token(marker(items[size - 1])))
    return Page(items, None)


def _page_size(page_size: int | None) -> int:
    if page_size is None:
        return 1_000_000
    if not isinstance(page_size, int) or not 1 <= page_size <= 10_000:
        raise InvalidArgumentError("page_size must be between 1 and 10000")
    return page_size


def _encode_token(parts: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode_token(token: str | None) -> list[str] | None:
    if token is None or token == "":
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
            raise ValueError
        return parts
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError("page token is malformed") from exc
