"""Flyte task pods for the node: propeller's pod shape with the locally built task image, hostNetwork, and a
Python program as the task, which prints one `RESULT {json}` line the test reads back through `kubectl logs`."""

from __future__ import annotations

import glob
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.e2e.cluster import ControlPlane
from tests.e2e.pods import create_pod, propeller_pod
from webhook.injection import REFRESHER_NAME

RESULT = "RESULT "
# Projects whose namespaces the suite's policy exempts (conftest.py): their pods are admitted without injection.
EXEMPT_PROJECT = "legacy"
TERMINAL = ("Succeeded", "Failed")

# What a task container sees, gathered from inside: its mounts (from mountinfo, so tmpfs size and the mount's root
# show), the credentials file's mode and owner, whether it can read it, the API token and any key-named env.
FACTS = """
import json, os, stat, time
started = time.time()
mounts = {}
for line in open("/proc/self/mountinfo"):
    parts = line.split()
    rest = parts[parts.index("-") + 1:]
    mounts[parts[4]] = {"root": parts[3], "options": parts[5].split(","), "fstype": rest[0],
                        "super": rest[2].split(",")}
# Debian images link /var/run to /run: mounts are keyed by the path the pod spec names.
wanted = ("/var/run/flyte/storage", "/etc/flyte/storage")
tokens = os.path.realpath("/var/run/secrets")
path = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "")
facts = {"started": started, "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
         "mounts": {k: mounts.get(os.path.realpath(k)) for k in wanted},
         "token_mounts": sorted(k for k in mounts if k.startswith(tokens)),
         "credentials_env": path,
         "token": os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"),
         "key_env": sorted(k for k in os.environ if "SECRET" in k or "ACCESS_KEY" in k)}
def readable(file):
    try:
        with open(file) as handle:
            return bool(handle.read())
    except PermissionError:
        return False
if path:
    st = os.stat(path)
    facts["credentials"] = {"mode": oct(stat.S_IMODE(st.st_mode)), "uid": st.st_uid, "gid": st.st_gid}
    facts["reads_rendered"] = readable(path)
    facts["reads_secret"] = readable("/etc/flyte/storage/access_key") and readable("/etc/flyte/storage/secret_key")
    facts["secret_dir"] = sorted(os.listdir("/etc/flyte/storage"))
print("RESULT " + json.dumps(facts), flush=True)
"""

# Appended to a program whose pod the test inspects while it runs (`run(..., while_running=...)`).
HOLD = "\nimport time\ntime.sleep(300)\n"

# Creation to task start, measured by the task: it prints the wall clock before importing anything.
STARTED = "import time; print('RESULT {\"started\": %r}' % time.time(), flush=True)"


def task_pod(
    namespace: str,
    image: str,
    program: str,
    *,
    env: list[dict[str, Any]] | None = None,
    security_context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Propeller's Flyte task pod running `python -c program` in the task image on the host network."""
    pod = on_node(propeller_pod(namespace, env=env if env is not None else []), image)
    main = pod["spec"]["containers"][0]
    main["command"] = ["python", "-c", program]
    main.pop("args", None)
    if security_context is not None:
        pod["spec"]["securityContext"] = security_context
    return pod


def on_node(pod: dict[str, Any], image: str) -> dict[str, Any]:
    """A propeller pod made runnable here: the locally built image, the host network (loopback only), requests
    small enough for a 2-core node, and no grace period to wait out when the test deletes it."""
    main = pod["spec"]["containers"][0]
    main["image"] = image
    main["resources"] = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["terminationGracePeriodSeconds"] = 1
    return pod


@dataclass
class Finished:
    name: str
    namespace: str
    phase: str
    created: float  # wall clock just before the create call
    logs: str
    pod: dict[str, Any]

    def result(self) -> dict[str, Any]:
        for line in self.logs.splitlines():
            if line.startswith(RESULT):
                facts: dict[str, Any] = json.loads(line[len(RESULT) :])
                return facts
        raise AssertionError(f"pod {self.name} ({self.phase}) printed no result; its log:\n{self.logs}")

    def start_latency(self) -> float:
        return float(self.result()["started"]) - self.created


def run(
    core: client.CoreV1Api,
    plane: ControlPlane,
    pod: dict[str, Any],
    timeout: float = 180,
    while_running: Callable[[dict[str, Any]], None] | None = None,
) -> Finished:
    """Create the pod, wait until it has finished, read its main container's log through the API server (which
    reaches the kubelet on loopback), and delete it. With `while_running`, the task keeps running after its result
    (HOLD), and `while_running` gets the pod as soon as the result is printed, while its volumes are mounted."""
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    created = time.time()
    create_pod(core, pod)
    deadline = time.monotonic() + timeout
    current: dict[str, Any] = {}
    container = pod["spec"]["containers"][0]["name"]
    try:
        while time.monotonic() < deadline:
            current = core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, namespace))
            phase = current["status"].get("phase")
            if phase in TERMINAL:
                break
            if while_running is not None and phase == "Running":
                logs = plane.kubectl("logs", "-n", namespace, name, "-c", container, check=False).stdout
                if RESULT in logs:
                    while_running(current)
                    break
            time.sleep(0.1)
        else:
            raise AssertionError(f"pod {name} not finished within {timeout} s: {json.dumps(current.get('status'))}")
        logs = plane.kubectl("logs", "-n", namespace, name, "-c", container, check=False).stdout
    finally:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    return Finished(name, namespace, current["status"]["phase"], created, logs, current)


def _cgroup_usage(container_id: str) -> tuple[float, float] | None:
    """CPU seconds and peak memory (MiB) the kubelet's cgroups (v1, cgroupfs) record for one running container."""
    root = "/sys/fs/cgroup/{}/kubepods*/**/" + container_id + "/{}"
    cpu = glob.glob(root.format("cpuacct", "cpuacct.usage"), recursive=True)
    memory = glob.glob(root.format("memory", "memory.max_usage_in_bytes"), recursive=True)
    if len(cpu) != 1 or len(memory) != 1:
        return None
    return int(Path(cpu[0]).read_text()) / 1e9, int(Path(memory[0]).read_text()) / 2**20


def refresher_usage(pod: dict[str, Any]) -> tuple[float, float] | None:
    """CPU seconds and peak memory (MiB) of the pod's refresher sidecar so far, while it runs (its cgroup goes
    with it): poll it and keep the last answer."""
    for init in pod["status"].get("initContainerStatuses") or []:
        if init["name"] == REFRESHER_NAME and init.get("containerID") and "running" in init.get("state", {}):
            return _cgroup_usage(init["containerID"].split("//", 1)[1])
    return None


def describe_usage(usage: tuple[float, float] | None) -> str:
    return f"{usage[0]:.2f} CPU-s, peak {usage[1]:.1f} MiB" if usage else "(its cgroup was not found)"


def events_for(core: client.CoreV1Api, namespace: str, name: str) -> list[dict[str, Any]]:
    items = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [core.api_client.sanitize_for_serialization(e) for e in items]
