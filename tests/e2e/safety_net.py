"""The safety net (manifests/safety-net) in a test cluster: apply it, and ask the API server for its verdict."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.e2e.cluster import REPO, ControlPlane
from tests.e2e.pods import create_pod, message

SAFETY_NET = REPO / "manifests" / "safety-net"
MARK = "keyguard safety net [env-credential-literal]"
FLYTE_NAMESPACES = ("flytesnacks-development", "flytesnacks-staging", "flytesnacks-production")


def apply_safety_net(plane: ControlPlane) -> None:
    plane.kubectl("apply", "--server-side", "--field-manager=e2e", "-k", str(SAFETY_NET))


def safety_net_refusal(core: client.CoreV1Api, pod: dict[str, Any], *, dry_run: bool = True) -> str | None:
    """The safety net's message if it refuses `pod`, None if the pod is admitted; any other refusal fails."""
    try:
        create_pod(core, pod, dry_run=dry_run)
    except client.ApiException as error:
        text = message(error)
        if MARK not in text:
            raise AssertionError(f"refused, but not by the safety net ({error.status}): {text}") from None
        return text
    return None


def flyte_environments(plane: ControlPlane, core: client.CoreV1Api) -> None:
    """manifests/flyte-environments applied, with the `default` service accounts the (absent) controller-manager
    would create: the ServiceAccount admission plugin refuses a pod whose account does not exist."""
    plane.kubectl("apply", "--server-side", "--field-manager=e2e", "-k", str(REPO / "manifests" / "flyte-environments"))
    for namespace in FLYTE_NAMESPACES:
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "default"}})
