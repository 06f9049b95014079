"""The JSON Patch that makes a Flyte task pod follow the storage-credential practice.

For a selected pod and its profile this plans, without copying or diffing the pod:
- a read-only Secret volume (no subPath) with the environment's storage credentials, in every (init) container;
- an in-memory `emptyDir` where derived credential material lives, so nothing touches node disk;
- `AWS_SHARED_CREDENTIALS_FILE`, pointing SDKs at a file instead of holding a value;
- for `access-keys` Secrets, an init container (`keyguard render-credentials`) that writes that file;
- the least-privilege service account, with the API token removed unless the profile grants API access;
- annotations recording the profile and policy version.

Every operation is computed from what is missing, so planning again on the patched pod yields nothing
(idempotent under `reinvocationPolicy: IfNeeded`, whichever webhook ran first). Names keyguard reserves are
never taken from a user: a clash is reported as a conflict and nothing is injected. Removals come first, in
descending index order, and the init container is inserted last so no earlier path shifts under another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.admission_types import PatchOperation
from webhook.findings import Finding, Rule, Severity, shown_name
from webhook.json_pointer import add, pointer, remove, replace
from webhook.policy import Profile

CREDS_VOLUME = "keyguard-storage-creds"
TMPFS_VOLUME = "keyguard-storage-tmpfs"
RENDERER_NAME = "keyguard-render-credentials"
CREDENTIALS_ENV = "AWS_SHARED_CREDENTIALS_FILE"
CREDENTIALS_FILE = "credentials"
ANNOTATION_PROFILE = "keyguard.flyte.org/profile"
ANNOTATION_POLICY_VERSION = "keyguard.flyte.org/policy-version"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
# 0440: the kubelet makes Secret files root-owned; group-readable lets the non-root renderer (group 0, or the
# pod's fsGroup) read them. Nothing outside the pod can see either volume.
SECRET_FILE_MODE = 0o440
RENDERER_UID = 65532

RESERVED_NAME_CONFLICT = Rule(
    id="reserved-name-conflict",
    severity=Severity.ERROR,
    title="the pod already uses a name or path keyguard needs for the injection",
    fix="rename the pod's own volume, mount or container; names starting with 'keyguard-' and the paths of "
    "the profile's credentials are reserved for keyguard",
)
SERVICE_ACCOUNT_NOT_ALLOWED = Rule(
    id="service-account-not-allowed",
    severity=Severity.ERROR,
    title="the pod runs under a service account this profile does not allow",
    fix="run the task under the profile's task service account, or add the account to the profile's "
    "serviceAccount.allowed list",
)


@dataclass(slots=True)
class Injection:
    """What planning produced: operations to apply, conflicts that forbid injecting, and notes for the user."""

    operations: list[PatchOperation] = field(default_factory=list)
    conflicts: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def credentials_file_path(profile: Profile) -> str:
    """Where SDKs find the AWS shared-credentials file for this profile."""
    c = profile.credentials
    base = c.tmpfs_path if c.format == "access-keys" else c.mount_path
    return f"{base}/{CREDENTIALS_FILE}"


def _secret_volume(profile: Profile) -> dict[str, Any]:
    return {
        "name": CREDS_VOLUME,
        "secret": {"secretName": profile.credentials.secret_name, "defaultMode": SECRET_FILE_MODE},
    }


def _tmpfs_volume(profile: Profile) -> dict[str, Any]:
    return {
        "name": TMPFS_VOLUME,
        "emptyDir": {"medium": "Memory", "sizeLimit": profile.credentials.tmpfs_size_limit},
    }


def _mounts(profile: Profile) -> list[dict[str, Any]]:
    return [
        {"name": CREDS_VOLUME, "mountPath": profile.credentials.mount_path, "readOnly": True},
        {"name": TMPFS_VOLUME, "mountPath": profile.credentials.tmpfs_path},
    ]


def renderer_container(profile: Profile) -> dict[str, Any]:
    """The init container that turns the mounted keys into a shared-credentials file in the tmpfs."""
    c = profile.credentials
    return {
        "name": RENDERER_NAME,
        "image": profile.renderer.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "keyguard",
            "render-credentials",
            "--from",
            c.mount_path,
            "--to",
            credentials_file_path(profile),
        ],
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RENDERER_UID,
            "runAsGroup": 0,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": _mounts(profile),
    }


@dataclass(frozen=True, slots=True)
class _Parts:
    """Everything the injection adds for one profile, built once and shared by every review (never mutated)."""

    volumes: dict[str, dict[str, Any]]
    mounts: dict[str, dict[str, Any]]
    mount_paths: frozenset[str]
    env_entry: dict[str, str]
    renderer: dict[str, Any]


_PARTS: dict[int, tuple[Profile, _Parts]] = {}


def _parts(profile: Profile) -> _Parts:
    cached = _PARTS.get(id(profile))
    if cached is not None and cached[0] is profile:
        return cached[1]
    if len(_PARTS) > 64:  # profiles of replaced policies
        _PARTS.clear()
    mounts = {m["name"]: m for m in _mounts(profile)}
    parts = _Parts(
        volumes={CREDS_VOLUME: _secret_volume(profile), TMPFS_VOLUME: _tmpfs_volume(profile)},
        mounts=mounts,
        mount_paths=frozenset(m["mountPath"] for m in mounts.values()),
        env_entry={"name": CREDENTIALS_ENV, "value": credentials_file_path(profile)},
        renderer=renderer_container(profile),
    )
    _PARTS[id(profile)] = (profile, parts)
    return parts


def _conflict(injection: Injection, path: str, what: str, container: str | None = None) -> None:
    injection.conflicts.append(
        Finding(
            rule=RESERVED_NAME_CONFLICT,
            path=path,
            container=container,
            field=what,
            message=f"{what} clashes with keyguard's injection ({RESERVED_NAME_CONFLICT.title})",
        )
    )


def _is_token_volume(volume: Any) -> bool:
    if not isinstance(volume, dict):
        return False
    name = volume.get("name")
    if not isinstance(name, str) or not name.startswith(TOKEN_VOLUME_PREFIX):
        return False
    sources = _list(_dict(volume.get("projected")).get("sources"))
    return any(isinstance(s, dict) and "serviceAccountToken" in s for s in sources)


def _is_ours(volume: dict[str, Any], name: str, profile: Profile) -> bool:
    if name == CREDS_VOLUME:
        return bool(_dict(volume.get("secret")).get("secretName") == profile.credentials.secret_name)
    return bool(_dict(volume.get("emptyDir")).get("medium") == "Memory")


def _plan_volumes(spec: Mapping[str, Any], profile: Profile, drop: set[str], injection: Injection) -> None:
    volumes = spec.get("volumes")
    existing = _list(volumes)
    missing = dict(_parts(profile).volumes)
    for index in range(len(existing) - 1, -1, -1):
        volume = existing[index]
        if not isinstance(volume, dict):
            continue
        name = _str(volume.get("name"))
        if name in drop:
            injection.operations.append(remove(f"/spec/volumes/{index}"))
        elif name in (CREDS_VOLUME, TMPFS_VOLUME):
            # A second copy (another mutating webhook may add one; pod validation runs after admission) is a
            # clash too: keyguard cannot tell which of the two the kubelet would mount.
            if name not in missing or not _is_ours(volume, name, profile):
                _conflict(injection, f"spec.volumes[{index}]", f"volume {name}")
            missing.pop(name, None)
    if not missing:
        return
    if not isinstance(volumes, list):
        injection.operations.append(add("/spec/volumes", list(missing.values())))
    else:
        injection.operations.extend(add("/spec/volumes/-", v) for v in missing.values())


def _plan_container(
    kind: str, index: int, container: dict[str, Any], profile: Profile, drop: set[str], injection: Injection
) -> None:
    base = f"/spec/{kind}/{index}"
    raw_name = container.get("name")
    name = raw_name if isinstance(raw_name, str) else f"#{index}"
    mounts = container.get("volumeMounts")
    existing = _list(mounts)
    parts = _parts(profile)
    wanted, wanted_paths = parts.mounts, parts.mount_paths
    missing = dict(wanted)
    for j in range(len(existing) - 1, -1, -1):
        mount = existing[j]
        if not isinstance(mount, dict):
            continue
        mount_name, mount_path = _str(mount.get("name")), _str(mount.get("mountPath"))
        if mount_name in drop:
            injection.operations.append(remove(f"{base}/volumeMounts/{j}"))
        elif mount_name in wanted:
            want = wanted[mount_name]
            if (
                mount_path != want["mountPath"]
                or bool(mount.get("readOnly")) != bool(want.get("readOnly"))
                or mount.get("subPath")
                or mount.get("subPathExpr")
            ):
                _conflict(injection, f"spec.{kind}[{index}].volumeMounts[{j}]", f"mount {mount_name}", name)
            missing.pop(mount_name, None)
        elif mount_path in wanted_paths:
            _conflict(injection, f"spec.{kind}[{index}].volumeMounts[{j}]", f"mount at {mount_path}", name)
    if kind != "ephemeralContainers" and missing:
        if not isinstance(mounts, list):
            injection.operations.append(add(f"{base}/volumeMounts", list(missing.values())))
        else:
            injection.operations.extend(add(f"{base}/volumeMounts/-", m) for m in missing.values())
    if kind == "ephemeralContainers" or name == RENDERER_NAME:
        return
    _plan_env(base, name, container, parts.env_entry, injection)


def _plan_env(base: str, name: str, container: dict[str, Any], entry: dict[str, str], injection: Injection) -> None:
    env = container.get("env")
    wanted = entry["value"]
    for variable in _list(env):
        if isinstance(variable, dict) and variable.get("name") == CREDENTIALS_ENV:
            if variable.get("value") != wanted:
                injection.notes.append(
                    f"container {name} sets {CREDENTIALS_ENV} itself; keyguard left it, so the SDK may not "
                    f"read the injected credentials at {wanted}"
                )
            return
    if isinstance(env, list):
        injection.operations.append(add(f"{base}/env/-", entry))
    else:
        injection.operations.append(add(f"{base}/env", [entry]))


def _plan_renderer(spec: Mapping[str, Any], profile: Profile, injection: Injection) -> None:
    init = spec.get("initContainers")
    wanted = _parts(profile).renderer
    for index, container in enumerate(_list(init)):
        if isinstance(container, dict) and container.get("name") == RENDERER_NAME:
            if container.get("command") != wanted["command"] or container.get("image") != wanted["image"]:
                _conflict(injection, f"spec.initContainers[{index}]", f"init container {RENDERER_NAME}")
            return
    if profile.credentials.format != "access-keys":
        return
    if isinstance(init, list) and init:
        injection.operations.append(add("/spec/initContainers/0", wanted))
    else:
        injection.operations.append(add("/spec/initContainers", [wanted]))


def _plan_service_account(spec: Mapping[str, Any], profile: Profile, injection: Injection) -> None:
    policy = profile.service_account
    current = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if current == "default":
        op = replace if "serviceAccountName" in spec else add
        injection.operations.append(op("/spec/serviceAccountName", policy.name))
        if "serviceAccount" in spec:
            injection.operations.append(replace("/spec/serviceAccount", policy.name))
    elif current != policy.name and current not in policy.allowed:
        shown = shown_name(current)
        injection.conflicts.append(
            Finding(
                rule=SERVICE_ACCOUNT_NOT_ALLOWED,
                path="spec.serviceAccountName",
                field=f"serviceAccountName {shown}",
                message=f"service account {shown} is not allowed in profile {profile.name}; task pods run as "
                f"{policy.name}" + (f" or one of {', '.join(policy.allowed)}" if policy.allowed else ""),
            )
        )
    if not policy.api_access and spec.get("automountServiceAccountToken") is not False:
        op = replace if "automountServiceAccountToken" in spec else add
        injection.operations.append(op("/spec/automountServiceAccountToken", False))


def _plan_annotations(pod: Mapping[str, Any], profile: Profile, policy_version: str, injection: Injection) -> None:
    metadata = pod.get("metadata")
    annotations = _dict(metadata).get("annotations") if isinstance(metadata, dict) else None
    wanted = {ANNOTATION_PROFILE: profile.name, ANNOTATION_POLICY_VERSION: policy_version}
    if not isinstance(metadata, dict):
        injection.operations.append(add("/metadata", {"annotations": wanted}))
    elif not isinstance(annotations, dict):
        injection.operations.append(add("/metadata/annotations", wanted))
    else:
        for key, value in wanted.items():
            if annotations.get(key) != value:
                op = replace if key in annotations else add
                injection.operations.append(op(pointer("metadata", "annotations", key), value))


def plan_injection(pod: Mapping[str, Any], profile: Profile, *, policy_version: str) -> Injection:
    """Plan the operations that bring `pod` to the injected state of `profile` (none when it is there)."""
    injection = Injection()
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        _conflict(injection, "spec", "a pod without a spec")
        return injection
    drop: set[str] = set()
    if not profile.service_account.api_access:
        drop = {v["name"] for v in _list(spec.get("volumes")) if _is_token_volume(v)}
    _plan_volumes(spec, profile, drop, injection)
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for index, container in enumerate(_list(spec.get(kind))):
            if isinstance(container, dict):
                _plan_container(kind, index, container, profile, drop, injection)
    _plan_service_account(spec, profile, injection)
    _plan_annotations(pod, profile, policy_version, injection)
    _plan_renderer(spec, profile, injection)
    return injection
