"""Environments kept apart (issue 13, item 6), and credentials a rotation cannot reach (item 1's policy half).

A pod of one environment may not reference another environment's credentials Secret (by volume, projected volume,
secretKeyRef or envFrom) nor run under another environment's task service account; keys delivered through
secretKeyRef env or a subPath mount are a warning, because a rotation never reaches them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.flyte_pods import task_pod
from webhook.engine import check_pod
from webhook.policy import Policy, parse_policy

ENVIRONMENTS = ("development", "staging", "production")


@pytest.fixture(scope="module")
def environments() -> Policy:
    return parse_policy(
        {
            "apiVersion": "keyguard.flyte.org/v1",
            "kind": "Policy",
            "profiles": [
                {
                    "name": env,
                    "match": {"namespaces": [f"*-{env}"]},
                    "credentials": {"secretName": f"storage-creds-{env}"},
                    "serviceAccount": {"name": f"flyte-task-{env}"},
                }
                for env in ENVIRONMENTS
            ],
        },
        "test",
    )


def production_pod() -> dict[str, Any]:
    return task_pod(namespace="flytesnacks-production", domain="production")


def secret_volume(secret: str) -> dict[str, Any]:
    return {"name": "extra", "secret": {"secretName": secret}}


def projected(secret: str) -> dict[str, Any]:
    return {"name": "extra", "projected": {"sources": [{"secret": {"name": secret}}]}}


def with_volume(volume: dict[str, Any]) -> dict[str, Any]:
    pod = production_pod()
    pod["spec"]["volumes"].append(volume)
    return pod


def with_env(variable: dict[str, Any], field: str = "env") -> dict[str, Any]:
    pod = production_pod()
    pod["spec"]["containers"][0].setdefault(field, []).append(variable)
    return pod


SECRET_REF = {"name": "STORAGE", "valueFrom": {"secretKeyRef": {"name": "storage-creds-development", "key": "k"}}}
CROSSINGS = [
    ("a Secret volume", with_volume(secret_volume("storage-creds-development")), "spec.volumes[1]"),
    ("a projected volume", with_volume(projected("storage-creds-staging")), "spec.volumes[1]"),
    ("secretKeyRef env", with_env(SECRET_REF), "spec.containers[0].env[19]"),
    (
        "envFrom",
        with_env({"secretRef": {"name": "storage-creds-development"}}, "envFrom"),
        "spec.containers[0].envFrom[0]",
    ),
]


@pytest.mark.parametrize(("label", "pod", "path"), CROSSINGS, ids=[c[0] for c in CROSSINGS])
def test_another_environments_secret_is_refused(
    environments: Policy, label: str, pod: dict[str, Any], path: str
) -> None:
    decision = check_pod(environments, pod, namespace="flytesnacks-production")
    assert not decision.allowed, label
    assert decision.rule_ids == ("cross-environment-credentials",)
    assert [f.path for f in decision.findings] == [path]
    assert "profile production" in decision.message and "Fix [cross-environment-credentials]" in decision.message


def test_its_own_secret_and_an_unrelated_one_are_fine(environments: Policy) -> None:
    pod = with_volume(secret_volume("storage-creds-production"))
    pod["spec"]["volumes"].append({"name": "tls", "secret": {"secretName": "some-tls"}})
    decision = check_pod(environments, pod, namespace="flytesnacks-production")
    assert decision.allowed and decision.findings == ()


def test_another_environments_service_account_is_refused(environments: Policy) -> None:
    pod = production_pod()
    pod["spec"]["serviceAccountName"] = pod["spec"]["serviceAccount"] = "flyte-task-development"
    decision = check_pod(environments, pod, namespace="flytesnacks-production")
    assert not decision.allowed
    assert decision.rule_ids == ("service-account-not-allowed",)
    assert "flyte-task-production" in decision.message


def subpath_pod() -> dict[str, Any]:
    pod = with_volume({"name": "own", "secret": {"secretName": "storage-creds-production"}})
    pod["spec"]["containers"][0]["volumeMounts"].append({"name": "own", "mountPath": "/keys/a", "subPath": "a"})
    return pod


@pytest.mark.parametrize("case", ["env", "subPath"])
def test_credentials_a_rotation_cannot_reach_are_a_warning(environments: Policy, case: str) -> None:
    if case == "env":
        secret_ref = {"secretKeyRef": {"name": "s3", "key": "k"}}
        pod, field = with_env({"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret_ref}), "env AWS_SECRET_ACCESS_KEY"
    else:
        pod, field = subpath_pod(), "mount own"
    decision = check_pod(environments, pod, namespace="flytesnacks-production")
    assert decision.allowed and decision.outcome == "patched"  # a warning never denies
    assert decision.rule_ids == ("credential-not-rotatable",)
    assert decision.findings[0].field == field
    assert any("never reaches this task" in w for w in decision.warnings)


def test_a_non_credential_secret_env_is_not_a_rotation_warning(environments: Policy) -> None:
    pod = with_env({"name": "DB_HOST", "valueFrom": {"secretKeyRef": {"name": "db", "key": "host"}}})
    assert check_pod(environments, pod, namespace="flytesnacks-production").findings == ()
