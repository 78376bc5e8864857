"""Run the Arco app under uvicorn for the browser tests: ``python _serve.py PORT [--dev]``.

The store, secret and dev scope come from ``ARCO_*`` variables like ``arco serve``;
``--dev`` turns on ``Settings.dev_mode`` (what ``arco dev`` does) without the rest of
``arco dev`` (compaction loop, demo project, run worker), so the tests control the data.
"""

from __future__ import annotations

import sys

import uvicorn

from arco.api.app import create_app
from arco.api.settings import Settings


def main() -> None:
    """Serve on 127.0.0.1:PORT until SIGTERM."""
    port = int(sys.argv[1])
    app = create_app(Settings.from_env(dev_mode="--dev" in sys.argv[2:]))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
