"""Iceberg table metadata on Arco's storage, with pyiceberg's own models.

Pure functions over :class:`~pyiceberg.table.metadata.TableMetadata`: build the
metadata of a new table, validate a commit's requirements and apply its updates
(``pyiceberg.table.update``), name the next metadata file, and map a schema to
Arco's column rows. :class:`Warehouse` turns table locations into store keys and
refuses every location outside the caller's own warehouse folder.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.metadata import (
    TableMetadata,
    TableMetadataUtil,
    TableMetadataV1,
    new_table_metadata,
)
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder
from pyiceberg.table.update import (
    AssertCreate,
    TableRequirement,
    TableUpdate,
    update_table_metadata,
)
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FixedType,
    FloatType,
    IcebergType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    StringType,
    StructType,
    TimestampNanoType,
    TimestampType,
    TimestamptzNanoType,
    TimestamptzType,
    TimeType,
    UUIDType,
)

from arco.catalog.datatypes import normalize_type
from arco.core.errors import InvalidArgumentError
from arco.core.keys import Keys
from arco.iceberg.errors import CommitRejectedError, ForbiddenLocationError

__all__ = [
    "CommitRejectedError",
    "ForbiddenLocationError",
    "Warehouse",
    "apply_commit",
    "arco_columns",
    "decode_metadata",
    "encode_metadata",
    "new_metadata",
    "next_metadata_location",
]

_METADATA_NAME_RE = re.compile(r"^(\d+)-([0-9a-fA-F-]{36})\.metadata\.json$")


@dataclass(frozen=True)
class Warehouse:
    """The warehouse folder of one scope: ``{store}/tenant=../workspace=../warehouse/``.

    ``base_url`` is the URL of the store's root (``file:///abs/path``,
    ``s3://bucket/prefix``); a location is accepted only when it lies below this
    scope's warehouse prefix, so no request can name another tenant's objects.
    """

    base_url: str
    keys: Keys

    @property
    def prefix_key(self) -> str:
        """Store key prefix of the warehouse (ends with ``/``)."""
        return self.keys.warehouse_prefix()

    @property
    def url(self) -> str:
        """The warehouse folder as a URL (no trailing slash)."""
        return f"{self.base_url.rstrip('/')}/{self.prefix_key}".rstrip("/")

    def table_location(self, namespace: str, table: str, table_id: str) -> str:
        """The default location of a new table (no trailing slash)."""
        key = self.keys.iceberg_table_prefix(namespace, table, table_id)
        return f"{self.base_url.rstrip('/')}/{key}".rstrip("/")

    def key_of(self, location: str) -> str:
        """The store key of ``location``; :class:`ForbiddenLocationError` unless it is ours."""
        if not isinstance(location, str) or not location:
            raise InvalidArgumentError("location must be a non-empty string")
        # Every load_table maps its metadata location: remember accepted answers
        # (refusals are not cached, they raise again).
        return _key_of(self, location)

    def _key_of(self, location: str) -> str:
        base = self.base_url.rstrip("/")
        candidate = location
        if (
            base.startswith("file:///")
            and candidate.startswith("file:/")
            and not (candidate.startswith("file:///"))
        ):
            # Java clients write local paths as file:/abs/path.
            candidate = "file:///" + candidate[len("file:/") :].lstrip("/")
        if not candidate.startswith(base + "/"):
            raise ForbiddenLocationError(
                f"location {location!r} is outside this workspace's warehouse {self.url}"
            )
        key = candidate[len(base) + 1 :]
        bad = (
            ".." in key.split("/")
            or "//" in key
            or "\\" in key
            or "%" in key
            or "?" in key
            or "#" in key
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in key)
        )
        if bad or not (key + "/").startswith(self.prefix_key) or key + "/" == self.prefix_key:
            raise ForbiddenLocationError(
                f"location {location!r} is outside this workspace's warehouse {self.url}"
            )
        return key

    def location_of(self, key: str) -> str:
        """The URL of a store key inside the warehouse."""
        return f"{self.base_url.rstrip('/')}/{key}"


@functools.lru_cache(maxsize=8192)
def _key_of(warehouse: Warehouse, location: str) -> str:
    return warehouse._key_of(location)


def decode_metadata(data: bytes) -> TableMetadata:
    """Parse a ``*.metadata.json`` file."""
    try:
        return TableMetadataUtil.parse_raw(data.decode())
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"not valid Iceberg table metadata: {exc}") from exc


def encode_metadata(metadata: TableMetadata) -> bytes:
    """The JSON bytes of ``metadata`` as pyiceberg writes them."""
    return metadata.model_dump_json().encode()


def new_metadata(
    schema: Schema,
    location: str,
    *,
    partition_spec: PartitionSpec | None = None,
    sort_order: SortOrder | None = None,
    properties: dict[str, str] | None = None,
) -> TableMetadata:
    """The first metadata of a new table (fresh field ids, as every catalog assigns)."""
    try:
        return new_table_metadata(
            schema=schema,
            partition_spec=partition_spec or UNPARTITIONED_PARTITION_SPEC,
            sort_order=sort_order or UNSORTED_SORT_ORDER,
            location=location,
            properties=dict(properties or {}),
        )
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(f"cannot create the table: {exc}") from exc


def _empty_metadata() -> TableMetadata:
    # What pyiceberg's own catalogs start a staged create from: the create
    # transaction's updates (format upgrade, schema, spec...) build the rest.
    return TableMetadataV1.model_construct(last_column_id=-1, schema=Schema())


def apply_commit(
    base: TableMetadata | None,
    base_location: str | None,
    requirements: Sequence[TableRequirement],
    updates: Sequence[TableUpdate],
) -> TableMetadata:
    """Validate ``requirements`` against ``base`` and apply ``updates``.

    ``base`` is None for a table that does not exist yet (a staged create, whose
    requirements include ``assert-create``). A requirement that does not hold
    raises :class:`CommitRejectedError`; an update that cannot apply raises
    :class:`InvalidArgumentError`.
    """
    for requirement in requirements:
        try:
            requirement.validate(base)
        except CommitFailedException as exc:
            raise CommitRejectedError(str(exc)) from exc
    if base is None and not any(isinstance(r, AssertCreate) for r in requirements):
        raise CommitRejectedError("the table does not exist and the commit does not create it")
    try:
        return update_table_metadata(
            base_metadata=base if base is not None else _empty_metadata(),
            updates=tuple(updates),
            enforce_validation=base is None,
            metadata_location=base_location,
        )
    except CommitFailedException as exc:
        raise CommitRejectedError(str(exc)) from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidArgumentError(f"cannot apply the table updates: {exc}") from exc


def metadata_version(location: str | None) -> int:
    """The version number in a metadata file name (``00003-<uuid>.metadata.json`` is 3)."""
    if not location:
        return -1
    match = _METADATA_NAME_RE.match(location.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else -1


def next_metadata_location(table_location: str, previous: str | None) -> str:
    """A new, never-used metadata file name under ``{table_location}/metadata/``."""
    version = metadata_version(previous) + 1
    return f"{table_location.rstrip('/')}/metadata/{version:05d}-{uuid.uuid4()}.metadata.json"


def _type_name(t: IcebergType) -> str:
    simple: list[tuple[type[IcebergType], str]] = [
        (BooleanType, "bool"),
        (IntegerType, "int32"),
        (LongType, "int64"),
        (FloatType, "float32"),
        (DoubleType, "float64"),
        (DateType, "date"),
        (TimeType, "time64[us]"),
        (TimestamptzNanoType, "timestamp[ns, UTC]"),
        (TimestampNanoType, "timestamp[ns]"),
        (TimestamptzType, "timestamp[us, UTC]"),
        (TimestampType, "timestamp[us]"),
        (StringType, "string"),
        (UUIDType, "binary"),
        (FixedType, "binary"),
        (BinaryType, "binary"),
    ]
    for cls, name in simple:
        if isinstance(t, cls):
            return name
    if isinstance(t, DecimalType):
        return f"decimal({t.precision},{t.scale})"
    if isinstance(t, ListType):
        return f"list<{_type_name(t.element_type)}>"
    if isinstance(t, MapType):
        return f"map<{_type_name(t.key_type)}, {_type_name(t.value_type)}>"
    if isinstance(t, StructType):
        inner = ", ".join(f"`{f.name}`: {_type_name(f.field_type)}" for f in t.fields)
        return f"struct<{inner}>"
    return str(t)


def arco_type(t: IcebergType) -> str:
    """Arco's canonical type string for an Iceberg type (its own name if Arco has none)."""
    text = _type_name(t)
    try:
        return normalize_type(text)
    except InvalidArgumentError:
        return str(t)


def arco_columns(schema: Schema) -> list[dict[str, Any]]:
    """Column rows of the catalog's ``tables`` state for the top-level fields of ``schema``.

    Column ids are the Iceberg field ids, so both doors name a column alike.
    """
    return [
        {
            "column_id": field.field_id,
            "ordinal": i,
            "name": field.name,
            "data_type": arco_type(field.field_type),
            "nullable": not field.required,
            "description": field.doc,
        }
        for i, field in enumerate(schema.fields)
    ]


def referenced_locations(metadata: TableMetadata) -> Iterable[str]:
    """Metadata files a metadata file's ``metadata-log`` names (older versions)."""
    return [entry.metadata_file for entry in metadata.metadata_log]
