"""Validation of OpenLineage 2-0-x events (``RunEvent``, ``DatasetEvent``, ``JobEvent``).

The ``openlineage-python`` client does not ship the specification's JSON Schema
files (it ships classes generated from them), and Arco's server must not need the
client. These pydantic models encode the constraints of the published 2-0-2
schema that an ingesting server relies on: the required fields of each event
kind, ``eventType``'s values, ``runId`` as a UUID, ``eventTime`` as an RFC 3339
date-time with an offset, ``producer``/``schemaURL``/``_producer``/``_schemaURL``
as URIs, every facet an object carrying ``_producer`` and ``_schemaURL``, and the
shapes of the facets Arco reads (``parent``, ``errorMessage``, ``schema``,
``columnLineage``, ``outputStatistics``). Facets Arco does not read are accepted
as the spec allows (any further fields).

Errors name the offending field as a JSON path, e.g.
``run.runId: not a UUID`` or ``inputs[0].facets.schema.fields[2].name: field required``.
"""

# The models mirror the specification's camelCase field names, so errors name them as sent.
# ruff: noqa: N815

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from arco.core.errors import InvalidArgumentError

#: Most events in one request (a batch).
MAX_BATCH = 1_000
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")


class InvalidOpenLineageEventError(InvalidArgumentError):
    """An OpenLineage event does not follow the 2-0-x schema (HTTP 400)."""

    code = "invalid-openlineage-event"


def _uri(value: str) -> str:
    if not _URI.match(value) or len(value) > 2048:
        raise ValueError("not a URI (RFC 3986: a scheme, then ':')")
    return value


class _Open(BaseModel):
    """Open objects: the spec allows fields it does not name."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Facet(_Open):
    """``BaseFacet``: every facet names its producer and schema."""

    producer: str = Field(alias="_producer")
    schema_url: str = Field(alias="_schemaURL")

    @field_validator("producer", "schema_url")
    @classmethod
    def _uris(cls, value: str) -> str:
        return _uri(value)


class ParentRun(_Open):
    """``ParentRunFacet.run``."""

    runId: str

    @field_validator("runId")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return _as_uuid(value)


class ParentJob(_Open):
    """``ParentRunFacet.job``."""

    namespace: str = Field(min_length=1, max_length=1024)
    name: str = Field(min_length=1, max_length=1024)


class ParentRunFacet(Facet):
    """The run (and job) this run is part of."""

    run: ParentRun
    job: ParentJob


class ErrorMessageRunFacet(Facet):
    """Why a run failed."""

    message: str
    programmingLanguage: str
    stackTrace: str | None = None


class SchemaField(_Open):
    """A field of the ``schema`` facet (nested fields allowed)."""

    name: str = Field(min_length=1, max_length=256)
    type: str | None = Field(default=None, max_length=4096)
    description: str | None = None
    fields: list[SchemaField] | None = None


class SchemaDatasetFacet(Facet):
    """A dataset's columns."""

    fields: list[SchemaField] = Field(default_factory=list, max_length=4096)


class InputField(_Open):
    """One input column of a ``columnLineage`` field."""

    namespace: str = Field(min_length=1, max_length=1024)
    name: str = Field(min_length=1, max_length=1024)
    field: str = Field(min_length=1, max_length=256)
    transformations: list[dict[str, Any]] | None = None


class ColumnLineageField(_Open):
    """How one output column is produced."""

    inputFields: list[InputField] = Field(max_length=10_000)
    transformationDescription: str | None = None
    transformationType: str | None = None


class ColumnLineageDatasetFacet(Facet):
    """Column-level lineage of an output dataset."""

    fields: dict[str, ColumnLineageField]


class OutputStatisticsFacet(Facet):
    """Rows and bytes written to an output."""

    rowCount: int | None = Field(default=None, ge=0)
    size: int | None = Field(default=None, ge=0)


class RunFacets(_Open):
    """``Run.facets``: the known ones typed, any other a :class:`Facet`."""

    parent: ParentRunFacet | None = None
    errorMessage: ErrorMessageRunFacet | None = None
    __pydantic_extra__: dict[str, Facet] = Field(init=False)


class DatasetFacets(_Open):
    """``Dataset.facets``."""

    schema_: SchemaDatasetFacet | None = Field(default=None, alias="schema")
    columnLineage: ColumnLineageDatasetFacet | None = None
    __pydantic_extra__: dict[str, Facet] = Field(init=False)


class OutputFacets(_Open):
    """``OutputDataset.outputFacets``."""

    outputStatistics: OutputStatisticsFacet | None = None
    __pydantic_extra__: dict[str, Facet] = Field(init=False)


class AnyFacets(_Open):
    """Facets Arco does not read: each must still be a facet."""

    __pydantic_extra__: dict[str, Facet] = Field(init=False)


class Dataset(_Open):
    """``Dataset``: namespace + name identify it."""

    namespace: str = Field(min_length=1, max_length=1024)
    name: str = Field(min_length=1, max_length=1024)
    facets: DatasetFacets | None = None


class InputDataset(Dataset):
    """``InputDataset``."""

    inputFacets: AnyFacets | None = None


class OutputDataset(Dataset):
    """``OutputDataset``."""

    outputFacets: OutputFacets | None = None


class Run(_Open):
    """``Run``."""

    runId: str
    facets: RunFacets | None = None

    @field_validator("runId")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return _as_uuid(value)


class Job(_Open):
    """``Job``."""

    namespace: str = Field(min_length=1, max_length=1024)
    name: str = Field(min_length=1, max_length=1024)
    facets: AnyFacets | None = None


class BaseEvent(_Open):
    """``BaseEvent``: when, who produced it, which schema it follows."""

    eventTime: datetime
    producer: str
    schemaURL: str

    @field_validator("producer", "schemaURL")
    @classmethod
    def _uris(cls, value: str) -> str:
        return _uri(value)

    @field_validator("eventTime", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be an RFC 3339 date-time string")
        return value

    @field_validator("eventTime")
    @classmethod
    def _offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("date-time must carry a time zone offset (e.g. Z)")
        return value


class RunEvent(BaseEvent):
    """A run's state transition, with what it read and wrote."""

    eventType: Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"] | None = None
    run: Run
    job: Job
    inputs: list[InputDataset] = Field(default_factory=list, max_length=10_000)
    outputs: list[OutputDataset] = Field(default_factory=list, max_length=10_000)


class DatasetEvent(BaseEvent):
    """Metadata about a dataset, outside any run."""

    dataset: Dataset


class JobEvent(BaseEvent):
    """Metadata about a job (its inputs and outputs), outside any run."""

    job: Job
    inputs: list[InputDataset] = Field(default_factory=list, max_length=10_000)
    outputs: list[OutputDataset] = Field(default_factory=list, max_length=10_000)


Event = RunEvent | DatasetEvent | JobEvent
EventKind = Literal["run", "dataset", "job"]


def _as_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValueError("not a UUID") from exc


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = "schema" if part == "schema_" else str(part)
            out += f".{name}" if out else name
    return out or "event"


def kind_of(raw: Any) -> EventKind:
    """Which of the three event kinds ``raw`` is (by its defining field)."""
    if not isinstance(raw, dict):
        raise InvalidOpenLineageEventError("an OpenLineage event must be a JSON object")
    if "run" in raw:
        return "run"
    if "dataset" in raw:
        return "dataset"
    if "job" in raw:
        return "job"
    raise InvalidOpenLineageEventError(
        "event: not a RunEvent (needs 'run' and 'job'), DatasetEvent (needs 'dataset') "
        "or JobEvent (needs 'job')"
    )


_MODELS: dict[str, type[BaseEvent]] = {"run": RunEvent, "dataset": DatasetEvent, "job": JobEvent}


def validate_event(raw: Any, *, where: str = "") -> Event:
    """Validate one event; raises :class:`InvalidOpenLineageEventError` naming the field."""
    kind = kind_of(raw)
    try:
        return _MODELS[kind].model_validate(raw)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        path = _path(tuple(first.get("loc", ())))
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        if first.get("type") == "missing":
            msg = "field required"
        label = {"run": "RunEvent", "dataset": "DatasetEvent", "job": "JobEvent"}[kind]
        raise InvalidOpenLineageEventError(f"{where}{path}: {msg} ({label})") from exc
