"""Who must be able to read the credentials keyguard injects: the rows of issue 11's table, in one place.

Each row is a task container's identity as a Flyte admin meets it (Flyte's default image, root, OpenShift, pods
with their own fsGroup or supplementalGroups, hardened pods). The unit suite judges every row with the kubelet
ownership model (webhook/readability.py, tests/test_readable_credentials.py); the node suite runs the same rows
as real pods on a real kubelet. The two must agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HARDENED = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


@dataclass(frozen=True)
class Row:
    label: str
    pod_security: dict[str, Any] = field(default_factory=dict)
    container_security: dict[str, Any] = field(default_factory=dict)
    # what a task in this row can read through keyguard's injection: the Secret's files and the rendered file
    reads_secret: bool = True
    reads_rendered: bool = True


ROWS = (
    Row("root", container_security={"runAsUser": 0, "runAsGroup": 0}),
    Row("root, all capabilities dropped", container_security={"runAsUser": 0, "capabilities": {"drop": ["ALL"]}}),
    Row("flytekit image: uid 1000 / gid 1000, no fsGroup", container_security={"runAsUser": 1000, "runAsGroup": 1000}),
    Row("image USER unknown to admission", container_security={}),
    Row("uid 1000 with fsGroup 2000", {"fsGroup": 2000}, {"runAsUser": 1000, "runAsGroup": 1000}),
    Row("fsGroup with OnRootMismatch", {"fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch"}, {"runAsUser": 1000}),
    Row("OpenShift: arbitrary uid, gid 0", container_security={"runAsUser": 1000680000, "runAsGroup": 0}),
    Row("own supplementalGroups", {"supplementalGroups": [3000, 4000]}, {"runAsUser": 1000, "runAsGroup": 1000}),
    Row("runAsNonRoot, read-only root filesystem", container_security={**HARDENED, "runAsUser": 1000}),
)
