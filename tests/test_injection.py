"""Injection: a clean Flyte task pod gets everything the practice asks for, valid and idempotent."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from tests.conftest import apply_patch
from tests.flyte_pods import TOKEN_MOUNT, container, flyte2_pod, task_pod
from webhook.injection import (
    ANNOTATION_POLICY_VERSION,
    ANNOTATION_PROFILE,
    CREDENTIALS_ENV,
    CREDS_VOLUME,
    RENDERER_NAME,
    TMPFS_VOLUME,
    plan_injection,
)
from webhook.policy import Policy, Profile, parse_policy

K8S_VERSION = "1.37.0"


def profile_of(**overrides: Any) -> Profile:
    data: dict[str, Any] = {"name": "p"}
    data.update(overrides)
    return parse_policy({"apiVersion": "keyguard.flyte.org/v1", "kind": "Policy", "profiles": [data]}, "t").profiles[0]


def inject(pod: dict[str, Any], profile: Profile) -> dict[str, Any]:
    injection = plan_injection(pod, profile, policy_version="v1")
    assert injection.conflicts == []
    return apply_patch(pod, injection.operations)


def by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in items if item["name"] == name)


def test_clean_pod_gets_the_full_injection(policy: Policy) -> None:
    pod = task_pod()
    patched = inject(pod, policy.profiles[0])
    spec = patched["spec"]
    assert by_name(spec["volumes"], CREDS_VOLUME)["secret"] == {
        "secretName": "flyte-storage-creds",
        "defaultMode": 0o444,  # every task user can read it (issue 11); webhook/credential_files.py
    }
    assert by_name(spec["volumes"], TMPFS_VOLUME)["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Mi"}
    assert not any(v["name"].startswith("kube-api-access-") for v in spec["volumes"])
    assert spec["serviceAccountName"] == "flyte-task" and spec["serviceAccount"] == "flyte-task"
    assert spec["automountServiceAccountToken"] is False
    renderer = spec["initContainers"][0]
    assert renderer["name"] == RENDERER_NAME
    assert renderer["command"][:2] == ["keyguard", "render-credentials"]
    assert renderer["securityContext"]["runAsNonRoot"] is True
    assert renderer["securityContext"]["readOnlyRootFilesystem"] is True
    assert (renderer["securityContext"]["runAsUser"], renderer["securityContext"]["runAsGroup"]) == (65532, 65532)
    for c in spec["containers"] + spec["initContainers"]:
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert mounts[CREDS_VOLUME] == {
            "name": CREDS_VOLUME,
            "mountPath": "/etc/flyte/storage",
            "readOnly": True,
        }
        # only the renderer writes the tmpfs; a task cannot replace or delete its credentials file
        writable = c["name"] == RENDERER_NAME
        tmpfs = {"name": TMPFS_VOLUME, "mountPath": "/var/run/flyte/storage", "readOnly": not writable}
        assert mounts[TMPFS_VOLUME] == tmpfs
        assert TOKEN_MOUNT["name"] not in mounts
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env[CREDENTIALS_ENV] == {"name": CREDENTIALS_ENV, "value": "/var/run/flyte/storage/credentials"}
    assert patched["metadata"]["annotations"][ANNOTATION_PROFILE] == "default"
    assert patched["metadata"]["annotations"][ANNOTATION_POLICY_VERSION] == "v1"
    # everything keyguard did not own is untouched
    assert patched["metadata"]["labels"] == pod["metadata"]["labels"]
    assert spec["containers"][0]["args"] == pod["spec"]["containers"][0]["args"]


def _pods() -> list[tuple[str, dict[str, Any]]]:
    minimal = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x", "labels": {"execution-id": "e", "node-id": "n"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    multi = task_pod(containers=[container("main"), container("sidecar", env=[])])
    multi["spec"]["initContainers"] = [{"name": "setup", "image": "busybox", "volumeMounts": [dict(TOKEN_MOUNT)]}]
    no_sa = task_pod(service_account=None)
    no_sa["spec"]["volumes"] = []
    return [
        ("propeller pod", task_pod()),
        ("minimal", minimal),
        ("multi-container", multi),
        ("flyte 2", flyte2_pod()),
        ("no service account", no_sa),
    ]


@pytest.mark.parametrize(("label", "pod"), _pods())
@pytest.mark.parametrize("fmt", ["access-keys", "credentials-file"])
def test_patched_pod_is_a_valid_pod_and_second_review_is_a_no_op(label: str, pod: dict[str, Any], fmt: str) -> None:
    profile = profile_of(credentials={"format": fmt})
    patched = inject(pod, profile)
    kubernetes_validate.validate(patched, K8S_VERSION, strict=True)
    again = plan_injection(patched, profile, policy_version="v1")
    assert again.operations == [] and again.conflicts == []
    has_renderer = any(c["name"] == RENDERER_NAME for c in patched["spec"].get("initContainers", []))
    assert has_renderer is (fmt == "access-keys")


def test_credentials_file_secret_is_pointed_at_directly() -> None:
    patched = inject(task_pod(), profile_of(credentials={"format": "credentials-file"}))
    env = {e["name"]: e["value"] for e in patched["spec"]["containers"][0]["env"] if "value" in e}
    assert env[CREDENTIALS_ENV] == "/etc/flyte/storage/credentials"


def test_api_access_keeps_the_token() -> None:
    patched = inject(task_pod(), profile_of(serviceAccount={"apiAccess": True}))
    assert any(v["name"].startswith("kube-api-access-") for v in patched["spec"]["volumes"])
    assert "automountServiceAccountToken" not in patched["spec"]


@pytest.mark.parametrize(
    ("account", "allowed", "conflict"),
    [("default", [], False), ("flyte-task", [], False), ("spark", ["spark"], False), ("admin", [], True)],
)
def test_service_account_rules(account: str, allowed: list[str], conflict: bool) -> None:
    profile = profile_of(serviceAccount={"allowed": allowed})
    injection = plan_injection(task_pod(service_account=account), profile, policy_version="v1")
    assert bool(injection.conflicts) is conflict
    if conflict:
        assert injection.conflicts[0].rule.id == "service-account-not-allowed"
        assert "admin" in injection.conflicts[0].message


def _user_volume_clash() -> dict[str, Any]:
    pod = task_pod()
    pod["spec"]["volumes"].append({"name": CREDS_VOLUME, "emptyDir": {}})
    return pod


def _user_mount_path_clash() -> dict[str, Any]:
    pod = task_pod()
    pod["spec"]["volumes"].append({"name": "data", "emptyDir": {}})
    pod["spec"]["containers"][0]["volumeMounts"].append({"name": "data", "mountPath": "/etc/flyte/storage"})
    return pod


def _user_init_container_clash() -> dict[str, Any]:
    pod = task_pod()
    pod["spec"]["initContainers"] = [{"name": RENDERER_NAME, "image": "attacker/image"}]
    return pod


def _subpath_mount() -> dict[str, Any]:
    pod = inject(task_pod(), profile_of())
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    by_name(mounts, CREDS_VOLUME)["subPath"] = "secret_key"
    return pod


def _duplicated_volume(name: str) -> dict[str, Any]:
    """Another webhook (mutating admission runs before pod validation) may add keyguard's volume twice."""
    pod = inject(task_pod(), profile_of())
    pod["spec"]["volumes"].append(dict(by_name(pod["spec"]["volumes"], name)))
    return pod


@pytest.mark.parametrize(
    ("label", "pod", "conflicts"),
    [
        ("volume name", _user_volume_clash(), ["spec.volumes[1]"]),
        ("credentials volume twice", _duplicated_volume(CREDS_VOLUME), ["spec.volumes[0]"]),
        ("tmpfs volume twice", _duplicated_volume(TMPFS_VOLUME), ["spec.volumes[1]"]),
        ("mount path", _user_mount_path_clash(), ["spec.containers[0].volumeMounts[1]"]),
        ("init container", _user_init_container_clash(), ["spec.initContainers[0]"]),
        ("subPath on our mount", _subpath_mount(), ["spec.containers[0].volumeMounts[0]"]),
    ],
)
def test_never_hijacks_a_users_names(label: str, pod: dict[str, Any], conflicts: list[str]) -> None:
    """Every conflict, not just the first: each clash is reported once, at its own place, and nothing else."""
    injection = plan_injection(pod, profile_of(), policy_version="v1")
    assert [(c.rule.id, c.path) for c in injection.conflicts] == [("reserved-name-conflict", p) for p in conflicts]


def test_flyte_secret_webhook_mounts_are_left_alone() -> None:
    pod = task_pod()
    pod["metadata"]["labels"]["inject-flyte-secrets"] = "true"
    pod["metadata"]["annotations"]["flyte.secrets/s0"] = (
        "m4zg54lqhiqce2lzl4txe22voarau12fpe4caitnpfpwwzlzeifg122vnz1f53tfof1ws3tfnvsw34b1ebcu3vs6kzavecq"
    )
    pod["spec"]["volumes"].append({"name": "m4zg54lqhiqce", "secret": {"secretName": "user-info"}})
    c = pod["spec"]["containers"][0]
    c["volumeMounts"].append({"name": "m4zg54lqhiqce", "mountPath": "/etc/flyte/secrets/user-info", "readOnly": True})
    c["env"] += [
        {"name": "FLYTE_SECRETS_DEFAULT_DIR", "value": "/etc/flyte/secrets"},
        {"name": "FLYTE_SECRETS_FILE_PREFIX", "value": ""},
        {"name": "FLYTE_SECRETS_ENV_PREFIX", "value": "_FSEC_"},
    ]
    before = copy.deepcopy(pod)
    patched = inject(pod, profile_of())
    assert patched["metadata"]["labels"]["inject-flyte-secrets"] == "true"
    assert (
        patched["metadata"]["annotations"]["flyte.secrets/s0"] == before["metadata"]["annotations"]["flyte.secrets/s0"]
    )
    assert by_name(patched["spec"]["volumes"], "m4zg54lqhiqce") == {
        "name": "m4zg54lqhiqce",
        "secret": {"secretName": "user-info"},
    }
    mounts = patched["spec"]["containers"][0]["volumeMounts"]
    assert by_name(mounts, "m4zg54lqhiqce")["mountPath"] == "/etc/flyte/secrets/user-info"
    flyte_env = [e for e in patched["spec"]["containers"][0]["env"] if e["name"].startswith("FLYTE_SECRETS_")]
    assert flyte_env == before["spec"]["containers"][0]["env"][-3:]


def test_user_set_credentials_env_is_kept_with_a_note() -> None:
    pod = task_pod()
    pod["spec"]["containers"][0]["env"].append({"name": CREDENTIALS_ENV, "value": "/home/me/.aws/credentials"})
    injection = plan_injection(pod, profile_of(), policy_version="v1")
    assert not any(op["path"].endswith("/env/-") for op in injection.operations)
    assert any(CREDENTIALS_ENV in note for note in injection.notes)


def test_json_pointer_escaping_of_annotation_keys() -> None:
    ops = plan_injection(task_pod(), profile_of(), policy_version="v1").operations
    paths = [op["path"] for op in ops if "annotations" in op["path"]]
    assert "/metadata/annotations/keyguard.flyte.org~1profile" in paths


def test_a_renderer_from_another_policy_version_is_keyguards_own_not_a_clash() -> None:
    """During a policy rollout the mutating and the validating call can reach keyguard replicas with different
    policies (the ConfigMap reaches each pod at its own time). A renderer image or refresh interval that changed in
    between must not refuse the pod as a `reserved-name-conflict` (issue 12's node suite saw exactly that); only a
    renderer that reads or writes somewhere else is a clash."""
    before = profile_of(renderer={"image": "registry.example/keyguard:0.1.0"}, credentials={"refresh": "watch"})
    after = profile_of(
        renderer={"image": "registry.example/keyguard:0.2.0"}, credentials={"refresh": "watch", "refreshSeconds": 30}
    )
    pod = inject(task_pod(), before)
    assert plan_injection(pod, after, policy_version="v1").conflicts == []
    assert plan_injection(pod, after, policy_version="v1").operations == []
    moved = profile_of(credentials={"refresh": "watch", "tmpfsPath": "/var/run/elsewhere"})
    conflicts = plan_injection(pod, moved, policy_version="v1").conflicts
    assert {f.field for f in conflicts} >= {"init container keyguard-render-credentials"}
