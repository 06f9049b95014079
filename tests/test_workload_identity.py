"""Short-lived credentials (issue 13, item 2): workload-identity profiles inject a projected token and the variables
the SDKs' web-identity providers read, no Secret at all, and refuse a pod that still brings a static key. The
GCS-key format points GOOGLE_APPLICATION_CREDENTIALS at the mounted key file: the path in env, never the JSON."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests import fake_credentials as fake
from tests.conftest import apply_patch
from tests.flyte_pods import container, task_pod
from tests.test_injection import K8S_VERSION, profile_of
from webhook.engine import check_pod
from webhook.errors import PolicyError
from webhook.injection import IDENTITY_DIR, IDENTITY_VOLUME, plan_injection
from webhook.policy import Policy, Profile, parse_policy

ROLE = "arn:aws:iam::123456789012:role/flyte-task"
PROJECT_ROLE = "arn:aws:iam::123456789012:role/flytesnacks-task"
WEB_IDENTITY = {
    "format": "web-identity",
    "webIdentity": {
        "roleArn": ROLE,
        "roleArnByProject": {"flytesnacks": PROJECT_ROLE},
        "audience": "sts.example",
        "expirationSeconds": 900,
        "stsEndpoint": "https://127.0.0.1:8333",
    },
}
AZURE = {"format": "azure-workload-identity", "azure": {"clientId": "c-1", "tenantId": "t-1"}}
GKE = {"format": "gke-workload-identity", "gke": {"serviceAccount": "flyte-task@proj.iam.gserviceaccount.com"}}


def clean_pod(project_namespace: str = "flytesnacks-production") -> dict[str, Any]:
    pod = task_pod(namespace=project_namespace, domain="production")
    pod["spec"]["containers"] = [container("main", env=[]), container("sidecar", env=[])]
    return pod


def injected(profile: Profile, pod: dict[str, Any]) -> dict[str, Any]:
    injection = plan_injection(pod, profile, policy_version="v1")
    assert injection.conflicts == []
    patched = apply_patch(pod, injection.operations)
    kubernetes_validate.validate(patched, K8S_VERSION, strict=True)
    assert plan_injection(patched, profile, policy_version="v1").operations == []  # idempotent
    return patched


def env_of(pod: dict[str, Any], index: int = 0) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][index].get("env", [])}


def volume_names(pod: dict[str, Any]) -> list[str]:
    return [v["name"] for v in pod["spec"].get("volumes", [])]


def test_web_identity_injects_a_projected_token_and_the_role_not_a_secret() -> None:
    pod = injected(profile_of(credentials=WEB_IDENTITY), clean_pod())
    assert volume_names(pod) == [IDENTITY_VOLUME]  # the API token volume is gone, no Secret, no tmpfs
    (token,) = pod["spec"]["volumes"][0]["projected"]["sources"]
    assert token == {"serviceAccountToken": {"audience": "sts.example", "expirationSeconds": 900, "path": "token"}}
    for index in (0, 1):
        assert env_of(pod, index) == {
            "AWS_ROLE_ARN": PROJECT_ROLE,  # the pod's Flyte project has a role of its own
            "AWS_WEB_IDENTITY_TOKEN_FILE": f"{IDENTITY_DIR}/token",
            "AWS_ENDPOINT_URL_STS": "https://127.0.0.1:8333",
        }
        mounts = pod["spec"]["containers"][index]["volumeMounts"]
        assert mounts == [{"name": IDENTITY_VOLUME, "mountPath": IDENTITY_DIR, "readOnly": True}]
    assert "initContainers" not in pod["spec"]  # nothing to render
    assert pod["spec"]["automountServiceAccountToken"] is False  # the identity token cannot call the API


def test_a_project_without_its_own_role_gets_the_profiles() -> None:
    pod = injected(profile_of(credentials=WEB_IDENTITY), clean_pod("ml-production"))
    assert env_of(pod)["AWS_ROLE_ARN"] == ROLE


def api_server_defaults(pod: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores, as far as the identity volume goes: a projected volume gets `defaultMode: 420`."""
    for volume in pod["spec"]["volumes"]:
        if "projected" in volume:
            volume["projected"].setdefault("defaultMode", 420)
    return pod


@pytest.mark.parametrize("credentials", [WEB_IDENTITY, AZURE], ids=["web-identity", "azure"])
def test_the_identity_volume_as_the_api_server_stores_it_is_keyguards_own(credentials: dict[str, Any]) -> None:
    """The validating webhook sees the pod after the API server's defaulting; the node suite saw the token volume
    refused as a reserved-name-conflict when it was compared whole."""
    profile = profile_of(credentials=credentials)
    pod = api_server_defaults(injected(profile, clean_pod()))
    again = plan_injection(pod, profile, policy_version="v1")
    assert again.conflicts == [] and again.operations == []


def test_an_identity_volume_for_another_audience_is_a_conflict() -> None:
    profile = profile_of(credentials=WEB_IDENTITY)
    pod = api_server_defaults(injected(profile, clean_pod()))
    pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["audience"] = "another-sts"
    conflicts = plan_injection(pod, profile, policy_version="v1").conflicts
    assert [c.field for c in conflicts] == [f"volume {IDENTITY_VOLUME}"]


def test_azure_workload_identity() -> None:
    pod = injected(profile_of(credentials=AZURE), clean_pod())
    assert pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["audience"] == (
        "api://AzureADTokenExchange"
    )
    assert env_of(pod) == {
        "AZURE_CLIENT_ID": "c-1",
        "AZURE_TENANT_ID": "t-1",
        "AZURE_FEDERATED_TOKEN_FILE": f"{IDENTITY_DIR}/token",
        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
    }


def test_gke_workload_identity_mounts_nothing() -> None:
    pod = injected(profile_of(credentials=GKE), clean_pod())
    assert volume_names(pod) == []
    assert env_of(pod) == {}
    assert pod["spec"]["serviceAccountName"] == "flyte-task"  # the account the admin annotates for GKE


def test_a_gcs_key_is_a_path_in_env() -> None:
    pod = injected(profile_of(credentials={"format": "gcs-key"}), clean_pod())
    assert env_of(pod) == {"GOOGLE_APPLICATION_CREDENTIALS": "/etc/flyte/storage/key.json"}
    assert "initContainers" not in pod["spec"]
    assert volume_names(pod) == ["keyguard-storage-creds", "keyguard-storage-tmpfs"]


def identity_policy(credentials: dict[str, Any]) -> Policy:
    return parse_policy(
        {
            "apiVersion": "keyguard.flyte.org/v1",
            "kind": "Policy",
            "profiles": [{"name": "p", "credentials": credentials}],
        },
        "test",
    )


def with_secret_key_ref(pod: dict[str, Any]) -> dict[str, Any]:
    ref = {"secretKeyRef": {"name": "s3", "key": "secret_key"}}
    pod["spec"]["containers"][0]["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": ref})
    return pod


def with_creds_volume(pod: dict[str, Any]) -> dict[str, Any]:
    pod["spec"]["volumes"].append({"name": "keys", "secret": {"secretName": "flyte-storage-creds"}})
    return pod


def with_literal(pod: dict[str, Any]) -> dict[str, Any]:
    pod["spec"]["containers"][0]["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": fake.aws_secret_access_key()})
    return pod


@pytest.mark.parametrize("credentials", [WEB_IDENTITY, AZURE, GKE], ids=["web-identity", "azure", "gke"])
@pytest.mark.parametrize(
    ("shape", "rule"),
    [
        (with_secret_key_ref, "static-credentials-not-allowed"),
        (with_creds_volume, "static-credentials-not-allowed"),
        (with_literal, "env-credential-literal"),
    ],
    ids=["secretKeyRef", "the credentials Secret", "a literal"],
)
def test_a_static_key_is_refused_under_a_workload_identity(credentials: dict[str, Any], shape: Any, rule: str) -> None:
    decision = check_pod(identity_policy(credentials), shape(clean_pod()), namespace="flytesnacks-production")
    assert not decision.allowed
    assert rule in decision.rule_ids


@pytest.mark.parametrize(
    ("credentials", "error"),
    [
        ({"format": "web-identity"}, "format web-identity needs credentials.webIdentity"),
        ({"format": "web-identity", "webIdentity": {}}, "webIdentity needs roleArn or roleArnByProject"),
        ({"format": "access-keys", "azure": AZURE["azure"]}, "credentials.azure is only for format azure-workload"),
        ({"format": "gke-workload-identity"}, "needs credentials.gke"),
        ({**WEB_IDENTITY, "refresh": "watch"}, "refresh: watch re-renders access-keys"),
    ],
)
def test_identity_settings_are_validated(credentials: dict[str, Any], error: str) -> None:
    with pytest.raises(PolicyError, match=error):
        identity_policy(credentials)
