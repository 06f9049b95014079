"""keyguard beside other mutating webhooks: reinvocation keeps later containers covered, Flyte's secrets webhook
and keyguard both keep their injections in either order, and a key added after keyguard is still refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests import fake_credentials as fake
from tests.e2e.other_webhooks import LateKey, Mutation, OtherWebhooks, flyte_secrets, other_webhooks, sidecar
from tests.e2e.pods import create_pod, is_injected, message, propeller_pod, refusal, wait_for
from tests.leaks import assert_not_leaked

pytestmark = pytest.mark.usefixtures("webhooks")


@pytest.fixture(scope="module")
def others(work: Path) -> Iterator[OtherWebhooks]:
    with other_webhooks(work / "other-webhooks") as server:
        yield server


@pytest.fixture
def installed(api: client.ApiClient, core: client.CoreV1Api, others: OtherWebhooks) -> Iterator[Any]:
    """install(name, mutation) -> a fresh `<name>-production` namespace served by that webhook."""
    admission = client.AdmissionregistrationV1Api(api)
    names: list[str] = []

    def install(name: str, mutation: Mutation) -> str:
        namespace = f"{name}-production"
        core.create_namespace({"metadata": {"name": namespace}})
        for account in ("default", "flyte-task"):
            core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
        admission.create_mutating_webhook_configuration(others.configuration(name, namespace, mutation))
        names.append(name)
        wait_for(lambda: _probe(core, namespace) and others.calls.get(f"/{name}"), what=f"{name} in effect")
        return namespace

    yield install
    for name in names:
        admission.delete_mutating_webhook_configuration(name)


def _probe(core: client.CoreV1Api, namespace: str) -> bool:
    """A dry-run create, admitted or not: it reaches every webhook in effect for the namespace."""
    try:
        create_pod(core, propeller_pod(namespace), dry_run=True)
    except client.ApiException as error:
        return error.status == 403
    return True


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


def test_reinvocation_covers_a_container_added_after_keyguard(core: client.CoreV1Api, installed: Any) -> None:
    namespace = installed("zz-sidecar", sidecar)  # runs after "keyguard" (name order)
    pod = create_pod(core, propeller_pod(namespace))
    names = [c["name"] for c in pod["spec"]["containers"]]
    assert names[-1] == "log-shipper"
    _assert_fully_injected(pod)
    volumes = [v["name"] for v in pod["spec"]["volumes"]]
    assert len(volumes) == len(set(volumes))


@pytest.mark.parametrize("name", ["aa-flyte-pod-webhook", "zz-flyte-pod-webhook"], ids=["before", "after"])
def test_flyte_secrets_webhook_and_keyguard_both_keep_their_injections(
    core: client.CoreV1Api, installed: Any, name: str
) -> None:
    namespace = installed(name, flyte_secrets)
    pod = propeller_pod(namespace)
    pod["metadata"]["labels"]["inject-flyte-secrets"] = "true"
    stored = create_pod(core, pod)
    _assert_fully_injected(stored)
    assert "flyte-secret-user-token" in _volumes(stored)
    for container in stored["spec"]["containers"]:  # the task's own; keyguard's renderer needs no Flyte secret
        paths = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/etc/flyte/secrets/user" in paths, container["name"]


def test_a_key_added_by_a_later_webhook_is_refused(core: client.CoreV1Api, installed: Any) -> None:
    secret = fake.aws_secret_access_key()
    namespace = installed("zz-late-key", LateKey(secret))
    error = refusal(core, propeller_pod(namespace))
    assert error.status == 403
    assert "AWS_SECRET_ACCESS_KEY" in message(error)
    assert_not_leaked(secret, error.body, "refusal of a later webhook's key")
