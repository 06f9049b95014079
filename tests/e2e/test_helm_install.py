"""The Helm chart against the real API server, and `keyguard fix --apply-secrets`.

A control plane of its own (the session's already holds the kustomize install, whose cluster-wide names the chart
shares): `helm install` (client-side apply) of charts/keyguard, the webhooks pointed at a real `keyguard serve`
on loopback that reads the policy the chart installed, the admission smoke test through them, then
`helm uninstall` and every object the release made is gone. Then `keyguard fix --write --apply-secrets` on a
leaky flyte-binary values file: the Secrets are in the cluster with the keys, applied by keyguard and labelled
as `keyguard secret create` labels them; the file and the output hold no value."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.e2e.cluster import REPO, ControlPlane, KeyguardProcess, run_keyguard
from tests.e2e.pods import create_pod, is_injected, message, propeller_pod, refusal, wait_for
from tests.flyte_values import with_literals
from tests.helm.tool import CHART, NAMESPACE, helm_binary
from tests.leaks import assert_not_leaked
from webhook.cluster.secrets import LABEL

TASK_NAMESPACE = "flytesnacks-production"


@pytest.fixture(scope="module")
def plane(bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    own = ControlPlane(bin_dir, tmp_path_factory.mktemp("helm-plane"))
    try:
        own.start()
        own.kubectl("apply", "--server-side", "-k", str(REPO / "manifests" / "flyte-environments"))
        own.kubectl("create", "namespace", "flyte")
        # The `default` account the (absent) controller-manager would create; propeller's pods name it.
        own.kubectl("create", "serviceaccount", "default", "-n", TASK_NAMESPACE)
        yield own
    finally:
        own.stop()


@pytest.fixture(scope="module")
def api(plane: ControlPlane) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(plane.kubeconfig))


def helm(plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    """helm with its cache, config and data under the test's folder, never the user's home."""
    home = plane.work / "helm-home"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update({f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")})
    result = subprocess.run(
        [str(helm_binary()), f"--kubeconfig={plane.kubeconfig}", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"helm {' '.join(args)}: {result.stderr}"
    return result


def point_at(api: client.ApiClient, keyguard: KeyguardProcess) -> None:
    """What the session's harness does to the kustomize render: only clientConfig moves to keyguard on loopback
    (there is no kubelet, so the chart's Service has no endpoints)."""
    admission = client.AdmissionregistrationV1Api(api)
    bundle = base64.b64encode(keyguard.ca_bundle()).decode()
    for kind, path in (("mutating", "mutate"), ("validating", "validate")):
        value = {"url": f"{keyguard.url}/{path}", "caBundle": bundle}
        patch = [{"op": "replace", "path": "/webhooks/0/clientConfig", "value": value}]
        getattr(admission, f"patch_{kind}_webhook_configuration")("keyguard", patch)


def exists(plane: ControlPlane, document: dict[str, Any]) -> bool:
    args = ["get", f"{document['kind']}/{document['metadata']['name']}", "--ignore-not-found", "-o", "name"]
    if "namespace" in document["metadata"]:
        args += ["-n", document["metadata"]["namespace"]]
    return bool(plane.kubectl(*args).stdout.strip())


def test_helm_install_admits_through_the_chart_and_uninstall_leaves_nothing(
    plane: ControlPlane, api: client.ApiClient, tmp_path: Path
) -> None:
    plane.kubectl("apply", "-f", str(REPO / "manifests" / "base" / "namespace.yaml"))
    helm(plane, "install", "keyguard", str(CHART), "--namespace", NAMESPACE, "--server-side=false")
    installed = [d for d in yaml.safe_load_all(helm(plane, "get", "manifest", "keyguard", "-n", NAMESPACE).stdout) if d]
    assert {d["kind"] for d in installed} >= {"Deployment", "MutatingWebhookConfiguration", "ConfigMap"}
    assert all(exists(plane, d) for d in installed)
    deployment = client.AppsV1Api(api).read_namespaced_deployment("keyguard", NAMESPACE)
    assert {(m.manager, m.operation) for m in deployment.metadata.managed_fields} == {("helm", "Update")}

    core = client.CoreV1Api(api)
    policy = tmp_path / "policy.yaml"
    policy.write_text(core.read_namespaced_config_map("keyguard-policy", NAMESPACE).data["policy.yaml"])
    keyguard = KeyguardProcess(tmp_path, policy)
    keyguard.start()
    try:
        # The documented certificate step, then an upgrade: Helm changes what it owns, the caBundle stays.
        kubeconfig = f"--kubeconfig={plane.kubeconfig}"
        run_keyguard("certs", "install", "--dir", str(keyguard.cert_dir), "--no-secret", kubeconfig)
        helm(plane, "upgrade", "keyguard", str(CHART), "-n", NAMESPACE, "--set", "webhook.timeoutSeconds=5")
        admission = client.AdmissionregistrationV1Api(api)
        (hook,) = admission.read_mutating_webhook_configuration("keyguard").webhooks
        assert hook.timeout_seconds == 5
        assert base64.b64decode(hook.client_config.ca_bundle) == keyguard.ca_bundle()
        point_at(api, keyguard)
        probe = propeller_pod(TASK_NAMESPACE)
        wait_for(lambda: is_injected(create_pod(core, probe, dry_run=True)), what="the chart's webhooks in effect")
        assert is_injected(create_pod(core, propeller_pod(TASK_NAMESPACE)))
        key = "a" * 8 + "B" * 8  # a literal on a credential name is refused whatever its shape
        leaky = propeller_pod(TASK_NAMESPACE, env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": key}])
        error = refusal(core, leaky)
        assert error.status == 403 and "env-credential-literal" in message(error)
    finally:
        keyguard.stop()

    helm(plane, "uninstall", "keyguard", "--namespace", NAMESPACE)
    left = [f"{d['kind']}/{d['metadata']['name']}" for d in installed if exists(plane, d)]
    assert not left, f"helm uninstall left {left}"
    releases = plane.kubectl("get", "secrets", "-n", NAMESPACE, "-l", "owner=helm", "-o", "name").stdout
    assert not releases.strip()


def test_fix_apply_secrets_creates_the_secrets_the_fixed_file_names(
    plane: ControlPlane, api: client.ApiClient, tmp_path: Path
) -> None:
    leaky = with_literals("flyte-binary")
    values = tmp_path / "values.yaml"
    values.write_text(leaky.text)
    result = run_keyguard(
        "fix", "--write", "--apply-secrets", f"--kubeconfig={plane.kubeconfig}",
        "--flyte-namespace", "flyte", "--task-namespace", TASK_NAMESPACE, str(values),
    )  # fmt: skip
    for value in (leaky.access_key, leaky.secret_key):
        assert_not_leaked(value, result.stdout + result.stderr, "keyguard fix's output")
        assert_not_leaked(value, values.read_text(), "the fixed file")
    assert "keyguard secret create" in result.stdout
    assert run_keyguard("check", str(values)).returncode == 0

    core = client.CoreV1Api(api)
    control = core.read_namespaced_secret("flyte-storage-config", "flyte")
    config_text = base64.b64decode(control.data["203-storage-secrets.yaml"]).decode()
    stow = yaml.safe_load(config_text)["storage"]["stow"]["config"]
    assert stow == {"auth_type": "accesskey", "access_key_id": leaky.access_key, "secret_key": leaky.secret_key}
    tasks = core.read_namespaced_secret("flyte-storage-creds", TASK_NAMESPACE)
    decoded = {k: base64.b64decode(v).decode() for k, v in tasks.data.items()}
    assert decoded == {"access_key": leaky.access_key, "secret_key": leaky.secret_key}
    for secret in (control, tasks):
        assert secret.metadata.labels[LABEL] == "true"
        assert {m.manager for m in secret.metadata.managed_fields} == {"keyguard"}
        assert secret.metadata.managed_fields[0].operation == "Apply"
