"""`keyguard doctor`: is this installation healthy? Each check answers one question an admin would otherwise
answer with a dozen kubectl commands, and names the fix when the answer is no.

The checks follow the ways webhooks like keyguard fail in production: a webhook configuration that points
elsewhere or blocks every pod when it is down, a caBundle that does not verify the serving certificate (the
classic "x509: certificate signed by unknown authority"), a certificate about to expire, a policy ConfigMap that
does not parse, a Flyte namespace without its storage Secret or task service account, a task service account
someone bound to a Role, and finally whether keyguard actually answers: a server-side dry run of a Flyte task pod
through the API server. Secrets are read for their key names only; no value is ever printed.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from kubernetes import client

from webhook.certs import inspect_pem
from webhook.cluster.connection import CONFIG_KINDS, api_error, read_webhook_configuration
from webhook.cluster.secrets import ROTATED_AT
from webhook.credential_files import SECRET_KEYS
from webhook.errors import KeyguardError, UsageError
from webhook.injection import ANNOTATION_PROFILE
from webhook.policy import Policy, Profile, parse_policy_text
from webhook.selection import choose_profile

Status = Literal["ok", "warning", "problem"]
GKE_ANNOTATION = "iam.gke.io/gcp-service-account"
FLYTE_NAMESPACE_PATTERNS = ("*-development", "*-staging", "*-production")
SYSTEM_NAMESPACES = ("kube-system", "kube-node-lease")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Settings:
    namespace: str = "keyguard-system"
    service: str = "keyguard"
    configuration: str = "keyguard"
    tls_secret: str = "keyguard-tls"
    policy_configmap: str = "keyguard-policy"
    flyte_namespaces: tuple[str, ...] = ()


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: Status, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    @property
    def healthy(self) -> bool:
        return all(c.status != "problem" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        counts = {s: sum(c.status == s for c in self.checks) for s in ("ok", "warning", "problem")}
        return {"healthy": self.healthy, "summary": counts, "checks": [c.to_dict() for c in self.checks]}


# --- webhook configurations ------------------------------------------------------------------------------------


def _excludes_system_namespaces(selector: Any) -> bool:
    for expression in (selector.match_expressions or []) if selector else []:
        if (
            expression.key == "kubernetes.io/metadata.name"
            and expression.operator == "NotIn"
            and set(SYSTEM_NAMESPACES) <= set(expression.values or [])
        ):
            return True
    return False


def check_webhook(report: Report, kind: str, hook: Any, settings: Settings) -> None:
    """Where the webhook points, and whether an outage can only hold back Flyte task pods."""
    name = f"{kind.removesuffix('Configuration')} {hook.name}"
    service = hook.client_config.service
    if service is not None:
        if (service.namespace, service.name) == (settings.namespace, settings.service):
            report.add(name, "ok", f"points at Service {service.namespace}/{service.name} path {service.path}")
        else:
            report.add(
                name,
                "problem",
                f"points at Service {service.namespace}/{service.name}, expected "
                f"{settings.namespace}/{settings.service}: re-apply the manifests",
            )
    else:
        report.add(name, "warning", f"points at URL {hook.client_config.url}, not at the Service")
    scoped = bool(hook.match_conditions) or bool(hook.object_selector and hook.object_selector.match_labels)
    timeout = hook.timeout_seconds or 10
    problems = []
    if hook.failure_policy == "Fail" and not scoped:
        problems.append("failurePolicy Fail without matchConditions: an outage blocks every pod")
    if hook.failure_policy == "Fail" and not _excludes_system_namespaces(hook.namespace_selector):
        problems.append("kube-system is not excluded: an outage can block system pods")
    if not 1 <= timeout <= 5:
        problems.append(f"timeoutSeconds {timeout}: keep it between 1 and 5")
    if hook.side_effects not in ("None", "NoneOnDryRun"):
        problems.append(f"sideEffects {hook.side_effects}: dry runs will be refused")
    if problems:
        report.add(f"{name} scope", "warning", "; ".join(problems))
    else:
        report.add(f"{name} scope", "ok", f"failurePolicy {hook.failure_policy}, timeout {timeout} s, Flyte pods only")


def _served_chain(url: str) -> bytes:
    """The certificate a webhook URL presents (PEM), fetched without trusting it: trust is checked next."""
    parts = urlsplit(url)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((parts.hostname or "", parts.port or 443), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise OSError("no certificate presented")
    return ssl.DER_cert_to_PEM_cert(der).encode()


def _serving_certificate(core: client.CoreV1Api, hook: Any, settings: Settings) -> tuple[bytes, str, str]:
    """(PEM, where it came from, the name the API server checks)."""
    if hook.client_config.url:
        url = hook.client_config.url
        return _served_chain(url), url, urlsplit(url).hostname or ""
    service = hook.client_config.service
    secret = core.read_namespaced_secret(settings.tls_secret, settings.namespace)
    pem = base64.b64decode((secret.data or {}).get("tls.crt", ""))
    return pem, f"Secret {settings.namespace}/{settings.tls_secret}", f"{service.name}.{service.namespace}.svc"


def check_certificate(report: Report, core: client.CoreV1Api, hook: Any, settings: Settings, now: datetime) -> None:
    label = f"certificate for {hook.name}"
    bundle = hook.client_config.ca_bundle
    if not bundle:
        report.add(label, "problem", "caBundle is empty: run `keyguard certs install` (or install cert-manager)")
        return
    try:
        pem, source, server_name = _serving_certificate(core, hook, settings)
        ca_pem = base64.b64decode(bundle) if isinstance(bundle, str) else bytes(bundle)
        inspection = inspect_pem(pem, ca_pem, server_name=server_name, now=now, sources=(source, "caBundle"))
    except client.ApiException as error:
        report.add(label, "warning", f"cannot read the serving certificate: HTTP {error.status} {error.reason}")
        return
    except (OSError, KeyguardError, ValueError) as error:
        report.add(label, "problem", f"cannot check the serving certificate: {error}")
        return
    for problem in inspection.problems:
        report.add(label, "problem", problem)
    for warning in inspection.warnings:
        report.add(label, "warning", warning)
    if not inspection.problems:
        report.add(
            label,
            "ok",
            f"caBundle verifies the certificate from {source}; expires {inspection.not_after:%Y-%m-%d} "
            f"({inspection.days_left} days left)",
        )


# --- policy and Flyte namespaces -------------------------------------------------------------------------------


def check_policy(report: Report, core: client.CoreV1Api, settings: Settings) -> Policy | None:
    label = f"policy ConfigMap {settings.namespace}/{settings.policy_configmap}"
    try:
        configmap = core.read_namespaced_config_map(settings.policy_configmap, settings.namespace)
    except client.ApiException as error:
        report.add(label, "problem", f"cannot read it: HTTP {error.status} {error.reason}")
        return None
    text = (configmap.data or {}).get("policy.yaml")
    if text is None:
        report.add(label, "problem", "has no key policy.yaml")
        return None
    try:
        policy = parse_policy_text(text, "policy.yaml")
    except KeyguardError as error:
        report.add(label, "problem", f"{error} (keyguard keeps serving the last good policy)")
        return None
    names = ", ".join(f"{p.name} ({p.mode})" for p in policy.profiles)
    report.add(label, "ok", f"valid, version {policy.version}: {names}")
    for warning in policy.warnings:
        report.add(label, "warning", warning)
    return policy


def flyte_namespaces(core: client.CoreV1Api, settings: Settings) -> list[tuple[str, dict[str, str]]]:
    """The namespaces to check: the ones asked for, or every `<project>-<domain>` namespace."""
    found = []
    namespaces: list[Any] = core.list_namespace().items
    for namespace in namespaces:
        name, labels = namespace.metadata.name, namespace.metadata.labels or {}
        if settings.flyte_namespaces:
            if name in settings.flyte_namespaces:
                found.append((name, labels))
        elif any(fnmatchcase(name, pattern) for pattern in FLYTE_NAMESPACE_PATTERNS):
            found.append((name, labels))
    missing = set(settings.flyte_namespaces) - {name for name, _ in found}
    if missing:
        raise UsageError(f"namespace(s) not found: {', '.join(sorted(missing))}")
    return found


def _bindings_for(
    rbac: client.RbacAuthorizationV1Api, namespace: str, account: str, cluster_bindings: list[Any]
) -> list[str]:
    def binds(subjects: Iterable[Any] | None) -> bool:
        return any(
            s.kind == "ServiceAccount" and s.name == account and (s.namespace or namespace) == namespace
            for s in subjects or []
        )

    try:
        role_bindings: list[Any] = rbac.list_namespaced_role_binding(namespace).items
    except client.ApiException as error:
        raise api_error(error, f"listing RoleBindings in {namespace}") from None
    grants = [
        f"RoleBinding {b.metadata.name} -> {b.role_ref.kind} {b.role_ref.name}"
        for b in role_bindings
        if binds(b.subjects)
    ]
    grants += [
        f"ClusterRoleBinding {b.metadata.name} -> ClusterRole {b.role_ref.name}"
        for b in cluster_bindings
        if binds(b.subjects)
    ]
    return grants


def secret_age_days(secret: Any, now: datetime) -> int | None:
    """Days since the keys were last written: `keyguard secret create`'s annotation, else the Secret's creation."""
    metadata = secret.metadata
    stamp = (metadata.annotations or {}).get(ROTATED_AT)
    written: datetime | None = metadata.creation_timestamp
    if stamp:
        with contextlib.suppress(ValueError):
            written = datetime.fromisoformat(stamp)
    return (now - written).days if written is not None else None


def check_secret(report: Report, core: client.CoreV1Api, namespace: str, profile: Profile, now: datetime) -> None:
    """The credentials Secret: present, with the keys its format needs (names only), not older than maxAgeDays."""
    credentials = profile.credentials
    label = f"{namespace}: Secret {credentials.secret_name}"
    expected = SECRET_KEYS[credentials.format]
    try:
        secret = core.read_namespaced_secret(credentials.secret_name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            report.add(
                label, "problem", f"missing: task pods cannot start; `keyguard secret create --namespace {namespace}`"
            )
        else:
            report.add(label, "warning", f"cannot read it: HTTP {error.status} {error.reason}")
    else:
        keys = sorted((secret.data or {}).keys())  # key names only
        absent = [k for k in expected if k not in keys]
        age = secret_age_days(secret, now)
        max_age = credentials.max_age_days
        if absent:
            report.add(label, "problem", f"lacks key(s) {', '.join(absent)} (has: {', '.join(keys) or 'none'})")
        elif max_age is not None and age is not None and age > max_age:
            report.add(
                label,
                "warning",
                f"written {age} days ago, more than maxAgeDays {max_age}: rotate the keys at the storage, then "
                f"`keyguard secret create --namespace {namespace}`",
            )
        else:
            written = f", written {age} days ago" if age is not None else ""
            report.add(label, "ok", f"keys {', '.join(keys)}{written} (profile {profile.name}, {profile.mode})")


def check_identity(report: Report, core: client.CoreV1Api, namespace: str, profile: Profile) -> None:
    """A workload-identity environment: no static key Secret, and for GKE the task account's annotation."""
    credentials = profile.credentials
    label = f"{namespace}: Secret {credentials.secret_name}"
    try:
        core.read_namespaced_secret(credentials.secret_name, namespace)
    except client.ApiException as error:
        if error.status != 404:
            report.add(label, "warning", f"cannot read it: HTTP {error.status} {error.reason}")
        else:
            report.add(label, "ok", f"absent: profile {profile.name} uses {credentials.format}, no static keys")
    else:
        report.add(
            label, "problem", f"static keys in a {credentials.format} environment: delete the Secret and rotate them"
        )
    if credentials.gke is None:
        return
    account = profile.service_account.name
    try:
        metadata = core.read_namespaced_service_account(account, namespace).metadata
        annotations = (metadata.annotations if metadata is not None else None) or {}
    except client.ApiException as error:
        report.add(f"{namespace}: ServiceAccount {account}", "warning", f"cannot read it: HTTP {error.status}")
        return
    bound = annotations.get(GKE_ANNOTATION)
    status: Status = "ok" if bound == credentials.gke.service_account else "problem"
    report.add(
        f"{namespace}: workload identity",
        status,
        f"{GKE_ANNOTATION} is {bound or 'not set'}; profile {profile.name} expects {credentials.gke.service_account}",
    )


def check_namespace(
    report: Report,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    namespace: str,
    profile: Profile,
    cluster_bindings: list[Any],
    now: datetime,
) -> None:
    """The namespace's Secret (key names only, and its age against the profile's maxAgeDays), task service account
    and what is bound to it; the ClusterRoleBindings are listed once per run by the caller."""
    credentials, account = profile.credentials, profile.service_account.name
    if not credentials.uses_secret:
        check_identity(report, core, namespace, profile)
    else:
        check_secret(report, core, namespace, profile, now)
    label = f"{namespace}: ServiceAccount {account}"
    try:
        sa = core.read_namespaced_service_account(account, namespace)
    except client.ApiException as error:
        status: Status = "problem" if error.status == 404 else "warning"
        report.add(
            label,
            status,
            "missing: apply manifests/flyte-environments for this project"
            if error.status == 404
            else f"cannot read it: HTTP {error.status} {error.reason}",
        )
        return
    grants = _bindings_for(rbac, namespace, account, cluster_bindings)
    if grants and not profile.service_account.api_access:
        report.add(
            label, "problem", f"over-privileged: {'; '.join(grants)}; task service accounts are bound to nothing"
        )
    elif sa.automount_service_account_token is not False and not profile.service_account.api_access:
        report.add(label, "warning", "automountServiceAccountToken is not false (keyguard removes the token anyway)")
    else:
        report.add(label, "ok", "bound to nothing, no API token")


# --- does it answer? --------------------------------------------------------------------------------------------


def probe_pod(namespace: str) -> dict[str, Any]:
    execution = "kgdoctor" + uuid.uuid4().hex[:12]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{execution}-n0-0",
            "namespace": namespace,
            "labels": {
                "project": namespace.rsplit("-", 1)[0],
                "domain": namespace.rsplit("-", 1)[-1],
                "execution-id": execution,
                "node-id": "n0",
            },
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "probe", "image": "busybox:1.37"}]},
    }


def check_answers(report: Report, core: client.CoreV1Api, namespace: str) -> None:
    """A server-side dry run of a Flyte task pod: goes through the API server and both webhooks, stores nothing."""
    label = f"admission in {namespace}"
    try:
        answer: Any = core.create_namespaced_pod(namespace, cast(Any, probe_pod(namespace)), dry_run="All")
    except client.ApiException as error:
        detail = api_error(error, "dry-run of a Flyte task pod")
        report.add(label, "problem", str(detail))
        return
    annotations = answer.metadata.annotations or {}
    if ANNOTATION_PROFILE in annotations:
        report.add(label, "ok", f"a dry-run Flyte task pod was injected (profile {annotations[ANNOTATION_PROFILE]})")
    else:
        report.add(label, "problem", "a dry-run Flyte task pod was admitted without keyguard's injection")


def run_doctor(api: client.ApiClient, settings: Settings, *, now: datetime | None = None) -> Report:
    now = now or datetime.now(UTC)
    report = Report()
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    admission = client.AdmissionregistrationV1Api(api)
    for kind in CONFIG_KINDS:
        configuration = read_webhook_configuration(admission, kind, settings.configuration)
        if configuration is None:
            report.add(f"{kind} {settings.configuration}", "problem", "missing: apply the manifests")
            continue
        for hook in configuration.webhooks or []:
            check_webhook(report, kind, hook, settings)
            check_certificate(report, core, hook, settings, now)
    policy = check_policy(report, core, settings)
    try:
        namespaces = flyte_namespaces(core, settings)
    except client.ApiException as error:
        raise api_error(error, "listing namespaces") from None
    if not namespaces:
        report.add("Flyte namespaces", "warning", "none found (<project>-<domain>); pass --namespace")
    try:
        cluster_bindings: list[Any] = rbac.list_cluster_role_binding().items if namespaces else []
    except client.ApiException as error:
        raise api_error(error, "listing ClusterRoleBindings") from None
    for namespace, labels in namespaces:
        profile = choose_profile(policy, namespace=namespace, pod={}, namespace_labels=labels) if policy else None
        if profile is None:
            report.add(namespace, "warning", "no profile of the policy matches: its task pods are not injected")
            continue
        check_namespace(report, core, rbac, namespace, profile, cluster_bindings, now)
    if namespaces:
        check_answers(report, core, namespaces[0][0])
    return report
