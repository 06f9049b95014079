"""The admin's tools against the real API server: `keyguard certs install` (server-side apply that keeps admin
edits), `keyguard secret create` (values from stdin, never echoed) and `keyguard doctor` (healthy, and each
broken state named)."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests import fake_credentials as fake
from tests.e2e.cluster import ControlPlane, KeyguardProcess, run_keyguard
from tests.e2e.configurations import KINDS, informers_synced, keyguard_in_effect, read
from tests.e2e.pods import wait_for
from tests.leaks import assert_not_leaked
from webhook import certs

pytestmark = pytest.mark.usefixtures("webhooks")
PRODUCTION, STAGING, DEVELOPMENT = "flytesnacks-production", "flytesnacks-staging", "flytesnacks-development"


@pytest.fixture(scope="module")
def installed(control_plane: ControlPlane, rendered: list[dict[str, Any]]) -> None:
    """keyguard's namespace, accounts, RBAC and policy ConfigMap applied for real (the webhooks stay on loopback)."""
    control_plane.apply_for_real(
        rendered, {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap"}
    )


def _kubeconfig(control_plane: ControlPlane) -> list[str]:
    return ["--kubeconfig", str(control_plane.kubeconfig)]


def _secret_create(control_plane: ControlPlane, namespace: str) -> tuple[str, str]:
    key_id, secret_key = fake.aws_access_key_id(), fake.aws_secret_access_key()
    result = run_keyguard(
        "secret",
        "create",
        "--namespace",
        namespace,
        *_kubeconfig(control_plane),
        stdin=f"access_key={key_id}\nsecret_key={secret_key}\n",
    )
    for value in (key_id, secret_key):
        assert_not_leaked(value, result.stdout + result.stderr, "keyguard secret create output")
    return key_id, secret_key


def _doctor(control_plane: ControlPlane, *namespaces: str) -> tuple[int, dict[str, Any]]:
    args = [arg for ns in namespaces for arg in ("--namespace", ns)]
    result = run_keyguard("doctor", "--output", "json", *args, *_kubeconfig(control_plane), check=False)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def _problems(report: dict[str, Any]) -> list[str]:
    return [f"{c['check']}: {c['detail']}" for c in report["checks"] if c["status"] == "problem"]


def test_certs_install_writes_the_secret_and_keeps_admin_edits(
    api: client.ApiClient, control_plane: ControlPlane, keyguard: KeyguardProcess, installed: None
) -> None:
    admission = client.AdmissionregistrationV1Api(api)
    edit = {
        "metadata": {"labels": {"team": "platform"}},
        "webhooks": [{"name": "mutate.keyguard.flyte.org", "timeoutSeconds": 4}],
    }
    admission.patch_mutating_webhook_configuration("keyguard", edit, field_manager="admin")
    try:
        run_keyguard("certs", "install", "--dir", str(keyguard.cert_dir), *_kubeconfig(control_plane))
        hook: Any = admission.read_mutating_webhook_configuration("keyguard")
        assert hook.metadata.labels["team"] == "platform"
        assert hook.webhooks[0].timeout_seconds == 4
        published = {
            kind: [base64.b64decode(h["clientConfig"]["caBundle"]) for h in read(api, kind)["webhooks"]]
            for kind in KINDS
        }
        assert published == {kind: [keyguard.ca_bundle()] for kind in KINDS}, "caBundle not on every webhook"
        assert hook.webhooks[0].client_config.url.startswith("https://127.0.0.1:")
        managers = {entry.manager for entry in hook.metadata.managed_fields}
        assert {"keyguard", "admin"} <= managers
        secret: Any = client.CoreV1Api(api).read_namespaced_secret("keyguard-tls", "keyguard-system")
        assert secret.type == "kubernetes.io/tls"
        assert sorted(secret.data) == ["ca.crt", "tls.crt", "tls.key"]  # never the CA key
    finally:
        admission.patch_mutating_webhook_configuration(
            "keyguard",
            {"webhooks": [{"name": "mutate.keyguard.flyte.org", "timeoutSeconds": 3}]},
            field_manager="admin",
        )


def test_secret_create_takes_values_from_stdin_and_prints_key_names_only(
    api: client.ApiClient, control_plane: ControlPlane
) -> None:
    key_id, secret_key = _secret_create(control_plane, PRODUCTION)
    secret: Any = client.CoreV1Api(api).read_namespaced_secret("flyte-storage-creds", PRODUCTION)
    assert base64.b64decode(secret.data["access_key"]).decode() == key_id
    assert base64.b64decode(secret.data["secret_key"]).decode() == secret_key
    assert secret.metadata.labels["keyguard.flyte.org/storage-credentials"] == "true"


def test_doctor_reports_a_healthy_install(control_plane: ControlPlane, installed: None) -> None:
    for namespace in (PRODUCTION, STAGING):
        _secret_create(control_plane, namespace)
    code, report = _doctor(control_plane, PRODUCTION, STAGING)
    assert _problems(report) == []
    assert code == 0 and report["healthy"] is True
    checks = {c["check"]: c for c in report["checks"]}
    assert checks[f"admission in {PRODUCTION}"]["status"] == "ok"
    assert checks[f"{PRODUCTION}: ServiceAccount flyte-task"]["status"] == "ok"
    assert "keys access_key, secret_key" in checks[f"{STAGING}: Secret flyte-storage-creds"]["detail"]
    text = run_keyguard("doctor", "--namespace", PRODUCTION, *_kubeconfig(control_plane)).stdout
    assert "healthy:" in text and "caBundle verifies" in text


def test_doctor_names_a_missing_secret_and_an_over_privileged_task_account(
    api: client.ApiClient, control_plane: ControlPlane, installed: None
) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    binding = {
        "metadata": {"name": "tasks-can-read", "namespace": STAGING},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "flyte-task", "namespace": STAGING}],
    }
    rbac.create_namespaced_role_binding(STAGING, binding)
    try:
        code, report = _doctor(control_plane, DEVELOPMENT, STAGING)
    finally:
        rbac.delete_namespaced_role_binding("tasks-can-read", STAGING)
    problems = _problems(report)
    assert code == 1 and report["healthy"] is False
    assert any(p.startswith(f"{DEVELOPMENT}: Secret flyte-storage-creds: missing") for p in problems), problems
    assert any(
        p.startswith(f"{STAGING}: ServiceAccount flyte-task: over-privileged") and "tasks-can-read" in p
        for p in problems
    ), problems


@pytest.fixture
def restored_certificates(
    api: client.ApiClient, keyguard: KeyguardProcess, control_plane: ControlPlane, tmp_path: Path
) -> Iterator[Path]:
    """keyguard's certificates and the published caBundle put back as they were, and admission working again."""
    saved = tmp_path / "saved"
    shutil.copytree(keyguard.cert_dir, saved)
    try:
        yield saved
    finally:
        for name in ("ca.crt", "ca.key", "tls.crt", "tls.key"):
            shutil.copy(saved / name, keyguard.cert_dir / name)
        run_keyguard("certs", "install", "--dir", str(keyguard.cert_dir), "--no-secret", *_kubeconfig(control_plane))
        informers_synced(api)
        keyguard_in_effect(api)  # keyguard reloaded the restored certificate and the API server trusts it


def test_doctor_names_a_wrong_ca_bundle(
    control_plane: ControlPlane, installed: None, restored_certificates: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca"
    certs.generate(other, ["localhost"], ["127.0.0.1"])
    run_keyguard("certs", "install", "--dir", str(other), "--no-secret", *_kubeconfig(control_plane))
    code, report = _doctor(control_plane, PRODUCTION)
    problems = _problems(report)
    assert code == 1
    assert any("does not verify the serving certificate" in p for p in problems), problems
    assert any(p.startswith(f"admission in {PRODUCTION}") for p in problems), problems


def test_doctor_names_an_expired_certificate(
    control_plane: ControlPlane, keyguard: KeyguardProcess, installed: None, restored_certificates: Path
) -> None:
    serial = (keyguard.cert_dir / "tls.crt").read_bytes()
    certs.rotate(keyguard.cert_dir, days=1, now=datetime.now(UTC) - timedelta(days=10))
    assert (keyguard.cert_dir / "tls.crt").read_bytes() != serial

    def expired_reported() -> list[str]:
        return [p for p in _problems(_doctor(control_plane, PRODUCTION)[1]) if "expired on" in p]

    assert wait_for(expired_reported, what="doctor reporting the expired certificate")
