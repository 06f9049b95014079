"""Flyte configuration and Helm values, table-driven: every place a storage key can sit is found under the right
rule with a fix naming the setting; references, empty values and the safe alternatives are not findings; kinds
keyguard does not check are skipped, not failed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests import fake_credentials as fake
from tests.flyte_pods import plain_pod, review, task_pod
from tests.test_check_support import assert_no_secret_in_any_output, check_json, run_check, write_yaml
from webhook.errors import BadReview
from webhook.review import parse_review

# Every check test runs with each YAML loader `keyguard check` may use.
pytestmark = pytest.mark.usefixtures("yaml_loader")

Case = tuple[str, Callable[[str], Any], str, str, str]
# (label, document built around a key, expected path, rule, fix fragment)
LEAKS: list[Case] = [
    (
        "stdlib connection secret-key",
        lambda k: {"storage": {"type": "s3", "connection": {"auth-type": "accesskey", "secret-key": k}}},
        "storage.connection.secret-key",
        "storage-config-literal",
        "remove `secret-key` from `storage.connection`",
    ),
    (
        "stdlib connection access-key",
        lambda k: {"storage": {"type": "minio", "connection": {"access-key": k}}},
        "storage.connection.access-key",
        "storage-config-literal",
        "auth-type: iam",
    ),
    (
        "stow azure key",
        lambda k: {"storage": {"type": "stow", "stow": {"kind": "azure", "config": {"account": "a", "key": k}}}},
        "storage.stow.config.key",
        "storage-config-literal",
        "remove `key` from `storage.stow.config`",
    ),
    (
        "stow google json",
        lambda k: {"storage": {"type": "stow", "stow": {"kind": "google", "config": {"json": k}}}},
        "storage.stow.config.json",
        "storage-config-literal",
        "GKE Workload Identity",
    ),
    (
        "default-env-vars as a map",
        lambda k: {"plugins": {"k8s": {"default-env-vars": {"AWS_SECRET_ACCESS_KEY": k}}}},
        "plugins.k8s.default-env-vars.AWS_SECRET_ACCESS_KEY",
        "env-credential-literal",
        "to a Secret listed in `plugins.k8s.default-env-from-secrets`",
    ),
    (
        "default-env-vars value-shaped under any name",
        lambda _: {"plugins": {"k8s": {"default-env-vars": [{"MY_SETTING": fake.aws_access_key_id()}]}}},
        "plugins.k8s.default-env-vars[0].MY_SETTING",
        "aws-access-key-id",
        "move `MY_SETTING`",
    ),
    (
        "default-env-vars-from-env",
        lambda _: {"plugins": {"k8s": {"default-env-vars-from-env": {"AWS_SECRET_ACCESS_KEY": "MY_KEY"}}}},
        "plugins.k8s.default-env-vars-from-env.AWS_SECRET_ACCESS_KEY",
        "env-from-env-credential",
        "from `plugins.k8s.default-env-vars-from-env`",
    ),
    (
        "flyte-core configmap block",
        lambda k: {
            "configmap": {"k8s": {"plugins": {"k8s": {"default-env-vars": [{"FLYTE_AWS_SECRET_ACCESS_KEY": k}]}}}}
        },
        "configmap.k8s.plugins.k8s.default-env-vars[0].FLYTE_AWS_SECRET_ACCESS_KEY",
        "env-credential-literal",
        "`configmap.k8s.plugins.k8s.default-env-from-secrets`",
    ),
    (
        "flyte-binary s3 secretKey",
        lambda k: {"configuration": {"storage": {"providerConfig": {"s3": {"authType": "accesskey", "secretKey": k}}}}},
        "configuration.storage.providerConfig.s3.secretKey",
        "storage-config-literal",
        "configuration.inlineSecretRef",
    ),
    (
        "flyte-binary azure key",
        lambda k: {"configuration": {"storage": {"providerConfig": {"azure": {"account": "a", "key": k}}}}},
        "configuration.storage.providerConfig.azure.key",
        "storage-config-literal",
        "remove `key` from `configuration.storage.providerConfig.azure`",
    ),
    (
        "flyte-core under an umbrella chart",
        lambda k: {"flyte-core": {"storage": {"bucketName": "b", "s3": {"secretKey": k}}}},
        "flyte-core.storage.s3.secretKey",
        "storage-config-literal",
        "set `flyte-core.storage.secretName: flyte-storage-creds`",
    ),
    (
        "any credential-named setting in values",
        lambda _: {"storage": {"bucketName": "b"}, "minio": {"auth": {"secretKey": "miniostorage"}}},
        "minio.auth.secretKey",
        "config-credential-literal",
        "remove `secretKey` from the file",
    ),
    (
        "a key-shaped value anywhere in values",
        lambda _: {"storage": {"bucketName": "b", "custom": {"notes": [fake.azure_connection_string()]}}},
        "storage.custom.notes[0]",
        "azure-storage-connection-string",
        "remove the value at `storage.custom.notes[0]`",
    ),
    (
        "ConfigMap with propeller's storage.yaml",
        lambda k: {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "flyte-propeller-config"},
            "data": {"storage.yaml": f"storage:\n  type: s3\n  connection:\n    secret-key: {k}\n"},
        },
        'data["storage.yaml"].storage.connection.secret-key',
        "storage-config-literal",
        "remove `secret-key`",
    ),
    (
        "a List of objects",
        lambda k: {
            "apiVersion": "v1",
            "kind": "List",
            "items": [plain_pod(), {**plain_pod(), "spec": {"containers": [_leaky_container(k)]}}],
        },
        "items[1].spec.containers[0].env[0]",
        "env-credential-literal",
        "secretKeyRef",
    ),
    (
        "a PodTemplate (Flyte's default pod template)",
        lambda k: {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "flyte-template", "namespace": "flyte"},
            "template": {"spec": {"containers": [_leaky_container(k)]}},
        },
        "template.spec.containers[0].env[0]",
        "env-credential-literal",
        "secretKeyRef",
    ),
    (
        "a StatefulSet",
        lambda k: {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "spec": {"template": {"spec": {"containers": [_leaky_container(k)]}}},
        },
        "spec.template.spec.containers[0].env[0]",
        "env-credential-literal",
        "secretKeyRef",
    ),
]


def _leaky_container(key: str) -> dict[str, Any]:
    return {"name": "main", "image": "busybox", "env": [{"name": "MINIO_SECRET_KEY", "value": key}]}


@pytest.mark.parametrize(("label", "make", "path", "rule", "fix"), LEAKS, ids=[c[0] for c in LEAKS])
def test_every_config_shape_is_found(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    label: str,
    make: Callable[[str], Any],
    path: str,
    rule: str,
    fix: str,
) -> None:
    key = fake.aws_secret_access_key()
    document = make(key)
    file = write_yaml(tmp_path / "doc.yaml", document)
    code, result = check_json(capsys, str(file))
    assert code == 1, label
    matches = [f for f in result["findings"] if f["path"] == path]
    assert [f["rule"] for f in matches] == [rule], result["findings"]
    assert fix in matches[0]["fix"], matches[0]["fix"]
    assert len(result["findings"]) == 1, [f["path"] for f in result["findings"]]
    assert_no_secret_in_any_output(capsys, [key], str(file))


CLEAN: list[tuple[str, Any]] = [
    ("references", {"storage": {"type": "s3", "connection": {"secret-key": "${AWS_SECRET_ACCESS_KEY}"}}}),
    ("helm expression", {"storage": {"bucketName": "b", "s3": {"secretKey": "{{ .Values.key }}"}}}),
    (
        "empty values",
        {"storage": {"bucketName": "b", "s3": {"authType": "accesskey", "accessKey": "", "secretKey": ""}}},
    ),
    (
        "env-from-secrets",
        {
            "plugins": {
                "k8s": {"default-env-from-secrets": ["s"], "default-env-vars": [{"FLYTE_AWS_ENDPOINT": "http://m"}]}
            }
        },
    ),
    ("harmless from-env", {"plugins": {"k8s": {"default-env-vars-from-env": {"AWS_REGION": "REGION"}}}}),
    ("secret names", {"storage": {"secretName": "flyte-storage-creds"}, "configuration": {"inlineSecretRef": "x"}}),
    ("look-alikes", {"storage": {"bucketName": "b", "hashes": [fake.git_sha(), fake.image_digest(), fake.a_uuid()]}}),
    (
        "a stow config without keys",
        {"storage": {"stow": {"kind": "s3", "config": {"auth_type": "iam", "region": "r"}}}},
    ),
]


@pytest.mark.parametrize(("label", "document"), CLEAN, ids=[c[0] for c in CLEAN])
def test_safe_shapes_are_not_findings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, label: str, document: Any
) -> None:
    file = write_yaml(tmp_path / "doc.yaml", document)
    code, result = check_json(capsys, str(file))
    assert (code, result["findings"]) == (0, []), label
    assert result["summary"]["checked"] == 1


SKIPPED: list[tuple[str, Any, str]] = [
    ("a Secret", {"apiVersion": "v1", "kind": "Secret", "stringData": {"x": "y"}}, "kind Secret is not checked"),
    ("a scalar", "just text", "not an object (str)"),
    (
        "a Deployment without a template",
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}},
        "without a pod template",
    ),
    (
        "a review without an object",
        {**review(plain_pod()), "request": {**review(plain_pod())["request"], "object": None}},
        "without an object",
    ),
]


@pytest.mark.parametrize(("label", "document", "reason"), SKIPPED, ids=[c[0] for c in SKIPPED])
def test_unrecognised_documents_are_skipped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, label: str, document: Any, reason: str
) -> None:
    file = write_yaml(tmp_path / "doc.yaml", document)
    code, result = check_json(capsys, str(file))
    assert code == 0
    assert reason in result["skipped"][0]["reason"], label
    assert result["summary"]["checked"] == 0


def _review_with(**request: Any) -> dict[str, Any]:
    body = review(task_pod())
    body["request"].update(request)
    return body


MALFORMED_REVIEWS: list[tuple[str, dict[str, Any]]] = [
    ("no request", {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
    ("request not an object", {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": "x"}),
    ("v1beta1", {**review(task_pod()), "apiVersion": "admission.k8s.io/v1beta1"}),
    ("operation a list", _review_with(operation=[])),
    ("uid missing", {**review(task_pod()), "request": {"kind": {"group": "", "version": "v1", "kind": "Pod"}}}),
    ("containers not a list", _review_with(object={"spec": {"containers": {"name": "x"}}})),
]


@pytest.mark.parametrize(("label", "body"), MALFORMED_REVIEWS, ids=[c[0] for c in MALFORMED_REVIEWS])
def test_a_review_the_webhook_refuses_is_an_input_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, label: str, body: dict[str, Any]
) -> None:
    """The webhook answers 400 (BadReview) and decides nothing; check says the same reason, exit 2, no verdict."""
    with pytest.raises(BadReview) as refused:
        parse_review(orjson.dumps(body))
    file = write_yaml(tmp_path / "review.yaml", body)
    code, out, err = run_check(capsys, str(file))
    assert (code, out) == (2, ""), label
    assert err == f"keyguard check: {file} (document 1): {refused.value}\n", label


def test_profile_forces_a_profile(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: keyguard.flyte.org/v1\nkind: Policy\nprofiles:\n"
        "  - name: prod\n    match: {domains: [production]}\n"
        "  - name: relaxed\n    mode: audit\n    match: {domains: [nothing]}\n"
        "    credentials: {secretName: dev-storage}\n"
    )
    pod = task_pod()
    pod["spec"]["containers"][0]["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": "x" * 10})
    file = write_yaml(tmp_path / "pod.yaml", pod, {"storage": {"bucketName": "b", "s3": {"secretKey": "y" * 10}}})
    _, unmatched = check_json(capsys, str(file), "--policy", str(policy))
    _, forced = check_json(capsys, str(file), "--policy", str(policy), "--profile", "relaxed", "--show-patch")
    assert [f["rule"] for f in unmatched["findings"]][:1] == ["env-credential-literal"]
    assert [f["rule"] for f in forced["findings"]][:1] == ["env-credential-literal"]
    assert "dev-storage" in forced["patches"][0]["diff"]
    assert "`dev-storage`" in forced["findings"][1]["fix"]
