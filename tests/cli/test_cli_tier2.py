"""Tier-2 commands: ``events``, ``compact``, ``lineage``, ``search`` and ``log --domain``."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from arco.cli import compact as compact_cli
from arco.cli import events as events_cli
from arco.cli import lineage as lineage_cli
from arco.cli.main import app

SCOPE_ENV = ("ARCO_STORE", "ARCO_TENANT", "ARCO_WORKSPACE")
ULID_LEN = 26

runner = CliRunner()


def cli(*args: str, input: str | None = None) -> Result:
    """Invoke the app in-process, with no ARCO_* variable leaking in from outside."""
    return runner.invoke(app, list(args), env=dict.fromkeys(SCOPE_ENV), input=input)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh file:// store URL."""
    return f"file://{tmp_path / 'store'}"


def ok(store: str, *args: str, input: str | None = None) -> Result:
    """Run ``arco --store STORE ARGS`` and require success with a quiet stderr."""
    result = cli("--store", store, *args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stderr == ""
    return result


def js(store: str, *args: str, input: str | None = None) -> Any:
    """Run ``arco --store STORE --json ARGS`` and parse its output."""
    return json.loads(ok(store, "--json", *args, input=input).stdout)


def assert_user_error(result: Result, code: int = 1, contains: str = "") -> str:
    """Exactly one ``error:`` line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert contains.lower() in lines[0].lower(), lines[0]
    return lines[0]


def assert_usage_error(result: Result) -> None:
    """Exit status 2 without a traceback (Click's usage box or our one-line error)."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def write_jsonl(path: Path, items: Sequence[Mapping[str, Any] | str]) -> str:
    """One JSON object (or raw text) per line."""
    path.write_text(
        "".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items),
        encoding="utf-8",
    )
    return str(path)


def run_created(run_id: str, seq: int = 0) -> str:
    return json.dumps({"run_id": run_id, "seq": seq})


def by_domain(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["domain"]: d for d in report["domains"]}


def store_dir(store: str) -> Path:
    return Path(store.removeprefix("file://"))


def batch_objects(store: str, domain: str = "executions") -> list[Path]:
    return sorted(store_dir(store).rglob(f"ledger/{domain}/**/*.batch.json"))


MIXED_EVENTS: list[dict[str, Any]] = [
    {"type": "run.created", "payload": {"run_id": "r1", "seq": 0, "selection": "raw.*"}},
    {
        "type": "run.state_changed",
        "payload": {"run_id": "r1", "seq": 1, "state": "RUNNING"},
        "idempotency_key": "r1-running",
    },
    {
        "type": "materialization.recorded",
        "version": 1,
        "payload": {"asset": "raw.orders", "run_id": "r1", "row_count": 42},
    },
    {"type": "run.log", "payload": {"run_id": "r1", "lines": ["hello", "world"]}},
]


# ------------------------------------------------------------------------- events
def test_events_append_single(store: str) -> None:
    out = ok(
        store,
        "events",
        "append",
        "executions",
        "--type",
        "run.created",
        "--payload",
        run_created("r1"),
    ).stdout
    event_id = out.strip()
    assert len(event_id) == ULID_LEN
    assert out == event_id + "\n"

    env = js(
        store,
        "events",
        "append",
        "executions",
        "-t",
        "run.state_changed",
        "-p",
        '{"run_id": "r1", "seq": 1, "state": "RUNNING"}',
        "--version",
        "1",
        "--idempotency-key",
        "run-r1-1",
    )
    assert env["event_type"] == "run.state_changed"
    assert env["event_version"] == 1
    assert env["idempotency_key"] == "run-r1-1"
    assert env["payload"]["state"] == "RUNNING"
    assert env["event_id"] > event_id

    tail = js(store, "events", "tail", "executions")
    assert [e["event_id"] for e in tail] == [event_id, env["event_id"]]
    assert [e["event_id"] for e in js(store, "events", "tail", "executions", "-n", "1")] == [
        env["event_id"]
    ]
    human = ok(store, "events", "tail", "executions").stdout
    assert event_id in human
    assert "run.created" in human
    assert "No events in domain lineage" in ok(store, "events", "tail", "lineage").stdout


def test_events_append_file_with_upcast(store: str, tmp_path: Path) -> None:
    from arco.core.scope import Scope
    from arco.core.storage import open_store
    from arco.ledger.compactor import tier2_store

    lines: list[Mapping[str, Any] | str] = [*MIXED_EVENTS[:2], "   ", *MIXED_EVENTS[2:]]
    path = write_jsonl(tmp_path / "events.jsonl", lines)
    ids = ok(store, "events", "append", "executions", "--file", path).stdout.split()
    assert len(ids) == 4
    assert all(len(i) == ULID_LEN for i in ids)
    assert len(batch_objects(store)) == 1  # one batch object for the whole file

    tail = js(store, "events", "tail", "executions")
    assert [e["event_id"] for e in tail] == ids
    assert [(e["event_type"], e["event_version"]) for e in tail] == [
        ("run.created", 1),
        ("run.state_changed", 1),
        ("materialization.recorded", 1),  # stored as written...
        ("run.log", 1),
    ]
    assert tail[1]["idempotency_key"] == "r1-running"
    assert tail[0]["idempotency_key"].startswith("auto:")

    report = by_domain(js(store, "compact"))["executions"]
    assert report["objects"] == 1
    assert report["events"] == 4
    assert report["quarantined"] == 0
    assert report["duplicates"] == 0

    # ...and folded in the latest shape: v2 added inputs and metadata.
    dstore = tier2_store(open_store(store), Scope("default", "default"), "executions")
    snap = dstore.read()
    rows = dstore.load_table(snap, "materializations").to_pylist()
    assert len(rows) == 1
    assert rows[0]["asset"] == "raw.orders"
    assert rows[0]["row_count"] == 42
    assert json.loads(rows[0]["inputs_json"]) == []
    assert json.loads(rows[0]["metadata_json"]) == {}
    run = snap.state.table("runs")[("r1",)]
    assert run["state"] == "RUNNING"
    assert run["selection"] == "raw.*"


def test_events_append_file_json_and_stdin(store: str) -> None:
    text = "".join(json.dumps(e) + "\n" for e in MIXED_EVENTS)
    envelopes = js(store, "events", "append", "executions", "--file", "-", input=text)
    assert [e["event_type"] for e in envelopes] == [e["type"] for e in MIXED_EVENTS]
    assert envelopes[2]["event_version"] == 1
    assert envelopes[0]["event_version"] == 1
    assert js(store, "events", "append", "executions", "--file", "-", input="\n\n") == []
    assert len(js(store, "events", "tail", "executions")) == 4


def test_events_append_file_is_chunked(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arco.ledger.events import MAX_BATCH_EVENTS

    assert events_cli.BATCH_CHUNK == MAX_BATCH_EVENTS
    monkeypatch.setattr(events_cli, "BATCH_CHUNK", 2)
    items = [{"type": "run.created", "payload": {"run_id": f"r{i}", "seq": 0}} for i in range(5)]
    ids = ok(
        store, "events", "append", "executions", "-f", write_jsonl(tmp_path / "e.jsonl", items)
    ).stdout.split()
    assert len(ids) == 5
    assert len(batch_objects(store)) == 3
    assert [e["payload"]["run_id"] for e in js(store, "events", "tail", "executions")] == [
        f"r{i}" for i in range(5)
    ]

    # A bad line at the very end still writes nothing, not even the first chunks.
    bad = write_jsonl(tmp_path / "bad.jsonl", [*items, {"type": "run.created", "payload": {}}])
    assert_user_error(
        cli("--store", store, "events", "append", "executions", "-f", bad), contains="line 6"
    )
    assert len(batch_objects(store)) == 3


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (["--type", "no.such.type", "--payload", "{}"], "unknown event type"),
        (["--type", "run.created", "--payload", "{not json"], "not valid JSON"),
        (["--type", "run.created", "--payload", "[1, 2]"], "must be a JSON object"),
        (["--type", "run.created", "--payload", '{"run_id": "r1"}'], "seq"),
        (["--type", "run.created", "--payload", '{"run_id": "r", "seq": 0, "x": 1}'], "x"),
        (["--type", "run.created", "--payload", run_created("r"), "--version", "7"], "version"),
        (["--type", "lineage.edges_observed", "--payload", "{}"], "belongs to domain"),
        (
            ["--type", "run.created", "--payload", run_created("r"), "--idempotency-key", ""],
            "idempotency_key",
        ),
    ],
)
def test_events_append_bad_event(store: str, args: list[str], contains: str) -> None:
    assert_user_error(
        cli("--store", store, "events", "append", "executions", *args), contains=contains
    )
    assert js(store, "events", "tail", "executions") == []
    assert js(store, "events", "tail", "lineage") == []


def test_events_unknown_domain(store: str) -> None:
    assert_user_error(
        cli("--store", store, "events", "append", "nope", "-t", "run.created", "-p", "{}"),
        contains="unknown event domain",
    )
    assert_user_error(cli("--store", store, "events", "tail", "nope"), contains="nope")


@pytest.mark.parametrize(
    ("bad_line", "contains"),
    [
        ("{oops", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"payload": {}}', "'type'"),
        ('{"type": ["run.created"], "payload": {}}', "'type'"),
        ('{"type": "run.created"}', "'payload'"),
        ('{"type": "run.created", "payload": {"run_id": "r"}}', "seq"),
        ('{"type": "run.created", "payload": {"run_id": "r", "seq": 0}, "extra": 1}', "extra"),
        ('{"type": "run.created", "version": 9, "payload": {"run_id": "r", "seq": 0}}', "version"),
        ('{"type": "nope", "payload": {}}', "unknown event type"),
        (
            '{"type": "run.log", "payload": {"run_id": "r", "lines": ["x"]}, "occurred_at": "x"}',
            "occurred_at must be an ISO 8601 timestamp",
        ),
        # Not a string: refused, never turned into one (the API's schema takes strings).
        (
            '{"type": "run.created", "payload": {"run_id": "r", "seq": 0}, '
            '"occurred_at": 20260101}',
            "occurred_at must be an ISO 8601 timestamp",
        ),
        (
            '{"type": "run.created", "payload": {"run_id": "r", "seq": 0}, '
            '"occurred_at": "2026-01-01T00:00:00"}',
            "occurred_at must carry a time zone",
        ),
    ],
)
def test_events_append_bad_line(store: str, tmp_path: Path, bad_line: str, contains: str) -> None:
    good = json.dumps(MIXED_EVENTS[0])
    path = write_jsonl(tmp_path / "bad.jsonl", [good, "", bad_line, good])
    line = assert_user_error(
        cli("--store", store, "events", "append", "executions", "--file", path), contains=contains
    )
    assert line.startswith("error: line 3: ")
    assert js(store, "events", "tail", "executions") == []
    assert batch_objects(store) == []


def test_events_append_unreadable_file(store: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.jsonl")
    assert_user_error(
        cli("--store", store, "events", "append", "executions", "--file", missing),
        contains="cannot read",
    )
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(json.dumps(MIXED_EVENTS[0]).encode() + b"\n\xff\xfe\n")
    assert_user_error(
        cli("--store", store, "events", "append", "executions", "--file", str(binary)),
        contains="line 2: not UTF-8",
    )
    assert js(store, "events", "tail", "executions") == []


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--type", "run.created"],
        ["--payload", "{}"],
        ["--file", "x.jsonl", "--type", "run.created"],
        ["--file", "x.jsonl", "--idempotency-key", "k"],
        ["--type", "run.created", "--payload", "{}", "--version", "0"],
    ],
)
def test_events_append_usage_errors(store: str, args: list[str]) -> None:
    assert_usage_error(cli("--store", store, "events", "append", "executions", *args))


def test_events_types(store: str) -> None:
    types = {t["type"]: t for t in js(store, "events", "types")}
    assert types["materialization.recorded"] == {
        "type": "materialization.recorded",
        "domain": "executions",
        "versions": [1, 2],
        "latest": 2,
    }
    assert types["lineage.edges_observed"]["domain"] == "lineage"
    human = ok(store, "events", "types").stdout
    assert "run.state_changed" in human
    assert "1, 2" in human


# ------------------------------------------------------------------------ compact
def test_compact_counts_duplicates_once(store: str) -> None:
    for _ in range(2):
        ok(
            store,
            "events",
            "append",
            "executions",
            "-t",
            "run.created",
            "-p",
            run_created("r1"),
            "--idempotency-key",
            "same-key",
        )
    ok(store, "events", "append", "executions", "-t", "run.created", "-p", run_created("r2"))
    report = js(store, "compact")
    assert set(report) == {"domains", "search"}
    executions = by_domain(report)["executions"]
    assert executions["objects"] == 3
    assert executions["events"] == 2
    assert executions["duplicates"] == 1
    assert executions["quarantined"] == 0
    assert executions["commits"] == 1
    assert executions["version"] == 1
    assert len(executions["watermark"]) == ULID_LEN
    lineage = by_domain(report)["lineage"]
    assert (lineage["objects"], lineage["events"], lineage["version"]) == (0, 0, 0)
    assert lineage["watermark"] is None
    assert report["search"] == {"catalog_version": 0}

    # The same key again, after compaction: a duplicate of what is already folded.
    ok(
        store,
        "events",
        "append",
        "executions",
        "-t",
        "run.created",
        "-p",
        run_created("r1"),
        "--idempotency-key",
        "same-key",
    )
    out = ok(store, "compact").stdout.splitlines()
    assert out[0].startswith("executions: 1 object, 0 events, 1 duplicate, 0 quarantined;")
    assert "version 2, watermark " in out[0]
    assert out[1] == "lineage: 0 objects, 0 events, 0 duplicates, 0 quarantined; version 0, " + (
        "no watermark"
    )
    # The audit trail is a ledger domain too: the first compaction folded the first
    # append's record; this one folds the records of that compaction and the second
    # append (its own record comes after it).
    assert out[2].startswith("audit: 2 objects, 2 events, 0 duplicates, 0 quarantined; version 2,")
    assert out[3] == "search: index at catalog version 0"

    again = by_domain(js(store, "compact"))["executions"]
    assert (again["objects"], again["events"], again["duplicates"], again["commits"]) == (
        0,
        0,
        0,
        0,
    )
    assert again["version"] == 2

    history = js(store, "log", "--domain", "executions")
    assert [h["version"] for h in history] == [2, 1]
    assert history[-1]["operation"]["ops"][0] == {"op": "compact", "objects": 3, "events": 2}
    assert "compact" in ok(store, "log", "--domain", "executions").stdout


def test_compact_one_domain_and_observed_lineage(store: str) -> None:
    edge = {"source": "raw.orders", "target": "stg.orders", "run_id": "r1", "columns": ["id"]}
    ok(
        store,
        "events",
        "append",
        "lineage",
        "-t",
        "lineage.edges_observed",
        "-p",
        json.dumps({"edges": [edge]}),
    )
    ok(store, "events", "append", "executions", "-t", "run.created", "-p", run_created("r1"))
    report = js(store, "compact", "--domain", "lineage")
    assert [d["domain"] for d in report["domains"]] == ["lineage"]
    assert report["domains"][0]["events"] == 1
    assert report["search"] is None
    (listed,) = js(store, "lineage", "list")
    assert listed["source"] == "raw.orders"
    assert listed["declared"] is False
    assert listed["observations"] == 1
    assert listed["run_id"] == "r1"
    assert listed["columns"] == ["id"]
    # executions was left alone
    assert by_domain(js(store, "compact", "--domain", "executions"))["executions"]["events"] == 1

    ok(store, "namespace", "create", "raw")
    only_search = js(store, "compact", "--domain", "search")
    assert only_search == {"domains": [], "search": {"catalog_version": 1}}
    assert js(store, "log", "--domain", "search")[0]["operation"]["ops"][0]["op"] == "index"


def test_compact_window_decides_what_is_late(store: str) -> None:
    from datetime import UTC, datetime, timedelta

    from arco.core.scope import Scope
    from arco.core.storage import open_store
    from arco.ledger.events import build_envelope
    from arco.ledger.log import Ledger, ulid_floor

    ledger = Ledger(open_store(store), Scope("default", "default"))

    def write_late(run_id: str, minutes: int) -> None:
        """A ledger object whose id is ``minutes`` old, as a writer with a slow clock makes."""
        when = datetime.now(UTC) - timedelta(minutes=minutes)
        env = build_envelope(
            "executions",
            "run.created",
            {"run_id": run_id, "seq": 0},
            event_id=ulid_floor(when),
            occurred_at=when,
        )
        key = ledger.keys.ledger_event("executions", when, env.event_id)
        ledger.store.put(key, json.dumps(env.to_dict()).encode(), "create")

    ok(store, "events", "append", "executions", "-t", "run.created", "-p", run_created("r1"))
    ok(store, "compact")
    write_late("r2", 60)
    inside = by_domain(js(store, "compact", "--window", "7200"))["executions"]
    assert (inside["events"], inside["quarantined"]) == (1, 0)
    write_late("r3", 60)
    out = ok(store, "compact", "--window", "60").stdout
    assert "executions: 1 object, 0 events, 0 duplicates, 1 quarantined (late: 1);" in out
    assert js(store, "log", "--domain", "executions", "-n", "1")[0]["version"] == 3


def test_compact_usage_and_user_errors(store: str) -> None:
    assert_user_error(cli("--store", store, "compact", "--domain", "nope"), contains="nope")
    assert_usage_error(cli("--store", store, "compact", "--interval", "1"))
    assert_usage_error(cli("--store", store, "compact", "--max-loops", "1"))
    assert_usage_error(cli("--store", store, "compact", "--window", "-1"))
    assert_usage_error(cli("--store", store, "compact", "--loop", "--interval", "-1"))


def test_compact_loop(store: str) -> None:
    ok(store, "events", "append", "executions", "-t", "run.created", "-p", run_created("r1"))
    out = ok(store, "compact", "--loop", "--interval", "0.1", "--max-loops", "2").stdout
    lines = out.splitlines()
    # the second pass found nothing new, so only the first pass printed (executions,
    # lineage, audit, search)
    assert len(lines) == 4, out
    assert all("pass 1]" in line for line in lines)
    assert "executions: 1 object, 1 event," in lines[0]

    ok(store, "events", "append", "executions", "-t", "run.created", "-p", run_created("r2"))
    passes = [
        json.loads(line)
        for line in ok(
            store, "--json", "compact", "--loop", "--interval", "0.1", "--max-loops", "2"
        ).stdout.splitlines()
    ]
    assert [p["pass"] for p in passes] == [1, 2]
    assert [by_domain(p)["executions"]["events"] for p in passes] == [1, 0]
    assert [by_domain(p)["executions"]["version"] for p in passes] == [2, 2]


def test_compact_loop_stops_cleanly_on_ctrl_c(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    def interrupt(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(compact_cli, "_sleep", interrupt)
    result = cli("--store", store, "compact", "--loop", "--interval", "5")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stderr == "stopped after 2 passes\n"
    assert len(slept) == 2
    assert all(0 < s <= 5 for s in slept)


def test_compact_progress_bar(store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        ok(store, "events", "append", "executions", "-t", "run.created", "-p", run_created(f"r{i}"))
    buffer = io.StringIO()
    monkeypatch.setattr(compact_cli, "COMPACTOR_OPTIONS", {"max_objects": 2})
    monkeypatch.setattr(
        compact_cli,
        "_progress_console",
        lambda: Console(file=buffer, force_terminal=True, width=100),
    )
    report = by_domain(js(store, "compact"))["executions"]
    assert (report["objects"], report["events"], report["commits"]) == (5, 5, 3)
    drawn = buffer.getvalue()
    assert "compacting executions" in drawn
    assert "lineage" not in drawn  # nothing pending there: no bar


def test_compact_no_progress_bar_off_a_terminal(store: str) -> None:
    assert compact_cli._progress_console() is None  # pytest captures stderr
    bar = compact_cli._ProgressBar(None)
    bar("executions", 1, 10)
    bar.close()
    assert bar.progress is None


# ------------------------------------------------------------------------ lineage
def chain(store: str, *nodes: str) -> None:
    for source, target in itertools.pairwise(nodes):
        ok(store, "lineage", "add", source, target)


def test_lineage_add_list_remove(store: str) -> None:
    out = ok(store, "lineage", "add", "raw.orders", "stg.orders", "-c", "id", "-c", "amount").stdout
    assert out == "Declared edge raw.orders -> stg.orders (derives) with columns amount, id\n"
    edge = js(store, "lineage", "add", "stg.orders", "mart.revenue", "--type", "aggregates")
    assert edge["edge_type"] == "aggregates"
    assert edge["declared"] is True
    assert edge["observed"] is False
    # idempotent, and columns accumulate
    again = js(store, "lineage", "add", "raw.orders", "stg.orders", "--column", "status")
    assert again["columns"] == ["amount", "id", "status"]

    listed = js(store, "lineage", "list")
    assert [(e["source"], e["target"], e["edge_type"]) for e in listed] == [
        ("raw.orders", "stg.orders", "derives"),
        ("stg.orders", "mart.revenue", "aggregates"),
    ]
    assert json.loads(ok(store, "lineage", "list", "--json").stdout) == listed
    human = ok(store, "lineage", "list").stdout
    assert "raw.orders" in human
    assert "aggregates" in human

    assert_user_error(
        cli("--store", store, "lineage", "remove", "stg.orders", "mart.revenue"),
        contains="no declared edge",
    )
    removed = js(store, "lineage", "remove", "stg.orders", "mart.revenue", "-t", "aggregates")
    assert removed == {
        "removed": "edge",
        "source": "stg.orders",
        "target": "mart.revenue",
        "edge_type": "aggregates",
    }
    assert [e["target"] for e in js(store, "lineage", "list")] == ["stg.orders"]
    assert "Removed edge raw.orders -> stg.orders" in (
        ok(store, "lineage", "remove", "raw.orders", "stg.orders").stdout
    )
    assert js(store, "lineage", "list") == []
    assert "No lineage edges" in ok(store, "lineage", "list").stdout
    history = js(store, "log", "--domain", "lineage")
    assert history[0]["operation"]["ops"][0]["op"] == "remove_edge"
    assert "declare_edge" in ok(store, "log", "--domain", "lineage").stdout


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (["a.b", "a.b"], "two different nodes"),
        (["../x", "a.b"], "lineage node"),
        (["a.b", "c.d", "--type", "bad type!"], "edge_type"),
    ],
)
def test_lineage_add_errors(store: str, args: list[str], contains: str) -> None:
    assert_user_error(cli("--store", store, "lineage", "add", *args), contains=contains)
    assert js(store, "lineage", "list") == []


def test_lineage_show_formats(store: str) -> None:
    chain(store, "raw.orders", "stg.orders", "mart.revenue")

    text = ok(store, "lineage", "show", "stg.orders").stdout
    assert text.splitlines()[0] == "stg.orders"
    assert "<- raw.orders" in text
    assert "-> mart.revenue" in text

    tree = js(store, "lineage", "show", "stg.orders")  # global --json implies json
    assert tree["root"] == "stg.orders"
    assert tree["direction"] == "both"
    assert tree["depth"] == 5
    assert {(n["name"], n["direction"]) for n in tree["nodes"]} == {
        ("raw.orders", "upstream"),
        ("mart.revenue", "downstream"),
    }
    assert len(tree["edges"]) == 2
    as_format = json.loads(ok(store, "lineage", "show", "stg.orders", "--format", "json").stdout)
    assert as_format == tree

    dot = ok(store, "lineage", "show", "stg.orders", "-f", "dot").stdout
    assert dot.startswith("digraph")
    assert '"raw.orders" -> "stg.orders"' in dot
    assert '"stg.orders" -> "mart.revenue"' in dot

    mermaid = ok(store, "lineage", "show", "stg.orders", "--format", "mermaid").stdout
    assert mermaid.startswith("graph")
    assert mermaid.count("-->") == 2
    assert '"mart.revenue"' in mermaid

    assert_usage_error(cli("--store", store, "--json", "lineage", "show", "x.y", "-f", "dot"))
    assert_usage_error(cli("--store", store, "lineage", "show", "x.y", "-f", "svg"))
    lonely = ok(store, "lineage", "show", "nowhere.at_all").stdout
    assert "no lineage" in lonely


def test_lineage_show_direction_and_depth(store: str) -> None:
    chain(store, "n.a", "n.b", "n.c", "n.d", "n.e")

    def names(*args: str) -> list[str]:
        return [n["name"] for n in js(store, "lineage", "show", *args)["nodes"]]

    assert names("n.a", "--downstream", "--depth", "1") == ["n.b"]
    assert names("n.a", "--downstream", "--depth", "2") == ["n.b", "n.c"]
    assert names("n.a", "--downstream") == ["n.b", "n.c", "n.d", "n.e"]
    assert names("n.a", "--upstream") == []
    assert names("n.e", "--upstream", "-d", "3") == ["n.d", "n.c", "n.b"]
    assert names("n.c", "--depth", "1") == ["n.d", "n.b"]  # downstream sorts before upstream
    limited = js(store, "lineage", "show", "n.c", "--depth", "1", "--downstream")
    assert limited["direction"] == "downstream"
    assert [(e["source"], e["target"]) for e in limited["edges"]] == [("n.c", "n.d")]
    text = ok(store, "lineage", "show", "n.a", "--downstream", "--depth", "2").stdout
    assert "n.c  (depth 2)" in text
    assert "n.d" not in text

    assert_usage_error(cli("--store", store, "lineage", "show", "n.a", "--depth", "0"))
    assert_usage_error(cli("--store", store, "lineage", "show", "n.a", "--depth", "51"))
    assert names("n.a", "--depth", "50", "--downstream") == ["n.b", "n.c", "n.d", "n.e"]
    result = cli("--store", store, "lineage", "show", "n.a", "--upstream", "--downstream")
    assert_user_error(result, code=2, contains="not both")


def test_lineage_depth_limits_match_the_library() -> None:
    from arco.discovery import lineage

    assert lineage_cli.DEFAULT_DEPTH == lineage.DEFAULT_DEPTH
    assert lineage_cli.MAX_DEPTH == lineage.MAX_DEPTH


def test_compact_domains_match_the_library() -> None:
    from arco.ledger.compactor import DEFAULT_WINDOW, STATE_CLASSES

    assert tuple(STATE_CLASSES) == compact_cli.LEDGER_DOMAINS
    assert DEFAULT_WINDOW.total_seconds() == compact_cli.DEFAULT_WINDOW


# ------------------------------------------------------------------------- search
def make_catalog(store: str) -> None:
    ok(store, "namespace", "create", "raw", "-d", "Landing zone")
    ok(
        store,
        "table",
        "create",
        "raw.orders",
        "-c",
        "order_id:long:not-null",
        "-c",
        "amount:decimal(12,2)",
        "-c",
        "customer_email:string",
        "-d",
        "Every customer order",
    )
    ok(store, "table", "create", "raw.customers", "-c", "customer_id:long", "-c", "email:string")
    ok(store, "namespace", "create", "analytics")
    ok(
        store,
        "table",
        "create",
        "analytics.daily_orders",
        "-c",
        "day:date",
        "-c",
        "orders:long",
        "-p",
        "owner=finance",
    )


def test_search_finds_a_created_table(store: str) -> None:
    make_catalog(store)
    found = js(store, "search", "orders")
    assert set(found) == {"hits", "total", "next_page_token"}
    top = found["hits"][0]
    assert (top["kind"], top["qualified_name"]) == ("table", "raw.orders")
    assert top["description"] == "Every customer order"
    # ties (the column analytics.daily_orders.orders) rank tables before columns
    assert top["score"] >= found["hits"][1]["score"]
    assert found["total"] == len(found["hits"])
    assert found["next_page_token"] is None
    assert {"kind", "name", "qualified_name", "namespace", "description", "score"} <= set(top)

    human = ok(store, "search", "orders").stdout
    assert "raw.orders" in human
    assert "Every customer order" in human
    assert f"of {found['total']} hits" in human

    assert "No matches for 'zebra'" in ok(store, "search", "zebra").stdout
    assert js(store, "search", "zebra") == {"hits": [], "total": 0, "next_page_token": None}


def test_search_filters_and_pages(store: str) -> None:
    make_catalog(store)
    columns = js(store, "search", "email", "--kind", "column")["hits"]
    assert {h["qualified_name"] for h in columns} == {
        "raw.orders.customer_email",
        "raw.customers.email",
    }
    assert columns[0]["qualified_name"] == "raw.customers.email"  # exact name first
    assert js(store, "search", "email", "--kind", "table")["total"] == 0

    namespaces = js(store, "search", "raw", "--kind", "namespace")["hits"]
    assert [h["qualified_name"] for h in namespaces] == ["raw"]

    scoped = js(store, "search", "orders", "--namespace", "analytics")["hits"]
    assert scoped
    assert all(h["qualified_name"].startswith("analytics.") for h in scoped)
    assert scoped[0]["qualified_name"] == "analytics.daily_orders.orders"  # exact column name

    everything = js(store, "search", "orders")
    assert everything["total"] >= 3
    first = js(store, "search", "orders", "--limit", "1")
    assert first["total"] == everything["total"]
    assert first["hits"] == everything["hits"][:1]
    assert first["next_page_token"]
    second = js(store, "search", "orders", "-n", "1", "--page-token", first["next_page_token"])
    assert second["hits"] == everything["hits"][1:2]
    human = ok(store, "search", "orders", "--limit", "1").stdout
    assert f"--page-token {first['next_page_token']}" in human

    by_property = js(store, "search", "finance")["hits"]
    assert [h["qualified_name"] for h in by_property] == ["analytics.daily_orders"]


def test_readme_prefix_search(store: str) -> None:
    """``arco search ord --kind table`` (the README's example) once raised ArrowIndexError."""
    ok(store, "namespace", "create", "sales")
    ok(store, "table", "create", "sales.orders", "-c", "order_id:string")
    ok(store, "table", "create", "sales.daily_revenue", "-c", "amount:double")
    ok(store, "table", "create", "sales.customers", "-c", "id:string")
    found = js(store, "search", "ord", "--kind", "table")["hits"]
    assert [h["qualified_name"] for h in found] == ["sales.orders"]
    assert "sales.orders" in ok(store, "search", "ord", "--kind", "table").stdout
    # Prefixes of the words in a name find it too.
    rev = js(store, "search", "rev")["hits"]
    assert [h["qualified_name"] for h in rev] == ["sales.daily_revenue"]
    customer = js(store, "search", "customer", "--kind", "table")["hits"]
    assert [h["qualified_name"] for h in customer] == ["sales.customers"]


def test_search_follows_catalog_changes(store: str) -> None:
    make_catalog(store)
    assert js(store, "search", "orders")["hits"][0]["qualified_name"] == "raw.orders"
    ok(store, "table", "rename", "raw.orders", "purchases")
    hits = js(store, "search", "purchases")["hits"]
    assert hits[0]["qualified_name"] == "raw.purchases"
    assert "raw.orders" not in {h["qualified_name"] for h in js(store, "search", "orders")["hits"]}
    version = js(store, "log", "-n", "1")[0]["version"]
    assert js(store, "compact", "--domain", "search")["search"] == {"catalog_version": version}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["   "], 1),
        (["x" * 513], 1),
        (["x", "--page-token", "abc"], 1),
        (["x", "--kind", "view"], 2),
        (["x", "--limit", "0"], 2),
        (["x", "--limit", "1001"], 2),
        ([], 2),
    ],
)
def test_search_errors(store: str, args: list[str], code: int) -> None:
    result = cli("--store", store, "search", *args)
    if code == 1:
        assert_user_error(result)
    else:
        assert_usage_error(result)


# ---------------------------------------------------------------------- tenants
def test_tenants_are_isolated(store: str) -> None:
    a = ("--tenant", "a")
    b = ("--tenant", "b")
    ok(store, *a, "namespace", "create", "raw")
    ok(store, *a, "table", "create", "raw.orders", "-c", "id:long")
    ok(store, *a, "lineage", "add", "raw.orders", "mart.revenue")
    ok(store, *a, "events", "append", "executions", "-t", "run.created", "-p", run_created("r"))
    assert js(store, *a, "search", "orders")["hits"][0]["qualified_name"] == "raw.orders"
    assert len(js(store, *a, "lineage", "list")) == 1

    assert js(store, *b, "search", "orders") == {"hits": [], "total": 0, "next_page_token": None}
    assert js(store, *b, "search", "raw")["total"] == 0
    assert js(store, *b, "lineage", "list") == []
    assert js(store, *b, "lineage", "show", "raw.orders")["nodes"] == []
    assert js(store, *b, "events", "tail", "executions") == []
    assert by_domain(js(store, *b, "compact"))["executions"]["events"] == 0
    assert by_domain(js(store, *a, "compact"))["executions"]["events"] == 1
    # and b's writes stay in b
    ok(store, *b, "lineage", "add", "x.y", "x.z")
    assert [e["source"] for e in js(store, *a, "lineage", "list")] == ["raw.orders"]


# --------------------------------------------------------------------------- log
def test_log_domains(store: str) -> None:
    for domain in ("catalog", "lineage", "executions", "search"):
        assert js(store, "log", "--domain", domain) == []
        assert "No commits" in ok(store, "log", "--domain", domain).stdout
    assert_user_error(
        cli("--store", store, "log", "--domain", "nope"), contains="known domains: catalog"
    )


# ------------------------------------------------------------------ subprocesses
def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCOPE_ENV}
    env.update(extra)
    return env


#: pyarrow's thread pool sometimes aborts the interpreter at exit after a threaded
#: Parquet read (apache/arrow#34314): the command has finished and printed everything,
#: then the process dies with SIGABRT and this line on stderr. Tolerated only where
#: a success is expected, so the tests keep checking what the CLI itself does.
PYARROW_EXIT_ABORT = "terminate called without an active exception"


def _forgive_exit_abort(returncode: int, stderr: str) -> tuple[int, str]:
    lines = stderr.splitlines()
    if returncode == -signal.SIGABRT and lines and lines[-1] == PYARROW_EXIT_ABORT:
        return 0, "".join(line + "\n" for line in lines[:-1])
    return returncode, stderr


def arco(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m arco.cli.main ARGS`` in a real process."""
    return subprocess.run(
        [sys.executable, "-m", "arco.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def arco_ok(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Like :func:`arco`, requiring success (see :data:`PYARROW_EXIT_ABORT`)."""
    proc = arco(*args, cwd=cwd, env=env)
    proc.returncode, proc.stderr = _forgive_exit_abort(proc.returncode, proc.stderr)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_subprocess_tier2_flow(tmp_path: Path) -> None:
    env = _env(ARCO_STORE=f"file://{tmp_path / 'store'}", ARCO_TENANT="acme")
    path = write_jsonl(tmp_path / "events.jsonl", MIXED_EVENTS)
    proc = arco_ok("events", "append", "executions", "--file", path, cwd=tmp_path, env=env)
    assert len(proc.stdout.split()) == 4

    bad = write_jsonl(tmp_path / "bad.jsonl", [MIXED_EVENTS[0], {"type": "run.created"}])
    proc = arco("events", "append", "executions", "--file", bad, cwd=tmp_path, env=env)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: line 2: ")
    assert len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr

    proc = arco(
        "events", "append", "executions", "-t", "run.created", "-p", "{", cwd=tmp_path, env=env
    )
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr

    for args in (
        ["namespace", "create", "raw"],
        ["table", "create", "raw.orders", "-c", "id:long"],
        ["lineage", "add", "raw.orders", "mart.revenue"],
    ):
        arco_ok(*args, cwd=tmp_path, env=env)

    proc = arco_ok("--json", "compact", cwd=tmp_path, env=env)
    report = json.loads(proc.stdout)
    assert by_domain(report)["executions"]["events"] == 4
    assert report["search"] == {"catalog_version": 2}
    assert proc.stderr == ""  # no progress bar off a terminal

    proc = arco_ok("--json", "search", "orders", cwd=tmp_path, env=env)
    assert json.loads(proc.stdout)["hits"][0]["qualified_name"] == "raw.orders"

    proc = arco_ok("lineage", "show", "raw.orders", "--format", "dot", cwd=tmp_path, env=env)
    assert '"raw.orders" -> "mart.revenue"' in proc.stdout

    arco_ok("verify", cwd=tmp_path, env=env)


def test_subprocess_compact_loop_stops_on_sigint(tmp_path: Path) -> None:
    env = _env(ARCO_STORE=f"file://{tmp_path / 'store'}", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "arco.cli.main", "compact", "--loop", "--interval", "0.2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a background shell may start us with SIGINT ignored; the child must see it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        first_pass = [proc.stdout.readline() for _ in range(4)]
        assert "pass 1] executions:" in first_pass[0]
        assert "pass 1] audit:" in first_pass[2]
        assert "pass 1] search: index at catalog version 0" in first_pass[3]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    code, err = _forgive_exit_abort(proc.returncode, err)
    assert code == 0, err
    assert "Traceback" not in err
    assert err.startswith("stopped after ")
    assert "Traceback" not in out
