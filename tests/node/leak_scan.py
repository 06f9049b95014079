"""The node suite's leak scan: no fake key a test planted may appear in a log of any process of the node (etcd,
kube-apiserver, the scheduler, the controller manager, the kubelet, containerd, keyguard, SeaweedFS), in the pod logs
the kubelet still keeps, or in events and object metadata (tests/e2e/leak_scan.py reads those). The failure names
the places, never the value."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.cluster import ControlPlane
from tests.e2e.leak_scan import scan_for_leaks

# SeaweedFS logs the access key *id* of each request it refuses (auth_signature_v4.go), as AWS's CloudTrail records
# it: an identifier, not the secret half. Its log is scanned for every other planted value.
KEY_ID = re.compile(r"AKIA[A-Z0-9]{16}")


def scan_node_for_leaks(plane: ControlPlane, work: Path, pod_logs: Path, planted: set[str]) -> list[str]:
    """Where a planted value appears: the control plane's events, annotations and managedFields, and the logs of
    every process of the node and the pods' logs the kubelet still keeps."""
    logs = [p for p in work.glob("*.log") if p.name != "seaweedfs.log"]
    logs += sorted(pod_logs.rglob("*.log"))
    places = scan_for_leaks(plane, logs, planted)
    storage_log = work / "seaweedfs.log"
    if storage_log.exists():
        secrets_only = {value for value in planted if not KEY_ID.fullmatch(value)}
        text = storage_log.read_text(errors="replace")
        places += ["log seaweedfs.log"] if any(value in text for value in secrets_only) else []
    return places
