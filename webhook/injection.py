"""The JSON Patch that makes a Flyte task pod follow the storage-credential practice.

For a selected pod and its profile this plans, without copying or diffing the pod:
- a read-only Secret volume (no subPath) with the environment's storage credentials, in every (init) container;
- an in-memory `emptyDir` where derived credential material lives, so nothing touches node disk: writable by the
  renderer only, read-only in every other container;
- file modes every task can read whatever uid and gid its image runs as (webhook/credential_files.py says why);
- `AWS_SHARED_CREDENTIALS_FILE`, pointing SDKs at a file instead of holding a value;
- for `access-keys` Secrets, an init container (`keyguard render-credentials`) that writes that file, and with
  `refresh: watch` a native sidecar that re-renders it when the kubelet swaps in a rotated Secret;
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

from webhook.admission_types import CONTAINER_KINDS, PatchOperation
from webhook.credential_files import CREDENTIAL_FILE_MODE
from webhook.findings import Finding, Rule, Severity, shown_name
from webhook.json_pointer import add, pointer, remove, replace
from webhook.policy import Profile

CREDS_VOLUME = "keyguard-storage-creds"
TMPFS_VOLUME = "keyguard-storage-tmpfs"
IDENTITY_VOLUME = "keyguard-identity-token"  # a projected service-account token for a workload identity
IDENTITY_DIR = "/var/run/secrets/keyguard/identity"
IDENTITY_TOKEN = f"{IDENTITY_DIR}/token"
RENDERER_NAME = "keyguard-render-credentials"
REFRESHER_NAME = "keyguard-refresh-credentials"
WRITERS = frozenset({RENDERER_NAME, REFRESHER_NAME})  # the init containers that write the tmpfs
CREDENTIALS_ENV = "AWS_SHARED_CREDENTIALS_FILE"
CREDENTIALS_FILE = "credentials"
GCS_KEY_FILE = "key.json"
ANNOTATION_PROFILE = "keyguard.flyte.org/profile"
ANNOTATION_POLICY_VERSION = "keyguard.flyte.org/policy-version"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
RENDERER_UID = 65532  # the renderer's own uid and gid: it needs no group of the task's

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
    """What planning produced: operations to apply, conflicts that forbid injecting, and notes for the user.

    Every operation is in `operations`, in patch order. Those that put the injection in place are also counted in
    `missing`, by the part of the pod they change (`/spec/volumes`, `/spec/containers`,
    `/spec/serviceAccountName`...): what the validating view reports as `injection-missing`. The others are not a
    missing injection: the record annotations (profile, policy version) may lag a
    later policy edit, and a repair of the mode of keyguard's own volume (left by an earlier keyguard or a copied
    pod) is judged by whether the containers can read (webhook/readability.py)."""

    operations: list[PatchOperation] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)
    conflicts: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def inject(self, place: str, operations: list[PatchOperation]) -> None:
        """Operations that put part of the injection in place at `place`."""
        self.operations += operations
        missing = self.missing
        missing[place] = missing.get(place, 0) + len(operations)


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


def _volumes(profile: Profile) -> list[dict[str, Any]]:
    """The Secret and the tmpfs for keys from a Secret; one projected token for a workload identity; nothing for
    GKE, whose identity is an annotation on the service account."""
    c = profile.credentials
    identity = c.web_identity or c.azure
    if identity is not None:
        token = {"audience": identity.audience, "expirationSeconds": identity.expiration_seconds, "path": "token"}
        return [{"name": IDENTITY_VOLUME, "projected": {"sources": [{"serviceAccountToken": token}]}}]
    if not c.uses_secret:
        return []
    return [
        {"name": CREDS_VOLUME, "secret": {"secretName": c.secret_name, "defaultMode": CREDENTIAL_FILE_MODE}},
        {"name": TMPFS_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": c.tmpfs_size_limit}},
    ]


def _mounts(profile: Profile, *, renderer: bool = False) -> list[dict[str, Any]]:
    """Every volume read-only, except the tmpfs in the renderer, the one container that writes there."""
    c = profile.credentials
    paths = {CREDS_VOLUME: c.mount_path, TMPFS_VOLUME: c.tmpfs_path, IDENTITY_VOLUME: IDENTITY_DIR}
    return [
        {"name": v["name"], "mountPath": paths[v["name"]], "readOnly": not (renderer and v["name"] == TMPFS_VOLUME)}
        for v in _volumes(profile)
    ]


def _env(profile: Profile, project: str | None) -> list[dict[str, str]]:
    """The environment that points SDKs at files and roles: paths and public identifiers, never a value."""
    c = profile.credentials
    env: dict[str, str | None] = {}
    if c.format in ("access-keys", "credentials-file"):
        env[CREDENTIALS_ENV] = credentials_file_path(profile)
    elif c.format == "gcs-key":
        env["GOOGLE_APPLICATION_CREDENTIALS"] = f"{c.mount_path}/{GCS_KEY_FILE}"
    elif c.web_identity is not None:
        w = c.web_identity
        env["AWS_ROLE_ARN"] = w.role_arn_by_project.get(project or "", w.role_arn) or None
        env["AWS_WEB_IDENTITY_TOKEN_FILE"] = IDENTITY_TOKEN
        env["AWS_ENDPOINT_URL_STS"] = w.sts_endpoint
    elif c.azure is not None:
        a = c.azure
        env.update(
            AZURE_CLIENT_ID=a.client_id,
            AZURE_TENANT_ID=a.tenant_id,
            AZURE_FEDERATED_TOKEN_FILE=IDENTITY_TOKEN,
            AZURE_AUTHORITY_HOST=a.authority_host,
        )
    return [{"name": name, "value": value} for name, value in env.items() if value]


def renderer_container(profile: Profile, *, refresher: bool = False) -> dict[str, Any]:
    """The init container that turns the mounted keys into a shared-credentials file in the tmpfs; as the
    refresher, a native sidecar (`restartPolicy: Always`) that renders again whenever the Secret changes. The
    one-shot renderer stays first either way, so no task container can start before the file exists; the kubelet
    stops the sidecar once the task's containers have exited, so it never keeps a finished pod alive."""
    c = profile.credentials
    command = ["keyguard", "render-credentials", "--from", c.mount_path, "--to", credentials_file_path(profile)]
    if refresher:
        command += ["--watch", "--interval", str(c.refresh_seconds)]
    container: dict[str, Any] = {
        "name": REFRESHER_NAME if refresher else RENDERER_NAME,
        "image": profile.renderer.image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        # The one-shot renderer runs for a fraction of a second before the task may start, so its CPU limit is a
        # burst (a 100m limit throttled Python's start-up to most of a second on a real node); an init container's
        # limit does not add to the pod's. The refresher is a sidecar: its resources do add, and it idles.
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m" if refresher else "1", "memory": "64Mi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RENDERER_UID,
            "runAsGroup": RENDERER_UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": _mounts(profile, renderer=True),
    }
    if refresher:
        container["restartPolicy"] = "Always"
    return container


@dataclass(frozen=True, slots=True)
class _Parts:
    """Everything the injection adds for one profile, built once and shared by every review (never mutated)."""

    volumes: dict[str, dict[str, Any]]
    mounts: dict[str, dict[str, Any]]
    renderer_mounts: dict[str, dict[str, Any]]
    mount_paths: frozenset[str]
    env: dict[str | None, list[dict[str, str]]]  # by Flyte project: only a per-project role makes them differ
    env_names: frozenset[str]  # every name `env` may hold, whatever the project
    renderer: dict[str, Any]
    refresher: dict[str, Any] | None


_PARTS: dict[int, tuple[Profile, _Parts]] = {}


def _parts(profile: Profile) -> _Parts:
    cached = _PARTS.get(id(profile))
    if cached is not None and cached[0] is profile:
        return cached[1]
    if len(_PARTS) > 64:  # profiles of replaced policies
        _PARTS.clear()
    mounts = {m["name"]: m for m in _mounts(profile)}
    web_identity = profile.credentials.web_identity
    projects = web_identity.role_arn_by_project if web_identity is not None else {}
    env = {project: _env(profile, project) for project in (None, *projects)}
    parts = _Parts(
        volumes={v["name"]: v for v in _volumes(profile)},
        mounts=mounts,
        renderer_mounts={m["name"]: m for m in _mounts(profile, renderer=True)},
        mount_paths=frozenset(m["mountPath"] for m in mounts.values()),
        env=env,
        env_names=frozenset(entry["name"] for entries in env.values() for entry in entries),
        renderer=renderer_container(profile),
        refresher=renderer_container(profile, refresher=True) if profile.credentials.refresh == "watch" else None,
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


def _is_ours(volume: dict[str, Any], name: str, profile: Profile, parts: _Parts) -> bool:
    if name == CREDS_VOLUME:
        return bool(_dict(volume.get("secret")).get("secretName") == profile.credentials.secret_name)
    if name == IDENTITY_VOLUME:
        # The token it projects (audience, lifetime, path), not the whole volume: the API server adds defaults
        # (`defaultMode`) before the validating webhook sees the pod.
        wanted = _dict(parts.volumes.get(IDENTITY_VOLUME)).get("projected")
        return bool(_dict(volume.get("projected")).get("sources") == _dict(wanted).get("sources"))
    return bool(_dict(volume.get("emptyDir")).get("medium") == "Memory")


def _plan_volumes(
    spec: Mapping[str, Any], profile: Profile, parts: _Parts, drop: set[str], injection: Injection
) -> None:
    volumes = spec.get("volumes")
    existing = _list(volumes)
    missing = dict(parts.volumes)
    for index in range(len(existing) - 1, -1, -1):
        volume = existing[index]
        if not isinstance(volume, dict):
            continue
        name = _str(volume.get("name"))
        if name in drop:
            injection.inject("/spec/volumes", [remove(f"/spec/volumes/{index}")])
        elif name in (CREDS_VOLUME, TMPFS_VOLUME, IDENTITY_VOLUME):
            # A second copy (another mutating webhook may add one; pod validation runs after admission) is a
            # clash too: keyguard cannot tell which of the two the kubelet would mount.
            if name not in missing or not _is_ours(volume, name, profile, parts):
                _conflict(injection, f"spec.volumes[{index}]", f"volume {name}")
            elif (
                name == CREDS_VOLUME
                and (secret := _dict(volume.get("secret"))).get("defaultMode") != CREDENTIAL_FILE_MODE
            ):
                op = replace if "defaultMode" in secret else add
                # a repair, not a missing injection; here, before removals below this index shift it
                injection.operations.append(op(f"/spec/volumes/{index}/secret/defaultMode", CREDENTIAL_FILE_MODE))
            missing.pop(name, None)
    if not missing:
        return
    if not isinstance(volumes, list):
        injection.inject("/spec/volumes", [add("/spec/volumes", list(missing.values()))])
    else:
        injection.inject("/spec/volumes", [add("/spec/volumes/-", v) for v in missing.values()])


def _plan_container(
    kind: str,
    index: int,
    container: dict[str, Any],
    parts: _Parts,
    drop: set[str],
    env: list[dict[str, str]],
    injection: Injection,
) -> None:
    place = f"/spec/{kind}"
    base = f"{place}/{index}"
    raw_name = container.get("name")
    name = raw_name if isinstance(raw_name, str) else f"#{index}"
    mounts = container.get("volumeMounts")
    existing = _list(mounts)
    wanted = parts.renderer_mounts if name in WRITERS and kind == "initContainers" else parts.mounts
    wanted_paths = parts.mount_paths
    missing = dict(wanted)
    for j in range(len(existing) - 1, -1, -1):
        mount = existing[j]
        if not isinstance(mount, dict):
            continue
        mount_name, mount_path = _str(mount.get("name")), _str(mount.get("mountPath"))
        if mount_name in drop:
            injection.inject(place, [remove(f"{base}/volumeMounts/{j}")])
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
            injection.inject(place, [add(f"{base}/volumeMounts", list(missing.values()))])
        else:
            injection.inject(place, [add(f"{base}/volumeMounts/-", m) for m in missing.values()])
    if kind == "ephemeralContainers" or name in WRITERS:
        return
    _plan_env(place, base, name, container, env, parts.env_names, injection)


def _plan_env(
    place: str,
    base: str,
    name: str,
    container: dict[str, Any],
    entries: list[dict[str, str]],
    names: frozenset[str],
    injection: Injection,
) -> None:
    """Add each variable the container lacks; one it sets itself is left alone, with a note when it differs.
    Only the variables named like the injected ones are kept (the last of each name, as the kubelet does)."""
    env = container.get("env")
    own = {n: v for v in _list(env) if isinstance(v, dict) and isinstance(n := v.get("name"), str) and n in names}
    missing = []
    for entry in entries:
        variable = own.get(entry["name"])
        if variable is None:
            missing.append(entry)
        elif variable.get("value") != entry["value"]:
            injection.notes.append(
                f"container {name} sets {entry['name']} itself; keyguard left it, so the SDK may not use the "
                f"injected credentials ({entry['value']})"
            )
    if not missing:
        return
    if isinstance(env, list):
        injection.inject(place, [add(f"{base}/env/-", entry) for entry in missing])
    else:
        injection.inject(place, [add(f"{base}/env", missing)])


_RENDER_JOB = 6  # keyguard render-credentials --from DIR --to FILE


def _plan_renderer(spec: Mapping[str, Any], profile: Profile, parts: _Parts, injection: Injection) -> None:
    """The renderer first among the init containers, the refresher (if any) right after it."""
    init = _list(spec.get("initContainers"))
    found: dict[str, int] = {}
    for index, container in enumerate(init):
        name = _str(container.get("name")) if isinstance(container, dict) else None
        if name not in WRITERS:
            continue
        wanted = parts.renderer if name == RENDERER_NAME else parts.refresher
        found[name] = index
        # What it reads and where it writes decide whether it is keyguard's renderer; its image and refresh interval
        # may come from another policy version (mutate and validate can reach replicas mid-rollout).
        command = container.get("command")
        if wanted is not None and (
            not isinstance(command, list) or command[:_RENDER_JOB] != wanted["command"][:_RENDER_JOB]
        ):
            _conflict(injection, f"spec.initContainers[{index}]", f"init container {name}")
    if profile.credentials.format != "access-keys":
        return
    missing = [c for c in (parts.renderer, parts.refresher) if c is not None and c["name"] not in found]
    if not missing:
        return
    if not isinstance(spec.get("initContainers"), list) or not init:
        injection.inject("/spec/initContainers", [add("/spec/initContainers", missing)])
        return
    at = found[RENDERER_NAME] + 1 if RENDERER_NAME in found else 0
    injection.inject("/spec/initContainers", [add(f"/spec/initContainers/{at + n}", c) for n, c in enumerate(missing)])


def _plan_service_account(spec: Mapping[str, Any], profile: Profile, injection: Injection) -> None:
    policy = profile.service_account
    current = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if current == "default":
        op = replace if "serviceAccountName" in spec else add
        injection.inject("/spec/serviceAccountName", [op("/spec/serviceAccountName", policy.name)])
        if "serviceAccount" in spec:
            injection.inject("/spec/serviceAccount", [replace("/spec/serviceAccount", policy.name)])
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
        injection.inject("/spec/automountServiceAccountToken", [op("/spec/automountServiceAccountToken", False)])


_ANNOTATION_POINTERS = {
    key: pointer("metadata", "annotations", key) for key in (ANNOTATION_PROFILE, ANNOTATION_POLICY_VERSION)
}


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
                injection.operations.append(op(_ANNOTATION_POINTERS[key], value))


def _project(pod: Mapping[str, Any]) -> str | None:
    labels = _dict(_dict(pod.get("metadata")).get("labels"))
    return _str(labels.get("project"))


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
    parts = _parts(profile)
    _plan_volumes(spec, profile, parts, drop, injection)
    env = parts.env.get(_project(pod), parts.env[None])
    for kind in CONTAINER_KINDS:
        for index, container in enumerate(_list(spec.get(kind))):
            if isinstance(container, dict):
                _plan_container(kind, index, container, parts, drop, env, injection)
    _plan_service_account(spec, profile, injection)
    _plan_annotations(pod, profile, policy_version, injection)
    _plan_renderer(spec, profile, parts, injection)
    return injection
