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
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kubernetes import client

from tests import fake_credentials as fake
from tests.e2e.cluster import REPO, ControlPlane, KeyguardProcess, run_keyguard
from tests.e2e.configurations import ca_bundles, informers_synced, keyguard_in_effect, paused
from tests.e2e.pods import FLYTE_NAMESPACES, create_pod, is_injected, message, propeller_pod, refusal, wait_for
from tests.flyte_pods import plain_pod
from tests.server_harness import replace_file

pytestmark = pytest.mark.usefixtures("webhooks")
PRODUCTION = "flytesnacks-production"
AFTER_DROP_SECONDS = 5


def _served_certificate(keyguard: KeyguardProcess) -> x509.Certificate:
    """The certificate keyguard serves right now, as a TLS client trusting keyguard's current CA bundle sees it."""
    context = ssl.create_default_context(cafile=str(keyguard.cert_dir / "ca.crt"))
    with (
        socket.create_connection(("127.0.0.1", keyguard.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _wait_for_new_certificate(keyguard: KeyguardProcess, old_serial: int) -> x509.Certificate:
    served: x509.Certificate = wait_for(
        lambda: (cert := _served_certificate(keyguard)).serial_number != old_serial and cert,
        what="keyguard serving the new certificate",
    )
    return served


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, InvalidSignature):
        return False
    return True


def _flyte_pod_admitted(core: client.CoreV1Api) -> bool:
    return is_injected(create_pod(core, propeller_pod(PRODUCTION), dry_run=True))


def test_keyguard_down_refuses_flyte_pods_within_the_timeout_and_nothing_else(
    api: client.ApiClient,
    core: client.CoreV1Api,
    keyguard: KeyguardProcess,
    webhooks: list[dict[str, Any]],
    unique: str,
) -> None:
    timeout = webhooks[0]["webhooks"][0]["timeoutSeconds"]
    call = f'failed calling webhook "mutate.keyguard.flyte.org": failed to call webhook: Post "{keyguard.url}/mutate'
    keyguard.stop()
    try:
        # Down hard (connection refused): refused at once.
        error = refusal(core, propeller_pod(PRODUCTION))
        assert error.status == 500
        assert call in message(error) and "connect: connection refused" in message(error), message(error)
        # Hung (accepts connections, never answers): refused once the webhook timeout expires.
        with socket.create_server(("127.0.0.1", keyguard.port)) as hung:
            hung.listen(64)
            start = time.monotonic()
            error = refusal(core, propeller_pod(PRODUCTION))
            elapsed = time.monotonic() - start
        assert error.status == 500
        assert call in message(error) and "deadline exceeded" in message(error), message(error)
        assert elapsed < timeout + 2, f"refusal took {elapsed:.1f} s, webhook timeout is {timeout} s"
        pod = plain_pod("default")
        pod["metadata"]["name"] = f"web-{unique}"
        assert create_pod(core, pod)["metadata"]["name"] == f"web-{unique}"
    finally:
        keyguard.start()
    keyguard_in_effect(api)


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
    try:
        yield stats
    finally:
        stats["stop"].set()
        thread.join()


def _publish_ca(api: client.ApiClient, control_plane: ControlPlane, keyguard: KeyguardProcess) -> None:
    """`keyguard certs install --no-secret`, then wait until the API server acts on the new caBundle."""
    run_keyguard(
        "certs",
        "install",
        "--dir",
        str(keyguard.cert_dir),
        "--kubeconfig",
        str(control_plane.kubeconfig),
        "--no-secret",
    )
    informers_synced(api)


def _published(api: client.ApiClient) -> set[tuple[bytes, ...]]:
    """The distinct caBundles of keyguard's webhooks (both configurations), each as its certificates' DER."""
    bundles = ca_bundles(api)
    assert {key.split("/")[0] for key in bundles} == {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    return {_der(*bundle) for bundle in bundles.values()}


def _public_key(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _der(*certificates: x509.Certificate) -> tuple[bytes, ...]:
    return tuple(c.public_bytes(Encoding.DER) for c in certificates)


def test_certificate_rotation_under_load_fails_no_admission_and_leaves_only_the_new_ca(
    api: client.ApiClient, control_plane: ControlPlane, keyguard: KeyguardProcess, traffic: dict[str, Any]
) -> None:
    directory = str(keyguard.cert_dir)
    bundle_file = keyguard.cert_dir / "ca.crt"
    [old_ca] = x509.load_pem_x509_certificates(bundle_file.read_bytes())
    served = _served_certificate(keyguard)
    run_keyguard("certs", "rotate", "--dir", directory)  # routine: new serving certificate, same CA
    served = _wait_for_new_certificate(keyguard, served.serial_number)
    assert _issued_by(served, old_ca)

    run_keyguard("certs", "rotate", "--dir", directory, "--ca")  # step 1: bundle = new + old
    new_ca, still_old = x509.load_pem_x509_certificates(bundle_file.read_bytes())
    assert still_old == old_ca
    assert _public_key(new_ca) != _public_key(old_ca), "the new CA reuses the old CA's key"
    _publish_ca(api, control_plane, keyguard)
    assert _published(api) == {_der(new_ca, old_ca)}

    run_keyguard("certs", "rotate", "--dir", directory)  # step 2: serving certificate from the new CA
    served = _wait_for_new_certificate(keyguard, served.serial_number)
    assert _issued_by(served, new_ca) and not _issued_by(served, old_ca)

    run_keyguard("certs", "rotate", "--dir", directory, "--drop-old-ca")  # step 3
    assert x509.load_pem_x509_certificates(bundle_file.read_bytes()) == [new_ca]
    _publish_ca(api, control_plane, keyguard)
    assert _published(api) == {_der(new_ca)}, "caBundle still trusts the old CA after --drop-old-ca"
    assert _issued_by(_served_certificate(keyguard), new_ca)

    # The API server now trusts only the new CA: admissions keep succeeding for several seconds.
    succeeded_before = traffic["ok"]
    time.sleep(AFTER_DROP_SECONDS)
    assert traffic["failed"] == []
    assert traffic["ok"] - succeeded_before >= AFTER_DROP_SECONDS, traffic["ok"] - succeeded_before


def _readyz_policy(keyguard: KeyguardProcess) -> dict[str, Any]:
    policy: dict[str, Any] = keyguard.get("/readyz").json()["policy"]
    return policy


def test_policy_edits_apply_to_the_next_pods_and_a_bad_edit_keeps_the_last_good_policy(
    core: client.CoreV1Api, keyguard: KeyguardProcess, policy_file: Path
) -> None:
    original = policy_file.read_text()
    original_version = _readyz_policy(keyguard)["version"]
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
    failed_reloads = keyguard.metric("keyguard_policy_reloads_total", result="error")
    try:
        replace_file(policy_file, yaml.safe_dump(relaxed))
        relaxed_version = wait_for(
            lambda: (version := _readyz_policy(keyguard)["version"]) != original_version and version,
            what="keyguard reporting the relaxed policy on /readyz",
        )
        assert admitted(), "the relaxed policy is reported but not in force"

        replace_file(policy_file, "profiles: [this is: not a policy\n")
        reported = wait_for(
            lambda: _readyz_policy(keyguard).get("lastReloadError"), what="keyguard reporting the failed reload"
        )
        assert str(policy_file) in reported, reported
        assert keyguard.metric("keyguard_policy_reloads_total", result="error") > failed_reloads
        failures = [e for e in keyguard.audit_events() if e.get("event") == "policy-reload-failed"]
        assert failures and failures[-1]["keptVersion"] == relaxed_version, failures[-1:]
        assert _readyz_policy(keyguard)["version"] == relaxed_version
        assert admitted(), "an invalid policy replaced the last good one"
    finally:
        replace_file(policy_file, original)
        wait_for(
            lambda: _readyz_policy(keyguard)["version"] == original_version,
            what="keyguard reporting the original policy on /readyz",
        )
    assert "lastReloadError" not in _readyz_policy(keyguard)
    assert refusal(core, leaky()).status == 403


# What `keyguard check --cluster` and `keyguard doctor` read, and all the keyguard-auditor account may do beyond
# what every authenticated account may: get and list, never Secrets, never a write.
AUDITOR_READS = {
    "": ("pods", "podtemplates", "configmaps", "namespaces", "serviceaccounts"),
    "apps": ("deployments", "statefulsets", "daemonsets", "replicasets"),
    "batch": ("jobs", "cronjobs"),
    "rbac.authorization.k8s.io": ("rolebindings", "roles", "clusterrolebindings", "clusterroles"),
    "admissionregistration.k8s.io": ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"),
}
Rule = tuple[str, str, str, str]


def _effective_rules(control_plane: ControlPlane, token: str, namespace: str) -> set[Rule]:
    """What the API server lets the token's holder do in `namespace` (a SelfSubjectRulesReview, made as that
    account), one (verb, group, resource, name) per permission; non-resource URLs as ("url", verb, path, "")."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    with control_plane.token_client(token) as http:
        response = http.post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", json=review)
    assert response.status_code == 201, response.text
    status = response.json()["status"]
    assert not status.get("incomplete"), status
    rules = {
        (verb, group, resource, name)
        for rule in status["resourceRules"]
        for verb in rule["verbs"]
        for group in rule.get("apiGroups", [""])
        for resource in rule.get("resources", [])
        for name in rule.get("resourceNames") or [""]
    }
    rules |= {
        ("url", verb, url, "")
        for rule in status["nonResourceRules"]
        for verb in rule["verbs"]
        for url in rule["nonResourceURLs"]
    }
    return rules


def _token(core: client.CoreV1Api, namespace: str, account: str) -> str:
    request = core.create_namespaced_service_account_token(account, namespace, {"spec": {"expirationSeconds": 600}})
    return str(request.status.token)


def test_manifests_apply_server_side_and_rbac_is_exactly_what_is_needed(
    api: client.ApiClient,
    core: client.CoreV1Api,
    control_plane: ControlPlane,
    rendered: list[dict[str, Any]],
    fresh_namespace: Any,
) -> None:
    # The cluster-scoped and RBAC objects for real (no webhooks, no workload), so the rules mean something.
    kinds = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    control_plane.apply_for_real(rendered, kinds)
    # The suite's own webhook configurations share the manifests' names (with a URL instead of the Service):
    # take them out for the dry run, so it checks the manifests as a fresh install would see them.
    with paused(api):
        result = control_plane.kubectl("apply", "--server-side", "--dry-run=server", "-k", str(REPO / "manifests"))
    applied = result.stdout.splitlines()
    assert len(applied) == len(rendered), result.stdout
    assert all("serverside-applied (server dry run)" in line for line in applied), result.stdout

    # Baseline: what any service account with no binding at all may do (discovery, self reviews).
    nobody = _token(core, fresh_namespace("rbac"), "default")
    auditor = _token(core, "keyguard-system", "keyguard-auditor")
    webhook = _token(core, "keyguard-system", "keyguard")
    reads = {
        (verb, group, resource, "")
        for group, resources in AUDITOR_READS.items()
        for resource in resources
        for verb in ("get", "list")
    }
    for namespace in ("keyguard-system", *FLYTE_NAMESPACES):
        baseline = _effective_rules(control_plane, nobody, namespace)
        # The webhook never calls the API: nothing beyond the baseline, anywhere.
        assert _effective_rules(control_plane, webhook, namespace) == baseline, namespace
        assert _effective_rules(control_plane, auditor, namespace) == baseline | reads, namespace
        if namespace in FLYTE_NAMESPACES:  # the task pods' account: least privilege, nothing at all
            assert _effective_rules(control_plane, _token(core, namespace, "flyte-task"), namespace) == baseline


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
