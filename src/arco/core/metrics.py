"""Every Prometheus metric Arco exports, registered in one place.

The metrics live on one registry, :data:`REGISTRY`, shared by everything in the
process (the API adds its per-app HTTP metrics next to it on ``/metrics``).
Label values are small closed sets — domain names, states, backend schemes,
outcome words — never tenants, keys or ids, so a multi-tenant server's series
count does not grow with its tenants.

Short-lived processes (``arco compact``, ``arco verify`` from a CronJob) hand
their numbers on with :func:`export_from_env`: to a Pushgateway
(``ARCO_PUSHGATEWAY_URL``) and/or a node-exporter textfile (``ARCO_METRICS_FILE``).
``docs/operations.md`` says which alert and which SLO reads each metric.

The metrics are built on first use (module ``__getattr__``): ``prometheus_client``
costs ~18 ms to import, which a CLI command that never counts anything should not pay.
"""

# ruff: noqa: N806 - the metrics keep their module-level names inside _build
from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY: CollectorRegistry
COMMIT_SECONDS: Histogram
COMMITS: Counter
CAS_CONFLICTS: Counter
LEASE_WAIT_SECONDS: Histogram
LEASE_TAKEOVERS: Counter
LEASE_TIMEOUTS: Counter
COMPACTION_LAG: Gauge
COMPACTION_BACKLOG: Gauge
COMPACTION_LAST_SUCCESS: Gauge
COMPACTED_EVENTS: Counter
QUARANTINED: Counter
VERIFY_OK: Gauge
VERIFY_PROBLEMS: Gauge
VERIFY_LAST_RUN: Gauge
VERIFY_RUNS: Counter
RUNS: Counter
RUN_SECONDS: Histogram
TASKS: Counter
TASK_SECONDS: Histogram
CHECK_FAILURES: Counter
SIGNED_URLS: Counter
RATE_LIMITED: Counter
QUOTA_REJECTIONS: Counter
AUDIT_RECORDS: Counter
AUDIT_WRITE_ERRORS: Counter
STORAGE_ERRORS: Counter


_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


def _build() -> dict[str, Any]:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    REGISTRY = CollectorRegistry(auto_describe=True)

    # ----------------------------------------------------------------- commits
    COMMIT_SECONDS = Histogram(
        "arco_commit_seconds",
        "Time of one domain commit, lock to release (Tier 1 and the compactor's Tier-2 folds)",
        ["domain"],
        buckets=_FAST,
        registry=REGISTRY,
    )
    COMMITS = Counter(
        "arco_commits",
        "Domain commits by outcome: committed, noop (nothing to write), failed",
        ["domain", "outcome"],
        registry=REGISTRY,
    )
    CAS_CONFLICTS = Counter(
        "arco_commit_cas_conflicts",
        "Pointer compare-and-swap races lost (each one retried)",
        ["domain"],
        registry=REGISTRY,
    )
    # ------------------------------------------------------------------ leases
    LEASE_WAIT_SECONDS = Histogram(
        "arco_lease_wait_seconds",
        "Time spent acquiring a lease lock (domain commits, run ownership)",
        ["kind"],
        buckets=_FAST,
        registry=REGISTRY,
    )
    LEASE_TAKEOVERS = Counter(
        "arco_lease_takeovers",
        "Expired leases taken over from a holder that stopped renewing",
        ["kind"],
        registry=REGISTRY,
    )
    LEASE_TIMEOUTS = Counter(
        "arco_lease_timeouts",
        "Lease acquisitions that gave up waiting (a held or stuck lease)",
        ["kind"],
        registry=REGISTRY,
    )
    # -------------------------------------------------------------- compaction
    COMPACTION_LAG = Gauge(
        "arco_compaction_lag_seconds",
        "Age of the oldest uncompacted ledger object, as last seen by a compactor",
        ["domain"],
        registry=REGISTRY,
    )
    COMPACTION_BACKLOG = Gauge(
        "arco_compaction_backlog_objects",
        "Ledger objects waiting to be folded, as last seen by a compactor",
        ["domain"],
        registry=REGISTRY,
    )
    COMPACTION_LAST_SUCCESS = Gauge(
        "arco_compaction_last_success_timestamp_seconds",
        "Unix time of the last compaction run that finished",
        ["domain"],
        registry=REGISTRY,
    )
    COMPACTED_EVENTS = Counter(
        "arco_compacted_events", "Events folded by the compactor", ["domain"], registry=REGISTRY
    )
    QUARANTINED = Counter(
        "arco_quarantined_objects",
        "Ledger objects quarantined by the compactor (late, future, invalid)",
        ["domain", "reason"],
        registry=REGISTRY,
    )
    # ------------------------------------------------------------------ verify
    VERIFY_OK = Gauge(
        "arco_verify_ok",
        "1 if the last verify found no problem, 0 if it found any",
        registry=REGISTRY,
    )
    VERIFY_PROBLEMS = Gauge(
        "arco_verify_problems", "Problems found by the last verify", registry=REGISTRY
    )
    VERIFY_LAST_RUN = Gauge(
        "arco_verify_last_run_timestamp_seconds",
        "Unix time of the last verify that ran to the end",
        registry=REGISTRY,
    )
    VERIFY_RUNS = Counter(
        "arco_verify_runs", "Verify runs by result (ok, failed)", ["result"], registry=REGISTRY
    )
    # -------------------------------------------------------------- runs/tasks
    RUNS = Counter("arco_runs", "Runs that reached a terminal state", ["state"], registry=REGISTRY)
    RUN_SECONDS = Histogram(
        "arco_run_seconds",
        "Run duration by final state",
        ["state"],
        buckets=_SLOW,
        registry=REGISTRY,
    )
    TASKS = Counter(
        "arco_tasks", "Task attempts that reached a state", ["state"], registry=REGISTRY
    )
    TASK_SECONDS = Histogram(
        "arco_task_seconds",
        "Task attempt duration by outcome",
        ["state"],
        buckets=_SLOW,
        registry=REGISTRY,
    )
    CHECK_FAILURES = Counter(
        "arco_check_failures",
        "Checks that failed: a task whose asset code raised, or a verify problem",
        ["kind"],
        registry=REGISTRY,
    )
    # ------------------------------------------------------------- API policy
    SIGNED_URLS = Counter("arco_signed_urls", "Signed GET URLs minted", ["kind"], registry=REGISTRY)
    RATE_LIMITED = Counter(
        "arco_rate_limited",
        "Requests refused by the per-process rate limiter",
        ["kind"],
        registry=REGISTRY,
    )
    QUOTA_REJECTIONS = Counter(
        "arco_quota_rejections",
        "Requests refused by a tenant quota (enforced through the store)",
        ["quota"],
        registry=REGISTRY,
    )
    AUDIT_RECORDS = Counter(
        "arco_audit_records", "Audit records written, by outcome", ["outcome"], registry=REGISTRY
    )
    AUDIT_WRITE_ERRORS = Counter(
        "arco_audit_write_errors",
        "Audit batches that could not be written (the records are logged instead)",
        registry=REGISTRY,
    )
    # ----------------------------------------------------------------- storage
    STORAGE_ERRORS = Counter(
        "arco_storage_errors",
        "Storage calls that failed (not-found and lost preconditions are not errors)",
        ["backend", "op"],
        registry=REGISTRY,
    )
    return {k: v for k, v in locals().items() if k[:1].isupper()}


_BUILD_LOCK = threading.Lock()


def __getattr__(name: str) -> Any:
    if name[:1].isupper():
        with _BUILD_LOCK:
            if "REGISTRY" not in globals():
                globals().update(_build())
        if name in globals():
            return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def export_from_env(job: str) -> None:
    """Hand this process's metrics on, where the environment says (never raises).

    ``ARCO_PUSHGATEWAY_URL`` pushes :data:`REGISTRY` to a Pushgateway under
    ``job``; ``ARCO_METRICS_FILE`` writes it in the node-exporter textfile format.
    For short-lived commands whose process is gone before Prometheus could scrape it.
    """
    gateway = os.environ.get("ARCO_PUSHGATEWAY_URL")
    path = os.environ.get("ARCO_METRICS_FILE")
    if not gateway and not path:
        return
    from prometheus_client import push_to_gateway, write_to_textfile

    registry = __getattr__("REGISTRY")
    try:
        if gateway:
            push_to_gateway(gateway, job=job, registry=registry, timeout=10)
        if path:
            write_to_textfile(path, registry)
    except Exception as exc:  # metrics must never fail the command they describe
        print(f"arco: could not export metrics: {exc}", file=sys.stderr)
