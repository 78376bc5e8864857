"""``arco info``: which store, scope and project a command run here would use, and why."""

from __future__ import annotations

import typer

from arco.cli.context import settings
from arco.cli.output import emit_json, say


def info(ctx: typer.Context) -> None:
    """Show the store every command here uses (and where its URL came from), the scope and
    the project (arco.toml); nothing is opened or written."""
    from arco import __version__
    from arco.core.config import find_config
    from arco.core.storage import parse_store_url

    opts = settings(ctx)
    choice = opts.store_choice()
    shown = parse_store_url(choice.url).redacted_url()  # no secrets from a URL's query
    config = find_config()
    project = None
    if config is not None:
        section = config.section("project")
        project = {
            "config": str(config.path),
            "root": str(config.root),
            "name": section.get("name"),
            "module": section.get("module"),
        }
    data = {
        "version": __version__,
        "store": {
            "url": shown,
            "origin": choice.origin,
            "config": str(choice.config) if choice.config else None,
        },
        "scope": {"tenant": opts.tenant, "workspace": opts.workspace},
        "project": project,
    }
    if opts.json:
        emit_json(data)
        return
    say(f"store:     {shown}")
    say(f"  from:    {choice.describe()}")
    say(f"scope:     {opts.tenant}/{opts.workspace}")
    if project is None:
        say("project:   none (no arco.toml here or above)")
    else:
        say(f"project:   {project['name'] or project['module'] or '?'} ({project['config']})")
    say(f"arco:      {__version__}")
