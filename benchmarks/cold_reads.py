"""Cold reads: what a new process (or a new Catalog object) pays to answer one question.

Builds catalogs of 100 / 1,000 / 20,000 / 100,000 tables once into a cache
folder (arco on ``file://``, pyiceberg ``SqlCatalog`` on SQLite + a local
warehouse), then times, each in a **new process**, median of ``--repeat``:

* ``arco table show NS.T`` / ``pyiceberg describe NS.T``
* ``arco --json table list NS`` / ``pyiceberg --output json list NS``
* ``arco table list NS`` / ``pyiceberg list NS`` (text)
* in-process cold ``get_table``: a new ``Catalog`` object per call, in a
  process that has already imported everything, with the row groups and own
  footers the process keeps by content hash forgotten before each call (the
  figure with them kept is printed beside it) / a new ``SqlCatalog`` +
  ``load_table``.
* the API's first request: a new ``uvicorn`` server on the catalog, and its first
  ``GET /api/v1/namespaces/NS/tables/T`` once ``/healthz`` answers (client-side
  latency, and the server's resident memory after it); no peer (pyiceberg has no
  server of its own).

Wall time is spawn to exit; peak memory is the child's peak RSS as GNU
``/usr/bin/time -f %M`` reports it (see ``run_once``). Peers run in the same
run, interleaved with arco per size.

    .venv/bin/python benchmarks/cold_reads.py                       # 100, 1k, 20k, 100k
    .venv/bin/python benchmarks/cold_reads.py --sizes 100,1000 --repeat 3
    .venv/bin/python benchmarks/cold_reads.py --peer-max 100000     # also build pyiceberg at 100k
    git archive HEAD~3 src | tar -x -C /tmp/old && \
      .venv/bin/python benchmarks/cold_reads.py --src /tmp/old/src --cache /tmp/cold-old

The cache (``--cache``, default ``/tmp/arco-cold-reads``) keeps the built
catalogs between runs; delete it after changing the write path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _util import environment, load_average, print_table, write_json

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ARCO = str(Path(PY).with_name("arco"))
PYICEBERG = str(Path(PY).with_name("pyiceberg"))
NAMESPACE = "bench"
BATCH = 5_000
COLUMN_KINDS = ["int64", "string", "timestamp"] * 3 + ["int64"]
ARCO_TYPES = {"int64": "int64", "string": "string", "timestamp": "timestamp[us, UTC]"}
ARCO_COLUMNS = [f"c{i}:{ARCO_TYPES[k]}" for i, k in enumerate(COLUMN_KINDS)]


def log(msg: str) -> None:
    """Progress line."""
    print(msg, flush=True)


# ---------------------------------------------------------------- building
BUILD_ARCO = """
import sys
from arco.catalog.catalog import Catalog
url, n, batch, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(";")
cat = Catalog(url, lock_ttl=600.0)
cat.create_namespace("bench")
for start in range(0, n, batch):
    with cat.transaction() as tx:
        for i in range(start, min(start + batch, n)):
            tx.create_table("bench", f"t{i:06d}", cols, description=f"table number {i}")
"""

BUILD_PEER = """
import sys, warnings, logging
warnings.simplefilter("ignore")
logging.getLogger("pyiceberg").setLevel(logging.ERROR)
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType
path, n, kinds = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
types = {"int64": LongType(), "string": StringType(), "timestamp": TimestamptzType()}
fields = [NestedField(i + 1, f"c{i}", types[k], required=False) for i, k in enumerate(kinds)]
schema = Schema(*fields)
cat = SqlCatalog("bench", uri=f"sqlite:///{path}/catalog.db", warehouse=f"file://{path}/wh")
cat.create_namespace("bench")
for i in range(n):
    cat.create_table(("bench", f"t{i:06d}"), schema, properties={"comment": f"table number {i}"})
"""


def build(cache: Path, size: int, peer: bool) -> tuple[str, Path | None]:
    """The arco store URL (and pyiceberg folder) for ``size`` tables, built if missing."""
    arco_dir = cache / f"arco-{size}"
    if not (arco_dir / ".done").exists():
        shutil.rmtree(arco_dir, ignore_errors=True)
        arco_dir.mkdir(parents=True)
        log(f"building arco catalog of {size:,} tables ...")
        t0 = time.perf_counter()
        subprocess.run(
            [
                PY,
                "-c",
                BUILD_ARCO,
                f"file://{arco_dir}",
                str(size),
                str(BATCH),
                ";".join(ARCO_COLUMNS),
            ],
            check=True,
        )
        (arco_dir / ".done").write_text("")
        log(f"  built in {time.perf_counter() - t0:.1f} s")
    peer_dir = cache / f"pyiceberg-{size}"
    if peer and not (peer_dir / ".done").exists():
        shutil.rmtree(peer_dir, ignore_errors=True)
        peer_dir.mkdir(parents=True)
        log(f"building pyiceberg catalog of {size:,} tables ...")
        t0 = time.perf_counter()
        subprocess.run(
            [PY, "-c", BUILD_PEER, str(peer_dir), str(size), ",".join(COLUMN_KINDS)], check=True
        )
        (peer_dir / ".done").write_text("")
        log(f"  built in {time.perf_counter() - t0:.1f} s")
    return f"file://{arco_dir}", (peer_dir if peer else None)


# --------------------------------------------------------------- measuring
#: Output kept for the caller (the in-process figures print one JSON line); the
#: rest is only counted, so the parent's memory does not grow with a listing.
KEEP_OUTPUT = 1 << 20


def run_once(
    argv: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, bytes, int, float]:
    """Wall seconds, peak RSS (MiB), stdout (its first MiB), its size and CPU seconds
    (user + system), of one new process.

    The peak comes from GNU time (``/usr/bin/time -f %M``), not from ``wait4`` here:
    Linux charges a child with the peak RSS of the address space it was spawned
    from (vfork shares it until exec), so a benchmark process that once held a
    large listing made every later child look as large (the 445-615 MiB once
    reported for 100,000-table listings were this process's own peak).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        timed = ["/usr/bin/time", "-f", "%M %U %S", "-o", rss_file.name, *argv]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            timed, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
        )
        out = bytearray()
        size = 0
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(65536):  # type: ignore[attr-defined]
            size += len(chunk)
            if len(out) < KEEP_OUTPUT:
                out += chunk
        err = proc.stderr.read() if proc.stderr else b""
        proc.wait()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{argv} exited {proc.returncode}: {err.decode()[-2000:]}")
        kib, user, system = rss_file.read().split()[-3:]
    return wall, int(kib) / 1024, bytes(out), size, float(user) + float(system)


def measure(argv: list[str], repeat: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Median wall time and peak RSS of ``repeat`` new processes (after one warm-up)."""
    run_once(argv, env)  # page cache, .pyc files
    walls, rss, cpu = [], [], []
    size = 0
    for _ in range(repeat):
        wall, peak, _, size, used = run_once(argv, env)
        cpu.append(used)
        walls.append(wall)
        rss.append(peak)
    return {
        "s": statistics.median(walls),
        # GNU time's CPU: the host's speed varies by up to 1.5x from minute to minute
        # (the same command took 0.15 or 0.23 s of CPU), so compare sizes by both.
        "cpu_s": statistics.median(cpu),
        "mib": statistics.median(rss),
        "all_s": walls,
        "all_mib": rss,
        "out_bytes": size,
    }


INPROC_ARCO = """
import sys, time, json, resource, random, statistics
from arco.catalog import pointread
from arco.catalog.catalog import Catalog
from arco.core.storage import open_store
url, n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = open_store(url)
Catalog(store).get_table("bench", "t000000")  # imports, first-touch costs
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def forget():
    # The process keeps decoded row groups and own footers by content hash: without
    # this, a small catalog's few groups are all decoded after the first read and
    # every later "cold" read is a hot one (pyiceberg keeps nothing between loads).
    pointread._GROUPS = pointread._GroupCache(pointread.GROUP_CACHE_SIZE)
    pointread._OWN_FOOTERS = pointread._GroupCache(16)

def reads(cold):
    rng = random.Random(7)
    times, cpu = [], []
    for _ in range(repeat):
        name = f"t{rng.randrange(n):06d}"
        if cold:
            forget()
        t0, c0 = time.perf_counter(), time.process_time()
        Catalog(store).get_table("bench", name)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return times, cpu

times, cpu = reads(True)
kept, _ = reads(False)
print(json.dumps({"ms": statistics.median(times), "all_ms": times,
                  "cpu_ms": statistics.median(cpu),
                  "kept_ms": statistics.median(kept),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

INPROC_PEER = """
import sys, time, json, resource, random, statistics, warnings, logging
warnings.simplefilter("ignore")
logging.getLogger("pyiceberg").setLevel(logging.ERROR)
from pyiceberg.catalog.sql import SqlCatalog
path, n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def cat():
    return SqlCatalog("bench", uri=f"sqlite:///{path}/catalog.db", warehouse=f"file://{path}/wh")
c = cat(); c.load_table(("bench", "t000000")); c.engine.dispose()
rng = random.Random(7)
times, cpu = [], []
for _ in range(repeat):
    name = f"t{rng.randrange(n):06d}"
    t0, c0 = time.perf_counter(), time.process_time()
    c = cat(); c.load_table(("bench", name))
    times.append((time.perf_counter() - t0) * 1000)
    cpu.append((time.process_time() - c0) * 1000)
    c.engine.dispose()
print(json.dumps({"ms": statistics.median(times), "all_ms": times,
                  "cpu_ms": statistics.median(cpu),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def inproc(code: str, target: str, size: int, repeat: int) -> dict[str, Any]:
    """In-process cold point reads: median ms over ``repeat`` new catalog objects."""
    _, peak, out, _, _ = run_once([PY, "-c", code, target, str(size), str(repeat)])
    result: dict[str, Any] = json.loads(out)
    result["peak_mib"] = peak
    return result


def peer_env(path: Path) -> dict[str, str]:
    """Environment that points the pyiceberg CLI at the SQLite catalog."""
    return {
        "PYICEBERG_CATALOG__BENCH__TYPE": "sql",
        "PYICEBERG_CATALOG__BENCH__URI": f"sqlite:///{path}/catalog.db",
        "PYICEBERG_CATALOG__BENCH__WAREHOUSE": f"file://{path}/wh",
        "PYTHONWARNINGS": "ignore",
    }


def compile_arco() -> str:
    """Byte-compile the arco tree the children import, as installing a wheel does.

    A source tree without bytecode (a fresh ``git archive``, or any tree under
    ``PYTHONDONTWRITEBYTECODE=1``, which some shells set) is compiled again by every
    new process: 0.1-0.2 s of CPU of each CLI figure, which no installed copy pays.
    """
    where = subprocess.run(
        [PY, "-c", "import arco, os; print(os.path.dirname(arco.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run([PY, "-m", "compileall", "-q", where], check=True, stdout=subprocess.DEVNULL)
    return where


def api_first_get(url: str, size: int, repeat: int) -> dict[str, Any]:
    """The first table read of a new API server: ms to answer it, server RSS after."""
    import httpx

    from api import SECRET, Server
    from arco.api.auth import mint_token

    folder = Path(url.removeprefix("file://"))
    token = mint_token(SECRET, tenant="default", workspace="default", roles=["reader"])
    path = f"/api/v1/namespaces/{NAMESPACE}/tables/t{size // 2:06d}"
    times, second, rss = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeat + 1):
            server = Server(folder, Path(tmp) / "server.log")
            server.start()
            try:
                assert server.proc is not None
                with httpx.Client(
                    base_url=server.base, headers={"Authorization": f"Bearer {token}"}
                ) as client:
                    client.get("/healthz")  # the connection, not the catalog
                    t0 = time.perf_counter()
                    first = client.get(path)
                    t1 = time.perf_counter()
                    client.get(path.replace(f"{size // 2:06d}", f"{size // 3:06d}"))
                    t2 = time.perf_counter()
                if first.status_code != 200:
                    raise RuntimeError(f"{path}: {first.status_code} {first.text[:200]}")
                status = Path(f"/proc/{server.proc.pid}/status").read_text()
                kib = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS"))
            finally:
                server.stop()
            if k:  # the first server warms the page cache and .pyc files
                times.append((t1 - t0) * 1000)
                second.append((t2 - t1) * 1000)
                rss.append(kib / 1024)
    return {
        "ms": statistics.median(times),
        "second_ms": statistics.median(second),
        "rss_mib": statistics.median(rss),
        "all_ms": times,
    }


def bench_size(url: str, peer: Path | None, size: int, repeat: int) -> dict[str, Any]:
    """Every figure for one catalog size."""
    one = f"{NAMESPACE}.t{size // 2:06d}"
    res: dict[str, Any] = {"tables": size}
    cases = {
        "show": ([ARCO, "--store", url, "table", "show", one], ["describe", one]),
        "list_json": (
            [ARCO, "--store", url, "--json", "table", "list", NAMESPACE],
            ["--output", "json", "list", NAMESPACE],
        ),
        "list_text": ([ARCO, "--store", url, "table", "list", NAMESPACE], ["list", NAMESPACE]),
    }
    for name, (argv, peer_args) in cases.items():
        res[f"arco_{name}"] = measure(argv, repeat)
        got = res[f"arco_{name}"]
        log(f"  arco {name}: {got['s']:.3f} s (CPU {got['cpu_s']:.3f}), {got['mib']:.0f} MiB")
        if peer is not None:
            res[f"peer_{name}"] = measure(
                [PYICEBERG, "--catalog", "bench", *peer_args], repeat, peer_env(peer)
            )
            log(
                f"  pyiceberg {name}: {res[f'peer_{name}']['s']:.3f} s, "
                f"{res[f'peer_{name}']['mib']:.0f} MiB"
            )
    res["arco_api_first"] = got = api_first_get(url, size, repeat)
    log(
        f"  arco API first get_table: {got['ms']:.1f} ms (next {got['second_ms']:.1f} ms), "
        f"server RSS {got['rss_mib']:.0f} MiB"
    )
    res["arco_get_cold"] = inproc(INPROC_ARCO, url, size, max(repeat, 5) * 4)
    got = res["arco_get_cold"]
    log(
        f"  arco in-process cold get_table: {got['ms']:.2f} ms (CPU {got['cpu_ms']:.2f}); "
        f"with the process's kept row groups {got['kept_ms']:.2f} ms"
    )
    if peer is not None:
        res["peer_get_cold"] = inproc(INPROC_PEER, str(peer), size, max(repeat, 5) * 4)
        got = res["peer_get_cold"]
        log(f"  pyiceberg in-process cold load_table: {got['ms']:.2f} ms (CPU {got['cpu_ms']:.2f})")
    return res


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,20000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache", default="/tmp/arco-cold-reads")
    parser.add_argument("--peer-max", type=int, default=20_000, help="largest pyiceberg catalog")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument(
        "--pairs",
        type=int,
        default=10,
        metavar="N",
        help="then N alternating pairs of the smallest and largest size's in-process "
        "cold get and API first get, and the median ratio of each (a sequential run "
        "compares two moments of a host whose speed drifts by 2x within a minute)",
    )
    parser.add_argument(
        "--src",
        metavar="DIR",
        help="run arco from this source tree (e.g. a `git archive` of an older commit)",
    )
    args = parser.parse_args(argv)
    if args.src:
        # Children inherit it: PYTHONPATH comes before the venv's editable install.
        os.environ["PYTHONPATH"] = str(Path(args.src).resolve())
    sizes = [int(s) for s in args.sizes.split(",") if s]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    env = environment()
    env["arco"] = compile_arco()
    log(f"cold reads, sizes {sizes}, repeat {args.repeat}, load {env['load_average']}")
    log(f"arco from {env['arco']} (byte-compiled)")
    built = {s: build(cache, s, not args.no_peer and s <= args.peer_max) for s in sizes}
    results = []
    for size in sizes:
        log(f"\n== {size:,} tables ==")
        url, peer = built[size]
        results.append(bench_size(url, peer, size, args.repeat))

    def cell(r: dict[str, Any], key: str) -> str:
        v = r.get(key)
        if v is None:
            return "-"
        if "second_ms" in v:
            return f"{v['ms']:.1f} ms / server {v['rss_mib']:.0f} MiB"
        if "ms" in v:
            # CPU beside wall: on a loaded machine the wall time of a read that waits
            # on I/O threads grows with the load, its CPU time far less.
            return f"{v['ms']:.2f} ms (CPU {v['cpu_ms']:.2f})"
        return f"{v['s']:.2f} s (CPU {v['cpu_s']:.2f}) / {v['mib']:.0f} MiB"

    rows = []
    for r in results:
        for name, label in (
            ("show", "table show"),
            ("list_json", "--json table list"),
            ("list_text", "table list (text)"),
            ("get_cold", "in-process cold get"),
            ("api_first", "API: first get_table"),
        ):
            rows.append(
                [f"{r['tables']:,}", label, cell(r, f"arco_{name}"), cell(r, f"peer_{name}")]
            )
    print_table(["tables", "operation", "arco", "pyiceberg"], rows, title="Cold reads (median)")
    pairs = bench_pairs(built[min(sizes)][0], built[max(sizes)][0], sizes, args.pairs)
    print(f"load average at end {load_average()}")
    if args.json:
        write_json(
            args.json,
            {"benchmark": "cold_reads", "environment": env, "results": results, "pairs": pairs},
        )
    return 0


def bench_pairs(small_url: str, big_url: str, sizes: list[int], n: int) -> dict[str, Any]:
    """``n`` alternating pairs (small, large) of each cold point read, and the median
    ratio large / small: the flatness goal of issue #12 measured so that both sides
    of a ratio see the same moment of the host."""
    out: dict[str, Any] = {}
    if n <= 0 or len(sizes) < 2:
        return out
    small, big = min(sizes), max(sizes)
    log(f"\n== {n} alternating pairs, {small:,} and {big:,} tables ==")
    for label, measure in (
        ("in-process cold get", lambda url, size: inproc(INPROC_ARCO, url, size, 20)["ms"]),
        ("API first get_table", lambda url, size: api_first_get(url, size, 5)["ms"]),
    ):
        ratios = []
        for i in range(n):
            # ABBA: which side goes first alternates too.
            order = [(small_url, small), (big_url, big)]
            if i % 2:
                order.reverse()
            got = {size: measure(url, size) for url, size in order}
            ratios.append(got[big] / got[small])
            log(f"  {label} pair {i}: {got[small]:.2f} / {got[big]:.2f} ms = {ratios[-1]:.2f}x")
        median = statistics.median(ratios)
        log(f"  {label}: median ratio {median:.2f} (goal <= 1.3), worst {max(ratios):.2f}")
        out[label] = {"ratios": ratios, "median": median}
    return out


if __name__ == "__main__":
    sys.exit(main())
