"""Credential lifecycle in the API server: the storage keys encrypted at rest in etcd (issue 13, item 3) and every
read of them audited without the value (item 4). A control plane of its own, started with the shipped
manifests/apiserver/encryption-config.yaml (a key made at run time) and manifests/apiserver/audit-policy.yaml as is;
the proof reads etcd with etcd's own client, etcdctl, on loopback."""

from __future__ import annotations

import base64
import json
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client, config

from tests import fake_credentials as fake
from tests.e2e.cluster import REPO, ControlPlane, secret_create
from tests.e2e.pods import propeller_pod, wait_for
from tests.e2e.safety_net import apply_safety_net, flyte_environments, safety_net_refusal
from tests.leaks import assert_not_stored

APISERVER_CONFIG = REPO / "manifests" / "apiserver"
NAMESPACE = "flytesnacks-production"
SECRET = "flyte-storage-creds"  # the embedded default policy's Secret name
READER = "credential-reader"


def _encryption_config(work: Path) -> Path:
    """The shipped EncryptionConfiguration with a fresh 32-byte secretbox key (the file ships without one)."""
    document = yaml.safe_load((APISERVER_CONFIG / "encryption-config.yaml").read_text())
    (key,) = document["resources"][0]["providers"][0]["secretbox"]["keys"]
    key["secret"] = base64.b64encode(secrets.token_bytes(32)).decode()
    path = work / "encryption-config.yaml"
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def plane(bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    work = tmp_path_factory.mktemp("lifecycle-at-rest")
    args = [
        f"--encryption-provider-config={_encryption_config(work)}",
        f"--audit-policy-file={APISERVER_CONFIG / 'audit-policy.yaml'}",
        f"--audit-log-path={work / 'audit.log'}",
    ]
    with ControlPlane(bin_dir, work, apiserver_args=args) as plane:
        yield plane


@pytest.fixture(scope="module")
def core(plane: ControlPlane) -> client.CoreV1Api:
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(plane.kubeconfig)))
    flyte_environments(plane, api)
    return api


@pytest.fixture(scope="module")
def keys(plane: ControlPlane, core: client.CoreV1Api) -> dict[str, str]:
    """The credentials Secret as an admin makes it: `keyguard secret create`, values on stdin (made at run time)."""
    values = {"access_key": fake.aws_access_key_id(), "secret_key": fake.aws_secret_access_key()}
    secret_create(plane, NAMESPACE, values)
    return values


def test_encryption_at_rest_the_credentials_secret_is_stored_encrypted_in_etcd(
    plane: ControlPlane, core: client.CoreV1Api, keys: dict[str, str]
) -> None:
    # The API still serves the keys (decrypted): the Secret holds them, so their absence below means something.
    # Assertions on values compare booleans: pytest would print the operands, keys included, on a failure.
    stored = core.read_namespaced_secret(SECRET, NAMESPACE).data
    served = {name: base64.b64decode(data).decode() for name, data in stored.items()} == keys
    assert served, "the API does not serve the keys `keyguard secret create` was given"
    raw = plane.etcd_value(f"/registry/secrets/{NAMESPACE}/{SECRET}")
    encrypted = raw.startswith(b"k8s:enc:secretbox:v1:key1:")
    assert encrypted, f"stored unencrypted, starting with {raw[:8]!r}"
    for value in keys.values():
        assert_not_stored(value, raw, "the Secret's bytes in etcd")
    # The control: a resource the configuration does not encrypt is readable in plaintext the same way, so the read
    # above really sees what etcd stores.
    marker = secrets.token_hex(16)
    core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "at-rest-control"}, "data": {"m": marker}})
    control = plane.etcd_value(f"/registry/configmaps/{NAMESPACE}/at-rest-control")
    assert not control.startswith(b"k8s:enc:")
    assert marker.encode() in control


def _reader_token(plane: ControlPlane, core: client.CoreV1Api) -> str:
    """A service account allowed to get the credentials Secret and list and watch Secrets, and a token for it."""
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": READER}})
    rbac.create_namespaced_role(
        NAMESPACE,
        {
            "metadata": {"name": READER},
            "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]},
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        NAMESPACE,
        {
            "metadata": {"name": READER},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": READER},
            "subjects": [{"kind": "ServiceAccount", "name": READER, "namespace": NAMESPACE}],
        },
    )
    request = core.create_namespaced_service_account_token(READER, NAMESPACE, {"spec": {"expirationSeconds": 600}})
    token: str = request.status.token
    return token


def _audit_events(plane: ControlPlane) -> list[dict[str, Any]]:
    path = plane.work / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_audit_records_who_read_the_credentials_secret_at_metadata_level_and_never_the_value(
    plane: ControlPlane, core: client.CoreV1Api, keys: dict[str, str]
) -> None:
    token = _reader_token(plane, core)
    user = f"system:serviceaccount:{NAMESPACE}:{READER}"
    base = f"/api/v1/namespaces/{NAMESPACE}/secrets"
    trust = ssl.create_default_context(cafile=str(plane.pki.serving_ca))
    with httpx.Client(
        base_url=plane.url, verify=trust, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as reader:
        assert reader.get(f"{base}/{SECRET}").status_code == 200
        assert reader.get(base).status_code == 200
        watch = reader.get(base, params={"watch": "true", "timeoutSeconds": "1"})
        assert watch.status_code == 200
    # A pod carrying one of the keys in plaintext, refused by the safety net: its request body holds the key, and
    # the audit policy keeps it out of the log (pods are logged at Metadata).
    apply_safety_net(plane, core)
    leak = propeller_pod(NAMESPACE, env=[{"name": "AWS_SECRET_ACCESS_KEY", "value": keys["secret_key"]}])
    wait_for(lambda: safety_net_refusal(core, leak), what="safety net in effect")
    refused = safety_net_refusal(core, leak, dry_run=False) is not None
    assert refused, "the pod with a plaintext key was admitted"

    def reads() -> dict[str, dict[str, Any]]:
        found = {}
        for event in _audit_events(plane):
            target = event.get("objectRef", {})
            if event["user"]["username"] == user and target.get("resource") == "secrets":
                found[event["verb"]] = event
        return found if {"get", "list", "watch"} <= found.keys() else {}

    events = wait_for(reads, what="audit events for the reader's get, list and watch")
    # Never an assertion on a whole event: on a failure pytest would print it, and a body would hold the keys.
    for verb, event in events.items():
        level, namespace = event["level"], event["objectRef"]["namespace"]
        bodies = sorted({"requestObject", "responseObject"} & event.keys())
        assert (level, namespace, bodies) == ("Metadata", NAMESPACE, []), verb
    assert events["get"]["objectRef"]["name"] == SECRET
    assert events["get"]["responseStatus"]["code"] == 200
    everything = _audit_events(plane)
    pod_levels = {e["level"] for e in everything if e.get("objectRef", {}).get("resource") == "pods"}
    assert pod_levels == {"Metadata"}
    secret_levels = {e["level"] for e in everything if e.get("objectRef", {}).get("resource") == "secrets"}
    assert secret_levels == {"Metadata"}
    log = (plane.work / "audit.log").read_text()
    for value in keys.values():
        assert_not_stored(value, log, "the audit log")
