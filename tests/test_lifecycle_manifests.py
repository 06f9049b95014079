"""The credential-lifecycle files an admin ships (issue 13): the safety net's CEL knows exactly keyguard's name rules
and selection, the audit policy can never log a Secret's or a pod's body, and the encryption configuration
encrypts Secrets first and ships without a key. The API-server suite (tests/e2e/test_lifecycle_*.py) runs them."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import REPO
from webhook import detection

SAFETY_NET = REPO / "manifests" / "safety-net" / "validating-admission-policy.yaml"
APISERVER = REPO / "manifests" / "apiserver"


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _policy() -> dict[str, Any]:
    (policy,) = [d for d in _load_all(SAFETY_NET) if d["kind"] == "ValidatingAdmissionPolicy"]
    return policy


def _variable(name: str) -> str:
    (expression,) = [v["expression"] for v in _policy()["spec"]["variables"] if v["name"] == name]
    return str(expression)


@pytest.mark.parametrize(
    ("variable", "table"),
    [
        ("credentialNames", sorted(detection._CREDENTIAL_NAMES)),
        ("credentialSuffixes", list(detection._CREDENTIAL_SUFFIXES)),
        ("harmlessSuffixes", list(detection._HARMLESS_SUFFIXES)),
    ],
)
def test_the_safety_net_carries_keyguards_name_tables(variable: str, table: list[str]) -> None:
    # A CEL list of single-quoted strings is also a Python literal.
    assert ast.literal_eval(_variable(variable)) == table


def test_the_safety_nets_first_pass_words_cover_every_credential_name() -> None:
    # Sound only if no word spans a `_`: the normal form may insert one inside a name, never inside a word.
    words = ast.literal_eval(_variable("nameWords"))
    assert all(w.isalpha() and w.islower() for w in words)
    for name in (*detection._CREDENTIAL_NAMES, *detection._CREDENTIAL_SUFFIXES):
        assert any(w in name for w in words), name


def test_the_safety_net_skips_references_as_keyguard_does() -> None:
    assert f"e.value.matches(r'{detection._REFERENCE.pattern}')" in _variable("plaintext")


def test_the_safety_net_selects_what_keyguards_webhooks_select() -> None:
    webhooks = _load_all(REPO / "manifests" / "base" / "webhooks.yaml")
    spec = _policy()["spec"]
    for configuration in webhooks:
        (hook,) = configuration["webhooks"]
        assert spec["matchConditions"][:1] == hook["matchConditions"]
        assert spec["matchConstraints"]["namespaceSelector"] == hook["namespaceSelector"]
        rules = {(r["operations"][0], r["resources"][0]) for r in hook["rules"]}
        assert {(r["operations"][0], r["resources"][0]) for r in spec["matchConstraints"]["resourceRules"]} == rules
    assert spec["failurePolicy"] == "Fail"
    (binding,) = [d for d in _load_all(SAFETY_NET) if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"] == {"policyName": _policy()["metadata"]["name"], "validationActions": ["Deny"]}


def _first_level(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> str:
    """The level the audit policy gives a request: the first matching rule's (the API server's order)."""
    for rule in rules:
        if "verbs" in rule and verb not in rule["verbs"]:
            continue
        if "resources" in rule and not any(
            r.get("group", "") == group and resource in r.get("resources", [resource]) for r in rule["resources"]
        ):
            continue
        return str(rule["level"])
    return "None"


VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
BODY_LEVELS = {"Request", "RequestResponse"}


@pytest.mark.parametrize(
    ("group", "resource"),
    [
        ("", "secrets"),
        ("", "pods"),
        ("", "pods/ephemeralcontainers"),
        ("", "configmaps"),
        ("", "serviceaccounts/token"),
        ("authentication.k8s.io", "tokenreviews"),
    ],
)
def test_the_audit_policy_never_logs_a_body_that_can_hold_a_key(group: str, resource: str) -> None:
    policy = yaml.safe_load((APISERVER / "audit-policy.yaml").read_text())
    assert (policy["apiVersion"], policy["kind"]) == ("audit.k8s.io/v1", "Policy")
    for verb in VERBS:
        level = _first_level(policy["rules"], group, resource, verb)
        assert level not in BODY_LEVELS, (resource, verb, level)
        if resource == "secrets":
            assert level == "Metadata", (verb, level)


def test_the_audit_policy_records_who_changes_the_enforcement() -> None:
    rules = yaml.safe_load((APISERVER / "audit-policy.yaml").read_text())["rules"]
    for resource in ("validatingadmissionpolicybindings", "mutatingwebhookconfigurations"):
        assert _first_level(rules, "admissionregistration.k8s.io", resource, "delete") == "RequestResponse"
        assert _first_level(rules, "admissionregistration.k8s.io", resource, "get") == "Metadata"


def test_the_encryption_configuration_encrypts_secrets_first_and_ships_without_a_key() -> None:
    config = yaml.safe_load((APISERVER / "encryption-config.yaml").read_text())
    assert (config["apiVersion"], config["kind"]) == ("apiserver.config.k8s.io/v1", "EncryptionConfiguration")
    (entry,) = config["resources"]
    assert entry["resources"] == ["secrets"]
    providers = [next(iter(p)) for p in entry["providers"]]
    assert providers[0] in {"secretbox", "aescbc", "aesgcm", "kms"}
    assert providers[-1] == "identity", "identity last: it only reads what was written before encryption"
    assert [k["secret"] for k in entry["providers"][0][providers[0]]["keys"]] == [""], "never commit a key"


def test_the_safety_net_leaves_keyguards_warning_environments_to_keyguard() -> None:
    """The profiles that do not enforce select namespaces by `*-<domain>` globs; the safety net skips exactly those."""
    policy = yaml.safe_load((REPO / "manifests" / "base" / "policy.yaml").read_text())
    globs = [g for p in policy["profiles"] if p["mode"] != "enforce" for g in p["match"]["namespaces"]]
    assert globs and all(g.startswith("*-") and "*" not in g[1:] for g in globs), globs
    expected = " && ".join(f"!request.namespace.endsWith('{g[1:]}')" for g in globs)
    assert _policy()["spec"]["matchConditions"][1] == {"name": "enforced-environment", "expression": expected}
