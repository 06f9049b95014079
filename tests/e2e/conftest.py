"""Session fixtures of the end-to-end suite: one real control plane, keyguard as a real process, and the webhook
configurations rendered from `manifests/`. Nothing is skipped: if the binaries cannot be built the suite fails
with the build's error.

Every test runs alone, in any order (`make e2e` shuffles them) and in any subset: a fixture that changes shared
state puts it back in `finally`, and a test that needs an object creates it. At the end, `leak_scan` looks for
every fake key the run generated in keyguard's log, the API server's log, events, annotations and managedFields."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from random_order.config import Config as RandomOrder

from tests import fake_credentials
from tests.e2e import configurations
from tests.e2e.cluster import REPO, ControlPlane, KeyguardProcess, k8s_binaries, webhook_configurations
from tests.e2e.leak_scan import planted_values, scan_for_leaks
from tests.e2e.other_webhooks import Mutation, OtherWebhooks, other_webhooks
from tests.e2e.pods import FLYTE_NAMESPACES

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e needs the real API server harness: mark it `e2e` (`-m "not e2e"` skips them)."""
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """`make e2e` runs in random order and -q hides the header: the seed goes at the end, to replay a failure."""
    order = RandomOrder(config)
    if order.is_enabled:
        replay = f"--random-order-bucket={order.bucket_type} --random-order-seed={order.seed}"
        terminalreporter.write_line(f"tests ran in random order: replay it with {replay}")


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> Iterator[None]:
    """The suite talks to 127.0.0.1 only: in-process HTTP clients (httpx, the Kubernetes client, which reads proxy
    variables from the environment) and child processes never go through a proxy."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
                patch.delenv(name)
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        patch.setenv("no_proxy", "127.0.0.1,localhost")
        yield


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
    try:
        process.start()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def webhooks(
    api: client.ApiClient, rendered: list[dict[str, Any]], keyguard: KeyguardProcess, flyte_namespaces: Any
) -> list[dict[str, Any]]:
    configs = webhook_configurations(rendered, keyguard)
    for document in configs:
        configurations.create(api, document)
    configurations.keyguard_in_effect(api)
    return configs


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def fresh_namespace(core: client.CoreV1Api, unique: str) -> Iterator[Callable[[str], str]]:
    """make(suffix) -> a new namespace `e<unique><n>-<suffix>` (suffix `production` makes it a Flyte namespace
    for the policy), with the `default` and `flyte-task` accounts; deleted after the test. Without a
    controller-manager a deleted namespace stays Terminating, so names are never reused."""
    made: list[str] = []

    def make(suffix: str = "production") -> str:
        name = f"e{unique}{len(made)}-{suffix}"
        core.create_namespace({"metadata": {"name": name}})
        made.append(name)
        for account in ("default", "flyte-task"):
            core.create_namespaced_service_account(name, {"metadata": {"name": account}})
        return name

    try:
        yield make
    finally:
        for name in made:
            core.delete_namespace(name)


@pytest.fixture(scope="session")
def others(work: Path) -> Iterator[OtherWebhooks]:
    """The other mutating webhooks' server (sidecar injector, Flyte's secrets webhook, a careless injector)."""
    with other_webhooks(work / "other-webhooks") as server:
        yield server


@pytest.fixture
def other_webhook(api: client.ApiClient, others: OtherWebhooks) -> Iterator[Callable[[str, str, Mutation], None]]:
    """install(name, namespace, mutation): a mutating webhook configuration `name` (configurations run in name
    order: `aa-…` before keyguard, `zz-…` after) serving one namespace; deleted after the test."""
    admission = client.AdmissionregistrationV1Api(api)
    names: list[str] = []

    def install(name: str, namespace: str, mutation: Mutation) -> None:
        admission.create_mutating_webhook_configuration(others.configuration(name, namespace, mutation))
        names.append(name)
        configurations.informers_synced(api)

    try:
        yield install
    finally:
        for name in names:
            admission.delete_mutating_webhook_configuration(name)


@pytest.fixture(scope="session", autouse=True)
def leak_scan(control_plane: ControlPlane, work: Path) -> Iterator[set[str]]:
    """Records every fake key the run generates (the set it yields) and, after the last test, fails the run if one
    appears in keyguard's log, the API server's or etcd's log, an event, or any object's annotations or
    managedFields."""
    with planted_values(fake_credentials) as planted:
        yield planted
        logs = [work / "keyguard.log", *(p.log for p in control_plane.processes)]
        places = scan_for_leaks(control_plane, logs, planted)
    assert not places, f"a fake key the tests planted appears in: {json.dumps(places)}"
