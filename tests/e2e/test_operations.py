"""What an admin lives through: keyguard down, certificates rotated under load, the policy edited, the manifests
applied, keyguard's RBAC, and what the webhook costs each pod."""

from __future__ import annotations

import socket
import ssl
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from kubernetes import client

from tests import fake_credentials as fake
from tests.e2e.cluster import REPO, ControlPlane, KeyguardProcess, run_keyguard
from tests.e2e.pods import create_pod, is_injected, propeller_pod, refusal, wait_for, webhooks_paused
from tests.flyte_pods import plain_pod
from tests.server_harness import replace_file

pytestmark = pytest.mark.usefixtures("webhooks")
PRODUCTION = "flytesnacks-production"


def _serving_serial(keyguard: KeyguardProcess) -> int:
    context = ssl.create_default_context(cafile=str(keyguard.cert_dir / "ca.crt"))
    with (
        socket.create_connection(("127.0.0.1", keyguard.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _wait_for_new_certificate(keyguard: KeyguardProcess, old_serial: int) -> None:
    wait_for(lambda: _serving_serial(keyguard) != old_serial, what="keyguard serving the new certificate")


def _flyte_pod_admitted(core: client.CoreV1Api) -> bool:
    return is_injected(create_pod(core, propeller_pod(PRODUCTION), dry_run=True))


def test_keyguard_down_refuses_flyte_pods_within_the_timeout_and_nothing_else(
    core: client.CoreV1Api, keyguard: KeyguardProcess, webhooks: list[dict[str, Any]], unique: str
) -> None:
    timeout = webhooks[0]["webhooks"][0]["timeoutSeconds"]
    keyguard.stop()
    try:
        # Down hard (connection refused): refused at once.
        error = refusal(core, propeller_pod(PRODUCTION))
        assert error.status == 500 and "mutate.keyguard.flyte.org" in error.body
        # Hung (accepts connections, never answers): refused once the webhook timeout expires.
        with socket.create_server(("127.0.0.1", keyguard.port)) as hung:
            hung.listen(64)
            start = time.monotonic()
            error = refusal(core, propeller_pod(PRODUCTION))
            elapsed = time.monotonic() - start
        assert error.status == 500
        assert elapsed < timeout + 2, f"refusal took {elapsed:.1f} s, webhook timeout is {timeout} s"
        pod = plain_pod("default")
        pod["metadata"]["name"] = f"web-{unique}"
        assert create_pod(core, pod)["metadata"]["name"] == f"web-{unique}"
    finally:
        keyguard.start()
    wait_for(lambda: _flyte_pod_admitted(core), what="admission after restart")


@pytest.fixture
def traffic(core: client.CoreV1Api) -> Iterator[dict[str, Any]]:
    """Dry-run creates of Flyte task pods in a loop, as fast as the API server takes them, counting failures."""
    stats: dict[str, Any] = {"ok": 0, "failed": [], "stop": threading.Event()}

    def loop() -> None:
        while not stats["stop"].is_set():
            try:
                assert _flyte_pod_admitted(core)
                stats["ok"] += 1
            except Exception as error:
                stats["failed"].append(repr(error)[:300])

    thread = threading.Thread(target=loop)
    thread.start()
    yield stats
    stats["stop"].set()
    thread.join()


def _publish_ca(control_plane: ControlPlane, keyguard: KeyguardProcess) -> None:
    run_keyguard(
        "certs",
        "install",
        "--dir",
        str(keyguard.cert_dir),
        "--kubeconfig",
        str(control_plane.kubeconfig),
        "--no-secret",
    )


def test_certificate_rotation_under_load_fails_no_admission(
    control_plane: ControlPlane, keyguard: KeyguardProcess, traffic: dict[str, Any]
) -> None:
    directory = str(keyguard.cert_dir)
    serial = _serving_serial(keyguard)
    run_keyguard("certs", "rotate", "--dir", directory)  # routine: new serving certificate, same CA
    _wait_for_new_certificate(keyguard, serial)
    run_keyguard("certs", "rotate", "--dir", directory, "--ca")  # step 1: bundle = new + old
    _publish_ca(control_plane, keyguard)
    time.sleep(2)  # let the API server's informer see the new caBundle
    serial = _serving_serial(keyguard)
    run_keyguard("certs", "rotate", "--dir", directory)  # step 2: serving certificate from the new CA
    _wait_for_new_certificate(keyguard, serial)
    time.sleep(1)
    run_keyguard("certs", "rotate", "--dir", directory, "--drop-old-ca")  # step 3
    _publish_ca(control_plane, keyguard)
    time.sleep(2)
    assert traffic["failed"] == []
    assert traffic["ok"] >= 20, traffic["ok"]


def test_policy_edits_apply_to_the_next_pods_and_a_bad_edit_keeps_the_last_good_policy(
    core: client.CoreV1Api, policy_file: Path
) -> None:
    original = policy_file.read_text()
    secret = fake.aws_secret_access_key()

    def leaky() -> dict[str, Any]:
        return propeller_pod(PRODUCTION, env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": secret}])

    def admitted() -> bool:
        try:
            return is_injected(create_pod(core, leaky(), dry_run=True))
        except client.ApiException:
            return False

    assert not admitted()
    relaxed = yaml.safe_load(original)
    for profile in relaxed["profiles"]:
        profile["mode"] = "warn"
    try:
        replace_file(policy_file, yaml.safe_dump(relaxed))
        wait_for(admitted, what="the relaxed policy in force")
        replace_file(policy_file, "profiles: [this is: not a policy\n")
        time.sleep(2)  # several reload intervals
        assert admitted(), "an invalid policy replaced the last good one"
    finally:
        replace_file(policy_file, original)
    wait_for(lambda: not admitted(), what="the original policy back in force")
    assert refusal(core, leaky()).status == 403


def test_manifests_apply_server_side_and_rbac_is_exactly_what_is_needed(
    api: client.ApiClient,
    core: client.CoreV1Api,
    control_plane: ControlPlane,
    rendered: list[dict[str, Any]],
) -> None:
    # The cluster-scoped and RBAC objects for real (no webhooks, no workload), so the access reviews mean something.
    kinds = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    control_plane.apply_for_real(rendered, kinds)
    # The suite's own webhook configurations share the manifests' names (with a URL instead of the Service):
    # take them out for the dry run, so it checks the manifests as a fresh install would see them.
    with webhooks_paused(api, core):
        result = control_plane.kubectl("apply", "--server-side", "--dry-run=server", "-k", str(REPO / "manifests"))
    applied = result.stdout.splitlines()
    assert len(applied) == len(rendered), result.stdout
    assert all("serverside-applied (server dry run)" in line for line in applied), result.stdout

    authorization = client.AuthorizationV1Api(api)

    def allowed(user: str, verb: str, resource: str, group: str = "", namespace: str = "") -> bool:
        review = {
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:keyguard-system", "system:authenticated"],
                "resourceAttributes": {"verb": verb, "resource": resource, "group": group, "namespace": namespace},
            }
        }
        answer = authorization.create_subject_access_review(review)
        return bool(answer.status.allowed)

    webhook_sa = "system:serviceaccount:keyguard-system:keyguard"
    auditor = "system:serviceaccount:keyguard-system:keyguard-auditor"
    # The webhook never calls the API: it may do nothing at all.
    for verb, resource in [("get", "secrets"), ("list", "pods"), ("create", "pods"), ("get", "configmaps")]:
        assert not allowed(webhook_sa, verb, resource, namespace=PRODUCTION), (verb, resource)
    # The auditor reads what check --cluster and doctor need, writes nothing and never reads Secrets.
    for verb, resource, group in [
        ("list", "pods", ""),
        ("list", "configmaps", ""),
        ("list", "deployments", "apps"),
        ("list", "rolebindings", "rbac.authorization.k8s.io"),
        ("get", "mutatingwebhookconfigurations", "admissionregistration.k8s.io"),
    ]:
        assert allowed(auditor, verb, resource, group), (verb, resource)
    for verb, resource, group in [
        ("get", "secrets", ""),
        ("list", "secrets", ""),
        ("create", "pods", ""),
        ("patch", "mutatingwebhookconfigurations", "admissionregistration.k8s.io"),
        ("delete", "configmaps", ""),
    ]:
        assert not allowed(auditor, verb, resource, group), (verb, resource)


def test_pod_creation_latency_with_and_without_keyguard(
    core: client.CoreV1Api, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reported, not asserted: the same Flyte task pod created through keyguard (production) and where no webhook
    selects it (kube-public)."""

    def timed(namespace: str, count: int = 40) -> list[float]:
        samples = []
        for _ in range(count):
            pod = propeller_pod(PRODUCTION)
            pod["metadata"]["namespace"] = namespace
            start = time.perf_counter()
            stored = create_pod(core, pod)
            samples.append((time.perf_counter() - start) * 1000)
            assert is_injected(stored) is (namespace == PRODUCTION)
        return samples

    timed("kube-public", 5), timed(PRODUCTION, 5)  # warm both paths
    without, through = timed("kube-public"), timed(PRODUCTION)
    base, with_keyguard = statistics.median(without), statistics.median(through)
    line = (
        f"pod creation p50: {with_keyguard:.2f} ms through keyguard (mutate + validate), {base:.2f} ms without; "
        f"overhead {with_keyguard - base:.2f} ms, ratio {with_keyguard / base:.2f}"
    )
    with capsys.disabled():
        print(f"\n{line}")
