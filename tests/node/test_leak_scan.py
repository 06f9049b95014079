"""The node suite's leak scan can fail: a planted key written into a log of the node's work directory or into a pod
log is found and named by place, and SeaweedFS's log may hold an access key id (it logs the id of every refused
request) but never a secret. Runs on scratch directories, so the suite's own scan is unaffected."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import fake_credentials as fake
from tests.e2e.cluster import ControlPlane
from tests.node.leak_scan import scan_node_for_leaks


@pytest.mark.parametrize(
    ("log", "written", "found"),
    [
        ("kubelet.log", "secret", ["log kubelet.log"]),
        ("kubelet.log", "id", ["log kubelet.log"]),
        ("pod-logs/ns_pod_uid/task/0.log", "secret", ["log 0.log"]),
        ("seaweedfs.log", "secret", ["log seaweedfs.log"]),
        ("seaweedfs.log", "id", []),
        ("kubelet.log", "nothing", []),
    ],
)
def test_the_node_leak_scan_finds_a_planted_key_in_a_log(
    cluster: ControlPlane, tmp_path: Path, log: str, written: str, found: list[str]
) -> None:
    values = {"id": fake.aws_access_key_id(), "secret": fake.aws_secret_access_key(), "nothing": "ordinary text"}
    path = tmp_path / log
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"I1130 12:00:00 line before\n{values[written]}\nline after\n")
    planted = {values["id"], values["secret"]}
    assert scan_node_for_leaks(cluster, tmp_path, tmp_path / "pod-logs", planted) == found
