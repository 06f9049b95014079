"""The Secrets a pod reaches by name, and two things that follows from them (issue 13, items 1 and 6).

- Rotation: the kubelet refreshes a Secret volume in place, but a file mounted with `subPath` is a bind mount of one
  inode and never changes, and an env value from `secretKeyRef` is read once when the container starts. A storage
  key delivered either way outlives its rotation until the pod is recreated: a warning.
- Short-lived credentials: a profile with a workload identity (web-identity, Azure, GKE) has no static key at all;
  a pod that still brings one from a Secret (the environment's credentials Secret, or a credential-named variable
  from `secretKeyRef`) is refused, or the long-lived key would quietly win over the identity in the SDK's chain.
- Environments: each profile names its own credentials Secret. A pod of one environment that references another
  environment's credentials Secret is refused, so development code can never run with production keys (the
  service-account half is `service-account-not-allowed`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from webhook.admission_types import CONTAINER_KINDS, CREATED_CONTAINER_KINDS
from webhook.detection import is_credential_name
from webhook.findings import Finding, Rule, Severity
from webhook.policy import Policy, Profile

CREDENTIAL_NOT_ROTATABLE = Rule(
    id="credential-not-rotatable",
    severity=Severity.WARNING,
    title="a storage credential reaches the container in a way a key rotation never updates",
    fix="drop the subPath mount or the secretKeyRef env and use keyguard's injection (AWS_SHARED_CREDENTIALS_FILE, "
    "with `credentials.refresh: watch` for running tasks)",
)
STATIC_CREDENTIALS_NOT_ALLOWED = Rule(
    id="static-credentials-not-allowed",
    severity=Severity.ERROR,
    title="the pod brings a static storage key where the profile uses short-lived credentials",
    fix="remove the Secret reference: the task gets temporary credentials from its workload identity "
    "(AWS_ROLE_ARN / AWS_WEB_IDENTITY_TOKEN_FILE, AZURE_FEDERATED_TOKEN_FILE, or GKE's service account)",
)
CROSS_ENVIRONMENT_CREDENTIALS = Rule(
    id="cross-environment-credentials",
    severity=Severity.ERROR,
    title="the pod references another environment's storage-credential Secret",
    fix="use this environment's own Secret (the profile's credentials.secretName) or move the task to the "
    "environment whose keys it needs",
)


class Reference(NamedTuple):
    """A Secret the pod names, and where (a tuple: one is made for every Secret reference of every admitted pod)."""

    path: str
    container: str | None
    secret: str
    how: str  # "volume", "projected volume", "env", "envFrom"
    variable: str | None = None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _secret_volumes(spec: Mapping[str, Any]) -> Iterator[tuple[int, str, str]]:
    volumes = spec.get("volumes")
    for index, volume in enumerate(volumes if isinstance(volumes, list) else ()):
        if not isinstance(volume, dict) or not isinstance(name := volume.get("name"), str):
            continue
        secret = volume.get("secret")
        if isinstance(secret, dict) and isinstance(secret_name := secret.get("secretName"), str):
            yield index, name, secret_name
        projected = volume.get("projected")
        sources = projected.get("sources") if isinstance(projected, dict) else None
        for source in sources if isinstance(sources, list) else ():
            secret = source.get("secret") if isinstance(source, dict) else None
            if isinstance(secret, dict) and isinstance(secret_name := secret.get("name"), str):
                yield index, name, secret_name


def references(pod: Mapping[str, Any]) -> list[Reference]:
    """Every Secret the pod names: volumes, then each container's `secretKeyRef` env and `secretRef` envFrom. The
    engine reads them once per pod and hands the list to each rule below."""
    return list(_references(pod))


def _references(pod: Mapping[str, Any]) -> Iterator[Reference]:
    # plain type checks rather than `_dict` chains: this runs on every admitted pod, and most env vars have no
    # `valueFrom` at all, so a variable costs one membership test in a comprehension (C speed, no generator frame)
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    for index, _, volume_secret in _secret_volumes(spec):
        yield Reference(f"spec.volumes[{index}]", None, volume_secret, "volume")
    for kind in CONTAINER_KINDS:
        containers = spec.get(kind)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            if not isinstance(container, dict):
                continue
            raw_name = container.get("name")
            name = raw_name if isinstance(raw_name, str) else f"#{index}"
            env = container.get("env")
            if not isinstance(env, list):
                env = ()
            for j, variable in [(j, v) for j, v in enumerate(env) if isinstance(v, dict) and "valueFrom" in v]:
                value_from = variable["valueFrom"]
                ref = value_from.get("secretKeyRef") if isinstance(value_from, dict) else None
                secret = ref.get("name") if isinstance(ref, dict) else None
                if isinstance(secret, str):
                    var = variable.get("name")
                    yield Reference(
                        f"spec.{kind}[{index}].env[{j}]", name, secret, "env", var if isinstance(var, str) else None
                    )
            env_from = container.get("envFrom")
            for j, source in enumerate(env_from if isinstance(env_from, list) else ()):
                ref = source.get("secretRef") if isinstance(source, dict) else None
                secret = ref.get("name") if isinstance(ref, dict) else None
                if isinstance(secret, str):
                    yield Reference(f"spec.{kind}[{index}].envFrom[{j}]", name, secret, "envFrom")


def not_rotatable(pod: Mapping[str, Any], refs: Sequence[Reference], profile: Profile) -> list[Finding]:
    """Storage credentials a rotation will not reach: a credential-named env var from a Secret, or the profile's
    credentials Secret mounted through subPath."""
    findings = [
        Finding(
            rule=CREDENTIAL_NOT_ROTATABLE,
            path=r.path,
            container=r.container,
            field=f"env {r.variable}",
            message=f"container {r.container}, env {r.variable}: comes from Secret {r.secret} through secretKeyRef, "
            f"read once at container start, so a key rotation never reaches this task [{CREDENTIAL_NOT_ROTATABLE.id}]",
        )
        for r in refs
        if r.how == "env" and r.variable is not None and is_credential_name(r.variable)
    ]
    secret_name = profile.credentials.secret_name
    if not any(r.how == "volume" and r.secret == secret_name for r in refs):
        return findings  # no volume holds the credentials Secret (`refs` lists every volume's Secrets first)
    spec = _dict(pod.get("spec"))
    own = {name for _, name, secret in _secret_volumes(spec) if secret == secret_name}
    for kind in CREATED_CONTAINER_KINDS:
        for index, container in enumerate(map(_dict, _list(spec.get(kind)))):
            for j, mount in enumerate(map(_dict, _list(container.get("volumeMounts")))):
                mounted = mount.get("name")
                if isinstance(mounted, str) and mounted in own and (mount.get("subPath") or mount.get("subPathExpr")):
                    name = container.get("name")
                    findings.append(
                        Finding(
                            rule=CREDENTIAL_NOT_ROTATABLE,
                            path=f"spec.{kind}[{index}].volumeMounts[{j}]",
                            container=name if isinstance(name, str) else None,
                            field=f"mount {mount.get('name')}",
                            message=f"container {name}, mount {mount.get('name')}: Secret "
                            f"{profile.credentials.secret_name} is mounted with subPath, which the kubelet never "
                            f"updates, so a key rotation never reaches this task [{CREDENTIAL_NOT_ROTATABLE.id}]",
                        )
                    )
    return findings


def cross_environment(refs: Sequence[Reference], profile: Profile, policy: Policy) -> list[Finding]:
    """References to a Secret that is another profile's credentials Secret and not this profile's own."""
    others = {
        p.credentials.secret_name: p.name
        for p in policy.profiles
        if p.name != profile.name and p.credentials.secret_name != profile.credentials.secret_name
    }
    if not others:
        return []
    return [
        _finding(
            CROSS_ENVIRONMENT_CREDENTIALS,
            r,
            f"{r.how} {r.secret}",
            f"{r.how} references Secret {r.secret}, the storage credentials of profile {others[r.secret]}, in a pod "
            f"of profile {profile.name}",
        )
        for r in refs
        if r.secret in others
    ]


def static_credentials(refs: Sequence[Reference], profile: Profile) -> list[Finding]:
    """In a workload-identity profile: references to the credentials Secret, and credential-named secretKeyRefs."""
    if profile.credentials.uses_secret:
        return []
    secret = profile.credentials.secret_name
    return [
        _finding(
            STATIC_CREDENTIALS_NOT_ALLOWED,
            r,
            f"{r.how} {r.variable or r.secret}",
            f"{r.how} {r.variable + ' ' if r.variable else ''}brings a static key from Secret {r.secret}; profile "
            f"{profile.name} uses {profile.credentials.format}",
        )
        for r in refs
        if r.secret == secret or (r.how == "env" and r.variable is not None and is_credential_name(r.variable))
    ]


def _finding(rule: Rule, reference: Reference, field: str, what: str) -> Finding:
    where = f"container {reference.container}, " if reference.container else ""
    return Finding(
        rule=rule,
        path=reference.path,
        container=reference.container,
        field=field,
        message=f"{where}{what} [{rule.id}]",
    )
