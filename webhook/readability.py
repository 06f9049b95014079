"""Can each container read the credentials keyguard gives it? The kubelet's ownership rules, as a pure model.

Mounting a Secret is not enough: a task whose process cannot open the file fails at its first storage call, long
after admission. The pod spec says who a container runs as only when it sets `runAsUser`; otherwise the image's
`USER` decides, which admission cannot see, so an unknown uid is taken as the worst case: a non-root user in none of
the file's groups (Flyte's flytekit image, uid 1000 / gid 1000 without fsGroup, is exactly that).

The rules modelled (kubelet 1.37 Secret and emptyDir volumes, Linux permission checks):
- Secret files: owner root; group the pod's `fsGroup` when set (mode gains 0440, the kubelet's read-only mask), else
  root; mode the volume's `defaultMode`.
- The rendered file: owner the renderer's uid; group the pod's `fsGroup` when set (the emptyDir is setgid), else
  the renderer's gid; mode the renderer's (webhook/credential_files.py).
- A process: its uid, its gid and supplementary groups (`supplementalGroups`, plus `fsGroup`); root reads anything
  unless its capabilities drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
tests/credential_access_matrix.py runs the same rows on this model and, in the node suite, on real pods.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.credential_files import CREDENTIAL_FILE_MODE
from webhook.findings import Finding, Rule, Severity
from webhook.injection import CREDS_VOLUME, RENDERER_NAME, RENDERER_UID, WRITERS
from webhook.policy import Profile

CREDENTIALS_UNREADABLE = Rule(
    id="credentials-unreadable",
    severity=Severity.WARNING,
    title="a container cannot read the storage credentials keyguard mounts for it",
    fix="recreate the pod so the current keyguard injects it (Secret files and the rendered file mode 0444), or "
    "give the pod an fsGroup",
)
_READ_BYPASS = frozenset({"DAC_OVERRIDE", "DAC_READ_SEARCH"})


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a container's process is. `uid`/`gid` None: set by the image, unknown here (worst case: non-root)."""

    uid: int | None
    gid: int | None
    groups: frozenset[int]
    bypasses_permissions: bool


@dataclass(frozen=True, slots=True)
class FileOwner:
    uid: int
    gid: int
    mode: int


def can_read(who: Identity, file: FileOwner) -> bool:
    if who.uid == 0 and who.bypasses_permissions:
        return True
    if who.uid is not None and who.uid == file.uid:
        return bool(file.mode & 0o400)
    if file.gid == who.gid or file.gid in who.groups:
        return bool(file.mode & 0o040)
    return bool(file.mode & 0o004)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _fs_group(pod_context: Mapping[str, Any]) -> int | None:
    return _int(pod_context.get("fsGroup"))


def identity(pod_context: Mapping[str, Any], container: Mapping[str, Any]) -> Identity:
    context = _dict(container.get("securityContext"))
    uid = _int(context.get("runAsUser"))
    uid = uid if uid is not None else _int(pod_context.get("runAsUser"))
    gid = _int(context.get("runAsGroup"))
    gid = gid if gid is not None else _int(pod_context.get("runAsGroup"))
    groups = {g for g in _list(pod_context.get("supplementalGroups")) if _int(g) is not None}
    if (fs_group := _fs_group(pod_context)) is not None:
        groups.add(fs_group)
    capabilities = _dict(context.get("capabilities"))
    drop, add = (_capabilities(capabilities.get(which)) for which in ("drop", "add"))
    bypasses = not ("ALL" in drop or drop >= _READ_BYPASS) or bool(add & _READ_BYPASS)
    return Identity(uid, gid, frozenset(groups), bypasses_permissions=bypasses)


def _capabilities(names: Any) -> set[str]:
    return {str(n).upper().removeprefix("CAP_") for n in names} if isinstance(names, list) else set()


def secret_file(pod_context: Mapping[str, Any], default_mode: int) -> FileOwner:
    fs_group = _fs_group(pod_context)
    return FileOwner(0, fs_group if fs_group is not None else 0, default_mode | (0o440 if fs_group is not None else 0))


def rendered_file(pod_context: Mapping[str, Any], renderer: Identity) -> FileOwner:
    fs_group = _fs_group(pod_context)
    uid = renderer.uid if renderer.uid is not None else RENDERER_UID
    gid = fs_group if fs_group is not None else (renderer.gid if renderer.gid is not None else uid)
    return FileOwner(uid, gid, CREDENTIAL_FILE_MODE)


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, int, Mapping[str, Any]]]:
    for kind in ("initContainers", "containers"):
        for index, container in enumerate(_list(spec.get(kind))):
            if isinstance(container, dict):
                yield kind, index, container


def unreadable_credentials(pod: Mapping[str, Any], profile: Profile) -> list[Finding]:
    """A finding for every container of an injected pod that could not read the credentials it needs: the
    rendered file (access-keys), or the Secret's files (the renderer, and every container for credentials-file)."""
    spec = _dict(pod.get("spec"))
    volumes = [v for v in _list(spec.get("volumes")) if isinstance(v, dict) and v.get("name") == CREDS_VOLUME]
    if not volumes:
        return []
    secret = _dict(volumes[0].get("secret"))
    mode = _int(secret.get("defaultMode"))
    pod_context = _dict(spec.get("securityContext"))
    secret_owner = secret_file(pod_context, mode if mode is not None else 0o644)  # the API server's default
    containers = list(_containers(spec))
    renderer = next((c for k, _, c in containers if k == "initContainers" and c.get("name") == RENDERER_NAME), None)
    rendered = rendered_file(pod_context, identity(pod_context, renderer)) if renderer is not None else None
    findings: list[Finding] = []
    for kind, index, container in containers:
        if not any(isinstance(m, dict) and m.get("name") == CREDS_VOLUME for m in _list(container.get("volumeMounts"))):
            continue
        name = container["name"] if isinstance(container.get("name"), str) else f"#{index}"
        # Every container keyguard mounts the Secret into must be able to read it (that is the design, and a
        # restrictive mode is how an older injection shows); a task also needs the rendered file.
        needed = [("the Secret's files", secret_owner)]
        if (
            container.get("name") not in WRITERS
            and rendered is not None
            and profile.credentials.format == "access-keys"
        ):
            needed.append(("the rendered credentials file", rendered))
        who = identity(pod_context, container)
        for what, file in needed:
            if not can_read(who, file):
                findings.append(_unreadable(f"spec.{kind}[{index}]", str(name), who, what, file))
                break
    return findings


def _unreadable(path: str, name: str, who: Identity, what: str, file: FileOwner) -> Finding:
    user = f"uid {who.uid}" if who.uid is not None else "the image's user"
    return Finding(
        rule=CREDENTIALS_UNREADABLE,
        path=path,
        container=name,
        field="securityContext",
        message=f"container {name} ({user}) cannot read {what} (mode {file.mode:04o}, owner {file.uid}:{file.gid}) "
        f"[{CREDENTIALS_UNREADABLE.id}]",
    )
