"""Rotation reaches a running task without a restart (issue 13, item 1), on the real kubelet: with
`credentials.refresh: watch` (the staging profile here), the Secret is rewritten while the task runs, the kubelet
swaps the volume's `..data` link, keyguard's refresher sidecar renders the file again, and the task sees the new
keys. The sidecar never keeps the finished pod alive. Values never reach the log: the task prints only when the
file's content changed and how long it had been waiting."""

from __future__ import annotations

import json
import time

from kubernetes import client

from tests.e2e.cluster import ControlPlane
from tests.e2e.pods import create_pod, is_injected
from tests.node.node import Build
from tests.node.pods import RESULT, TERMINAL, describe_usage, refresher_usage, task_pod
from tests.node.storage import KeyPair, SeaweedFS, secret_create
from webhook.injection import REFRESHER_NAME

STAGING = "flytesnacks-staging"

# Prints READY, then watches its credentials file; prints the result when the content changes (or gives up).
WATCH_FILE = """
import hashlib, json, os, time
path = os.environ["AWS_SHARED_CREDENTIALS_FILE"]
def digest():
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).digest()
first = digest()
print("READY", flush=True)
deadline = time.time() + 240
while time.time() < deadline and digest() == first:
    time.sleep(0.1)
print("RESULT " + json.dumps({"changed": digest() != first, "seen": time.time()}), flush=True)
"""


def test_a_rotated_secret_reaches_the_running_task_and_the_sidecar_lets_the_pod_finish(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, storage: SeaweedFS, capsys: object
) -> None:
    pod = task_pod(STAGING, built.images["task"].name, WATCH_FILE)
    name = pod["metadata"]["name"]
    stored = create_pod(core, pod)
    assert is_injected(stored)
    sidecar = next(c for c in stored["spec"]["initContainers"] if c["name"] == REFRESHER_NAME)
    assert sidecar["restartPolicy"] == "Always"
    main = pod["spec"]["containers"][0]["name"]
    try:
        deadline = time.monotonic() + 120
        while "READY" not in cluster.kubectl("logs", "-n", STAGING, name, "-c", main, check=False).stdout:
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.2)
        rotated_at = time.time()
        secret_create(cluster, STAGING, KeyPair.fake())  # rotate: new keys, same Secret, no restart
        deadline = time.monotonic() + 240
        status: dict[str, object] = {}
        usage: tuple[float, float] | None = None
        while time.monotonic() < deadline:
            current = core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, STAGING))
            status = current["status"]
            usage = refresher_usage(current) or usage
            if status.get("phase") in TERMINAL:
                break
            time.sleep(0.2)
        logs = cluster.kubectl("logs", "-n", STAGING, name, "-c", main, check=False).stdout
    finally:
        core.delete_namespaced_pod(name, STAGING, grace_period_seconds=0)
        secret_create(cluster, STAGING, storage.keys)  # the namespace's working keys back
    assert status.get("phase") == "Succeeded", json.dumps(status)  # the sidecar did not keep the pod alive
    result = json.loads(next(line for line in logs.splitlines() if line.startswith(RESULT))[len(RESULT) :])
    assert result["changed"], "the task never saw the rotated keys"
    window = result["seen"] - rotated_at
    spent = describe_usage(usage)
    with capsys.disabled():  # type: ignore[attr-defined]
        print(
            f"\nrotation: the running task read the new keys {window:.1f} s after the Secret was rewritten "
            f"(kubelet syncFrequency 10 s + refresher poll 2 s); refresher sidecar: {spent}"
        )
