"""The install an admin applies: `kubectl kustomize` renders every entry point, every object validates against the
Kubernetes 1.37 schemas, and the security properties the docs promise hold in what is rendered, not just in one
file. The real API server suite applies the same rendering server-side."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.e2e.cluster import REPO, k8s_binaries
from webhook.policy import parse_policy_text

ENTRY_POINTS = (
    "manifests",
    "manifests/overlays/dev",
    "manifests/overlays/cert-manager",
    "manifests/flyte-environments",
    "manifests/safety-net",
)
CRD_KINDS = {"Certificate", "Issuer"}  # cert-manager's: not in the Kubernetes schemas, checked field by field below
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}


@pytest.fixture(scope="module")
def kubectl() -> Path:
    return k8s_binaries() / "kubectl"


def render(kubectl: Path, entry: str) -> list[dict[str, Any]]:
    result = subprocess.run([str(kubectl), "kustomize", str(REPO / entry)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def install(kubectl: Path) -> list[dict[str, Any]]:
    return render(kubectl, "manifests")


def one(documents: list[dict[str, Any]], kind: str, name: str = "keyguard") -> dict[str, Any]:
    matches = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_rendered_object_validates_against_the_kubernetes_schemas(kubectl: Path, entry: str) -> None:
    documents = render(kubectl, entry)
    assert documents
    for document in documents:
        if document["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(document, "1.37", strict=True)


def test_the_install_is_complete(install: list[dict[str, Any]]) -> None:
    kinds = sorted({d["kind"] for d in install})
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "MutatingWebhookConfiguration",
            "Namespace",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
            "ValidatingWebhookConfiguration",
        ]
    )
    cluster_scoped = {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    namespaced = [d for d in install if d["kind"] not in cluster_scoped]
    assert {d["metadata"].get("namespace", "keyguard-system") for d in namespaced} == {"keyguard-system"}


def test_the_policy_configmap_is_a_valid_policy_with_one_profile_per_environment(install: list[dict[str, Any]]) -> None:
    policy = parse_policy_text(one(install, "ConfigMap", "keyguard-policy")["data"]["policy.yaml"], "ConfigMap")
    modes = {p.name: p.mode for p in policy.profiles}
    assert modes == {"development": "warn", "staging": "enforce", "production": "enforce", "other": "enforce"}


def test_no_rbac_rule_writes_secrets_or_uses_a_wildcard(install: list[dict[str, Any]]) -> None:
    rules = [rule for d in install if d["kind"] in {"Role", "ClusterRole"} for rule in d["rules"]]
    assert rules
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), rule
        assert not WRITE_VERBS & set(rule["verbs"]), rule
        assert "secrets" not in rule["resources"], rule
    bindings = [d for d in install if d["kind"] in {"RoleBinding", "ClusterRoleBinding"}]
    subjects = {s["name"] for b in bindings for s in b["subjects"]}
    assert "keyguard" not in subjects, "the webhook's own account must be bound to nothing"


def test_the_webhook_runs_least_privileged_and_highly_available(install: list[dict[str, Any]]) -> None:
    deployment = one(install, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] >= 2
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    assert one(install, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert one(install, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2
    network = one(install, "NetworkPolicy")["spec"]
    assert network["policyTypes"] == ["Ingress", "Egress"] and "egress" not in network
    assert network["ingress"] == [{"ports": [{"port": 8443, "protocol": "TCP"}]}]


@pytest.mark.parametrize("kind", ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"])
def test_an_outage_can_only_hold_back_flyte_task_pods(install: list[dict[str, Any]], kind: str) -> None:
    (hook,) = one(install, kind)["webhooks"]
    assert hook["failurePolicy"] == "Fail"
    assert hook["sideEffects"] == "None"
    assert 1 <= hook["timeoutSeconds"] <= 5
    assert hook["admissionReviewVersions"] == ["v1"]
    (excluded,) = hook["namespaceSelector"]["matchExpressions"]
    assert excluded["operator"] == "NotIn"
    assert {"kube-system", "kube-node-lease", "keyguard-system"} <= set(excluded["values"])
    assert [c["name"] for c in hook["matchConditions"]] == ["flyte-task-pod"]
    operations = {(r["operations"][0], r["resources"][0]) for r in hook["rules"]}
    assert operations == {("CREATE", "pods"), ("UPDATE", "pods/ephemeralcontainers")}
    service = hook["clientConfig"]["service"]
    assert (service["namespace"], service["name"]) == ("keyguard-system", "keyguard")
    if kind == "MutatingWebhookConfiguration":
        assert hook["reinvocationPolicy"] == "IfNeeded"


def test_cert_manager_overlay_injects_the_ca_and_issues_the_mounted_secret(kubectl: Path) -> None:
    documents = render(kubectl, "manifests/overlays/cert-manager")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        annotations = one(documents, kind)["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == "keyguard-system/keyguard-serving"
    serving = one(documents, "Certificate", "keyguard-serving")["spec"]
    mounted = one(documents, "Deployment")["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]
    assert serving["secretName"] == mounted == "keyguard-tls"
    assert "keyguard.keyguard-system.svc" in serving["dnsNames"]
    assert serving["privateKey"]["algorithm"] == "ECDSA"
    assert one(documents, "Certificate", "keyguard-ca")["spec"]["isCA"] is True


def test_flyte_environments_have_a_task_account_bound_to_nothing(kubectl: Path) -> None:
    documents = render(kubectl, "manifests/flyte-environments")
    accounts = [d for d in documents if d["kind"] == "ServiceAccount"]
    assert sorted(a["metadata"]["namespace"] for a in accounts) == [
        "flytesnacks-development",
        "flytesnacks-production",
        "flytesnacks-staging",
    ]
    assert all(a["automountServiceAccountToken"] is False for a in accounts)
    assert not [d for d in documents if d["kind"].endswith("Binding")]
