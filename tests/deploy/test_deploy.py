"""The deploy/ artifacts: linted by the real tools where they install here, and
checked for what the tools cannot see (every command exists, every alert has a
runbook, every panel reads a metric Arco exports, least privilege per component).

Images cannot be pulled in CI, so nothing here builds or runs a container; the
Terraform has no installable binary (neither terraform nor opentofu is on PyPI or
Debian main), so it is parsed with python-hcl2 and checked structurally.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from arco.core import metrics
from conftest import require_or_skip  # tests/conftest.py: fails under ARCO_REQUIRE_ALL=1

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        require_or_skip(f"{name} is not installed (see .ci/run and the dev extra)")
        raise AssertionError  # unreachable: require_or_skip raised
    return found


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def _arco_commands() -> set[str]:
    from typer.main import get_command

    from arco.cli.main import build_app

    group: Any = get_command(build_app())
    return set(group.commands)


# ------------------------------------------------------------------- Docker
def test_dockerfile_is_hadolint_clean_multistage_pinned_and_non_root() -> None:
    result = _run(_tool("hadolint"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(froms) >= 2, "multi-stage"
    for image in froms:
        assert re.match(r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*$", image), f"{image} is not pinned"
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user
    assert user[-1].split(":")[0] not in ("root", "0")


def test_hadolint_catches_what_it_should() -> None:
    """The linter really lints (an unpinned, root image fails)."""
    bad = "FROM python:latest\nRUN apt-get install -y curl\n"
    result = subprocess.run(
        [_tool("hadolint"), "-"], input=bad, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout


# --------------------------------------------------------------------- YAML
def test_yaml_is_yamllint_clean() -> None:
    result = _run(_tool("yamllint"), "-c", "deploy/yamllint.yaml", "deploy/")
    assert result.returncode == 0, result.stdout


def _k8s_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "arco.yaml").read_text()) if d]


def test_kubernetes_manifests_are_well_formed_and_commands_exist() -> None:
    docs = _k8s_docs()
    kinds = [d["kind"] for d in docs]
    assert kinds.count("Deployment") == 2
    assert kinds.count("CronJob") == 2
    assert "Service" in kinds
    commands = _arco_commands()
    names = set()
    for doc in docs:
        assert doc["apiVersion"]
        assert doc["metadata"]["name"]
        assert (doc["kind"], doc["metadata"]["name"]) not in names
        names.add((doc["kind"], doc["metadata"]["name"]))
        spec = doc.get("spec", {})
        if doc["kind"] == "CronJob":
            assert len(spec["schedule"].split()) == 5
            pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        elif doc["kind"] == "Deployment":
            assert spec["selector"]["matchLabels"].items() <= (
                spec["template"]["metadata"]["labels"].items()
            )
            pod = spec["template"]["spec"]
        else:
            continue
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            args = container.get("args", [])
            if container.get("command"):  # a shell line: every arco word names a command
                words = re.findall(r"\barco (\w[\w-]*)", " ".join(args))
            else:
                words = args[:1]
            assert words, container
            for word in words:
                assert word in commands, f"{doc['metadata']['name']}: arco {word} does not exist"
    service = next(d for d in docs if d["kind"] == "Service")
    api = next(d for d in docs if d["metadata"]["name"] == "arco-api" and d["kind"] == "Deployment")
    assert (
        service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    )


def test_compose_file_wires_the_four_services() -> None:
    doc = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = doc["services"]
    assert {"seaweedfs", "api", "worker", "maintenance"} <= set(services)
    commands = _arco_commands()
    assert services["api"]["command"][0] in commands
    assert services["worker"]["command"][0] in commands
    for word in re.findall(r"\barco (\w[\w-]*)", services["maintenance"]["command"][0]):
        assert word in commands
    assert services["api"]["environment"]["ARCO_STORE"].startswith("s3://")


# ------------------------------------------------------------- Prometheus
def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    promtool = _tool("promtool")
    check = _run(promtool, "check", "rules", "arco-rules.yaml", cwd=DEPLOY / "prometheus")
    assert check.returncode == 0, check.stdout + check.stderr
    tested = _run(promtool, "test", "rules", "arco-rules.test.yaml", cwd=DEPLOY / "prometheus")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _exported_metric_names() -> set[str]:
    names = set()
    for collector in list(metrics.REGISTRY._collector_to_names):  # every registered family
        for family in collector.describe():
            names.add(family.name)
            if family.type == "counter":
                names.add(family.name + "_total")
            if family.type == "histogram":
                names.update(family.name + s for s in ("_bucket", "_count", "_sum"))
    names.update({"arco_http_requests_total", "arco_http_request_seconds_bucket"})
    return names


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "arco-rules.yaml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_every_alert_reads_real_metrics_and_links_an_existing_runbook() -> None:
    known = _exported_metric_names() | {r["record"] for r in _rules() if "record" in r}
    wanted = {"CompactionLag", "VerifyFailed", "ErrorRatio", "LeaseStuck", "RunFailureRate"}
    alerts = [r for r in _rules() if "alert" in r]
    assert all(any(w in a["alert"] for a in alerts) for w in wanted)
    for rule in _rules():
        for name in re.findall(r"\b(arco[:_][a-z0-9_:]+)", rule["expr"]):
            assert name in known, f"{rule.get('alert') or rule.get('record')}: {name}"
    ops = (ROOT / "docs" / "operations.md").read_text()
    for alert in alerts:
        link = alert["annotations"]["runbook_url"].split("#")[0]
        assert (ROOT / link).is_file(), link
        assert alert["alert"] in ops, f"docs/operations.md does not explain {alert['alert']}"


def test_grafana_dashboard_panels_read_exported_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana" / "arco-dashboard.json").read_text())
    known = _exported_metric_names() | {r["record"] for r in _rules() if "record" in r}
    assert dash["uid"]
    assert dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    seen = set()
    for panel in dash["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            for name in re.findall(r"\b(arco[:_][a-z0-9_:]+)", target["expr"]):
                assert name in known, f"{panel['title']}: {name}"
                seen.add(name)
    # The on-call questions all have a panel.
    for family in (
        "arco_compaction_lag_seconds",
        "arco_verify_ok",
        "arco_commit_cas_conflicts_total",
        "arco_lease_takeovers_total",
        "arco_signed_urls_total",
        "arco_storage_errors_total",
        "arco_quota_rejections_total",
        "arco_check_failures_total",
    ):
        assert family in seen, family


# ---------------------------------------------------------------- Terraform
def _unquote(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of string literals."""
    return value.strip('"') if isinstance(value, str) else value


def test_terraform_parses_and_grants_least_privilege_per_component() -> None:
    try:
        import hcl2
    except ImportError:
        require_or_skip("python-hcl2 is not installed (dev extra)")
    with (DEPLOY / "terraform" / "gcs" / "main.tf").open() as f:
        doc = hcl2.load(f)
    resources: dict[str, dict[str, Any]] = {}
    for block in doc["resource"]:
        for kind, named in block.items():
            for name, body in named.items():
                resources[f"{kind.strip(chr(34))}.{name.strip(chr(34))}"] = body
    accounts = {k for k in resources if k.startswith("google_service_account.")}
    assert accounts == {
        "google_service_account.api",
        "google_service_account.compactor",
        "google_service_account.signer",
    }
    grants: dict[str, list[tuple[str, bool]]] = {}
    for key, body in resources.items():
        if key.startswith("google_storage_bucket_iam_member."):
            who = re.search(r"google_service_account\.(\w+)\.email", body["member"]).group(1)
            grants.setdefault(who, []).append((_unquote(body["role"]), "condition" in body))
    assert sorted(grants["signer"]) == [("roles/storage.objectViewer", False)]
    # The API never holds unconditional overwrite or delete rights.
    for role, conditional in grants["api"]:
        assert role in ("roles/storage.objectViewer", "roles/storage.objectCreator") or conditional
    assert ("roles/storage.objectAdmin", False) in grants["compactor"]
    bucket = resources["google_storage_bucket.arco"]
    assert _unquote(bucket["public_access_prevention"]) == "enforced"
    assert bucket["uniform_bucket_level_access"] is True


# ------------------------------------------------------- Terraform: S3 + IAM
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
    for ref, root in (("${local.ws}", "tenant=*/workspace=*/"), ("${local.tenant}", "tenant=*/")):
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
    """The table of docs/operations.md ("Bucket and identities on S3"), per role."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("### Bucket and identities on S3", 1)[1].split("\n#", 1)[0]
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
