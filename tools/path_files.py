"""Count the Arco source files a `table create` and an `arco run` pass through (ADR 012).

Runs the real CLI in this process under ``sys.setprofile`` and records every
file under ``arco/`` whose functions are called while the command runs
(module bodies executed by imports are not counted: only calls of functions).

    PYTHONPATH=src python tools/path_files.py [--list]
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any


def _traced(run: Callable[[], Any]) -> set[str]:
    import arco

    root = str(Path(arco.__file__).resolve().parent)
    seen: set[str] = set()

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code.co_name != "<module>":
            name = frame.f_code.co_filename
            if name.startswith(root):
                seen.add(name[len(root) + 1 :])

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return seen


def _cli(*args: str) -> None:
    # main() ends the process with os._exit; its app is what runs the command.
    from arco.cli import main as cli

    build = getattr(cli, "build_app", None)
    # Older trees (the ADR's "before" figure) had one eagerly built app.
    app = build(cli.subcommand(list(args))) if build else cli.app
    try:
        app(prog_name="arco", args=list(args))
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"arco {' '.join(args)} exited with {exc.code}") from None


def main() -> None:
    """Print the number (and with --list the names) of files each path touches."""
    show = "--list" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        store = f"file://{tmp}/store"
        _cli("--store", store, "namespace", "create", "sales")
        create = _traced(
            lambda: _cli("--store", store, "table", "create", "sales.orders", "-c", "id:bigint")
        )
        os.chdir(tmp)
        _cli("--store", store, "init", "proj")
        os.chdir(Path(tmp) / "proj")
        run = _traced(lambda: _cli("--store", store, "run", "*"))
    for label, files in (("table create", create), ("arco run", run)):
        print(f"{label}: {len(files)} files")
        if show:
            for name in sorted(files):
                print(f"  {name}")


if __name__ == "__main__":
    main()
