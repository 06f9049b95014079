"""The admission engine: one pure function from a policy and an AdmissionRequest to a Decision.

The webhook, `keyguard review` and `keyguard check` all call `decide`, so they cannot disagree. It does no I/O,
imports no web framework or Kubernetes client, and neither copies nor diffs the pod: selection, detection and
injection read the request dict in place and return findings and hand-built patch operations.

Order of questions: is it a pod operation we handle? a Flyte task pod? exempt? which profile? what leaks? what
must be injected? Then the profile's mode turns findings into a verdict:
- enforce: any error finding denies (403) and nothing is patched;
- warn: admitted, patched, every finding returned as an AdmissionResponse warning;
- audit: admitted, patched, findings only recorded.
Warning-severity findings never deny. `request.dryRun` changes nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from webhook import detection
from webhook.admission_types import AdmissionRequest, JSONObject, PatchOperation
from webhook.findings import Finding, Hit, Rule, Severity, shown_name
from webhook.injection import RESERVED_NAME_CONFLICT, SERVICE_ACCOUNT_NOT_ALLOWED, plan_injection
from webhook.policy import Policy, Profile
from webhook.readability import CREDENTIALS_UNREADABLE, unreadable_credentials
from webhook.secret_references import (
    CREDENTIAL_NOT_ROTATABLE,
    CROSS_ENVIRONMENT_CREDENTIALS,
    STATIC_CREDENTIALS_NOT_ALLOWED,
    cross_environment,
    not_rotatable,
    static_credentials,
)
from webhook.selection import choose_profile, find_exemption, is_flyte_task_pod

Outcome = Literal["ignored", "exempt", "unmatched", "allowed", "patched", "denied", "errored"]
"""`errored` is keyguard's own failure, never a policy verdict: the adapters record it, `decide` never returns it."""
CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")

INJECTION_MISSING = Rule(
    id="injection-missing",
    severity=Severity.ERROR,
    title="the pod lacks keyguard's credential injection",
    fix="make sure the mutating webhook mutate.keyguard.flyte.org is installed and selects this pod; pods "
    "created while it was down must be recreated",
)
POLICY_RULES = (
    RESERVED_NAME_CONFLICT,
    SERVICE_ACCOUNT_NOT_ALLOWED,
    CROSS_ENVIRONMENT_CREDENTIALS,
    STATIC_CREDENTIALS_NOT_ALLOWED,
    INJECTION_MISSING,
    CREDENTIALS_UNREADABLE,
    CREDENTIAL_NOT_ROTATABLE,
)


@dataclass(frozen=True, slots=True)
class Decision:
    """What keyguard answers for one review. Holds names, paths and rule ids only, never a value."""

    allowed: bool
    outcome: Outcome
    profile: str | None = None
    mode: str | None = None
    findings: tuple[Finding, ...] = ()
    patch: tuple[PatchOperation, ...] = ()
    warnings: tuple[str, ...] = ()
    message: str = ""

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(sorted({f.rule.id for f in self.findings}))


def all_rules() -> tuple[Rule, ...]:
    """Every rule keyguard can report, detection first."""
    return (*detection.RULES.values(), *POLICY_RULES)


def _container_findings(kind: str, index: int, container: Mapping[str, Any]) -> Iterable[Finding]:
    raw_name = container.get("name")
    name = shown_name(raw_name) if isinstance(raw_name, str) else f"#{index}"
    where = f"spec.{kind}[{index}]"
    env = container.get("env")
    if isinstance(env, list):
        literals: list[tuple[str, str]] = []
        positions: list[int] = []
        for j, variable in enumerate(env):
            if isinstance(variable, dict):
                value, var_name = variable.get("value"), variable.get("name")
                if isinstance(value, str) and value and isinstance(var_name, str):
                    literals.append((var_name, value))
                    positions.append(j)
        for k, hit in detection.scan_env(literals):
            yield _finding(hit, f"{where}.env[{positions[k]}]", name, f"env {shown_name(literals[k][0])}")
    for field in ("command", "args"):
        items = container.get(field)
        if isinstance(items, list) and items:
            strings = [item if isinstance(item, str) else "" for item in items]
            for position, hit in detection.scan_args(strings):
                yield _finding(hit, f"{where}.{field}[{position}]", name, f"{field}[{position}]")


def _finding(hit: Hit, path: str, container: str, field: str) -> Finding:
    return Finding(
        rule=hit.rule,
        path=path,
        container=container,
        field=field,
        message=f"container {container}, {field}: {hit.detail} [{hit.rule.id}]",
    )


def find_plaintext_credentials(
    pod: Mapping[str, Any], *, kinds: Iterable[str] = CONTAINER_KINDS, skip: frozenset[str] = frozenset()
) -> list[Finding]:
    """Detection over every container of any pod; `skip` names ephemeral containers already admitted."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return []
    findings: list[Finding] = []
    for kind in kinds:
        containers = spec.get(kind)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            if isinstance(container, dict) and not (skip and container.get("name") in skip):
                findings.extend(_container_findings(kind, index, container))
    return findings


def _ephemeral_names(old: Any) -> frozenset[str]:
    spec = old.get("spec") if isinstance(old, dict) else None
    containers = spec.get("ephemeralContainers") if isinstance(spec, dict) else None
    if not isinstance(containers, list):
        return frozenset()
    return frozenset(c["name"] for c in containers if isinstance(c, dict) and isinstance(c.get("name"), str))


def _missing_injection(operations: list[PatchOperation]) -> Finding:
    places = sorted({"/".join(op["path"].split("/")[:3]) for op in operations})
    return Finding(
        rule=INJECTION_MISSING,
        path="spec",
        message=f"{INJECTION_MISSING.title}: {len(operations)} change(s) pending at {', '.join(places)} "
        f"[{INJECTION_MISSING.id}]",
    )


def _pod_name(request: AdmissionRequest, pod: Mapping[str, Any]) -> str:
    metadata = pod.get("metadata")
    if isinstance(metadata, dict):
        name = metadata.get("name") or metadata.get("generateName")
        if isinstance(name, str) and name:
            return shown_name(name)
    return shown_name(request.get("name") or "(unnamed)")


def _verdict(
    profile: Profile,
    findings: list[Finding],
    patch: list[PatchOperation],
    notes: list[str],
    pod_label: str,
) -> Decision:
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors and profile.mode == "enforce":
        problems = "; ".join(f"({n}) {f.message}" for n, f in enumerate(errors, start=1))
        fixes = " ".join(f"Fix [{rule}]: {fix}." for rule, fix in {f.rule.id: f.fix for f in errors}.items())
        message = f"keyguard denied {pod_label} (profile {profile.name}): {len(errors)} problem(s): {problems}. {fixes}"
        denied_warnings = tuple(f.message for f in findings if f.severity is Severity.WARNING)
        return Decision(False, "denied", profile.name, profile.mode, tuple(findings), (), denied_warnings, message)
    warnings: tuple[str, ...] = ()
    if profile.mode != "audit":
        warnings = tuple(f"keyguard: {f.message}" for f in findings) + tuple(f"keyguard: {n}" for n in notes)
    outcome: Outcome = "patched" if patch else "allowed"
    return Decision(True, outcome, profile.name, profile.mode, tuple(findings), tuple(patch), warnings)


def decide(
    policy: Policy,
    request: AdmissionRequest,
    *,
    mutate: bool = True,
    namespace_labels: Mapping[str, str] | None = None,
    today: date | None = None,
    force_profile: str | None = None,
) -> Decision:
    """Decide one AdmissionRequest. `mutate=False` is the validating twin: same checks, no patch, and a pod
    that still lacks the injection is itself a finding. `force_profile` (offline use) skips profile matching."""
    kind = request.get("kind")
    if not isinstance(kind, dict) or kind.get("kind") != "Pod" or kind.get("group", "") != "":
        return Decision(True, "ignored")
    pod = request.get("object")
    operation, subresource = request.get("operation"), request.get("subResource") or ""
    if not isinstance(pod, dict):
        return Decision(True, "ignored")
    creating = operation == "CREATE" and subresource == ""
    debugging = operation == "UPDATE" and subresource == "ephemeralcontainers"
    if not (creating or debugging) or not is_flyte_task_pod(policy.selection, pod):
        return Decision(True, "ignored")
    metadata = pod.get("metadata")
    namespace = request.get("namespace") or (metadata.get("namespace") if isinstance(metadata, dict) else "")
    namespace = namespace if isinstance(namespace, str) else ""
    exemption = None
    if policy.exemptions:
        exemption = find_exemption(policy, namespace=namespace, pod=pod, today=today or datetime.now(UTC).date())
    if exemption is not None:
        message = f"exempt until {exemption.expires.isoformat()} (owner {exemption.owner})"
        return Decision(True, "exempt", message=message)
    if force_profile is not None:
        profile = policy.profile(force_profile)
        if profile is None:
            raise KeyError(force_profile)
    else:
        profile = choose_profile(policy, namespace=namespace, pod=pod, namespace_labels=namespace_labels)
    if profile is None:
        return Decision(True, "unmatched")
    pod_label = f"pod {shown_name(namespace)}/{_pod_name(request, pod)}"
    if debugging:
        findings = find_plaintext_credentials(
            pod, kinds=("ephemeralContainers",), skip=_ephemeral_names(request.get("oldObject"))
        )
        return _verdict(profile, findings, [], [], pod_label)
    findings = find_plaintext_credentials(pod)
    findings.extend(cross_environment(pod, profile, policy))
    findings.extend(static_credentials(pod, profile) or not_rotatable(pod, profile))
    injection = plan_injection(pod, profile, policy_version=policy.version)
    findings.extend(injection.conflicts)
    patch: list[PatchOperation] = []
    if not injection.conflicts:
        if mutate:
            patch = injection.operations
        else:
            # The record annotations (profile, policy version) may lag a later policy edit, and a file mode
            # repair is judged by whether the containers can read (below); neither is a missing injection.
            # Volumes, mounts, env, renderer and service account are.
            repairs = {id(op) for op in injection.repairs}
            pending = [
                op for op in injection.operations if not op["path"].startswith("/metadata") and id(op) not in repairs
            ]
            if pending:
                findings.append(_missing_injection(pending))
            findings.extend(unreadable_credentials(pod, profile))
    return _verdict(profile, findings, patch, injection.notes, pod_label)


def check_pod(
    policy: Policy,
    pod: JSONObject,
    *,
    namespace: str,
    profile: str | None = None,
    namespace_labels: Mapping[str, str] | None = None,
    today: date | None = None,
    mutate: bool = True,
) -> Decision:
    """Exactly what the webhook would decide for a CREATE of `pod` in `namespace` (offline use).

    `profile` forces a profile by name (the CLI's --profile); an unknown name raises KeyError. `mutate=False` is
    the validating webhook's view, for pods already stored: a Flyte task pod that lacks the injection is a
    finding (`injection-missing`)."""
    request: AdmissionRequest = {
        "uid": "offline",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "namespace": namespace,
        "object": pod,
    }
    return decide(policy, request, mutate=mutate, namespace_labels=namespace_labels, today=today, force_profile=profile)
