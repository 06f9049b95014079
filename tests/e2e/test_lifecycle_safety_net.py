"""The safety net (issue 13, item 5) in a real API server: manifests/safety-net's ValidatingAdmissionPolicy refuses a
plaintext key while keyguard is stopped, gives keyguard's verdict on every credential name, and costs the API
server little (measured here, printed, never asserted). A control plane of its own: the tests stop keyguard."""

from __future__ import annotations

import re
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests import fake_credentials as fake
from tests.e2e.cluster import REPO, ControlPlane, KeyguardProcess, webhook_configurations
from tests.e2e.pods import create_pod, is_injected, propeller_pod, wait_for
from tests.e2e.safety_net import apply_safety_net, flyte_environments, safety_net_refusal
from tests.leaks import assert_not_leaked
from webhook.detection import _CREDENTIAL_NAMES, _CREDENTIAL_SUFFIXES, _HARMLESS_SUFFIXES, is_credential_name

PRODUCTION = "flytesnacks-production"
BINDING = "keyguard-safety-net"


@pytest.fixture(scope="module")
def plane(bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(bin_dir, tmp_path_factory.mktemp("lifecycle-safety-net"))
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def api(plane: ControlPlane) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(plane.kubeconfig))


@pytest.fixture(scope="module")
def core(plane: ControlPlane, api: client.ApiClient) -> client.CoreV1Api:
    """The Flyte environments with only the safety net in front of them (no keyguard webhooks)."""
    core = client.CoreV1Api(api)
    flyte_environments(plane, core)
    apply_safety_net(plane)
    return core


def _leak(name: str, value: str) -> dict[str, Any]:
    return propeller_pod(PRODUCTION, env=[{"name": name, "value": value}])


def test_safety_net_refuses_a_plaintext_key_while_keyguard_is_stopped(
    plane: ControlPlane, api: client.ApiClient, core: client.CoreV1Api
) -> None:
    """keyguard's webhooks as rendered, but set to failurePolicy Ignore (the bypass an admin may choose for
    availability); with keyguard stopped a Flyte pod goes through uninjected, and only the safety net stands."""
    work = plane.work / "keyguard"
    work.mkdir()
    shutil.copy(REPO / "manifests" / "base" / "policy.yaml", work / "policy.yaml")
    keyguard = KeyguardProcess(work, work / "policy.yaml")
    keyguard.start()
    rendered = [d for d in yaml.safe_load_all(plane.kubectl("kustomize", str(REPO / "manifests")).stdout) if d]
    admission = client.AdmissionregistrationV1Api(api)
    configs = webhook_configurations(rendered, keyguard)
    for document in configs:
        for hook in document["webhooks"]:
            hook["failurePolicy"] = "Ignore"
        if document["kind"] == "MutatingWebhookConfiguration":
            admission.create_mutating_webhook_configuration(document)
        else:
            admission.create_validating_webhook_configuration(document)
    probe = propeller_pod(PRODUCTION)
    secret_key = fake.aws_secret_access_key()
    leak = _leak("FLYTE_AWS_SECRET_ACCESS_KEY", secret_key)
    try:
        wait_for(lambda: is_injected(create_pod(core, probe, dry_run=True)), what="keyguard in the path")
        keyguard.stop()
        wait_for(lambda: not is_injected(create_pod(core, probe, dry_run=True)), what="keyguard out of the path")
        text = safety_net_refusal(core, leak, dry_run=False)
    finally:
        keyguard.stop()
        admission.delete_mutating_webhook_configuration("keyguard")
        admission.delete_validating_webhook_configuration("keyguard")
    assert text is not None, "a plaintext key was admitted while keyguard was stopped"
    container = leak["spec"]["containers"][0]["name"]
    assert f"container {container} variable FLYTE_AWS_SECRET_ACCESS_KEY" in text
    assert "keyguard secret create" in text
    assert_not_leaked(secret_key, text, "the safety net's refusal")
    assert core.list_namespaced_pod(PRODUCTION, field_selector=f"metadata.name={leak['metadata']['name']}").items == []


def _spellings(normal: str) -> set[str]:
    """One name, in normal form, as people write it: upper and lower snake case, kebab, dotted, camel and Pascal."""
    words = normal.strip("_").split("_")
    camel = words[0] + "".join(w.title() for w in words[1:])
    return {
        normal.upper(),
        normal,
        normal.replace("_", "-"),
        normal.replace("_", "."),
        camel,
        camel[0].upper() + camel[1:],
    }


# Every name keyguard knows, every suffix behind a bucket name and before a harmless suffix, in every spelling; and
# the spellings where the normal form is easy to get wrong (camel-case boundaries after digits, runs of capitals,
# doubled separators, Flyte's own FLYTE_SECRETS_* names, words without a separator).
NAMES = sorted(
    {
        spelling
        for normal in (
            *_CREDENTIAL_NAMES,
            *(f"my_bucket{suffix}" for suffix in _CREDENTIAL_SUFFIXES),
            *(f"aws_secret_access_key{suffix}" for suffix in _HARMLESS_SUFFIXES),
            "aws_region",
            "google_application_credentials",
            "flyte_secrets_secret_key",
            "key",
            "secret",
        )
        for spelling in _spellings(normal)
    }
    | {
        "ACCESSKey",
        "AccessKEY",
        "AWSSecretAccessKey",
        "aWSSecretKey",
        "a1SecretKey",
        "aws2SecretKey",
        "secretKey2",
        "SECRETKEY",
        "secretkey",
        "secret__key",
        "X_SECRET_KEY_",
        "_FSEC_AWS_SECRET_KEY",
        "MY.BUCKET-secret_KEY",
        "my-bucket.SecretKey",
        "S3_SECRET_KEY",
        "minioRootPassword",
        "FLYTE_SECRETS_AWS_SECRET_KEY",
        "flyteSecretsAwsSecretKey",
        "FlyteSecrets_secret_key",
        "secretKeyPath",
        "awsSecretAccessKeyFILE",
    }
)


@pytest.mark.parametrize("name", NAMES)
def test_safety_net_and_keyguard_agree_on_credential_names(core: client.CoreV1Api, name: str) -> None:
    refused = safety_net_refusal(core, _leak(name, "not-a-key")) is not None
    assert refused is is_credential_name(name), f"{name}: safety net refuses {refused}, keyguard {not refused}"


@pytest.mark.parametrize(
    ("value", "refused"),
    [("a-literal", True), ("", False), ("$(OTHER_VAR)", False), ("${OTHER_VAR}", False), ("$OTHER", False)],
)
def test_safety_net_refuses_literals_not_references(core: client.CoreV1Api, value: str, refused: bool) -> None:
    assert (safety_net_refusal(core, _leak("AWS_SECRET_ACCESS_KEY", value)) is not None) is refused


def test_safety_net_leaves_compliant_pods_other_pods_and_warning_environments_alone(core: client.CoreV1Api) -> None:
    from_secret = {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "secret_key"}}}
    assert safety_net_refusal(core, propeller_pod(PRODUCTION, env=[from_secret])) is None
    not_flyte = _leak("AWS_SECRET_ACCESS_KEY", "a-literal")
    not_flyte["metadata"]["labels"] = {"app": "not-a-flyte-task"}
    not_flyte["metadata"]["ownerReferences"] = []
    assert safety_net_refusal(core, not_flyte) is None
    # Development is keyguard's `warn` profile: a literal key there is a warning, never the safety net's refusal.
    warned = propeller_pod("flytesnacks-development", env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": "a-literal"}])
    assert safety_net_refusal(core, warned) is None
    staging = propeller_pod("flytesnacks-staging", env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": "a-literal"}])
    assert safety_net_refusal(core, staging) is not None


_PLUGIN_TIME = re.compile(
    r'^apiserver_admission_controller_admission_duration_seconds_(sum|count)\{name="ValidatingAdmissionPolicy",'
    r'operation="CREATE",rejected="false",type="validate"\} (\S+)$',
    re.MULTILINE,
)


def _plugin_time(plane: ControlPlane) -> tuple[float, float]:
    """(seconds, requests) the API server's ValidatingAdmissionPolicy plugin has spent on admitted creations."""
    found = dict(_PLUGIN_TIME.findall(plane.get("/metrics").text))
    return float(found.get("sum", 0)), float(found.get("count", 0))


def _create(plane: ControlPlane, core: client.CoreV1Api, count: int, times: list[float], plugin: list[float]) -> None:
    """`count` pod creations (stored in etcd) of a typical Flyte task pod with its usual env: each one's wall time
    seen by the client, and the policy plugin's total time inside the API server over them (seconds, requests)."""
    before = _plugin_time(plane)
    for _ in range(count):
        pod = propeller_pod(PRODUCTION)
        start = time.perf_counter()
        create_pod(core, pod)
        times.append(time.perf_counter() - start)
    after = _plugin_time(plane)
    plugin[0] += after[0] - before[0]
    plugin[1] += after[1] - before[1]


def _binding(api: client.ApiClient, core: client.CoreV1Api, *, active: bool) -> None:
    admission = client.AdmissionregistrationV1Api(api)
    if active:
        body = {"metadata": {"name": BINDING}, "spec": {"policyName": BINDING, "validationActions": ["Deny"]}}
        admission.create_validating_admission_policy_binding(body)
    else:
        admission.delete_validating_admission_policy_binding(BINDING)
    probe = _leak("AWS_SECRET_ACCESS_KEY", "a-literal")
    wait_for(lambda: (safety_net_refusal(core, probe) is not None) is active, what=f"binding active={active}")


def test_safety_net_added_latency_in_the_api_server(
    plane: ControlPlane, api: client.ApiClient, core: client.CoreV1Api, request: pytest.FixtureRequest
) -> None:
    """Pod creations with and without the binding in the same run, in alternating rounds (the machine's load
    drifts): the client's wall time, and the policy plugin's own time from the API server's metrics (what the CEL
    costs, without the noise of the rest of the request). Printed, never asserted."""
    rounds, per_round = 3, 40
    wall: dict[bool, list[float]] = {True: [], False: []}
    plugin: dict[bool, list[float]] = {True: [0.0, 0.0], False: [0.0, 0.0]}
    _create(plane, core, 10, [], [0.0, 0.0])  # warm-up: connections, caches
    try:
        for _ in range(rounds):
            _create(plane, core, per_round, wall[True], plugin[True])
            _binding(api, core, active=False)
            _create(plane, core, per_round, wall[False], plugin[False])
            _binding(api, core, active=True)
    finally:
        bindings = client.AdmissionregistrationV1Api(api).list_validating_admission_policy_binding().items
        if BINDING not in {b.metadata.name for b in bindings}:
            _binding(api, core, active=True)

    def p50(active: bool) -> float:
        return statistics.median(wall[active]) * 1000

    def per_request(active: bool) -> float:
        seconds, requests = plugin[active]
        return seconds / max(requests, 1) * 1e6

    line = (
        f"safety net over {len(wall[True])} pod creations each way: policy plugin {per_request(True):.0f} us per "
        f"creation with the binding, {per_request(False):.0f} us without; client p50 {p50(True):.2f} ms with, "
        f"{p50(False):.2f} ms without ({p50(True) - p50(False):+.2f} ms)"
    )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{line}")
