"""The executors package: one module per backend behind one import surface."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import arco.flow.executors as executors
from arco.core.errors import InvalidArgumentError

SRC = Path(__file__).resolve().parents[2] / "src"


def test_importing_the_executors_does_not_import_dask() -> None:
    """dask is the optional arco[dask] extra: only making a DaskExecutor loads it."""
    code = (
        "import sys, arco.flow.executors\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "print(','.join(loaded))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_the_package_names_every_backend() -> None:
    """``from arco.flow.executors import X`` finds each name importers use."""
    for name in executors.__all__:
        assert getattr(executors, name) is not None
    assert isinstance(executors.make_executor("inline"), executors.InlineExecutor)
    assert isinstance(executors.make_executor("process"), executors.ProcessExecutor)
    with pytest.raises(InvalidArgumentError):
        executors.make_executor("threads")
