"""What the injection costs a task at start: creation to the task's first instruction, with and without keyguard's
injection, on the same node in one run. Printed for the log and the notes, never asserted (performance is
measured, not tested)."""

from __future__ import annotations

import statistics

import pytest
from kubernetes import client

from tests.e2e.cluster import ControlPlane
from tests.node.node import Build
from tests.node.pods import STARTED, run, task_pod

PRODUCTION = "flytesnacks-production"
ROUNDS = 8


def _plain(pod: dict[str, object]) -> dict[str, object]:
    """The same pod without what makes it a Flyte task pod to keyguard's selection: admitted untouched."""
    metadata = pod["metadata"]
    assert isinstance(metadata, dict)
    for label in ("execution-id", "node-id"):
        metadata["labels"].pop(label)
    metadata["ownerReferences"] = []
    return pod


def test_pod_start_latency_with_and_without_the_injection(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, request: pytest.FixtureRequest
) -> None:
    image = built.images["task"].name
    samples: dict[str, list[float]] = {"injected": [], "not injected": []}
    for _round in range(ROUNDS):
        injected = run(core, cluster, task_pod(PRODUCTION, image, STARTED))
        plain = run(core, cluster, _plain(task_pod(PRODUCTION, image, STARTED)))
        assert injected.phase == plain.phase == "Succeeded"
        assert any(c["name"] == "keyguard-render-credentials" for c in injected.pod["spec"]["initContainers"])
        assert not plain.pod["spec"].get("initContainers")
        samples["injected"].append(injected.start_latency())
        samples["not injected"].append(plain.start_latency())
    lines = []
    for kind, values in samples.items():
        deciles = statistics.quantiles(values, n=10)
        lines.append(f"{kind}: p50 {statistics.median(values):.2f} s, p90 {deciles[8]:.2f} s ({len(values)} pods)")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\npod creation to task start, hostNetwork, images present: " + "; ".join(lines))
