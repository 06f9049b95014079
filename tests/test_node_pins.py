"""The node suite's kubelet, scheduler and controller manager (tests/node/k8s) must be the Kubernetes release the
end-to-end suite's kube-apiserver is built from (tests/e2e/k8s): one release, pinned twice, checked here."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pins(module: str) -> tuple[str, list[str]]:
    text = (REPO / "tests" / module / "k8s" / "go.mod").read_text()
    release = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes (v\S+)", text, re.MULTILINE)
    assert release is not None, f"tests/{module}/k8s/go.mod does not require k8s.io/kubernetes"
    replaces = sorted(re.findall(r"^\s*(k8s\.io/\S+ => k8s\.io/\S+ \S+)", text, re.MULTILINE))
    return release.group(1), replaces


def test_the_node_binaries_and_the_api_server_come_from_one_kubernetes_release() -> None:
    node_release, node_replaces = _pins("node")
    e2e_release, e2e_replaces = _pins("e2e")
    assert node_release == e2e_release
    assert node_replaces and node_replaces == e2e_replaces
