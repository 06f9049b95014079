"""`keyguard check --cluster` against the real API server, run as the read-only `keyguard-auditor` account: the
same findings as for files, plus Flyte task pods that were created without keyguard's injection."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests import fake_credentials as fake
from tests.e2e.cluster import ControlPlane, run_keyguard
from tests.e2e.configurations import paused
from tests.e2e.pods import create_pod, is_injected, propeller_pod
from tests.leaks import assert_not_leaked

pytestmark = pytest.mark.usefixtures("webhooks")


@pytest.fixture(scope="module")
def auditor_kubeconfig(api: client.ApiClient, control_plane: ControlPlane, rendered: list[dict[str, Any]]) -> Path:
    """A kubeconfig holding a short-lived token of keyguard-auditor, whose RBAC comes from manifests/."""
    control_plane.apply_for_real(rendered, {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"})
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        "keyguard-auditor", "keyguard-system", {"spec": {"expirationSeconds": 3600}}
    )
    return control_plane.token_kubeconfig(token.status.token, control_plane.work / "auditor-kubeconfig")


def test_check_cluster_reports_leaks_and_missed_injections_with_read_access_only(
    api: client.ApiClient, core: client.CoreV1Api, auditor_kubeconfig: Path, policy_file: Path, fresh_namespace: Any
) -> None:
    """In a namespace of its own (a Flyte production namespace for the policy), so what is reported is exactly
    what this test created, whichever tests ran before."""
    namespace = fresh_namespace()
    secret, key_id = fake.aws_secret_access_key(), fake.aws_access_key_id()
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "uploader", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "uploader"}},
            "template": {
                "metadata": {"labels": {"app": "uploader"}},
                "spec": {
                    "containers": [
                        {
                            "name": "uploader",
                            "image": "busybox:1.37",
                            "env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": secret}],
                        }
                    ]
                },
            },
        },
    }
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment)
    propeller_config = yaml.safe_dump(
        {
            "storage": {
                "type": "stow",
                "stow": {
                    "kind": "s3",
                    "config": {"access_key_id": key_id, "secret_key": secret, "region": "us-east-1"},
                },
            }
        }
    )
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "flyte-propeller-config"}, "data": {"storage.yaml": propeller_config}}
    )
    injected = create_pod(core, propeller_pod(namespace))
    assert is_injected(injected)
    with paused(api):
        missed = create_pod(core, propeller_pod(namespace))  # created while keyguard was not installed

    result = run_keyguard(
        "check",
        "--cluster",
        "--namespace",
        namespace,
        "--output",
        "json",
        "--kubeconfig",
        str(auditor_kubeconfig),
        "--policy",
        str(policy_file),  # the cluster's policy, as an auditor would use
        check=False,
    )
    assert result.returncode == 1, result.stderr
    for value in (secret, key_id):
        assert_not_leaked(value, result.stdout + result.stderr, "check --cluster output")
    findings = json.loads(result.stdout)["findings"]
    assert all(f["file"].startswith(f"cluster:{namespace}/") for f in findings), findings
    assert {f["kind"] for f in findings} == {"Deployment", "ConfigMap", "Pod"}, findings
    [leak] = [f for f in findings if f["kind"] == "Deployment"]
    assert (leak["name"], leak["rule"], leak["path"]) == (
        "uploader",
        "env-credential-literal",
        "spec.template.spec.containers[0].env[0]",
    )
    config_findings = [f for f in findings if f["kind"] == "ConfigMap"]
    assert {f["name"] for f in config_findings} == {"flyte-propeller-config"}, config_findings
    assert all(f["fix"] for f in config_findings), config_findings
    # The pod created while keyguard was not installed is reported; the pod keyguard injected is complete.
    pods = [(f["name"], f["rule"]) for f in findings if f["kind"] == "Pod"]
    assert pods == [(missed["metadata"]["name"], "injection-missing")], pods


def test_check_cluster_with_an_invalid_token_says_so(control_plane: ControlPlane, tmp_path: Path) -> None:
    kubeconfig = control_plane.token_kubeconfig("not-a-valid-token", tmp_path / "kubeconfig")
    result = run_keyguard("check", "--cluster", "--kubeconfig", str(kubeconfig), check=False)
    assert result.returncode == 2
    assert "HTTP 401" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def auditor_without(
    api: client.ApiClient, control_plane: ControlPlane, rendered: list[dict[str, Any]], unique: str, tmp_path: Path
) -> Iterator[Callable[[str, str], Path]]:
    """without(group, resource) -> a kubeconfig for a valid account holding keyguard-auditor's rules minus that
    resource: authenticated, and forbidden exactly one thing. Its account, role and binding go after the test."""
    control_plane.apply_for_real(rendered, {"Namespace"})
    rbac, core = client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
    name = f"auditor-without-{unique}"
    [role] = [d for d in rendered if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "keyguard-auditor"]
    cleanup: list[Callable[[], Any]] = []

    def without(group: str, resource: str) -> Path:
        rules = copy.deepcopy(role["rules"])
        for rule in rules:
            if group in rule["apiGroups"]:
                assert resource in rule["resources"], (group, resource)
                rule["resources"].remove(resource)
        rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
        cleanup.append(lambda: rbac.delete_cluster_role(name))
        core.create_namespaced_service_account("keyguard-system", {"metadata": {"name": name}})
        cleanup.append(lambda: core.delete_namespaced_service_account(name, "keyguard-system"))
        subject = {"kind": "ServiceAccount", "name": name, "namespace": "keyguard-system"}
        role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
        rbac.create_cluster_role_binding({"metadata": {"name": name}, "roleRef": role_ref, "subjects": [subject]})
        cleanup.append(lambda: rbac.delete_cluster_role_binding(name))
        token = core.create_namespaced_service_account_token(name, "keyguard-system", {"spec": {}})
        return control_plane.token_kubeconfig(token.status.token, tmp_path / "kubeconfig")

    try:
        yield without
    finally:
        for undo in reversed(cleanup):
            undo()


@pytest.mark.parametrize(
    ("group", "resource"), [("", "namespaces"), ("", "pods"), ("apps", "deployments"), ("batch", "cronjobs")]
)
def test_check_cluster_with_a_valid_account_missing_one_permission_names_the_verb_and_resource(
    auditor_without: Any, group: str, resource: str
) -> None:
    kubeconfig = auditor_without(group, resource)
    result = run_keyguard("check", "--cluster", "--kubeconfig", str(kubeconfig), check=False)
    assert result.returncode == 2, result.stderr
    assert "HTTP 403" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert f'cannot list resource "{resource}" in API group "{group}"' in result.stderr, result.stderr
