"""keyguard beside other mutating webhooks: reinvocation keeps later containers covered, and Flyte's secrets webhook
and keyguard both keep their injections in either order. (A later webhook that adds a key: test_webhook_layers.)"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.e2e.other_webhooks import flyte_secrets, sidecar
from tests.e2e.pods import create_pod, is_injected, propeller_pod

pytestmark = pytest.mark.usefixtures("webhooks")


def _volumes(pod: dict[str, Any]) -> set[str]:
    return {v["name"] for v in pod["spec"].get("volumes", [])}


def _assert_fully_injected(pod: dict[str, Any]) -> None:
    assert is_injected(pod)
    for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
        mounts = [m["name"] for m in container.get("volumeMounts", [])]
        env = [e["name"] for e in container.get("env", [])]
        assert mounts.count("keyguard-storage-creds") == 1, (container["name"], mounts)
        assert mounts.count("keyguard-storage-tmpfs") == 1, (container["name"], mounts)
        if container["name"] != "keyguard-render-credentials":
            assert env.count("AWS_SHARED_CREDENTIALS_FILE") == 1, (container["name"], env)


def test_reinvocation_covers_a_container_added_after_keyguard(
    core: client.CoreV1Api, fresh_namespace: Any, other_webhook: Any
) -> None:
    namespace = fresh_namespace()
    other_webhook("zz-sidecar", namespace, sidecar)  # runs after "keyguard" (name order)
    pod = create_pod(core, propeller_pod(namespace))
    names = [c["name"] for c in pod["spec"]["containers"]]
    assert names[-1] == "log-shipper"
    _assert_fully_injected(pod)
    volumes = [v["name"] for v in pod["spec"]["volumes"]]
    assert len(volumes) == len(set(volumes))


@pytest.mark.parametrize("name", ["aa-flyte-pod-webhook", "zz-flyte-pod-webhook"], ids=["before", "after"])
def test_flyte_secrets_webhook_and_keyguard_both_keep_their_injections(
    core: client.CoreV1Api, fresh_namespace: Any, other_webhook: Any, name: str
) -> None:
    namespace = fresh_namespace()
    other_webhook(name, namespace, flyte_secrets)
    pod = propeller_pod(namespace)
    pod["metadata"]["labels"]["inject-flyte-secrets"] = "true"
    stored = create_pod(core, pod)
    _assert_fully_injected(stored)
    assert "flyte-secret-user-token" in _volumes(stored)
    for container in stored["spec"]["containers"]:  # the task's own; keyguard's renderer needs no Flyte secret
        paths = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/etc/flyte/secrets/user" in paths, container["name"]
