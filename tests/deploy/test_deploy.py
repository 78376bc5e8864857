"""The deploy/ artifacts: linted by the real tools where they install here, and
checked for what the tools cannot see (every command exists, every alert has a
runbook, every panel reads a metric Arco exports, least privilege per component).

Images cannot be pulled in CI, so nothing here builds or runs a container; the
Terraform has no installable binary (neither terraform nor opentofu is on PyPI or
Debian main), so it is parsed with python-hcl2 and checked against the access
table of docs/operations.md in test_terraform_s3.py and test_terraform_gcs.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
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
    assert kinds.count("CronJob") == 3
    assert "Service" in kinds
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
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
        assert pod["serviceAccountName"] in accounts, doc["metadata"]["name"]
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


_COMPOSE_VAR = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def _interpolate(value: str, env: dict[str, str]) -> str:
    """What ``docker compose`` makes of ``value``: ``${VAR}``, ``${VAR:-default}``,
    ``${VAR:?error}`` (an error when VAR is unset or empty) and ``$$`` for ``$``."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == "?":
            raise KeyError(f"{name}: {arg}")
        return arg or "" if op == "-" else ""

    parts = value.split("$$")
    return "$".join(_COMPOSE_VAR.sub(one, part) for part in parts)


def test_compose_identities_match_what_each_arco_process_uses(tmp_path: Path) -> None:
    """SeaweedFS's identities are rendered at start from the operator's secrets (no
    secret in the repository), the API and worker use the read-write one, and the
    API presigns browser URLs with the read-only signer, which Arco accepts."""
    from arco.core.storage.factory import check_signer_store_url, parse_store_url

    compose = DEPLOY / "compose"
    doc = yaml.safe_load((compose / "compose.yaml").read_text())
    env = {"ARCO_S3_SECRET": "a1" * 12, "ARCO_SIGNER_SECRET": "b2" * 12, "ARCO_JWT_SECRET": "c3"}
    seaweed = doc["services"]["seaweedfs"]
    # The entrypoint's rendering step, run by a real shell with the service's env.
    script = _interpolate(seaweed["command"][0], env)
    render, _, start = script.partition(" && exec ")
    assert start.startswith("weed server")
    assert "-s3.config=/tmp/s3.json" in start
    (template,) = [v.split(":")[1] for v in seaweed["volumes"] if "template" in v]
    render = render.replace(template, str(compose / "seaweedfs-s3.template.json"))
    render = render.replace("/tmp/s3.json", str(tmp_path / "s3.json"))
    service_env = {k: _interpolate(v, env) for k, v in seaweed["environment"].items()}
    done = subprocess.run(["sh", "-c", render], env=service_env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    identities = {
        i["name"]: i for i in json.loads((tmp_path / "s3.json").read_text())["identities"]
    }
    assert "@" not in (tmp_path / "s3.json").read_text()  # every placeholder filled

    def key_of(name: str) -> tuple[str, str]:
        cred = identities[name]["credentials"][0]
        return cred["accessKey"], cred["secretKey"]

    assert identities["arco-signer"]["actions"] == ["Read:arco"]
    for name in ("api", "worker", "maintenance"):
        arco_env = {
            k: _interpolate(v, env) for k, v in doc["services"][name]["environment"].items()
        }
        assert key_of("arco") == (arco_env["AWS_ACCESS_KEY_ID"], arco_env["AWS_SECRET_ACCESS_KEY"])
        assert parse_store_url(arco_env["ARCO_STORE"]).bucket == "arco"
    api_env = {k: _interpolate(v, env) for k, v in doc["services"]["api"]["environment"].items()}
    signer = check_signer_store_url(api_env["ARCO_SIGNER_STORE_URL"], api_env["ARCO_STORE"])
    assert key_of("arco-signer") == (
        signer.config["access_key_id"],
        signer.config["secret_access_key"],
    )
    assert "ARCO_SIGNER_STORE_URL" not in doc["services"]["worker"]["environment"]
    # An operator who forgets a secret is stopped by compose, not by a failed PUT.
    with pytest.raises(KeyError, match="ARCO_SIGNER_SECRET"):
        _interpolate(seaweed["environment"]["ARCO_SIGNER_SECRET"], {})


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
