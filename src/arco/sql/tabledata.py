"""The data files behind a catalog table, for SQL over table data (issue #13).

:func:`resolve_table` turns one registered table into the list of data files
Arco itself reads for a query (the engine never opens a path: the SQL worker
gets the bytes, see :mod:`arco.sql.pool`). What is readable:

``parquet``
    ``location`` names one ``.parquet`` file or a folder; every ``.parquet``
    object below the folder is a file of the table (names starting with ``_``
    or ``.`` are skipped, as Spark and Hive write them).
asset tables (``parquet`` with the property ``arco.asset``)
    the newest materialization of each partition, from the compacted
    ``executions`` domain, not everything ever written under the asset folder.
``iceberg``
    the data files of the current snapshot (or of an earlier one, by id or
    time) named by the table's ``metadata_location``: the manifest list and
    manifests are read with pyiceberg's own readers through a FileIO that
    reads only this scope's keys.

Every key -- the location, each listed file, an Iceberg manifest or data file
-- must be a store key inside the caller's scope and outside Arco's own
metadata areas (:func:`data_key`), else :class:`TableLocationError`; nothing
outside is ever read.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from arco.core.errors import ArcoError, InvalidNameError, NotFoundError, ObjectNotFoundError
from arco.core.keys import Keys, is_external
from arco.core.storage import ObjectStore

#: Areas of a scope that hold Arco's own metadata: never table data.
INTERNAL_AREAS = ("manifests/", "snapshots/", "ledger/", "locks/", "control/", "quarantine/")
#: The formats SQL can read.
READABLE_FORMATS = ("parquet", "iceberg")
ASSET_PROPERTY = "arco.asset"


class TableDataError(ArcoError):
    """A table's data cannot be read: its format, its files or its metadata (HTTP 422)."""

    code = "table-data-unreadable"


class TableLocationError(TableDataError):
    """A table's location (or a file it names) is outside the caller's own store area."""

    code = "table-location-forbidden"


class TableFileMissingError(NotFoundError):
    """A data file a table names (or any file at all under its location) does not exist."""

    code = "table-file-missing"


@dataclass(frozen=True)
class DataFile:
    """One data file of a table: a key of the store, its size and version."""

    key: str
    size: int
    version: str = ""


@dataclass(frozen=True)
class TableData:
    """What the SQL worker needs to build one table: its files and, if known, its schema."""

    #: The name shown to the user: ``ns.table`` or ``ns.table@<snapshot id>``.
    name: str
    files: tuple[DataFile, ...]
    #: The table's schema when the format says it (Iceberg): files are projected onto it.
    schema: pa.Schema | None = None

    @property
    def size(self) -> int:
        """Bytes of all files together."""
        return sum(f.size for f in self.files)

    @property
    def fingerprint(self) -> str:
        """Changes whenever the files or the schema do (the worker keeps tables by it)."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f"{f.key}\0{f.size}\0{f.version}\n".encode())
        if self.schema is not None:
            digest.update(self.schema.to_string().encode())
        return digest.hexdigest()


def data_key(store: ObjectStore, keys: Keys, location: object, *, what: str) -> str:
    """The store key of ``location`` when it is table data of ``keys``' scope, else raise.

    ``location`` is a URL under the store's own URL (``file:///…/tenant=…``,
    ``s3://bucket/tenant=…``) or a store key (``tenant=…/workspace=…/…``).
    An absolute path, another store, another tenant's or workspace's prefix, a
    traversal, or one of Arco's metadata areas raise :class:`TableLocationError`.
    """
    if not isinstance(location, str) or not location:
        raise TableDataError(f"{what} has no location; register one (arco table update --location)")
    shown = location[:300]
    key = location
    if is_external(location) or location.startswith("file:"):
        base = (store.url or "").rstrip("/")
        candidate = location
        if base.startswith("file:///") and candidate.startswith("file:/"):
            candidate = "file:///" + candidate[len("file:/") :].lstrip("/")
        if not base or not candidate.startswith(base + "/"):
            raise TableLocationError(
                f"{what} is stored at {shown!r}, outside this workspace's store; Arco reads "
                f"table data only inside its store, under {keys.root}"
            )
        key = candidate[len(base) + 1 :]
    elif location.startswith("/"):
        raise TableLocationError(
            f"{what} has the absolute path {shown!r} as its location; Arco reads table data "
            f"only inside its store, under {keys.root}"
        )
    try:
        keys.require_within(key.rstrip("/") if key.endswith("/") else key, "location")
    except InvalidNameError as exc:
        raise TableLocationError(
            f"{what} is stored at {shown!r}, outside this workspace's part of the store "
            f"({keys.root}): {exc}"
        ) from exc
    rest = key[len(keys.root) :]
    if rest == "" or any(rest.startswith(area) for area in INTERNAL_AREAS):
        raise TableLocationError(
            f"{what} is stored at {shown!r}, in Arco's own metadata ({rest.split('/')[0] or '/'}); "
            "table data lives elsewhere in the workspace (e.g. warehouse/ or assets/)"
        )
    return key


# ------------------------------------------------------------------- parquet
def _skipped(name: str) -> bool:
    return any(part.startswith(("_", ".")) for part in name.split("/"))


def _parquet_files(store: ObjectStore, keys: Keys, what: str, location: object) -> list[DataFile]:
    key = data_key(store, keys, location, what=what)
    if key.endswith(".parquet"):
        try:
            meta = store.head(key)
        except ObjectNotFoundError:
            raise TableFileMissingError(
                f"{what}: its data file {location!r} does not exist"
            ) from None
        return [DataFile(meta.key, meta.size, meta.version)]
    prefix = key.rstrip("/") + "/"
    files = [
        DataFile(meta.key, meta.size, meta.version)
        for meta in store.list(prefix)
        if meta.key.endswith(".parquet")
        and not _skipped(meta.key[len(prefix) :])
        and keys.is_within(meta.key)
    ]
    if not files:
        raise TableFileMissingError(f"{what}: no Parquet files under its location {location!r}")
    return sorted(files, key=lambda f: f.key)


def _asset_files(
    store: ObjectStore,
    keys: Keys,
    what: str,
    row: Mapping[str, Any],
    materializations: Callable[[], pa.Table],
) -> list[DataFile]:
    asset = row["properties"][ASSET_PROPERTY]
    folder = data_key(store, keys, row.get("location") or keys.asset_prefix(asset), what=what)
    folder = folder.rstrip("/") + "/"
    table = materializations()
    newest: dict[str | None, tuple[str, str]] = {}
    for mat in (
        table.filter(pa.compute.equal(table["asset"], asset))
        .select(["materialization_id", "partition", "location"])
        .to_pylist()
    ):
        location = mat["location"]
        if not isinstance(location, str) or not location.endswith(".parquet"):
            continue
        best = newest.get(mat["partition"])
        if best is None or mat["materialization_id"] > best[0]:
            newest[mat["partition"]] = (mat["materialization_id"], location)
    if not newest:
        raise TableFileMissingError(
            f"{what}: asset {asset} has no materialized table yet (run it first)"
        )
    files = []
    for _mid, location in sorted(newest.values()):
        key = data_key(store, keys, location, what=what)
        if not key.startswith(folder):
            raise TableLocationError(
                f"{what}: a materialization names {location!r}, outside the table's folder"
            )
        try:
            meta = store.head(key)
        except ObjectNotFoundError:
            raise TableFileMissingError(
                f"{what}: the materialized file {location!r} no longer exists"
            ) from None
        files.append(DataFile(meta.key, meta.size, meta.version))
    return files


# ------------------------------------------------------------------- iceberg
def _iceberg_io(store: ObjectStore, keys: Keys, what: str) -> Any:
    """A pyiceberg FileIO that reads only this scope's table data, through ``store``."""
    from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile

    class _Input(InputFile):
        def __init__(self, location: str) -> None:
            super().__init__(location)
            self._key = data_key(store, keys, location, what=what)

        def __len__(self) -> int:
            return store.head(self._key).size

        def exists(self) -> bool:
            return store.exists(self._key)

        def open(self, seekable: bool = True) -> InputStream:
            try:
                data, _ = store.get(self._key)
            except ObjectNotFoundError:
                raise TableFileMissingError(
                    f"{what}: the Iceberg file {self.location!r} does not exist"
                ) from None
            return io.BytesIO(data)

    class _StoreIO(FileIO):
        def new_input(self, location: str) -> InputFile:
            return _Input(location)

        def new_output(self, location: str) -> OutputFile:
            raise TableDataError("reading table data never writes")

        def delete(self, location: str | InputFile | OutputFile) -> None:
            raise TableDataError("reading table data never deletes")

    return _StoreIO()


def _iceberg(
    store: ObjectStore,
    keys: Keys,
    what: str,
    row: Mapping[str, Any],
    snapshot_id: int | None,
    as_of: datetime | None,
) -> tuple[list[DataFile], pa.Schema, int | None]:
    from pyiceberg.io.pyarrow import schema_to_pyarrow
    from pyiceberg.manifest import DataFileContent, FileFormat, ManifestContent
    from pyiceberg.table.metadata import TableMetadataUtil

    metadata_location = row.get("metadata_location")
    if not metadata_location:
        raise TableDataError(f"{what} is an Iceberg table without metadata (nothing committed)")
    key = data_key(store, keys, metadata_location, what=what)
    try:
        raw, _ = store.get(key)
    except ObjectNotFoundError:
        raise TableFileMissingError(
            f"{what}: its Iceberg metadata file {metadata_location!r} does not exist"
        ) from None
    try:
        metadata = TableMetadataUtil.parse_raw(raw.decode())
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise TableDataError(f"{what}: its Iceberg metadata is not valid: {exc}") from exc
    if snapshot_id is not None:
        snapshot = metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            known = ", ".join(str(s.snapshot_id) for s in metadata.snapshots) or "none"
            raise NotFoundError(f"{what} has no snapshot {snapshot_id} (snapshots: {known})")
    elif as_of is not None:
        ms = int(as_of.timestamp() * 1000)
        older = [s for s in metadata.snapshots if s.timestamp_ms <= ms]
        if not older:
            raise NotFoundError(f"{what} has no snapshot as old as {as_of.isoformat()}")
        snapshot = max(older, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    else:
        snapshot = metadata.current_snapshot()
    schema = metadata.schema()
    if snapshot is not None and snapshot.schema_id is not None:
        schema = next((s for s in metadata.schemas if s.schema_id == snapshot.schema_id), schema)
    arrow_schema = schema_to_pyarrow(schema, include_field_ids=False)
    if snapshot is None:
        return [], arrow_schema, None
    fileio = _iceberg_io(store, keys, what)
    files: list[DataFile] = []
    for manifest in snapshot.manifests(fileio):
        if manifest.content != ManifestContent.DATA:
            raise TableDataError(
                f"{what}: snapshot {snapshot.snapshot_id} has row-level deletes, which "
                "Arco's SQL does not apply yet; compact the table with your Iceberg client"
            )
        for entry in manifest.fetch_manifest_entry(fileio, discard_deleted=True):
            data_file = entry.data_file
            if data_file.content != DataFileContent.DATA:
                raise TableDataError(f"{what}: delete files are not supported yet")
            if data_file.file_format != FileFormat.PARQUET:
                raise TableDataError(
                    f"{what}: data file format {data_file.file_format} is not readable "
                    "(only Parquet)"
                )
            file_key = data_key(store, keys, data_file.file_path, what=what)
            files.append(DataFile(file_key, int(data_file.file_size_in_bytes)))
    return sorted(files, key=lambda f: f.key), arrow_schema, snapshot.snapshot_id


# -------------------------------------------------------------------- public
def resolve_table(
    store: ObjectStore,
    keys: Keys,
    row: Mapping[str, Any],
    *,
    materializations: Callable[[], pa.Table],
    snapshot_id: int | None = None,
    as_of: datetime | None = None,
) -> TableData:
    """The data files of the catalog table ``row`` (a row of the catalog state).

    ``snapshot_id`` / ``as_of`` select an Iceberg snapshot; other formats have
    none (:class:`TableDataError`). ``materializations`` gives the compacted
    ``system.materializations`` table (asked only for asset tables).
    """
    qualified = f"{row['namespace']}.{row['name']}"
    what = f"table {qualified}"
    fmt = row.get("format")
    if fmt not in READABLE_FORMATS:
        raise TableDataError(
            f"{what} has format {fmt!r}, which SQL cannot read; readable formats: "
            + ", ".join(READABLE_FORMATS)
        )
    if (snapshot_id is not None or as_of is not None) and fmt != "iceberg":
        raise TableDataError(f"{what} is a {fmt} table: only Iceberg tables have snapshots")
    if fmt == "iceberg":
        files, schema, chosen = _iceberg(store, keys, what, row, snapshot_id, as_of)
        shown = qualified if snapshot_id is None and as_of is None else f"{qualified}@{chosen}"
        return TableData(shown, tuple(files), schema)
    properties = row.get("properties") or {}
    if not isinstance(properties, Mapping):
        properties = dict(properties)
    if ASSET_PROPERTY in properties:
        files = _asset_files(store, keys, what, {**row, "properties": properties}, materializations)
    else:
        files = _parquet_files(store, keys, what, row.get("location"))
    return TableData(qualified, tuple(files))


def read_files(store: ObjectStore, data: TableData) -> Iterator[bytes]:
    """The bytes of each file of ``data``, read through the store."""
    for f in data.files:
        try:
            blob, _ = store.get(f.key)
        except ObjectNotFoundError:
            raise TableFileMissingError(
                f"table {data.name}: its data file {f.key!r} disappeared while being read"
            ) from None
        yield blob
