"""`keyguard check --cluster` against the real API server, run as the read-only `keyguard-auditor` account: the
same findings as for files, plus Flyte task pods that were created without keyguard's injection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests import fake_credentials as fake
from tests.e2e.cluster import ControlPlane, run_keyguard
from tests.e2e.pods import create_pod, propeller_pod, webhooks_paused
from tests.leaks import assert_not_leaked

pytestmark = pytest.mark.usefixtures("webhooks")
STAGING, PRODUCTION = "flytesnacks-staging", "flytesnacks-production"


@pytest.fixture(scope="module")
def auditor_kubeconfig(api: client.ApiClient, control_plane: ControlPlane, rendered: list[dict[str, Any]]) -> Path:
    """A kubeconfig holding a short-lived token of keyguard-auditor, whose RBAC comes from manifests/."""
    control_plane.apply_for_real(rendered, {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"})
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        "keyguard-auditor", "keyguard-system", {"spec": {"expirationSeconds": 3600}}
    )
    return control_plane.token_kubeconfig(token.status.token, control_plane.work / "auditor-kubeconfig")


def test_check_cluster_reports_leaks_and_missed_injections_with_read_access_only(
    api: client.ApiClient, core: client.CoreV1Api, auditor_kubeconfig: Path, policy_file: Path, unique: str
) -> None:
    secret, key_id = fake.aws_secret_access_key(), fake.aws_access_key_id()
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"uploader-{unique}", "namespace": STAGING},
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
    client.AppsV1Api(api).create_namespaced_deployment(STAGING, deployment)
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
        STAGING, {"metadata": {"name": f"flyte-propeller-config-{unique}"}, "data": {"storage.yaml": propeller_config}}
    )
    with webhooks_paused(api, core):
        missed = create_pod(core, propeller_pod(PRODUCTION))  # created while keyguard was not installed

    result = run_keyguard(
        "check",
        "--cluster",
        "--namespace",
        STAGING,
        "--namespace",
        PRODUCTION,
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
    where = {(f["kind"], f["name"], f["rule"], f["path"]) for f in findings}
    assert (
        "Deployment",
        f"uploader-{unique}",
        "env-credential-literal",
        "spec.template.spec.containers[0].env[0]",
    ) in where
    config_findings = [
        f for f in findings if f["kind"] == "ConfigMap" and f["name"] == f"flyte-propeller-config-{unique}"
    ]
    assert {f["rule"] for f in config_findings} and all(f["fix"] for f in config_findings), config_findings
    missing = [f for f in findings if f["rule"] == "injection-missing"]
    assert [f["name"] for f in missing] == [missed["metadata"]["name"]], missing
    # Pods keyguard injected are complete: never reported.
    injected = {f["name"] for f in findings if f["kind"] == "Pod"} - {missed["metadata"]["name"]}
    assert not injected, injected


def test_check_cluster_names_the_permission_it_lacks(control_plane: ControlPlane, tmp_path: Path) -> None:
    kubeconfig = control_plane.token_kubeconfig("not-a-valid-token", tmp_path / "kubeconfig")
    result = run_keyguard("check", "--cluster", "--kubeconfig", str(kubeconfig), check=False)
    assert result.returncode == 2
    assert "HTTP 401" in result.stderr and "Traceback" not in result.stderr
