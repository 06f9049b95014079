"""Injected Flyte task pods on a real kubelet: what the task container sees, and who can read the credentials."""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest
from kubernetes import client

from tests.credential_access_matrix import ROWS, Row
from tests.e2e.cluster import ControlPlane
from tests.e2e.pods import create_pod, is_injected
from tests.node.node import Build, Node
from tests.node.pods import FACTS, HOLD, run, task_pod
from tests.node.storage import SeaweedFS, secret_create
from webhook.injection import RENDERER_UID

PRODUCTION = "flytesnacks-production"


def test_an_injected_task_pod_runs_with_tmpfs_read_only_secret_and_no_token(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build
) -> None:
    done = run(core, cluster, task_pod(PRODUCTION, built.images["task"].name, FACTS))
    assert done.phase == "Succeeded", json.dumps(done.pod["status"])
    facts = done.result()
    tmpfs = facts["mounts"]["/var/run/flyte/storage"]
    assert tmpfs["fstype"] == "tmpfs"
    assert "size=1024k" in tmpfs["super"]  # the profile's tmpfsSizeLimit, 1Mi
    secret = facts["mounts"]["/etc/flyte/storage"]
    assert "ro" in secret["options"]
    assert secret["root"] == "/"  # the whole volume: a subPath mount would show a path below it
    assert "..data" in facts["secret_dir"]  # the kubelet's atomic-writer layout, so rotated keys reach the pod
    assert not facts["token"]
    assert facts["token_mounts"] == []
    assert facts["credentials_env"] == "/var/run/flyte/storage/credentials"
    # README: the renderer (uid and gid 65532) writes it with mode 0444, readable whatever user the task runs as.
    assert facts["credentials"] == {"mode": "0o444", "uid": RENDERER_UID, "gid": RENDERER_UID}
    assert facts["reads_rendered"] and facts["reads_secret"]
    assert facts["key_env"] == []


def _outsiders_denied(pod: dict[str, Any], node: Node) -> None:
    """Node users outside the pod (the renderer's uid and gid included, and Flyte's uid 1000) cannot reach either
    file on the node: the kubelet keeps pod volumes under its root-only pods directory."""
    volumes = node.root / "kubelet" / "pods" / pod["metadata"]["uid"] / "volumes"
    files = [
        volumes / "kubernetes.io~empty-dir" / "keyguard-storage-tmpfs" / "credentials",
        volumes / "kubernetes.io~secret" / "keyguard-storage-creds" / "secret_key",
    ]
    for file in files:
        assert file.exists(), file  # as root, the test sees the file: the path is right
        for uid in (RENDERER_UID, 1000, 65534):
            as_user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "head", "-c0", str(file)]
            result = subprocess.run(as_user, capture_output=True, text=True, check=False)
            assert result.returncode != 0 and "Permission denied" in result.stderr, (uid, file, result.stderr)


@pytest.mark.parametrize("row", ROWS, ids=[row.label for row in ROWS])
def test_uid_gid_matrix_on_real_pods(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, node: Node, row: Row
) -> None:
    """issue 11's rows (tests/credential_access_matrix.py) as real pods: every row reads both files through
    keyguard's injection, as the ownership model in `make test` says, and nothing outside the pod can."""
    image = built.images["task"].name
    pod = task_pod(PRODUCTION, image, FACTS + HOLD, security_context=copy.deepcopy(row.pod_security))
    pod["spec"]["containers"][0]["securityContext"] = copy.deepcopy(row.container_security)
    done = run(core, cluster, pod, while_running=lambda running: _outsiders_denied(running, node))
    assert done.phase == "Running", json.dumps(done.pod["status"])
    facts = done.result()
    print(
        f"{row.label}: uid {facts['uid']} gid {facts['gid']} groups {facts['groups']}: rendered file "
        f"{facts['credentials']}, reads Secret {facts['reads_secret']}, reads rendered {facts['reads_rendered']}"
    )
    assert (facts["reads_secret"], facts["reads_rendered"]) == (row.reads_secret, row.reads_rendered)


RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def test_a_restricted_namespace_admits_the_injected_task_and_the_same_container_runs(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, storage: SeaweedFS, unique: str
) -> None:
    """`pod-security.kubernetes.io/enforce: restricted` admits what keyguard injects (its renderer is restricted
    itself), and the same restricted task container, read-only root filesystem included, runs and reads its
    credentials. It runs on the host network in a namespace without the label: `restricted` forbids hostNetwork,
    and a pod network would give pods addresses off loopback, which the suite never uses."""
    namespace = f"restricted{unique}-production"
    core.create_namespace(
        {"metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    try:
        core.create_namespaced_service_account(
            namespace, {"metadata": {"name": "flyte-task"}, "automountServiceAccountToken": False}
        )
        secret_create(cluster, namespace, storage.keys)
        restricted = task_pod(namespace, built.images["task"].name, FACTS)
        restricted["spec"]["hostNetwork"] = False
        restricted["spec"]["containers"][0]["securityContext"] = dict(RESTRICTED_CONTAINER)
        admitted = create_pod(core, restricted, dry_run=True)  # PodSecurity admission runs on dry runs too
        assert is_injected(admitted)
    finally:
        core.delete_namespace(namespace)
    pod = task_pod(PRODUCTION, built.images["task"].name, FACTS)
    pod["spec"]["containers"][0]["securityContext"] = dict(RESTRICTED_CONTAINER)
    done = run(core, cluster, pod)
    assert done.phase == "Succeeded", json.dumps(done.pod["status"])
    facts = done.result()
    assert facts["reads_rendered"] and facts["reads_secret"] and not facts["token"]
