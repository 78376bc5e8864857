"""docs/reference/roles.md lists the role every /api/v1 route needs, and stays true."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute

from .conftest import make_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "roles.md"
BEGIN, END = "<!-- roles:begin -->", "<!-- roles:end -->"


def _roles(dependant: Any) -> set[str]:
    found: set[str] = set()
    for sub in dependant.dependencies:
        role = getattr(sub.call, "arco_role", None)
        if role:
            found.add(role)
        found |= _roles(sub)
    return found


def _api_routes(routes: Any) -> list[APIRoute]:
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out.extend(_api_routes(route.original_router.routes))
    return out


def role_table() -> str:
    """The Markdown table of routes and the role each one needs."""
    rows = set()
    for route in _api_routes(make_app().routes):
        if not route.path.startswith("/api/v1"):
            continue
        needed = _roles(route.dependant)
        assert len(needed) <= 1, f"{route.path} needs {needed}"
        role = needed.pop() if needed else "none (no token)"
        for method in route.methods - {"HEAD"}:
            rows.add((route.path, method, role))
    lines = ["| route | method | role |", "|---|---|---|"]
    lines += [f"| `{p}` | {m} | {r} |" for p, m, r in sorted(rows)]
    return "\n".join(lines)


def test_every_api_route_needs_at_most_one_role_and_the_doc_says_which() -> None:
    text = DOC.read_text()
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == role_table(), "the route table in docs/reference/roles.md is stale"
