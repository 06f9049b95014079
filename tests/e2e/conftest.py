"""Session fixtures of the end-to-end suite: one real control plane, keyguard as a real process, and the webhook
configurations rendered from `manifests/`. Nothing is skipped: if the binaries cannot be built the suite fails
with the build's error."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.e2e.cluster import REPO, ControlPlane, KeyguardProcess, k8s_binaries, webhook_configurations
from tests.e2e.pods import create_pod, is_injected, propeller_pod, wait_for

FLYTE_NAMESPACES = ("flytesnacks-development", "flytesnacks-staging", "flytesnacks-production")


@pytest.fixture(scope="session", autouse=True)
def fresh_machine_path() -> None:
    """Overrides the unit tier's reduced PATH (tests/conftest.py): this tier runs what its build scripts installed."""


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    return k8s_binaries()


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def control_plane(bin_dir: Path, work: Path, request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    plane = ControlPlane(bin_dir, work)
    try:
        plane.start()
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():  # in the CI log, not only with -s
            print(f"\nkube-apiserver {plane.version} and etcd on 127.0.0.1 (API {plane.url})")
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def api(control_plane: ControlPlane) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(control_plane.kubeconfig))


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def rendered(control_plane: ControlPlane) -> list[dict[str, Any]]:
    """`kubectl kustomize manifests/`: the complete install an admin applies."""
    output = control_plane.kubectl("kustomize", str(REPO / "manifests")).stdout
    return [d for d in yaml.safe_load_all(output) if d]


def _ensure_service_account(core: client.CoreV1Api, namespace: str, name: str) -> None:
    try:
        core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    except client.ApiException as error:
        if error.status != 409:
            raise


@pytest.fixture(scope="session")
def flyte_namespaces(control_plane: ControlPlane, core: client.CoreV1Api) -> tuple[str, ...]:
    """The per-environment namespaces and task service accounts from manifests/flyte-environments, applied
    server-side; plus the `default` service account the (absent) controller-manager would create."""
    control_plane.kubectl("apply", "--server-side", "-k", str(REPO / "manifests" / "flyte-environments"))
    for namespace in (*FLYTE_NAMESPACES, "default", "kube-public", "kube-system"):
        _ensure_service_account(core, namespace, "default")
    return FLYTE_NAMESPACES


@pytest.fixture(scope="session")
def policy_file(work: Path) -> Path:
    path = work / "policy.yaml"
    shutil.copy(REPO / "manifests" / "base" / "policy.yaml", path)
    return path


@pytest.fixture(scope="session")
def keyguard(work: Path, policy_file: Path) -> Iterator[KeyguardProcess]:
    process = KeyguardProcess(work, policy_file)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def webhooks(
    api: client.ApiClient, rendered: list[dict[str, Any]], keyguard: KeyguardProcess, flyte_namespaces: Any
) -> list[dict[str, Any]]:
    admission = client.AdmissionregistrationV1Api(api)
    configs = webhook_configurations(rendered, keyguard)
    for document in configs:
        if document["kind"] == "MutatingWebhookConfiguration":
            admission.create_mutating_webhook_configuration(document)
        else:
            admission.create_validating_webhook_configuration(document)
    core = client.CoreV1Api(api)
    # The API server picks up webhook configurations from an informer: wait until a dry run is injected.
    probe = propeller_pod(FLYTE_NAMESPACES[2])
    wait_for(lambda: is_injected(create_pod(core, probe, dry_run=True)), what="webhooks in effect")
    return configs


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
