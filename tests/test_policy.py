"""Policy files: the embedded default, validation errors with paths, profile choice, exemptions, reloading."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.flyte_pods import flyte2_pod, task_pod
from webhook.errors import PolicyError
from webhook.policy import default_policy, load_policy, parse_policy, parse_policy_text
from webhook.selection import choose_profile, find_exemption, is_flyte_task_pod
from webhook.server.policy_watch import PolicyHolder

ENVIRONMENTS = """
apiVersion: keyguard.flyte.org/v1
kind: Policy
profiles:
  - name: development
    mode: warn
    match: {domains: [development]}
    credentials: {secretName: flyte-storage-creds-dev}
  - name: production
    mode: enforce
    match: {namespaces: ["*-production"]}
  - name: labelled
    match: {namespaceLabels: {keyguard.flyte.org/env: staging}}
  - name: fallback
exemptions:
  - namespaces: [legacy-*]
    owner: data-platform@example.com
    expires: 2027-03-31
    reason: migrating off default-env-vars
  - podLabels: {team: research}
    owner: research@example.com
    expires: 2026-01-01
"""


def doc(**profile: Any) -> dict[str, Any]:
    return {"apiVersion": "keyguard.flyte.org/v1", "kind": "Policy", "profiles": [{"name": "p", **profile}]}


def test_default_policy_is_one_enforcing_profile() -> None:
    policy = default_policy()
    assert [(p.name, p.mode) for p in policy.profiles] == [("default", "enforce")]
    assert policy.profiles[0].credentials.secret_name == "flyte-storage-creds"
    assert len(policy.version) == 12


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (doc(mode="block"), "profiles[0].mode: Input should be 'enforce', 'warn' or 'audit'"),
        (doc(credentials={"secretName": "Bad_Name"}), "profiles[0].credentials.secretName"),
        (doc(credentials={"mountPath": "/etc/flyte/secrets/x"}), "belongs to Flyte's own secrets webhook"),
        (doc(credentials={"mountPath": "relative"}), "must be an absolute"),
        (doc(credentials={"tmpfsSizeLimit": "lots"}), "Kubernetes quantity"),
        (doc(unknown=1), "profiles[0].unknown: Extra inputs are not permitted"),
        ({"apiVersion": "keyguard.flyte.org/v1", "kind": "Policy", "profiles": []}, "profiles: "),
        ({"kind": "Policy", "profiles": [{"name": "p"}]}, "apiVersion: Field required"),
        ({**doc(), "exemptions": [{"owner": "x", "expires": "2027-01-01"}]}, "needs namespaces or podLabels"),
        ({**doc(), "exemptions": [{"namespaces": ["a"], "expires": "2027-01-01"}]}, "exemptions[0].owner"),
        (
            {
                "apiVersion": "keyguard.flyte.org/v1",
                "kind": "Policy",
                "profiles": [{"name": "a"}, {"name": "a"}],
            },
            "profile names must be unique: a",
        ),
        ("just a string", "Input should be a valid dictionary"),
    ],
)
def test_invalid_policies_name_the_field_and_the_reason(data: Any, expected: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(data, "policy.yaml")
    assert str(raised.value).startswith("policy.yaml: invalid policy: ")
    assert expected in str(raised.value)


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: keyguard.flyte.org/v1\nprofiles: [\n  - name: a\n")
    with pytest.raises(PolicyError, match=r"policy.yaml: line \d+"):
        load_policy(path)


def test_unreadable_policy_names_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"missing\.yaml: cannot read policy: No such file"):
        load_policy(tmp_path / "missing.yaml")


def pod_in(namespace: str, domain: str) -> dict[str, Any]:
    return task_pod(namespace=namespace, domain=domain)


@pytest.mark.parametrize(
    ("namespace", "domain", "labels", "expected"),
    [
        ("flytesnacks-development", "development", None, "development"),
        ("flytesnacks-production", "production", None, "production"),
        ("flytesnacks-staging", "staging", {"keyguard.flyte.org/env": "staging"}, "labelled"),
        ("flytesnacks-staging", "staging", None, "fallback"),
    ],
)
def test_profiles_by_domain_namespace_glob_and_labels(
    namespace: str, domain: str, labels: dict[str, str] | None, expected: str
) -> None:
    policy = parse_policy_text(ENVIRONMENTS, "env.yaml")
    chosen = choose_profile(policy, namespace=namespace, pod=pod_in(namespace, domain), namespace_labels=labels)
    assert chosen is not None and chosen.name == expected


def test_no_matching_profile_means_none() -> None:
    policy = parse_policy(doc(match={"domains": ["production"]}), "t")
    assert choose_profile(policy, namespace="x-development", pod=pod_in("x-development", "development")) is None


@pytest.mark.parametrize(
    ("namespace", "labels", "today", "exempt"),
    [
        ("legacy-development", {}, date(2027, 3, 31), True),
        ("legacy-development", {}, date(2027, 4, 1), False),  # expired exemptions stop applying
        ("flytesnacks-development", {"team": "research"}, date(2025, 12, 31), True),
        ("flytesnacks-development", {"team": "research"}, date(2026, 11, 24), False),
        ("flytesnacks-development", {}, date(2026, 11, 24), False),
    ],
)
def test_exemptions_have_an_expiry(namespace: str, labels: dict[str, str], today: date, exempt: bool) -> None:
    policy = parse_policy_text(ENVIRONMENTS, "env.yaml")
    pod = pod_in(namespace, "development")
    pod["metadata"]["labels"].update(labels)
    assert (find_exemption(policy, namespace=namespace, pod=pod, today=today) is not None) is exempt


@pytest.mark.parametrize(
    ("pod", "selected"),
    [
        (task_pod(), True),
        (flyte2_pod(), True),
        ({"metadata": {"labels": {"execution-id": "x"}}}, False),
        ({"metadata": {"ownerReferences": [{"kind": "FlyteWorkflow", "name": "x"}]}}, True),
        ({"metadata": {"labels": {"app": "nginx"}}}, False),
        ({"metadata": {"labels": "nonsense", "ownerReferences": "nonsense"}}, False),
        ({}, False),
    ],
)
def test_selection(pod: dict[str, Any], selected: bool) -> None:
    assert is_flyte_task_pod(default_policy().selection, pod) is selected


def test_reload_keeps_last_good_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(ENVIRONMENTS)
    holder = PolicyHolder(path)
    first = holder.policy.version
    assert holder.reload_if_changed() is None
    path.write_text("apiVersion: keyguard.flyte.org/v1\nkind: Policy\nprofiles: []\n")
    assert holder.reload_if_changed() is False
    assert holder.policy.version == first and holder.last_error and "profiles" in holder.last_error
    assert holder.reload_if_changed() is None  # a bad file is reported once
    path.write_text(ENVIRONMENTS.replace("mode: warn", "mode: audit"))
    assert holder.reload_if_changed() is True
    assert holder.policy.version != first and holder.last_error is None
    path.unlink()
    assert holder.reload_if_changed() is False
    assert holder.reload_if_changed() is None


def test_embedded_holder_never_reloads() -> None:
    holder = PolicyHolder(None)
    assert holder.reload_if_changed() is None
    assert holder.policy == default_policy()


def test_a_profile_only_the_offline_tools_can_select_is_a_policy_warning() -> None:
    policy = parse_policy_text(ENVIRONMENTS, "environments.yaml")
    (warning,) = policy.warnings
    assert warning.startswith("profile labelled matches on namespaceLabels")
    assert "the webhook never selects it" in warning
    assert default_policy().warnings == ()
