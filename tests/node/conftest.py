"""Session fixtures of the node suite: the end-to-end control plane plus a real node (containerd, runc, kubelet,
scheduler, controller manager), keyguard's webhooks on loopback with the locally built renderer image, SeaweedFS
as the object storage, and one storage Secret per Flyte environment whose keys SeaweedFS accepts. Nothing is
skipped: a build or start-up failure fails the suite with its error, and the host is restored whatever happened."""

from __future__ import annotations

import fcntl
import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests import fake_credentials
from tests.e2e.cluster import (
    REPO,
    ControlPlane,
    KeyguardProcess,
    k8s_binaries,
    webhook_configurations,
)
from tests.e2e.leak_scan import planted_values
from tests.e2e.pods import create_pod, is_injected, propeller_pod, wait_for
from tests.node import identity
from tests.node.leak_scan import scan_node_for_leaks
from tests.node.node import APISERVER_ARGS, Build, Node, build
from tests.node.pods import EXEMPT_PROJECT
from tests.node.storage import BUCKET, SeaweedFS, secret_create
from tests.server_harness import free_port

FLYTE_NAMESPACES = ("flytesnacks-development", "flytesnacks-staging", "flytesnacks-production")


def _say(request: pytest.FixtureRequest, text: str) -> None:
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # in the CI log, not only with -s
        print(f"\n{text}")


@pytest.fixture(scope="session", autouse=True)
def fresh_machine_path() -> None:
    """Overrides the unit tier's reduced PATH (tests/conftest.py): this tier runs what its build scripts installed."""


# One node per machine: the kubelet's hardcoded paths, its cgroups and the host's iptables are shared, so a second
# suite started meanwhile would restore (i.e. wreck) the first one's host state. It waits for the first to finish.
NODE_LOCK = Path("/run/lock/keyguard-node-suite.lock")


@pytest.fixture(scope="session", autouse=True)
def one_node_per_machine(request: pytest.FixtureRequest) -> Iterator[None]:
    NODE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with NODE_LOCK.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(request, f"another node suite holds {NODE_LOCK}: waiting for it to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session", autouse=True)
def planted(one_node_per_machine: None) -> Iterator[set[str]]:
    """Every fake key the run generates, from the first fixture on (the storage's keys included); `cluster` scans
    for them when the suite ends."""
    with planted_values(fake_credentials) as values:
        yield values


@pytest.fixture(scope="session")
def built(one_node_per_machine: None) -> Build:
    return build()


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("node")


@pytest.fixture(scope="session")
def control_plane(work: Path) -> Iterator[ControlPlane]:
    # The API server is the OIDC issuer of its service-account tokens, on its own https URL (short-lived credentials).
    with ControlPlane(k8s_binaries(), work, apiserver_args=APISERVER_ARGS, own_issuer=True) as plane:
        yield plane


@pytest.fixture(scope="session")
def node(control_plane: ControlPlane, built: Build, work: Path, request: pytest.FixtureRequest) -> Iterator[Node]:
    started = Node(control_plane, built, logs=work)
    try:
        started.start()
        info = json.loads(control_plane.kubectl("get", "node", "-o", "jsonpath={.items[0].status.nodeInfo}").stdout)
        runc = subprocess.run([str(built.runc), "--version"], capture_output=True, text=True, check=True).stdout.split(
            "\n"
        )[0]
        _say(
            request,
            f"containerd up and images imported in {started.import_seconds:.1f} s, node Ready "
            f"{started.ready_seconds:.1f} s later: kubelet {info['kubeletVersion']}, "
            f"{info['containerRuntimeVersion']}, {runc}, kernel {info['kernelVersion']}",
        )
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def core(control_plane: ControlPlane) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(control_plane.kubeconfig)))


@pytest.fixture(scope="session")
def storage(built: Build, work: Path, request: pytest.FixtureRequest) -> Iterator[SeaweedFS]:
    seaweed = SeaweedFS(built.weed, work)
    try:
        seaweed.start()
        _say(request, f"SeaweedFS {seaweed.version} S3 gateway on {seaweed.endpoint}")
        yield seaweed
    finally:
        seaweed.stop()


@pytest.fixture(scope="session")
def bucket(storage: SeaweedFS) -> str:
    storage.create_bucket(BUCKET)
    return BUCKET


@pytest.fixture(scope="session")
def sts_port() -> int:
    """The port of the web-identity tests' STS (a SeaweedFS of their own, which they start): the policy names it."""
    return free_port()


@pytest.fixture(scope="session")
def policy_file(work: Path, built: Build, sts_port: int) -> Path:
    """manifests/base/policy.yaml with the renderer image pointed at the locally built keyguard image, and a
    web-identity profile first, for the short-lived-credentials namespace."""
    policy = yaml.safe_load((REPO / "manifests" / "base" / "policy.yaml").read_text())
    policy["profiles"].insert(0, identity.profile(f"http://127.0.0.1:{sts_port}"))
    for profile in policy["profiles"]:
        profile["renderer"] = {"image": built.images["keyguard"].name}
        if profile["name"] == "staging":  # the rotation test's environment: the refresher sidecar, polling often
            profile["credentials"] = {"refresh": "watch", "refreshSeconds": 2}
    # A dated, owned exemption, the product's way to leave a namespace's pods untouched: the flytekit test's
    # pod without the injection.
    policy["exemptions"] = [
        {
            "namespaces": [f"{EXEMPT_PROJECT}*"],
            "owner": "node-suite",
            "expires": (date.today() + timedelta(days=30)).isoformat(),
            "reason": "a Flyte task pod without keyguard's injection",
        }
    ]
    path = work / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


@pytest.fixture(scope="session")
def keyguard(work: Path, policy_file: Path) -> Iterator[KeyguardProcess]:
    process = KeyguardProcess(work, policy_file)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def cluster(
    node: Node,
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    keyguard: KeyguardProcess,
    storage: SeaweedFS,
    work: Path,
    planted: set[str],
) -> Iterator[ControlPlane]:
    """The Flyte namespaces and task accounts from manifests/, each with its storage Secret (SeaweedFS's keys),
    keyguard's install applied for real, and its webhooks (on loopback) in effect. When the suite ends, while the
    node still runs, no fake key any test planted may appear in a log, an event or object metadata."""
    control_plane.kubectl("apply", "--server-side", "-k", str(REPO / "manifests" / "flyte-environments"))
    for namespace in FLYTE_NAMESPACES:
        secret_create(control_plane, namespace, storage.keys)
    output = control_plane.kubectl("kustomize", str(REPO / "manifests")).stdout
    rendered: list[dict[str, Any]] = [d for d in yaml.safe_load_all(output) if d]
    # keyguard's namespace, accounts, RBAC and policy ConfigMap, as `keyguard doctor` expects to find them.
    control_plane.apply_for_real(
        rendered, {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap"}
    )
    admission = client.AdmissionregistrationV1Api(core.api_client)
    for document in webhook_configurations(rendered, keyguard):
        if document["kind"] == "MutatingWebhookConfiguration":
            admission.create_mutating_webhook_configuration(document)
        else:
            admission.create_validating_webhook_configuration(document)
    probe = propeller_pod(FLYTE_NAMESPACES[2])
    wait_for(lambda: is_injected(create_pod(core, probe, dry_run=True)), what="webhooks in effect")
    # The controller manager makes each namespace's `default` account; pods wait for it otherwise.
    for namespace in (*FLYTE_NAMESPACES, "default"):
        wait_for(
            lambda ns=namespace: core.list_namespaced_service_account(ns, field_selector="metadata.name=default").items,
            timeout=60,
            what=f"service account default in {namespace}",
        )
    yield control_plane
    places = scan_node_for_leaks(control_plane, work, node.pod_logs, planted)
    assert not places, f"a fake key the tests planted appears in: {json.dumps(places)}"


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:6]
