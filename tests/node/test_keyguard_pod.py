"""keyguard itself as a pod on the node: the image built from the project's Dockerfile, run by the rendered
Deployment (non-root, read-only root filesystem, all capabilities dropped), passes its readiness probe and serves
the API server's admission calls. Only what loopback needs changes: one replica on the host network, listening and
probed on 127.0.0.1 at a free port."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.e2e.cluster import REPO, ControlPlane, KeyguardProcess
from tests.e2e.pods import create_pod, propeller_pod, wait_for
from tests.node.node import Build
from tests.server_harness import free_port

NAMESPACE = "keyguard-system"


def _rendered(plane: ControlPlane) -> list[dict[str, Any]]:
    output = plane.kubectl("kustomize", str(REPO / "manifests")).stdout
    return [d for d in yaml.safe_load_all(output) if d]


def _on_loopback(deployment: dict[str, Any], image: str, port: int) -> dict[str, Any]:
    deployment = copy.deepcopy(deployment)
    spec = deployment["spec"]
    spec["replicas"] = 1
    pod = spec["template"]["spec"]
    pod["hostNetwork"] = True
    pod["dnsPolicy"] = "Default"  # the node has no cluster DNS
    container = pod["containers"][0]
    container["image"] = image
    container["args"] = [
        f"--port={port}" if a.startswith("--port=") else "--host=127.0.0.1" if a.startswith("--host=") else a
        for a in container["args"]
    ]
    container["ports"] = [{"name": "https", "containerPort": port, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        container[probe]["httpGet"]["host"] = "127.0.0.1"  # the kubelet would probe the node's address otherwise
    return deployment


@pytest.fixture
def keyguard_pod(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, keyguard: KeyguardProcess
) -> Iterator[tuple[int, str]]:
    rendered = _rendered(cluster)
    cluster.apply_for_real(rendered, {"Namespace", "ServiceAccount", "ConfigMap"})
    certs = keyguard.cert_dir
    core.create_namespaced_secret(
        NAMESPACE,
        {
            "metadata": {"name": "keyguard-tls"},
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": base64.b64encode((certs / "tls.crt").read_bytes()).decode(),
                "tls.key": base64.b64encode((certs / "tls.key").read_bytes()).decode(),
            },
        },
    )
    port = free_port()
    rendered_deployment = next(d for d in rendered if d["kind"] == "Deployment")
    # The rendered pod passes the namespace's `restricted` PodSecurity level as it is...
    as_rendered = copy.deepcopy(rendered_deployment["spec"]["template"])
    as_rendered["spec"]["containers"][0]["image"] = built.images["keyguard"].name
    create_pod(
        core,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "keyguard-restricted",
                "namespace": NAMESPACE,
                **{k: v for k, v in as_rendered["metadata"].items() if k == "labels"},
            },
            "spec": as_rendered["spec"],
        },
        dry_run=True,
    )
    # ...and the suite's one change, hostNetwork (every connection stays on 127.0.0.1), is what `restricted` forbids:
    # the namespace enforces `privileged` while the test runs.
    level = "pod-security.kubernetes.io/enforce"
    original = core.read_namespace(NAMESPACE).metadata.labels.get(level)
    core.patch_namespace(NAMESPACE, {"metadata": {"labels": {level: "privileged"}}})
    deployment = _on_loopback(rendered_deployment, built.images["keyguard"].name, port)
    apps = client.AppsV1Api(core.api_client)
    apps.create_namespaced_deployment(NAMESPACE, deployment)
    try:
        try:
            wait_for(
                lambda: (
                    apps.read_namespaced_deployment(deployment["metadata"]["name"], NAMESPACE).status.ready_replicas
                ),
                timeout=120,
                what="keyguard's Deployment ready (readiness probe passing)",
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\n{_diagnosis(cluster)}") from None
        pods = core.list_namespaced_pod(NAMESPACE, label_selector="app.kubernetes.io/component=webhook").items
        yield port, pods[0].metadata.name
    finally:
        apps.delete_namespaced_deployment(deployment["metadata"]["name"], NAMESPACE)
        core.delete_namespaced_secret("keyguard-tls", NAMESPACE)
        core.patch_namespace(NAMESPACE, {"metadata": {"labels": {level: original}}})


def _diagnosis(plane: ControlPlane) -> str:
    """What a platform engineer looks at first: the pods, their events and the last log lines."""
    pods = plane.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide", check=False).stdout
    events = plane.kubectl("get", "events", "-n", NAMESPACE, check=False).stdout
    logs = plane.kubectl("logs", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=webhook", "--tail=20", check=False)
    return f"{pods}\n{events}\n{logs.stdout}{logs.stderr}"


def _point_webhooks(admission: client.AdmissionregistrationV1Api, url_from: str, url_to: str) -> None:
    """Both configurations: the mutating and the validating calls must reach keyguards with the same policy."""
    mutating = admission.read_mutating_webhook_configuration("keyguard")
    validating = admission.read_validating_webhook_configuration("keyguard")
    for hook in [*mutating.webhooks, *validating.webhooks]:
        hook.client_config.url = hook.client_config.url.replace(url_from, url_to)
    admission.replace_mutating_webhook_configuration("keyguard", mutating)
    admission.replace_validating_webhook_configuration("keyguard", validating)


def test_keyguard_runs_from_its_image_as_a_pod_and_serves_admission(
    cluster: ControlPlane, core: client.CoreV1Api, keyguard: KeyguardProcess, keyguard_pod: tuple[int, str]
) -> None:
    port, name = keyguard_pod
    pod = core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, NAMESPACE))
    security = pod["spec"]["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    admission = client.AdmissionregistrationV1Api(core.api_client)
    in_pod = f"https://127.0.0.1:{port}"
    _point_webhooks(admission, keyguard.url, in_pod)
    try:
        probe = propeller_pod("flytesnacks-production")

        def served_by_the_pod() -> bool:
            create_pod(core, copy.deepcopy(probe), dry_run=True)
            log = cluster.kubectl("logs", "-n", NAMESPACE, name).stdout
            records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
            return any(r.get("name") == probe["metadata"]["name"] for r in records)

        wait_for(served_by_the_pod, timeout=30, what="an admission call answered by keyguard's pod")
        log = cluster.kubectl("logs", "-n", NAMESPACE, name).stdout
        started = [json.loads(line) for line in log.splitlines() if line.startswith('{"event":"started"')]
        assert [record["engine"] for record in started] == ["mypyc-compiled"]  # the image's build stage compiled it
    finally:
        _point_webhooks(admission, in_pod, keyguard.url)
