"""``/api/v1/admin``: tenant administration for holders of the ``admin`` role.

An admin token is issued for one tenant (and a workspace); it administers that
tenant only: its workspaces, its quotas, its usage, and the audit trail of its
own workspace. Listing every tenant is an operator's job (``arco admin
tenants``, with store credentials), never an API call: no request in one
tenant's scope may see another tenant (invariant I6).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from arco.api.deps import Admin
from arco.core.errors import InvalidArgumentError
from arco.governance import tenants
from arco.governance.audit import read_audit

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class WorkspaceIn(BaseModel):
    """A workspace to create."""

    model_config = ConfigDict(extra="forbid")

    workspace: str = Field(min_length=1, max_length=63)
    description: str = Field(default="", max_length=1024)


class QuotasIn(BaseModel):
    """Quota changes: a number sets a limit, ``null`` removes it, absent keeps it."""

    model_config = ConfigDict(extra="forbid")

    ingest_per_minute: int | None = Field(default=None, ge=0)
    signed_urls_per_minute: int | None = Field(default=None, ge=0)
    storage_bytes: int | None = Field(default=None, ge=0)
    concurrent_runs: int | None = Field(default=None, ge=0)


def _forget(request: Request, tenant: str) -> None:
    request.app.state.governance.forget(tenant)


@router.get("/workspaces")
def list_workspaces(request: Request, who: Admin) -> Any:
    """The tenant's workspaces: registered ones and those holding data unregistered."""
    found = tenants.list_workspaces(request.app.state.store, who.tenant)
    return {"tenant": who.tenant, "workspaces": [w.to_dict() for w in found]}


@router.post("/workspaces", status_code=status.HTTP_201_CREATED)
def create_workspace(request: Request, body: WorkspaceIn, who: Admin) -> Any:
    """Register a new workspace of the caller's tenant (409 if it exists)."""
    record = tenants.create_workspace(
        request.app.state.store, who.tenant, body.workspace, description=body.description
    )
    _forget(request, who.tenant)
    return record.to_dict()


@router.post("/workspaces/{workspace}/retire")
def retire_workspace(request: Request, workspace: str, who: Admin) -> Any:
    """Retire a workspace: every request to it is refused (403) until reactivated.

    An admin cannot retire the workspace of the token used, which would lock them out.
    """
    if workspace == who.workspace:
        raise InvalidArgumentError("an admin cannot retire the workspace of their own token")
    record = tenants.set_workspace_status(request.app.state.store, who.tenant, workspace, "retired")
    _forget(request, who.tenant)
    return record.to_dict()


@router.post("/workspaces/{workspace}/activate")
def activate_workspace(request: Request, workspace: str, who: Admin) -> Any:
    """Reactivate a retired workspace."""
    record = tenants.set_workspace_status(request.app.state.store, who.tenant, workspace, "active")
    _forget(request, who.tenant)
    return record.to_dict()


@router.get("/quotas")
def get_quotas(request: Request, who: Admin) -> Any:
    """The tenant's quotas (``null`` = unlimited) and who changed them last."""
    return tenants.get_quotas(request.app.state.store, who.tenant).to_dict()


@router.patch("/quotas")
def set_quotas(request: Request, body: QuotasIn, who: Admin) -> Any:
    """Change some of the tenant's quotas (every server process applies them within
    its policy cache TTL, 10 s by default)."""
    doc = tenants.set_quotas(
        request.app.state.store, who.tenant, body.model_dump(exclude_unset=True)
    )
    _forget(request, who.tenant)
    return doc.to_dict()


@router.get("/usage")
def usage(request: Request, who: Admin) -> Any:
    """The tenant's last measured storage and its unfinished runs."""
    store = request.app.state.store
    measured = tenants.storage_usage(store, who.tenant)
    names = [w.workspace for w in tenants.list_workspaces(store, who.tenant)]
    return {
        "tenant": who.tenant,
        "storage": None if measured is None else measured.__dict__,
        "active_runs": tenants.active_runs(store, who.tenant, [*names, who.workspace]),
        "quotas": tenants.get_quotas(store, who.tenant).quotas.to_dict(),
    }


@router.get("/audit")
def audit(
    request: Request,
    who: Admin,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    since: Annotated[datetime | None, Query(description="ISO 8601 time")] = None,
) -> Any:
    """The newest audit records of the caller's workspace (folded and still pending)."""
    rows = read_audit(request.app.state.store, who.scope, since=since, limit=limit)
    return {
        "records": [
            {**r, "recorded_at": r["recorded_at"].isoformat() if r["recorded_at"] else None}
            for r in rows
        ]
    }
