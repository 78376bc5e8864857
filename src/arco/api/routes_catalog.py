"""Routes for namespaces, tables and columns."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status

from arco.api.deps import Reader, Writer
from arco.api.responses import json_out, json_page_out
from arco.api.schemas import (
    ColumnIn,
    HistoryEntry,
    NamespaceCreate,
    NamespaceOut,
    NamespacePage,
    NamespacePatch,
    TableCreate,
    TableOut,
    TablePage,
    TablePatch,
    TableRename,
)
from arco.catalog.catalog import Catalog
from arco.catalog.reads import CatalogView
from arco.workspace import Workspace

router = APIRouter(prefix="/api/v1", tags=["catalog"])
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
PageSize = Annotated[int, Query(ge=1, le=1000)]
PageToken = Annotated[str | None, Query(max_length=2048)]
AsOfVersion = Annotated[
    int | None,
    Query(
        ge=0,
        description="Read the catalog as of this version (time travel); default: the latest.",
    ),
]


def _view(svc: Workspace, as_of_version: int | None) -> Catalog | CatalogView:
    """The catalog at ``as_of_version`` (404 past the head, or once expired), else the latest.

    The latest is read through the catalog itself, not ``view()``: a server that has
    not written answers each question by a point read of what it needs (ADR 015)
    instead of folding every table into memory, and a listing pages through the
    sorted base instead of sorting every name per request.
    """
    if as_of_version is None:
        return svc.catalog
    return svc.catalog.at_version(as_of_version)


def _col(c: ColumnIn) -> dict[str, Any]:
    return {"name": c.name, "type": c.type, "nullable": c.nullable, "description": c.description}


@router.post("/namespaces", status_code=status.HTTP_201_CREATED, response_model=NamespaceOut)
def create_namespace(body: NamespaceCreate, svc: Writer, idempotency_key: IdemKey = None) -> Any:
    """Create a namespace (dotted names nest; the parent must exist)."""
    ns = svc.catalog.create_namespace(
        body.name, body.description, body.properties, idempotency_key=idempotency_key
    )
    return ns.to_dict()


@router.get("/namespaces", response_model=NamespacePage)
def list_namespaces(
    svc: Reader,
    prefix: Annotated[str | None, Query(max_length=255)] = None,
    page_size: PageSize = 100,
    page_token: PageToken = None,
    as_of_version: AsOfVersion = None,
) -> Any:
    """Namespaces sorted by name."""
    page = _view(svc, as_of_version).list_namespaces(
        prefix, page_size=page_size, page_token=page_token
    )
    return json_out(
        {"items": [n.to_dict() for n in page.items], "next_page_token": page.next_page_token}
    )


@router.get("/namespaces/{namespace}", response_model=NamespaceOut)
def get_namespace(namespace: str, svc: Reader, as_of_version: AsOfVersion = None) -> Any:
    """One namespace."""
    return json_out(_view(svc, as_of_version).get_namespace(namespace).to_dict())


@router.patch("/namespaces/{namespace}", response_model=NamespaceOut)
def update_namespace(
    namespace: str, body: NamespacePatch, svc: Writer, idempotency_key: IdemKey = None
) -> Any:
    """Change a namespace's description or properties."""
    kwargs: dict[str, Any] = {}
    if "description" in body.model_fields_set:
        kwargs["description"] = body.description
    ns = svc.catalog.update_namespace(
        namespace,
        set_properties=body.set_properties,
        remove_properties=body.remove_properties,
        idempotency_key=idempotency_key,
        **kwargs,
    )
    return ns.to_dict()


@router.delete("/namespaces/{namespace}", status_code=status.HTTP_204_NO_CONTENT)
def drop_namespace(
    namespace: str, svc: Writer, cascade: bool = False, idempotency_key: IdemKey = None
) -> Response:
    """Drop a namespace; a non-empty one only with ``cascade=true``."""
    svc.catalog.drop_namespace(namespace, cascade=cascade, idempotency_key=idempotency_key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/namespaces/{namespace}/tables", status_code=status.HTTP_201_CREATED, response_model=TableOut
)
def create_table(
    namespace: str, body: TableCreate, svc: Writer, idempotency_key: IdemKey = None
) -> Any:
    """Register a table with its columns."""
    table = svc.catalog.create_table(
        namespace,
        body.name,
        [_col(c) for c in body.columns],
        format=body.format,
        location=body.location,
        description=body.description,
        properties=body.properties,
        idempotency_key=idempotency_key,
    )
    return table.to_dict()


@router.get("/namespaces/{namespace}/tables", response_model=TablePage)
def list_tables(
    namespace: str,
    svc: Reader,
    prefix: Annotated[str | None, Query(max_length=255)] = None,
    page_size: PageSize = 100,
    page_token: PageToken = None,
    as_of_version: AsOfVersion = None,
) -> Any:
    """Tables of a namespace sorted by name."""
    page = _view(svc, as_of_version).list_tables_json(
        namespace, prefix=prefix, page_size=page_size, page_token=page_token
    )
    return json_page_out(page.items, page.next_page_token)


@router.get("/tables", response_model=TablePage)
def list_all_tables(
    svc: Reader,
    page_size: PageSize = 100,
    page_token: PageToken = None,
    as_of_version: AsOfVersion = None,
) -> Any:
    """Every table of the workspace sorted by (namespace, name)."""
    page = _view(svc, as_of_version).list_tables_json(
        None, page_size=page_size, page_token=page_token
    )
    return json_page_out(page.items, page.next_page_token)


@router.get("/namespaces/{namespace}/tables/{name}", response_model=TableOut)
def get_table(namespace: str, name: str, svc: Reader, as_of_version: AsOfVersion = None) -> Any:
    """One table with its columns."""
    return json_out(_view(svc, as_of_version).get_table(namespace, name).to_dict())


@router.patch("/namespaces/{namespace}/tables/{name}", response_model=TableOut)
def update_table(
    namespace: str, name: str, body: TablePatch, svc: Writer, idempotency_key: IdemKey = None
) -> Any:
    """Change description, location, properties and columns of a table."""
    kwargs: dict[str, Any] = {}
    if "description" in body.model_fields_set:
        kwargs["description"] = body.description
    if "location" in body.model_fields_set:
        kwargs["location"] = body.location
    table = svc.catalog.update_table(
        namespace,
        name,
        set_properties=body.set_properties,
        remove_properties=body.remove_properties,
        add_columns=[_col(c) for c in body.add_columns],
        drop_columns=body.drop_columns,
        rename_columns=body.rename_columns,
        column_descriptions=body.column_descriptions,
        idempotency_key=idempotency_key,
        **kwargs,
    )
    return table.to_dict()


@router.post(
    "/namespaces/{namespace}/tables/{name}/columns",
    status_code=status.HTTP_201_CREATED,
    response_model=TableOut,
)
def add_columns(
    namespace: str, name: str, body: list[ColumnIn], svc: Writer, idempotency_key: IdemKey = None
) -> Any:
    """Append columns to a table."""
    table = svc.catalog.update_table(
        namespace, name, add_columns=[_col(c) for c in body], idempotency_key=idempotency_key
    )
    return table.to_dict()


@router.delete("/namespaces/{namespace}/tables/{name}/columns/{column}", response_model=TableOut)
def drop_column(
    namespace: str, name: str, column: str, svc: Writer, idempotency_key: IdemKey = None
) -> Any:
    """Drop one column."""
    table = svc.catalog.update_table(
        namespace, name, drop_columns=[column], idempotency_key=idempotency_key
    )
    return table.to_dict()


@router.post("/namespaces/{namespace}/tables/{name}/rename", response_model=TableOut)
def rename_table(
    namespace: str, name: str, body: TableRename, svc: Writer, idempotency_key: IdemKey = None
) -> Any:
    """Rename a table, optionally moving it to another namespace."""
    table = svc.catalog.rename_table(
        namespace,
        name,
        body.new_name,
        new_namespace=body.new_namespace,
        idempotency_key=idempotency_key,
    )
    return table.to_dict()


@router.delete("/namespaces/{namespace}/tables/{name}", status_code=status.HTTP_204_NO_CONTENT)
def drop_table(namespace: str, name: str, svc: Writer, idempotency_key: IdemKey = None) -> Response:
    """Remove a table from the catalog."""
    svc.catalog.drop_table(namespace, name, idempotency_key=idempotency_key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/catalog/history", response_model=list[HistoryEntry])
def catalog_history(svc: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
    """The newest commits of the catalog, newest first."""
    return [
        {
            "version": m.version,
            "commit_id": m.commit_id,
            "committed_at": m.committed_at,
            "writer": m.writer,
            "actor": m.actor,
            "operation": m.operation,
        }
        for _, m in svc.catalog.domain.history(limit)
    ]
