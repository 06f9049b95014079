"""The Helm chart (charts/keyguard) is the kustomize install in Helm's form: `helm lint` passes, every rendered
object validates against the Kubernetes 1.37 schemas, the default render equals `kubectl kustomize manifests/`
object by object (only Helm's own labels differ), the cert-manager render equals the cert-manager overlay, values
reach the objects they promise to change, and values.schema.json refuses a wrong value before anything is applied."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.e2e.cluster import k8s_binaries
from tests.helm.tool import CHART, HELM_LABELS, NAMESPACE, helm_binary, run_helm, template
from tests.helm.values_schema import SCHEMA_FILE, render
from tests.test_manifests import CRD_KINDS, one
from tests.test_manifests import render as kustomize
from webhook.policy import Policy, parse_policy_text

Object = dict[str, Any]
POLICY = ("ConfigMap", "keyguard-policy")


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_binary()


@pytest.fixture(scope="module")
def kubectl() -> Path:
    return k8s_binaries() / "kubectl"


def policy_of(documents: list[Object]) -> Policy:
    return parse_policy_text(one(documents, *POLICY)["data"]["policy.yaml"], "ConfigMap keyguard-policy")


def comparable(documents: list[Object]) -> dict[tuple[str, str, str, str], Object]:
    """Objects by identity, without Helm's labels and with the policy as keyguard reads it (its comments and key
    order are not substance; the parsed policy is compared on its own)."""
    out: dict[tuple[str, str, str, str], Object] = {}
    for original in documents:
        document = copy.deepcopy(original)
        metadata = document["metadata"]
        labels = {k: v for k, v in metadata.get("labels", {}).items() if k not in HELM_LABELS}
        metadata["labels"] = labels
        if (document["kind"], metadata["name"]) == POLICY:
            document["data"] = {"policy.yaml": "(compared parsed)"}
        key = (document["apiVersion"], document["kind"], metadata.get("namespace", ""), metadata["name"])
        assert key not in out, f"{key} rendered twice"
        out[key] = document
    return out


@pytest.mark.parametrize("values", [[], ["--set", "certificates.source=cert-manager"]], ids=["default", "cert-manager"])
def test_helm_lint_passes(helm: Path, values: list[str]) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), *values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", [[], ["--set", "certificates.source=cert-manager"]], ids=["default", "cert-manager"])
def test_every_rendered_object_validates_against_the_kubernetes_schemas(helm: Path, values: list[str]) -> None:
    documents = template(helm, *values)
    assert documents
    for document in documents:
        if document["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(document, "1.37", strict=True)


@pytest.mark.parametrize(
    ("entry", "values"),
    [("manifests", []), ("manifests/overlays/cert-manager", ["--set", "certificates.source=cert-manager"])],
    ids=["default", "cert-manager"],
)
def test_the_chart_renders_what_kustomize_renders(helm: Path, kubectl: Path, entry: str, values: list[str]) -> None:
    """Object by object. The one object the chart leaves out is the Namespace: Helm stores its release there, so
    it exists before `helm install` (created from manifests/base/namespace.yaml, see the chart's README)."""
    reference = kustomize(kubectl, entry)
    chart = template(helm, *values)
    assert policy_of(chart) == policy_of(reference)
    expected = comparable([d for d in reference if d["kind"] != "Namespace"])
    rendered = comparable(chart)
    assert sorted(rendered) == sorted(expected)
    for key, document in expected.items():
        assert rendered[key] == document, f"{key} differs from the kustomize install"


def test_the_chart_readme_creates_the_kustomize_namespace_first(kubectl: Path) -> None:
    namespace = one(kustomize(kubectl, "manifests"), "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    readme = (CHART / "README.md").read_text()
    assert readme.index("kubectl apply -f manifests/base/namespace.yaml") < readme.index("helm install keyguard")


def webhooks(documents: list[Object]) -> list[Object]:
    return [
        hook
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
        for hook in one(documents, kind)["webhooks"]
    ]


def test_webhook_values_reach_both_webhooks(helm: Path) -> None:
    documents = template(
        helm,
        "--set", "webhook.failurePolicy=Ignore",
        "--set", "webhook.timeoutSeconds=10",
        "--set", "webhook.excludedNamespaces={kube-system,flyte}",
    )  # fmt: skip
    for hook in webhooks(documents):
        assert hook["failurePolicy"] == "Ignore"
        assert hook["timeoutSeconds"] == 10
        (excluded,) = hook["namespaceSelector"]["matchExpressions"]
        assert excluded["values"] == ["kube-system", "flyte", NAMESPACE]


def test_the_image_is_the_webhook_and_the_renderer_of_every_profile_without_its_own(helm: Path) -> None:
    profiles = [
        {"name": "production", "mode": "enforce", "match": {"namespaces": ["*-production"]}},
        {"name": "other", "mode": "audit", "renderer": {"image": "mirror.example/renderer:1"}},
    ]
    documents = template(
        helm,
        "--set", "image.repository=mirror.example/keyguard",
        "--set", "image.tag=2",
        "--set-json", f"policy.profiles={json.dumps(profiles)}",
    )  # fmt: skip
    (container,) = one(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "mirror.example/keyguard:2"
    policy = policy_of(documents)
    assert [(p.name, p.mode, p.renderer.image) for p in policy.profiles] == [
        ("production", "enforce", "mirror.example/keyguard:2"),
        ("other", "audit", "mirror.example/renderer:1"),
    ]


def test_exemptions_reach_the_policy(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "policy:\n  exemptions:\n    - namespaces: [legacy-*]\n      owner: data-platform@example.com\n"
        "      expires: 2027-03-31\n      reason: migrating off default-env-vars\n"
    )
    (exemption,) = policy_of(template(helm, "--values", str(values))).exemptions
    assert (exemption.namespaces, exemption.expires.isoformat()) == (("legacy-*",), "2027-03-31")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--set", "webhook.failurePolicy=Maybe"], "failurePolicy"),
        (["--set", "webhook.timeoutSeconds=31"], "timeoutSeconds"),
        (["--set", "webhook.excludedNamespaces=kube-system"], "excludedNamespaces"),
        (["--set", "webhook.excludedNamespaces={Kube_System}"], "excludedNamespaces"),
        (["--set", "certificates.source=vault"], "source"),
        (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
        (["--set", "replica=3"], "replica"),
        (["--set", "policy.profiles[0].mode=block"], "mode"),
        (["--set", "policy.profiles[0].credentials.format=json"], "format"),
        (["--set", "policy.profiles[0].matches.domains={development}"], "matches"),
        (["--set-json", "policy.profiles=[]"], "profiles"),
        (["--set-json", 'policy.exemptions=[{"namespaces": ["a"]}]'], "owner"),
    ],
)
def test_a_wrong_value_fails_before_anything_is_applied(helm: Path, args: list[str], field: str) -> None:
    result = run_helm(helm, "template", "keyguard", str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert field in result.stderr


def test_values_schema_is_generated_from_the_policy_model() -> None:
    assert SCHEMA_FILE.read_text() == render(), "regenerate: .venv/bin/python -m tests.helm.values_schema"
