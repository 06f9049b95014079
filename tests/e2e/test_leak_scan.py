"""The end-of-run leak scan can fail: values put where keys must never go are found, each place named."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.e2e.cluster import ControlPlane
from tests.e2e.leak_scan import scan_for_leaks


def test_the_leak_scan_finds_values_in_annotations_events_and_logs(
    core: client.CoreV1Api, control_plane: ControlPlane, fresh_namespace: Any, tmp_path: Path
) -> None:
    # Random tokens, not fake keys: the suite's own end-of-run scan must not trip on what this test plants.
    in_annotation, in_event, in_log, nowhere = (secrets.token_hex(16) for _ in range(4))
    namespace = fresh_namespace("leaks")
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "annotated", "annotations": {"note": in_annotation}}, "data": {"k": "v"}}
    )
    event = {
        "metadata": {"name": "noted"},
        "involvedObject": {"kind": "ConfigMap", "name": "annotated", "namespace": namespace},
        "reason": "Noted",
        "message": f"value {in_event}",
        "type": "Normal",
    }
    core.create_namespaced_event(namespace, event)
    log = tmp_path / "some.log"
    log.write_text(f"line with {in_log}\n")
    try:
        places = scan_for_leaks(control_plane, [log], {in_annotation, in_event, in_log, nowhere})
    finally:
        core.delete_namespaced_config_map("annotated", namespace)
        core.delete_namespaced_event("noted", namespace)
    assert places == [
        f"ConfigMap {namespace}/annotated annotations",
        f"Event {namespace}/noted (event)",
        "log some.log",
    ], places
