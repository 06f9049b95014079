"""The end-of-run leak scan can fail: every fake key a test makes is recorded, and values put where keys must never
go are found, each place named."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from kubernetes import client

from tests import fake_credentials as fake
from tests.e2e.cluster import ControlPlane
from tests.e2e.leak_scan import scan_for_leaks


def test_every_fake_key_a_test_makes_is_recorded_for_the_scan(leak_scan: set[str]) -> None:
    made = [fake.aws_secret_access_key(), fake.aws_access_key_id(), fake.azure_connection_string()]
    made.append(fake.base64_of(made[0]))
    recorded = [value in leak_scan for value in made]  # booleans only: a failure never prints a key
    assert recorded == [True] * len(made)
    look_alike_recorded = fake.git_sha() in leak_scan  # look-alikes are not keys: they may appear anywhere
    assert not look_alike_recorded


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
