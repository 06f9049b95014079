"""Flyte task pods as flytepropeller submits them (before any admission plugin ran), and small API helpers."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from kubernetes import client

from tests.flyte_pods import container, task_pod

KEYGUARD_VOLUMES = ("keyguard-storage-creds", "keyguard-storage-tmpfs")
RENDERER = "keyguard-render-credentials"
FLYTE_NAMESPACES = ("flytesnacks-development", "flytesnacks-staging", "flytesnacks-production")


def propeller_pod(
    namespace: str, *, env: list[dict[str, Any]] | None = None, args: list[str] | None = None
) -> dict[str, Any]:
    """A realistic Flyte 1.x task pod with a unique execution id, no token volume and the `default` account, as
    propeller creates it; the API server's ServiceAccount plugin adds the token volume."""
    domain = namespace.rsplit("-", 1)[1]
    execution = "a" + uuid.uuid4().hex[:19]
    name = f"{execution}-n0-0"
    main = container(name, env=env)
    main.pop("volumeMounts")
    if args is not None:
        main["args"] = args
    pod = task_pod(namespace=namespace, domain=domain, containers=[main])
    pod["metadata"]["name"] = name
    pod["metadata"]["labels"]["execution-id"] = execution
    pod["metadata"]["annotations"]["primary_container_name"] = name
    pod["metadata"]["ownerReferences"][0]["name"] = execution
    pod["spec"]["volumes"] = []
    del pod["spec"]["serviceAccount"]
    return pod


def as_dict(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.sanitize_for_serialization(obj)
    return result


def create_pod(core: client.CoreV1Api, pod: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    namespace = pod["metadata"]["namespace"]
    response = core.create_namespaced_pod(namespace, pod, dry_run="All" if dry_run else None, _preload_content=False)
    result: dict[str, Any] = json.loads(response.data)
    return result


def refusal(core: client.CoreV1Api, pod: dict[str, Any], *, dry_run: bool = False) -> client.ApiException:
    """Create `pod` and return the API server's error (the test fails if the pod is admitted)."""
    try:
        create_pod(core, pod, dry_run=dry_run)
    except client.ApiException as error:
        return error
    raise AssertionError(f"pod {pod['metadata']['name']} was admitted")


def message(error: client.ApiException) -> str:
    body = json.loads(error.body)
    return str(body.get("message", ""))


def is_injected(pod: dict[str, Any]) -> bool:
    names = {v["name"] for v in pod["spec"].get("volumes", [])}
    return set(KEYGUARD_VOLUMES) <= names


def wait_for(check: Any, timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")
