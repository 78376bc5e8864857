"""Encoding a commit's small delta: Arco's writer (ADR 031) against pyarrow's.

Both write the same bytes (checked here too); the figure is the time per delta,
measured in alternating blocks so that both see the same host. The tables are the
deltas a real catalog commit builds: one ``tables`` row (a create_table with 10
columns) and, for a larger case, 64 rows.

    python benchmarks/delta_encode.py [--rounds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tier1 import ARCO_COLUMNS

from arco.catalog.catalog import Catalog
from arco.core.scope import Scope
from arco.domain import tableset

BLOCK = 200


def _captured_deltas() -> dict[str, pa.Table]:
    """The small deltas a real catalog writes, caught on their way to the encoder."""
    caught: list[pa.Table] = []
    real = tableset.encode

    def catch(table: pa.Table, *, small: bool = False) -> bytes:
        if small and "columns" in table.schema.names:
            caught.append(table)
        return real(table, small=small)

    tableset.encode = catch
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cat = Catalog(f"file://{tmp}", Scope("bench", "bench"))
            cat.create_namespace("bench")
            cat.create_table("bench", "one", ARCO_COLUMNS)
            with cat.transaction() as txn:
                for i in range(64):
                    txn.create_table("bench", f"t{i:03d}", ARCO_COLUMNS)
    finally:
        tableset.encode = real
    return {f"{t.num_rows} row(s)": t for t in (caught[0], caught[-1])}


def _block(fn: Callable[[], bytes], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print p50/p95 per delta for both writers and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="alternating block pairs")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    results = {}
    for name, table in _captured_deltas().items():
        ours = lambda t=table: tableset.encode(t, small=True)  # noqa: E731
        theirs = lambda t=table: tableset._encode(t, small=True)  # noqa: E731
        if ours() != theirs():
            print(f"{name}: the two writers disagree", file=sys.stderr)
            return 1
        arco: list[float] = []
        pyarrow: list[float] = []
        for r in range(args.rounds):
            first, second = (arco, pyarrow) if r % 2 == 0 else (pyarrow, arco)
            first.extend(_block(ours if first is arco else theirs, BLOCK))
            second.extend(_block(ours if second is arco else theirs, BLOCK))

        def q(xs: list[float], p: float) -> float:
            return sorted(xs)[int(p * (len(xs) - 1))] * 1e6

        row = {
            "arco_p50_us": q(arco, 0.5),
            "arco_p95_us": q(arco, 0.95),
            "pyarrow_p50_us": q(pyarrow, 0.5),
            "pyarrow_p95_us": q(pyarrow, 0.95),
            "bytes": len(ours()),
        }
        row["ratio_p50"] = row["arco_p50_us"] / row["pyarrow_p50_us"]
        results[name] = row
        print(
            f"{name:>10} ({table.num_columns} columns, {row['bytes']} bytes, same bytes): "
            f"arco p50 {row['arco_p50_us']:.0f} us p95 {row['arco_p95_us']:.0f} us; "
            f"pyarrow p50 {row['pyarrow_p50_us']:.0f} us p95 {row['pyarrow_p95_us']:.0f} us; "
            f"ratio {row['ratio_p50']:.2f} (median of {len(arco)} each, "
            f"{statistics.mean(arco) * 1e6:.0f} vs {statistics.mean(pyarrow) * 1e6:.0f} us mean)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
