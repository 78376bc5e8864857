"""deploy/terraform/gcs: the bucket and one service account per component (ADR 022).

The same access table as the S3 module (docs/operations.md, "Bucket and
identities"), in the permissions GCS checks: ``read`` (objects.get), ``list``,
``create`` (objects.create, which on GCS cannot replace an object) and ``delete``
(objects.delete, which replacing an object also needs). So the table's *create* is
create, *cas* and *write* are create + delete, *delete* is delete.

No Terraform binary installs in CI: the files are parsed with python-hcl2; each
IAM condition (CEL on object names) is evaluated here by a small interpreter of
the CEL it uses, on every key ``arco.core.keys`` builds, and must mean exactly its
key pattern; the grants must be the table's; and the components' own code must run
on a store that refuses what their account's conditions would refuse.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_terraform_s3 import (  # the access table and the components' scenario
    _ROLES,
    _ULID,
    _access_table,
    _sample_keys,
    run_each_component,
)

from arco.core.errors import ObjectNotFoundError, StorageError
from arco.core.storage import ObjectMeta, ObjectStore, PutMode
from arco.core.storage.base import Match
from conftest import require_or_skip  # tests/conftest.py: fails under ARCO_REQUIRE_ALL=1

_GCS = Path(__file__).resolve().parents[2] / "deploy" / "terraform" / "gcs"
#: What each operation of the access table needs on GCS.
_NEEDS = {
    "read": ("read",),
    "list": ("list",),
    "create": ("create",),
    "cas": ("create", "delete"),
    "write": ("create", "delete"),
    "delete": ("delete",),
    "no read": ("no read",),
}
_PROBE = "_arco_readiness_probe"
#: IAM allows at most 12 logical operators in one condition expression.
_MAX_OPERATORS = 12


def _text(value: Any) -> str:
    """A python-hcl2 string literal as Terraform reads it (quotes off, escapes undone)."""
    text = str(value)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text.replace('\\"', '"')


def _module() -> dict[str, list[Any]]:
    try:
        import hcl2
    except ImportError:
        require_or_skip("python-hcl2 is not installed (dev extra)")
    merged: dict[str, list[Any]] = {}
    for path in sorted(_GCS.glob("*.tf")):
        with path.open() as f:
            for section, blocks in hcl2.load(f).items():
                merged.setdefault(section, []).extend(blocks if isinstance(blocks, list) else [])
    return merged


def _locals(module: dict[str, list[Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in module["locals"]:
        out.update({k: v for k, v in block.items() if not k.startswith("__")})
    return out


def _resources(module: dict[str, list[Any]], kind: str) -> dict[str, dict[str, Any]]:
    out = {}
    for block in module.get("resource", []):
        for k, named in block.items():
            if _text(k) == kind:
                out.update({_text(name): body for name, body in named.items()})
    return out


def _cel_map(module: dict[str, list[Any]]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in _locals(module)["cel"].items()}


def _grants(module: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """The ``grants`` local: name -> account, permissions, patterns, except."""
    out = {}
    for name, grant in _locals(module)["grants"].items():
        out[_text(name)] = {
            "account": _text(grant["account"]),
            "permissions": [_text(p) for p in grant["permissions"]],
            "patterns": [_text(p) for p in grant["patterns"]],
            "except": [_text(p) for p in grant["except"]],
        }
    return out


def _objects(bucket: str, prefix: str) -> str:
    return f"projects/_/buckets/{bucket}/objects/{prefix}"


def _tenant_root(bucket: str, prefix: str, tenant: str) -> str:
    return _objects(bucket, prefix) + "tenant=" + ("" if tenant == "*" else f"{tenant}/")


def _expression(grant: dict[str, Any], cel: dict[str, str], tenant_root: str) -> str:
    """The condition Terraform builds for ``grant`` (the ``bindings`` local)."""
    parts = [
        f'resource.name.startsWith("{tenant_root}")',
        "(" + " || ".join(cel[p] for p in grant["patterns"]) + ")",
    ]
    if grant["except"]:
        parts.append("!(" + " || ".join(cel[p] for p in grant["except"]) + ")")
    return " && ".join(parts)


# ------------------------------------------------------------ a CEL interpreter
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>&&|\|\||!=|==|!|\(|\))|'
    r"(?P<name>resource\.name)(?P<call>\.(?:startsWith|endsWith|extract))?|(?P<true>true))"
)


def _tokens(expression: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expression.rstrip()):
        m = _TOKEN.match(expression, pos)
        assert m is not None, f"cannot read CEL at {expression[pos:]!r}"
        assert m.end() > pos, f"cannot read CEL at {expression[pos:]!r}"
        pos = m.end()
        if m.group("str"):
            out.append(("str", m.group("str")[1:-1].replace('\\"', '"')))
        elif m.group("op"):
            out.append(("op", m.group("op")))
        elif m.group("name"):
            out.append(("call", (m.group("call") or "")[1:]))
        else:
            out.append(("true", "true"))
    return out


def extract(name: str, template: str, *, spans_slash: bool) -> str:
    """IAM's ``extract()``: the variable's value at the template's first occurrence.

    Whether a variable may span ``/`` is not spelled out by IAM's documentation, so
    the tests require the same answer both ways on every key Arco builds.
    """
    before, _, rest = template.partition("{")
    after = rest.partition("}")[2]
    start = name.find(before)
    if start < 0:
        return ""
    start += len(before)
    end = name.find(after, start) if after else len(name)
    if end < 0:
        return ""
    value = name[start:end]
    return "" if not spans_slash and "/" in value else value


class _Cel:
    """Evaluates the CEL subset of the conditions: ``||``, ``&&``, ``!``, parentheses,
    ``true``, and ``resource.name`` with ``startsWith``, ``endsWith``, ``extract() !=``
    and ``==``."""

    def __init__(self, expression: str, name: str, *, spans_slash: bool) -> None:
        self.tokens, self.pos = _tokens(expression), 0
        self.name, self.spans_slash = name, spans_slash

    def value(self) -> bool:
        result = self._or()
        assert self.pos == len(self.tokens), "trailing CEL"
        return result

    def _next(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _or(self) -> bool:
        result = self._and()
        while self._peek() == "||":
            self._next()
            result = self._and() or result
        return result

    def _and(self) -> bool:
        result = self._unary()
        while self._peek() == "&&":
            self._next()
            result = self._unary() and result
        return result

    def _unary(self) -> bool:
        kind, text = self._next()
        if (kind, text) == ("op", "!"):
            return not self._unary()
        if (kind, text) == ("op", "("):
            result = self._or()
            assert self._next() == ("op", ")")
            return result
        if kind == "true":
            return True
        assert kind == "call", (kind, text)
        if text == "":  # resource.name == "..."
            assert self._next() == ("op", "==")
            return self.name == self._next()[1]
        assert self._next() == ("op", "(")
        arg = self._next()[1]
        assert self._next() == ("op", ")")
        if text == "startsWith":
            return self.name.startswith(arg)
        if text == "endsWith":
            return self.name.endswith(arg)
        assert self._next() == ("op", "!=")
        return extract(self.name, arg, spans_slash=self.spans_slash) != self._next()[1]


def cel_allows(expression: str, name: str, *, spans_slash: bool = True) -> bool:
    """Whether an IAM condition holds for the object ``name``."""
    return _Cel(expression, name, spans_slash=spans_slash).value()


def _operators(expression: str) -> int:
    return sum(1 for kind, text in _tokens(expression) if text in ("&&", "||", "!"))


# ------------------------------------------------------------------ the grants
def _bindings(
    module: dict[str, list[Any]], *, bucket: str = "b", prefix: str = "", tenant: str = "*"
) -> list[tuple[str, str, str]]:
    """(account, permission, condition) of every conditional binding, as Terraform
    builds them for these variables (with the gc account)."""
    cel, root = _cel_map(module), _tenant_root(bucket, prefix, tenant)
    out = [
        (g["account"], p, _expression(g, cel, root))
        for g in _grants(module).values()
        for p in g["permissions"]
    ]
    probe = f'resource.name == "{_objects(bucket, prefix)}{_PROBE}"'
    return [*out, ("api", "read", probe)]


def _expected(role: str) -> set[tuple[str, str]]:
    """The access table's rows for ``role`` as (GCS permission, key pattern)."""
    return {(need, p) for op, p in _access_table()[role] for need in _NEEDS[op]}


def test_gcs_terraform_is_the_documented_access_table() -> None:
    module = _module()
    granted: dict[str, set[tuple[str, str]]] = {role: set() for role in _ROLES}
    for grant in _grants(module).values():
        for permission in grant["permissions"]:
            granted[grant["account"]].update((permission, p) for p in grant["patterns"])
        granted[grant["account"]].update(("no read", p) for p in grant["except"])
        assert not grant["except"] or grant["permissions"] == ["read"]
    probe = _resources(module, "google_storage_bucket_iam_member")["readiness_probe"]
    assert 'google_service_account.arco["api"]' in _text(probe["member"])
    assert _text(probe["condition"][0]["expression"]) == (
        f'resource.name == "${{local.objects}}{_PROBE}"'
    )
    granted["api"].add(("read", _PROBE))
    lister = _resources(module, "google_storage_bucket_iam_member")["list"]
    assert 'c != "signer"' in lister["for_each"]
    assert 'arco["list"]' in _text(lister["role"])
    assert "condition" not in lister
    for role in ("api", "compactor", "gc"):
        granted[role].add(("list", "(bucket)"))
    for role in _ROLES:
        expected = _expected(role)
        assert granted[role] == expected, (
            f"{role}: in Terraform, not in docs/operations.md: {sorted(granted[role] - expected)}; "
            f"documented, not granted: {sorted(expected - granted[role])}"
        )
    # Terraform builds each binding's condition as _expression() does.
    bindings = _locals(module)["bindings"]
    for fragment in (
        'resource.name.startsWith(\\"${local.tenant_root}\\")',
        'join(" || ", [for p in grant.patterns : local.cel[p]])',
        '"!(${join(" || ", [for p in grant.except : local.cel[p]])})"',
        'join(" && ", compact([',
        "if contains(local.components, grant.account)",
    ):
        assert fragment in bindings, fragment
    roles = _locals(module)["permissions"]
    assert {k: [_text(p) for p in v] for k, v in roles.items()} == {
        "read": ["storage.objects.get"],
        "list": ["storage.objects.list"],
        "create": ["storage.objects.create"],
        "delete": ["storage.objects.delete"],
    }


def _probe_keys() -> list[str]:
    """Keys beside Arco's own: the probe, another tenant, data under a workspace."""
    return [
        _PROBE,
        "tenant=other/workspace=main/snapshots/catalog/1-x/t.parquet",
        "tenant=acme/_admin/usage/ingest_per_minute/1/0.json",
        "tenant=acme/workspace=main/data/orders/part-0.parquet",
        "tenant=acme/workspace=main/manifests/catalog.pointer.json.bak",
        "tenant=acme/workspace=main/manifests/catalog/x.json",
        "elsewhere/tenant=acme/workspace=main/ledger/x.json",
    ]


@pytest.mark.parametrize(("prefix", "tenant"), [("", "*"), ("lake/arco/", "*"), ("", "acme")])
def test_gcs_each_condition_means_its_key_pattern(prefix: str, tenant: str) -> None:
    """On every key Arco builds, each CEL test is true exactly where IAM's pattern
    matches (whether extract() variables may span '/' or not)."""
    module = _module()
    cel, root = _cel_map(module), _tenant_root("b", prefix, tenant)
    keys = _sample_keys() + [k.replace("tenant=acme", "tenant=zeta") for k in _sample_keys()]
    for pattern, test in cel.items():
        glob = pattern if tenant == "*" else pattern.replace("tenant=*", f"tenant={tenant}", 1)
        condition = f'resource.name.startsWith("{root}") && ({test})'
        for key in keys:
            name = _objects("b", prefix) + key
            for spans in (True, False):
                assert cel_allows(condition, name, spans_slash=spans) == fnmatch.fnmatchcase(
                    key, glob
                ), (pattern, key, spans)
        for key in _probe_keys():
            name = _objects("b", prefix) + key
            assert cel_allows(condition, name) == fnmatch.fnmatchcase(key, glob), (pattern, key)


def test_gcs_conditions_stay_within_iam_limits() -> None:
    module = _module()
    bindings = _bindings(module, prefix="lake/", tenant="acme")
    for account, permission, condition in bindings:
        assert _operators(condition) <= _MAX_OPERATORS, (account, permission, condition)
    per_pair: dict[tuple[str, str], int] = {}
    for account, permission, _ in bindings:
        per_pair[account, permission] = per_pair.get((account, permission), 0) + 1
    assert max(per_pair.values()) <= 5
    assert len(bindings) <= 25


def _account_can(bindings: list[tuple[str, str, str]], account: str, need: str, name: str) -> bool:
    return any(a == account and p == need and cel_allows(c, name) for a, p, c in bindings)


def test_gcs_least_privilege_per_component() -> None:
    """What the previous GCS module got wrong, and what GCS cannot express."""
    from arco.core.keys import DOMAINS_BUILTIN, Keys
    from arco.core.scope import Scope
    from arco.sql.tabledata import INTERNAL_AREAS

    bindings = _bindings(_module())
    keys = Keys(Scope("acme", "main"))

    def can(account: str, need: str, key: str) -> bool:
        return _account_can(bindings, account, need, _objects("b", "") + key)

    # The API never writes the audit domain's state; only it writes the catalog's.
    for domain, writers in (("audit", {"compactor", "gc"}), ("catalog", {"api"})):
        for key in (
            keys.pointer(domain),
            keys.lock(domain),
            keys.manifest(domain, 3, _ULID),
            keys.snapshot_file(domain, 3, _ULID, "t.parquet"),
        ):
            assert {r for r in _ROLES if can(r, "create", key)} == writers, key
    # A purging Iceberg drop deletes the table's folder under warehouse/.
    table_file = keys.iceberg_table_prefix("sales", "orders", _ULID) + "data/0.parquet"
    assert can("api", "delete", table_file)
    assert can("gc", "delete", table_file)
    # Immutable objects: created, never replaced (no delete beside the create).
    ledger = keys.ledger_event("executions", __import__("datetime").datetime(2026, 1, 2), _ULID)
    assert can("api", "create", ledger)
    assert not any(can(r, "delete", ledger) for r in ("api", "compactor", "signer"))
    for key in (keys.manifest("catalog", 3, _ULID), keys.snapshot_file("catalog", 3, _ULID, "t")):
        assert not any(can(r, "delete", key) for r in ("api", "compactor", "signer")), key
    # GCS cannot tell a compare-and-swap from a delete: whoever may swap a head
    # pointer may delete it (versioning keeps it; docs/operations.md, "On GCS").
    assert can("api", "delete", keys.pointer("catalog"))
    assert not any(can(r, "delete", keys.pointer("catalog")) for r in ("compactor", "gc"))
    assert not can("gc", "delete", keys.floor("catalog")) or can("gc", "create", keys.floor("x"))
    # The signer: browser state files and table data, nothing else.
    assert {p for a, p, _ in bindings if a == "signer"} == {"read"}
    for domain in DOMAINS_BUILTIN:
        assert can("signer", "read", keys.snapshot_file(domain, 3, _ULID, "t.parquet"))
    assert not can("signer", "read", keys.snapshot_file("audit", 3, _ULID, "t.parquet"))
    for area in INTERNAL_AREAS:
        if area != "snapshots/":
            assert not can("signer", "read", f"{keys.root}{area}x"), area
    assert can("signer", "read", table_file)
    assert not can("signer", "read", _PROBE)
    assert not can("signer", "read", "tenant=acme/_admin/quotas.json")


class _AccountStore(ObjectStore):
    """A store that refuses, as GCS would under deploy/terraform/gcs, every call the
    account's conditions do not allow, and remembers each refusal."""

    def __init__(self, inner: ObjectStore, account: str, bindings: list[Any]) -> None:
        self.inner, self.account, self.bindings = inner, account, bindings
        self.url = inner.url
        self.refused: list[tuple[str, str]] = []
        self.lists = account != "signer"

    def _allow(self, what: str, needs: tuple[str, ...], key: str) -> None:
        name = _objects("b", "") + key
        if not all(_account_can(self.bindings, self.account, n, name) for n in needs):
            self.refused.append((what, key))
            raise StorageError(f"{key}: 403 ({self.account} may not {what})")

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
        if not self.lists:
            self.refused.append(("list", prefix))
            raise StorageError(f"{prefix}: 403 ({self.account} may not list)")
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self._allow("delete", ("delete",), key)
        self.inner.delete(key)

    def put(self, key: str, data: bytes, mode: PutMode = "overwrite") -> str:
        # Replacing an existing object needs delete beside create, on GCS.
        if mode == "create":
            self._allow("create", ("create",), key)
        elif isinstance(mode, Match) or self.inner.exists(key):
            self._allow("replace", ("create", "delete"), key)
        else:
            self._allow("create", ("create",), key)
        return self.inner.put(key, data, mode)

    def sign(self, key: str, ttl_seconds: int) -> str:
        self._allow("sign", ("read",), key)
        return self.inner.sign(key, ttl_seconds)


def test_gcs_each_component_needs_no_more_than_its_account() -> None:
    from arco.core.storage import open_store

    bindings = _bindings(_module())
    inner = open_store(f"memory://gcs-{_ULID}")
    accounts = {role: _AccountStore(inner, role, bindings) for role in _ROLES}
    run_each_component(dict(accounts), inner)
    for role, store in accounts.items():
        assert store.refused == [], f"{role} needs more than its account: {store.refused}"
    # The refusals are real: the API may not rewrite the audit domain's head.
    api = accounts["api"]
    with pytest.raises(StorageError, match="403"):
        api.put("tenant=acme/workspace=main/manifests/audit.pointer.json", b"{}", "create")
    with pytest.raises(ObjectNotFoundError):
        api.head(_PROBE)


def test_gcs_bucket_settings() -> None:
    module = _module()
    bucket = _resources(module, "google_storage_bucket")["arco"]
    assert _text(bucket["public_access_prevention"]) == "enforced"
    assert bucket["uniform_bucket_level_access"] is True  # IAM Conditions need it
    assert bucket["versioning"][0]["enabled"] is True
    for rule in bucket["lifecycle_rule"]:
        action = _text(rule["action"][0]["type"])
        condition = rule["condition"][0]
        # No rule deletes a live object (a deleted head pointer stops a domain).
        if action == "Delete":
            assert "days_since_noncurrent_time" in condition
            assert _text(condition["with_state"]) == "ARCHIVED"
        else:
            assert action == "AbortIncompleteMultipartUpload"
    accounts = _resources(module, "google_service_account")["arco"]
    assert "local.components" in accounts["for_each"]
    components = _locals(module)["components"]
    assert all(f'"{role}"' in components for role in _ROLES)
    members = _resources(module, "google_storage_bucket_iam_member")
    assert set(members) == {"arco", "list", "readiness_probe"}
    assert _text(members["arco"]["condition"][0]["expression"]) == "${each.value.expression}"
    # No predefined role: objectViewer/objectAdmin would grant every object.
    for body in members.values():
        assert "google_project_iam_custom_role.arco" in _text(body["role"])
    assert not _resources(module, "google_service_account_iam_member").get("signer_signs_as_itself")
