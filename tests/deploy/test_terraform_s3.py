"""deploy/terraform/s3: the bucket and one IAM role per component (ADR 022).

No Terraform binary (nor the AWS provider) installs in CI, so the files are parsed
with python-hcl2 and checked against the access table of docs/operations.md
("Bucket and identities") in both directions; every key ``arco.core.keys``
can build must fall under a row; and the components' own code, run against a store
that refuses what the role's grants would refuse on S3, must need nothing more.
"""

from __future__ import annotations

import fnmatch
import inspect
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from arco.core.errors import ObjectNotFoundError, StorageError
from arco.core.storage import ObjectMeta, ObjectStore, PutMode
from arco.core.storage.base import Match
from conftest import require_or_skip  # tests/conftest.py: fails under ARCO_REQUIRE_ALL=1

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _unquote(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of string literals."""
    return value.strip('"') if isinstance(value, str) else value


_S3 = DEPLOY / "terraform" / "s3"
_ROLES = ("api", "compactor", "gc", "signer")
#: Statement ids of the role policies: each names one operation of the access table.
_OPS = {
    "Read": "read",
    "List": "list",
    "Create": "create",
    "CompareAndSwap": "cas",
    "Write": "write",
    "Delete": "delete",
    "RefuseMetadata": "no read",
}
_ACTIONS = {
    "read": {"s3:GetObject"},
    "list": {"s3:ListBucket"},
    "create": {"s3:PutObject"},
    "cas": {"s3:PutObject"},
    "write": {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
    "delete": {"s3:DeleteObject"},
    "no read": {"s3:GetObject"},
}
_WRITES = ("create", "cas", "write")
_ULID = "01HZY8Q6G7T1V5B3N9K2M4P6R8"
_ALL_DOMAINS = ("catalog", "lineage", "search", "executions", "audit")


def _s3_module() -> dict[str, list[Any]]:
    try:
        import hcl2
    except ImportError:
        require_or_skip("python-hcl2 is not installed (dev extra)")
    merged: dict[str, list[Any]] = {}
    for path in sorted(_S3.glob("*.tf")):
        with path.open() as f:
            for section, blocks in hcl2.load(f).items():
                merged.setdefault(section, []).extend(blocks if isinstance(blocks, list) else [])
    return merged


def _named(module: dict[str, list[Any]], section: str, kind: str) -> dict[str, dict[str, Any]]:
    out = {}
    for block in module.get(section, []):
        for k, named in block.items():
            if _unquote(k) == kind:
                out.update({_unquote(name): body for name, body in named.items()})
    return out


def _pattern(resource: str) -> str:
    """A policy resource as a key pattern of the access table."""
    value = _unquote(resource)
    if value == "${aws_s3_bucket.arco.arn}":
        return "(bucket)"
    for ref, root in (
        ("${local.ws}", "tenant=*/workspace=*/"),
        ("${local.tenant}", "tenant=*/"),
        ("${local.root}", ""),
    ):
        if value.startswith(ref):
            return root + value[len(ref) :]
    raise AssertionError(f"{value!r} is not under the store's tenant prefix")


def _grants(policy: dict[str, Any]) -> set[tuple[str, str]]:
    """(operation, key pattern) of every statement; each statement's actions and
    effect must be exactly those of its operation."""
    out = set()
    for st in policy["statement"]:
        op = _OPS[_unquote(st["sid"])]
        assert (_unquote(st.get("effect", "Allow")) == "Deny") == (op == "no read"), st["sid"]
        assert {_unquote(a) for a in st["actions"]} == _ACTIONS[op], st["sid"]
        assert not set(st) & {"condition", "not_resources", "not_actions", "principals"}
        out.update((op, _pattern(r)) for r in st["resources"])
    return out


def _expand(pattern: str) -> list[str]:
    """Brace expansion: ``a/{b,c}/d`` -> ``a/b/d``, ``a/c/d`` (innermost first)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    return [
        key
        for alt in m.group(1).split(",")
        for key in _expand(pattern[: m.start()] + alt + pattern[m.end() :])
    ]


def _access_table() -> dict[str, set[tuple[str, str]]]:
    """The table of docs/operations.md ("Bucket and identities"), per role."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("### Bucket and identities", 1)[1].split("\n#", 1)[0]
    rows = [line.strip().strip("|") for line in section.splitlines() if line.startswith("| ")]
    assert [c.strip() for c in rows[0].split("|")] == ["keys", *_ROLES]
    table: dict[str, set[tuple[str, str]]] = {role: set() for role in _ROLES}
    for row in rows[1:]:
        cells = [c.strip() for c in row.split("|")]
        assert len(cells) == 1 + len(_ROLES), row
        if cells[0] == "(the bucket)":
            patterns = ["(bucket)"]
        else:
            patterns = [k for q in re.findall(r"`([^`]+)`", cells[0]) for k in _expand(q)]
        assert patterns, row
        for role, cell in zip(_ROLES, cells[1:], strict=True):
            for op in filter(None, (o.strip() for o in cell.split(","))):
                assert op in _ACTIONS, f"unknown operation {op!r} in {row}"
                table[role].update((op, p) for p in patterns)
    return table


def _can(grants: set[tuple[str, str]], ops: tuple[str, ...], key: str) -> bool:
    """IAM matching: ``*`` spans ``/``, as fnmatch's does (no pattern has brackets)."""
    return any(op in ops and fnmatch.fnmatchcase(key, p) for op, p in grants)


def _signer_reads(grants: set[tuple[str, str]], key: str) -> bool:
    return _can(grants, ("read",), key) and not _can(grants, ("no read",), key)


def _sample_keys() -> list[str]:
    """One key per key builder of arco.core.keys (per domain where it takes one);
    a prefix builder gives a key under its prefix."""
    from arco.core.keys import Keys, TenantKeys
    from arco.core.scope import Scope

    args: dict[str, Any] = {
        "version": 7,
        "attempt": 2,
        "task_id": "orders[2026-01-02]",
        "day": datetime(2026, 1, 2, tzinfo=UTC),
        "name": "tables.parquet",
        "asset_key": "orders",
        "partition_hash": "ab12",
        "ext": "parquet",
        "digest": "ab" * 32,
        "namespace": "sales",
        "table": "orders",
        "kind": "ingest_per_minute",
        "minute": 123,
        "index": 0,
        "workspace": "main",
    }
    out = []
    for builder in (Keys(Scope("acme", "main")), TenantKeys("acme")):
        for name, method in inspect.getmembers(builder, inspect.ismethod):
            if name.startswith("_") or name in ("is_within", "require_within"):
                continue
            params = list(inspect.signature(method).parameters)
            domains = _ALL_DOMAINS if "domain" in params else (None,)
            for domain in domains:
                call = {p: args.get(p, _ULID) for p in params if p != "domain"}
                key = method(**call, **({"domain": domain} if domain else {}))
                out.append(key + "x" if key.endswith("/") else key)
    return out


def test_s3_terraform_is_the_documented_access_table() -> None:
    module = _s3_module()
    policies = _named(module, "data", "aws_iam_policy_document")
    table = _access_table()
    for role in _ROLES:
        granted = _grants(policies[role])
        assert granted == table[role], (
            f"{role}: in Terraform, not in docs/operations.md: {sorted(granted - table[role])}; "
            f"documented, not granted: {sorted(table[role] - granted)}"
        )
    roles = _named(module, "resource", "aws_iam_role")
    assert set(roles) == {"arco"}
    attached = _named(module, "resource", "aws_iam_role_policy")["arco"]
    assert "local.policies[each.key]" in attached["policy"]
    components = next(b["components"] for b in module["locals"] if "components" in b)
    assert all(f'"{role}"' in components for role in _ROLES)
    # The signing user (ARCO_SIGNER_STORE_URL's static key) has the signer's policy only.
    user_policy = _named(module, "resource", "aws_iam_user_policy")["signer"]
    assert _unquote(user_policy["policy"]) == "${data.aws_iam_policy_document.signer.json}"
    assert set(_named(module, "resource", "aws_iam_user")) == {"signer"}
    assert not _named(module, "resource", "aws_iam_access_key")  # no secret in the state
    local_policies = next(b["policies"] for b in module["locals"] if "policies" in b)
    assert {k: _unquote(v) for k, v in local_policies.items()} == {
        role: f"${{data.aws_iam_policy_document.{role}.json}}" for role in _ROLES
    }


def test_s3_every_key_arco_builds_has_a_writer_and_a_row() -> None:
    table = _access_table()
    for key in _sample_keys():
        assert any(_can(table[role], _WRITES, key) for role in _ROLES), f"nobody writes {key}"
        assert _can(table["api"], ("read",), key), key


def test_s3_least_privilege_per_component() -> None:
    from arco.core.keys import DOMAINS_BUILTIN, Keys, TenantKeys
    from arco.core.scope import Scope
    from arco.sql.tabledata import INTERNAL_AREAS

    policies = _named(_s3_module(), "data", "aws_iam_policy_document")
    for role in _ROLES:
        for st in policies[role]["statement"]:
            for action in st["actions"]:
                assert "*" not in action, f"{role} is granted {action}"
    grants = {role: _grants(policies[role]) for role in _ROLES}
    keys, tkeys = Keys(Scope("acme", "main")), TenantKeys("acme")
    root = keys.root

    # Deletes: the API only queue markers and Iceberg table folders, the compactor
    # only expired quota counters, the signer nothing; nobody a pointer, lease or floor.
    assert {p for op, p in grants["api"] if op == "delete"} == {
        "tenant=*/workspace=*/control/queue/*",
        "tenant=*/workspace=*/warehouse/*",
    }
    assert {p for op, p in grants["compactor"] if op == "delete"} == {"tenant=*/_admin/usage/*"}
    assert {op for op, _ in grants["signer"]} == {"read", "no read"}
    for domain in _ALL_DOMAINS:
        for key in (keys.pointer(domain), keys.lock(domain), keys.floor(domain)):
            assert not any(_can(grants[r], ("delete",), key) for r in _ROLES), key
    # Tier-2 audit state: never the API; the catalog's state: only the API.
    for domain, writers in (("audit", {"compactor", "gc"}), ("catalog", {"api"})):
        state = [
            keys.pointer(domain),
            keys.lock(domain),
            keys.manifest(domain, 3, _ULID),
            keys.snapshot_file(domain, 3, _ULID, "t.parquet"),
        ]
        for key in state:
            assert {r for r in _ROLES if _can(grants[r], _WRITES, key)} == writers, key
    # Immutable objects are created, never swapped or overwritten; only the
    # warehouse (Iceberg clients) and the storage measurement are plain writes.
    for key in (
        keys.ledger_event("executions", datetime(2026, 1, 2), _ULID),
        keys.run_request(_ULID),
    ):
        assert not any(_can(grants[r], ("cas", "write"), key) for r in _ROLES), key
    writes = {p for r in _ROLES for op, p in grants[r] if op == "write"}
    assert writes == {"tenant=*/workspace=*/warehouse/*", "tenant=*/_admin/storage.json"}
    # The signer: browser state files and table data, never Arco's metadata areas
    # (those SQL refuses as table locations) nor the private audit domain.
    for domain in DOMAINS_BUILTIN:
        assert _signer_reads(grants["signer"], keys.snapshot_file(domain, 3, _ULID, "t.parquet"))
    assert not _signer_reads(grants["signer"], keys.snapshot_file("audit", 3, _ULID, "t.parquet"))
    for area in INTERNAL_AREAS:
        if area != "snapshots/":
            assert not _signer_reads(grants["signer"], f"{root}{area}x"), area
    for data in (
        keys.asset_output("orders", None, _ULID, "parquet"),
        keys.iceberg_table_prefix("sales", "orders", _ULID) + "data/0.parquet",
        f"{root}data/orders/part-0.parquet",
    ):
        assert _signer_reads(grants["signer"], data), data
    assert not _signer_reads(grants["signer"], tkeys.quotas())


def test_s3_bucket_policy_enforces_the_write_protocol_and_tls() -> None:
    module = _s3_module()
    policies = _named(module, "data", "aws_iam_policy_document")
    statements = {_unquote(s["sid"]): s for s in policies["bucket"]["statement"]}
    table = _access_table()
    for sid, op, guards in (
        ("ArcoCreateOnly", "create", {"s3:if-none-match"}),
        ("ArcoConditionalOnly", "cas", {"s3:if-none-match", "s3:if-match"}),
    ):
        st = statements[sid]
        assert _unquote(st["effect"]) == "Deny"
        assert [_unquote(a) for a in st["actions"]] == ["s3:PutObject"]
        enforced = [_pattern(r) for r in st["resources"]]
        # Every documented pattern of the operation lies inside an enforced one (an
        # IAM pattern matching another's literal text covers all its keys), and
        # nothing written another way does.
        for role in _ROLES:
            for o, p in table[role]:
                covered = any(fnmatch.fnmatchcase(p, e) for e in enforced)
                assert covered == (o == op) or o not in _WRITES, (sid, role, o, p)
        # Refused when every guard header is absent (conditions are ANDed).
        conditions = {
            _unquote(c["variable"]): (_unquote(c["test"]), [_unquote(v) for v in c["values"]])
            for c in st["condition"]
        }
        assert conditions == {g: ("Null", ["true"]) for g in guards}, sid
        principals = st["principals"][0]
        assert _unquote(principals["type"]) == "AWS"
        assert "aws_iam_role.arco" in str(principals["identifiers"])
    creates = {_pattern(r) for r in statements["ArcoCreateOnly"]["resources"]}
    swaps = {_pattern(r) for r in statements["ArcoConditionalOnly"]["resources"]}
    for key in _sample_keys():  # no key is both immutable and mutable
        assert not (
            any(fnmatch.fnmatchcase(key, p) for p in creates)
            and any(fnmatch.fnmatchcase(key, p) for p in swaps)
        ), key
    tls = statements["DenyInsecureTransport"]
    assert _unquote(tls["effect"]) == "Deny"
    assert _unquote(tls["condition"][0]["variable"]) == "aws:SecureTransport"
    assert [_unquote(v) for v in tls["condition"][0]["values"]] == ["false"]

    resources = _named(module, "resource", "aws_s3_bucket_public_access_block")["arco"]
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls"):
        assert resources[flag] is True, flag
    assert resources["restrict_public_buckets"] is True
    sse = _named(module, "resource", "aws_s3_bucket_server_side_encryption_configuration")["arco"]
    default = sse["rule"][0]["apply_server_side_encryption_by_default"][0]
    assert _unquote(default["sse_algorithm"]) == "AES256"
    versioning = _named(module, "resource", "aws_s3_bucket_versioning")["arco"]
    assert _unquote(versioning["versioning_configuration"][0]["status"]) == "Enabled"
    lifecycle = _named(module, "resource", "aws_s3_bucket_lifecycle_configuration")["arco"]
    actions = {k for rule in lifecycle["rule"] for k in rule}
    assert "noncurrent_version_expiration" in actions
    assert "abort_incomplete_multipart_upload" in actions
    # No rule may expire current objects (a deleted head pointer stops a domain).
    for rule in lifecycle["rule"]:
        for expiration in rule.get("expiration", []):
            assert set(expiration) - {"__is_block__"} == {"expired_object_delete_marker"}
    ownership = _named(module, "resource", "aws_s3_bucket_ownership_controls")["arco"]
    assert _unquote(ownership["rule"][0]["object_ownership"]) == "BucketOwnerEnforced"


class _RoleStore(ObjectStore):
    """A store that refuses, as S3 would under deploy/terraform/s3, every call the
    role's documented grants do not allow, and remembers each refusal (code under
    test may swallow the error)."""

    def __init__(self, inner: ObjectStore, role: str) -> None:
        self.inner, self.role = inner, role
        self.grants = _access_table()[role]
        self.url = inner.url
        self.refused: list[tuple[str, str]] = []

    def _allow(self, what: str, ops: tuple[str, ...], key: str) -> None:
        allowed = _can(self.grants, ops, key)
        if "read" in ops:
            allowed = allowed and not _can(self.grants, ("no read",), key)
        if not allowed:
            self.refused.append((what, key))
            raise StorageError(f"{key}: AccessDenied ({self.role} may not {what})")

    def get(self, key: str) -> tuple[bytes, str]:
        self._allow("get", ("read",), key)
        return self.inner.get(key)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        self._allow("get", ("read",), key)
        return self.inner.get_range(key, start, end)

    def head(self, key: str) -> ObjectMeta:
        self._allow("head", ("read",), key)
        return self.inner.head(key)

    def list(self, prefix: str) -> Iterator[ObjectMeta]:
        self._allow("list", ("list",), "(bucket)")
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._allow("delete", ("delete",), key)
        self.inner.delete(key)

    def put(self, key: str, data: bytes, mode: PutMode = "overwrite") -> str:
        # If-None-Match satisfies both bucket-policy guards; If-Match only the CAS one.
        if mode == "create":
            self._allow("create", ("create", "cas", "write"), key)
        elif isinstance(mode, Match):
            self._allow("compare-and-swap", ("cas", "write"), key)
        else:
            self._allow("overwrite", ("write",), key)
        return self.inner.put(key, data, mode)

    def sign(self, key: str, ttl_seconds: int) -> str:
        self._allow("sign", ("read",), key)
        return self.inner.sign(key, ttl_seconds)


def run_each_component(roles: dict[str, ObjectStore], inner: ObjectStore) -> None:
    """Each component's own code, each on its store in ``roles`` (api, compactor, gc,
    signer) over ``inner``: the requests each makes in production."""
    from arco import asset
    from arco.api.app import READINESS_PROBE_KEY
    from arco.catalog.catalog import Catalog
    from arco.core.keys import DOMAINS_BUILTIN, Keys
    from arco.core.scope import Scope
    from arco.discovery.lineage import LineageGraph
    from arco.discovery.search.index import SearchIndex
    from arco.domain.manifest import Pointer, fetch_manifest
    from arco.domain.retention import RetentionPolicy
    from arco.flow.definitions import Definitions
    from arco.flow.planner import plan
    from arco.flow.queue import enqueue, request_cancel
    from arco.governance import tenants
    from arco.ledger.compactor import Compactor
    from arco.ledger.log import Ledger
    from arco.maintenance.gc import collect_garbage

    @asset(namespace="sales")
    def orders() -> list[int]:
        return [1]

    scope = Scope("acme", "main")
    api = roles["api"]  # arco serve and arco worker
    with pytest.raises(ObjectNotFoundError):  # /readyz: answered, not refused
        api.head(READINESS_PROBE_KEY)
    catalog = Catalog(api, scope)
    catalog.create_namespace("sales")
    catalog.create_table("sales", "orders", [{"name": "id", "type": "int64"}])
    catalog.drop_table("sales", "orders")
    LineageGraph(api, scope).add_edge("sales.a", "sales.b")
    Ledger(api, scope).append("executions", "run.created", {"run_id": "r1", "seq": 0})
    queued = enqueue(api, scope, plan(Definitions([orders]), "*"), idempotency_key="k1")
    assert request_cancel(api, scope, queued.run_id) == "CANCELLED"
    # No look-back anywhere, so that gc's prune below may forget what was compacted.
    no_look_back = {"window": timedelta(0), "horizon": timedelta(0)}
    Compactor(api, scope, **no_look_back).compact("executions")  # POST /compaction, a run's end
    Compactor(api, scope, **no_look_back).compact("lineage")
    SearchIndex(api, scope).refresh()
    tenants.set_quotas(api, "acme", {"ingest_per_minute": 100})
    tenants.create_workspace(api, "acme", "other")
    tenants.set_workspace_status(api, "acme", "other", "retired")
    tenants.MinuteAllowance(api, "acme", "ingest_per_minute").take(100)

    compactor = roles["compactor"]  # arco compact, verify, admin usage, prune-usage
    Compactor(compactor, scope, **no_look_back).compact_all()
    SearchIndex(compactor, scope).refresh()
    tenants.measure_storage(compactor, "acme")
    tenants.prune_usage(compactor, "acme", keep_minutes=-10)

    gc = roles["gc"]  # arco gc, arco events prune
    pruned = Compactor(gc, scope, **no_look_back).prune("executions", timedelta(0))
    keep_head = RetentionPolicy(keep_versions=1)  # moves floors: old versions become garbage
    swept = collect_garbage(gc, scope, grace_seconds=0, retention=keep_head)
    assert pruned.ledger_objects  # it did delete, within its rights
    assert swept.deleted

    signer = roles["signer"]  # the state files POST /api/v1/browser/urls signs
    keys, signed = Keys(scope), 0
    for domain in DOMAINS_BUILTIN:
        pointer = Pointer.from_bytes(inner.get(keys.pointer(domain))[0], key=keys.pointer(domain))
        manifest = fetch_manifest(inner, keys, pointer.manifest, pointer.manifest_sha256)
        for entry in manifest.files:
            signer.get(entry.path)
            signed += 1
    assert signed


def test_s3_each_component_needs_no_more_than_its_role() -> None:
    """Each component's own code, on a store that answers as S3 would for its role."""
    from arco.core.scope import Scope
    from arco.core.storage import open_store

    inner, scope = open_store(f"memory://{_ULID}"), Scope("acme", "main")
    roles = {role: _RoleStore(inner, role) for role in _ROLES}
    run_each_component(dict(roles), inner)
    api = roles["api"]
    for role, store in roles.items():
        assert store.refused == [], f"{role} needs more than its role: {store.refused}"
    # The refusals are real: the API may not rewrite the audit domain's head.
    with pytest.raises(StorageError, match="AccessDenied"):
        api.put(scope.prefix + "manifests/audit.pointer.json", b"{}", "create")
