"""Generate ``arco/client/_async.py`` from ``arco/client/_sync.py`` (unasync-style).

The sync client is the one description of every call; this script rewrites it
into the asyncio client, so the two cannot drift. ``--check`` exits 1 when the
committed ``_async.py`` differs from what this script writes (a test runs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[1] / "src" / "arco" / "client"
BEGIN = "# --- generated-async: begin\n"
END = "# --- generated-async: end\n"

HEADER = '''"""The asyncio client. GENERATED from ``_sync.py`` by ``tools/gen_async_client.py``.

Do not edit: change ``_sync.py`` and regenerate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import httpx

'''

#: Literal rewrites, applied in order to the class body.
REPLACEMENTS: list[tuple[str, str]] = [
    ("class ArcoClient:", "class AsyncArcoClient:"),
    ('"""A synchronous client of the Arco REST API.', '"""An asyncio client of the Arco REST API.'),
    (":class:`httpx.Client`", ":class:`httpx.AsyncClient`"),
    ("httpx.BaseTransport", "httpx.AsyncBaseTransport"),
    ("Callable[[float], None] = time.sleep", "Callable[[float], Awaitable[None]] = asyncio.sleep"),
    ("httpx.Client(", "httpx.AsyncClient("),
    ("    def close(self) -> None:", "    async def aclose(self) -> None:"),
    ("self._http.close()", "await self._http.aclose()"),
    (
        "    def __enter__(self) -> ArcoClient:",
        "    async def __aenter__(self) -> AsyncArcoClient:",
    ),
    (
        "    def __exit__(self, *exc: object) -> None:",
        "    async def __aexit__(self, *exc: object) -> None:",
    ),
    ("        self.close()", "        await self.aclose()"),
    ("self._http.request(", "await self._http.request("),
    ("self._sleep(wait)", "await self._sleep(wait)"),
    ("self._send(", "await self._send("),
    ("self._run(", "await self._run("),
    ("Iterator[", "AsyncIterator["),
]


def transform(sync_source: str) -> str:
    """The async module's text for the given sync module's text."""
    start = sync_source.index(BEGIN) + len(BEGIN)
    stop = sync_source.index(END)
    imports = sync_source[: sync_source.index(BEGIN)]
    # Keep the sync module's arco imports (and the TYPE_CHECKING block) as they are.
    arco_imports = imports[imports.index("from arco.") :]
    arco_imports = arco_imports.replace('__all__ = ["ArcoClient"]', '__all__ = ["AsyncArcoClient"]')
    body = sync_source[start:stop]
    for old, new in REPLACEMENTS:
        body = body.replace(old, new)
    # Every public method becomes a coroutine (or an async generator).
    body = re.sub(r"^    def (?!__)", "    async def ", body, flags=re.M)
    body = re.sub(r"(page = )(self\.list_\w+\()", r"\1await \2", body)
    body = re.sub(
        r"^(\s+)yield from (.+)$",
        lambda m: f"{m.group(1)}for item in {m.group(2)}:\n{m.group(1)}    yield item",
        body,
        flags=re.M,
    )
    return _formatted(HEADER + arco_imports + body)


def _formatted(text: str) -> str:
    """``text`` as ``ruff format`` writes it (the check must not fight the formatter)."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        raise SystemExit("ruff not found: install the dev extra (pip install -e '.[dev]')")
    done = subprocess.run(
        [ruff, "format", "--stdin-filename", str(CLIENT / "_async.py"), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def main(argv: list[str]) -> int:
    """Write ``_async.py`` (or with ``--check``, only compare)."""
    target = CLIENT / "_async.py"
    text = transform((CLIENT / "_sync.py").read_text(encoding="utf-8"))
    if "--check" in argv:
        if target.read_text(encoding="utf-8") != text:
            print(f"{target} is stale: run python tools/gen_async_client.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
