"""What a Flyte user sees through the real API server: injection, refusals, dry runs, debug containers, and pods
keyguard must leave alone. The webhooks' matchConditions decide which pods reach keyguard at all: each of their
branches is exercised here, and keyguard's own log shows which pods it was asked about."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from tests import fake_credentials as fake
from tests.e2e.cluster import KeyguardProcess
from tests.e2e.pods import RENDERER, create_pod, is_injected, message, propeller_pod, refusal, wait_for
from tests.flyte_pods import plain_pod
from tests.leaks import assert_not_leaked

pytestmark = pytest.mark.usefixtures("webhooks")
PRODUCTION = "flytesnacks-production"


def test_task_pod_is_stored_injected_and_accepted_by_the_service_account_plugin(core: client.CoreV1Api) -> None:
    pod = create_pod(core, propeller_pod(PRODUCTION))
    stored = core.read_namespaced_pod(pod["metadata"]["name"], PRODUCTION)
    spec = stored.spec
    volumes = {v.name: v for v in spec.volumes}
    assert volumes["keyguard-storage-creds"].secret.secret_name == "flyte-storage-creds"
    assert volumes["keyguard-storage-creds"].secret.default_mode == 0o444  # readable by any task user (issue 11)
    assert volumes["keyguard-storage-tmpfs"].empty_dir.medium == "Memory"
    assert not [name for name in volumes if name.startswith("kube-api-access-")], "token volume still mounted"
    assert spec.service_account_name == "flyte-task"
    assert spec.automount_service_account_token is False
    assert [c.name for c in spec.init_containers] == [RENDERER]
    for container in spec.init_containers + spec.containers:
        mounts = {m.name: m for m in container.volume_mounts}
        assert mounts["keyguard-storage-creds"].read_only is True
        assert mounts["keyguard-storage-creds"].sub_path is None
        assert "keyguard-storage-tmpfs" in mounts
    env = {e.name: e for e in spec.containers[0].env}
    assert env["AWS_SHARED_CREDENTIALS_FILE"].value.startswith("/var/run/flyte/storage/")
    assert stored.metadata.annotations["keyguard.flyte.org/profile"] == "production"


def _leaks() -> list[tuple[str, dict[str, Any], str]]:
    """(shape, pod, secret) for each plaintext-key shape, with keys made at run time."""
    secret_key, key_id, conn = fake.aws_secret_access_key(), fake.aws_access_key_id(), fake.azure_connection_string()
    return [
        (
            "env literal",
            propeller_pod(PRODUCTION, env=[{"name": "FLYTE_AWS_SECRET_ACCESS_KEY", "value": secret_key}]),
            secret_key,
        ),
        ("key id under any name", propeller_pod(PRODUCTION, env=[{"name": "BUCKET_ID", "value": key_id}]), key_id),
        (
            "copilot args",
            propeller_pod(PRODUCTION, args=["--storage.stow.config", f"secret_key={secret_key}"]),
            secret_key,
        ),
        ("azure connection string", propeller_pod(PRODUCTION, env=[{"name": "CONN", "value": conn}]), conn),
        (
            "base64 of a key",
            propeller_pod(PRODUCTION, env=[{"name": "BLOB", "value": fake.base64_of(secret_key)}]),
            secret_key,
        ),
    ]


@pytest.mark.parametrize("index", range(5), ids=[shape for shape, _, _ in _leaks()])
def test_plaintext_keys_are_refused_with_403_and_never_echoed(core: client.CoreV1Api, index: int) -> None:
    _, pod, secret = _leaks()[index]
    error = refusal(core, pod)
    assert error.status == 403
    text = message(error)
    assert "keyguard denied" in text
    assert pod["spec"]["containers"][0]["name"] in text
    assert_not_leaked(secret, error.body, "API server response")
    assert_not_leaked(fake.base64_of(secret), error.body, "API server response")
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_pod(pod["metadata"]["name"], PRODUCTION)
    assert missing.value.status == 404


def test_server_side_dry_run_refuses_leaks_and_returns_the_injected_pod_without_storing_it(
    core: client.CoreV1Api,
) -> None:
    secret = fake.aws_secret_access_key()
    leaky = propeller_pod(PRODUCTION, env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": secret}])
    error = refusal(core, leaky, dry_run=True)
    assert error.status == 403
    assert_not_leaked(secret, error.body, "dry-run response")

    clean = propeller_pod(PRODUCTION)
    answer = create_pod(core, clean, dry_run=True)
    assert is_injected(answer)
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_pod(clean["metadata"]["name"], PRODUCTION)
    assert missing.value.status == 404


def test_a_debug_container_with_a_key_is_refused(core: client.CoreV1Api) -> None:
    pod = create_pod(core, propeller_pod(PRODUCTION))
    name = pod["metadata"]["name"]
    secret = fake.aws_secret_access_key()
    debug = {
        "name": "debugger",
        "image": "busybox:1.37",
        "env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": secret}],
    }
    body = {"spec": {"ephemeralContainers": [debug]}}
    with pytest.raises(client.ApiException) as refused:
        core.patch_namespaced_pod_ephemeralcontainers(name, PRODUCTION, body)
    assert refused.value.status == 403
    text = message(refused.value)
    expected = (
        'admission webhook "mutate.keyguard.flyte.org" denied the request: '
        f"keyguard denied pod {PRODUCTION}/{name} (profile production): 1 problem(s): "
        "(1) container debugger, env AWS_SECRET_ACCESS_KEY: "
    )
    assert text.startswith(expected), text
    assert "[env-credential-literal]" in text, text
    assert_not_leaked(secret, refused.value.body, "ephemeral container refusal")

    clean = {"name": "debugger", "image": "busybox:1.37", "env": [{"name": "AWS_REGION", "value": "us-east-1"}]}
    patched = core.patch_namespaced_pod_ephemeralcontainers(
        name, PRODUCTION, {"spec": {"ephemeralContainers": [clean]}}
    )
    assert [c.name for c in patched.spec.ephemeral_containers] == ["debugger"]


def test_pods_that_are_not_flyte_task_pods_are_untouched(core: client.CoreV1Api, unique: str) -> None:
    pod = plain_pod("default")
    pod["metadata"]["name"] = f"nginx-{unique}"
    pod["spec"]["containers"][0]["env"] = [{"name": "AWS_SECRET_ACCESS_KEY", "value": "not-ours-to-judge"}]
    stored = create_pod(core, pod)
    assert stored["spec"].get("serviceAccountName") == "default"
    assert not is_injected(stored)
    assert "keyguard.flyte.org/profile" not in (stored["metadata"].get("annotations") or {})


def test_flyte_pods_in_kube_system_are_untouched(core: client.CoreV1Api) -> None:
    pod = propeller_pod(PRODUCTION)
    pod["metadata"]["namespace"] = "kube-system"
    stored = create_pod(core, pod)
    assert not is_injected(stored)


def test_development_warns_instead_of_refusing(control_plane: Any) -> None:
    """warn mode: the pod is admitted and injected, and the user sees why in the API warnings."""
    secret = fake.aws_secret_access_key()
    pod = propeller_pod("flytesnacks-development", env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": secret}])
    with control_plane.client() as http:
        response = http.post("/api/v1/namespaces/flytesnacks-development/pods", content=json.dumps(pod))
    assert response.status_code == 201, response.text
    warnings = response.headers.get_list("warning")
    assert any("AWS_SECRET_ACCESS_KEY" in w and "env-credential-literal" in w for w in warnings), warnings
    assert is_injected(response.json())
    assert_not_leaked(secret, "\n".join(warnings), "API warnings")


def _flyte2_pod() -> dict[str, Any]:
    """A Flyte 2 action pod: project, domain, run and action labels; no execution-id, no flyteworkflow owner."""
    pod = propeller_pod(PRODUCTION)
    run = pod["metadata"]["labels"]["execution-id"][:12]
    pod["metadata"]["name"] = f"{run}-a0-1"
    labels = {"organization": "demo", "project": "flytesnacks", "domain": "production", "run": run, "action": "a0"}
    pod["metadata"]["labels"] = labels
    del pod["metadata"]["ownerReferences"]
    return pod


def _owned_pod() -> dict[str, Any]:
    """A pod whose only Flyte mark is its flyteworkflow owner (no Flyte label at all)."""
    pod = propeller_pod(PRODUCTION)
    pod["metadata"]["labels"] = {"app": "task"}
    return pod


@pytest.mark.parametrize("make", [_flyte2_pod, _owned_pod], ids=["flyte 2 labels", "flyteworkflow owner only"])
def test_every_flyte_task_pod_shape_reaches_keyguard_and_is_injected(
    core: client.CoreV1Api, keyguard: KeyguardProcess, make: Any
) -> None:
    pod = make()
    name = pod["metadata"]["name"]
    stored = create_pod(core, pod, dry_run=True)
    assert is_injected(stored)
    assert stored["metadata"]["annotations"]["keyguard.flyte.org/profile"] == "production"
    _wait_for_both_endpoints(keyguard, name)


def _endpoints_called(keyguard: KeyguardProcess, name: str) -> set[str]:
    return {e["endpoint"] for e in keyguard.audit_events() if e.get("event") == "admission" and e.get("name") == name}


def _wait_for_both_endpoints(keyguard: KeyguardProcess, name: str) -> None:
    """keyguard logs each decision just after answering it: wait for the lines of both webhooks."""
    wait_for(
        lambda: _endpoints_called(keyguard, name) == {"mutate", "validate"},
        what=f"keyguard's mutate and validate log lines for {name}",
    )


def test_a_pod_that_is_not_a_flyte_task_pod_never_reaches_keyguard_even_with_a_key_in_a_flyte_namespace(
    core: client.CoreV1Api, keyguard: KeyguardProcess, unique: str
) -> None:
    secret = fake.aws_secret_access_key()
    pod = plain_pod(PRODUCTION)
    pod["metadata"]["name"] = f"uploader-{unique}"
    pod["metadata"]["labels"] = {"app": "uploader", "project": "flytesnacks", "domain": "production"}  # no run
    pod["spec"]["containers"][0]["env"] = [{"name": "AWS_SECRET_ACCESS_KEY", "value": secret}]
    stored = create_pod(core, pod, dry_run=True)
    assert not is_injected(stored)
    assert "keyguard.flyte.org/profile" not in (stored["metadata"].get("annotations") or {})
    # The matchConditions kept it away from keyguard: a Flyte task pod sent right after is logged, this one never.
    marker = propeller_pod(PRODUCTION)
    create_pod(core, marker, dry_run=True)
    _wait_for_both_endpoints(keyguard, marker["metadata"]["name"])
    assert _endpoints_called(keyguard, pod["metadata"]["name"]) == set()
