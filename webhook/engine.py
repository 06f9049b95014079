"""The admission engine: one pure function from a policy and an AdmissionRequest to a Decision.

The webhook, `keyguard review` and `keyguard check` all call `decide`, so they cannot disagree. It does no I/O,
imports no web framework or Kubernetes client, and neither copies nor diffs the pod: selection, detection and
injection read the request dict in place and return findings and hand-built patch operations.

Two steps. `gate` asks whether keyguard decides at all: a pod create (or an ephemeral-container update) of a Flyte
task pod, returned as a `PodUnderReview`, else nothing (`ignored`). `decide_pod` then asks: exempt? which
profile? what leaks? what must be injected? `check_pod` (offline) builds the PodUnderReview itself and calls
`decide_pod`, so no request is faked. The profile's mode turns findings into a verdict:
- enforce: any error finding denies (403) and nothing is patched;
- warn: admitted, patched, every finding returned as an AdmissionResponse warning;
- audit: admitted, patched, findings only recorded.
Warning-severity findings never deny. `request.dryRun` changes nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, NamedTuple

from webhook import detection
from webhook.admission_types import CONTAINER_KINDS, AdmissionRequest, JSONObject, PatchOperation
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
    references,
    static_credentials,
)
from webhook.selection import choose_profile, find_exemption, is_flyte_task_pod

Outcome = Literal["ignored", "exempt", "unmatched", "allowed", "patched", "denied", "errored"]
"""`errored` is keyguard's own failure, never a policy verdict: the adapters record it, `decide` never returns it."""

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
        if not self.findings:  # most reviews: asked for by the metrics and the audit line of each
            return ()
        return tuple(sorted({f.rule.id for f in self.findings}))


def all_rules() -> tuple[Rule, ...]:
    """Every rule keyguard can report, detection first."""
    return (*detection.RULES.values(), *POLICY_RULES)


def _container_findings(kind: str, index: int, container: Mapping[str, Any]) -> Iterable[Finding]:
    raw_name = container.get("name")
    name = shown_name(raw_name) if isinstance(raw_name, str) else f"#{index}"
    where = f"spec.{kind}[{index}]"
    env = container.get("env")
    if isinstance(env, list) and env:
        for j, hit in detection.scan_env(env):
            yield _finding(hit, f"{where}.env[{j}]", name, f"env {shown_name(env[j]['name'])}")
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
            if isinstance(container, dict) and not (skip and _admitted(container.get("name"), skip)):
                findings.extend(_container_findings(kind, index, container))
    return findings


def _admitted(name: object, skip: frozenset[str]) -> bool:
    """Whether an ephemeral container was already admitted; a name of any other type is simply not (an unhashable
    one would raise in the set lookup)."""
    return isinstance(name, str) and name in skip


def _ephemeral_names(old: Any) -> frozenset[str]:
    spec = old.get("spec") if isinstance(old, dict) else None
    containers = spec.get("ephemeralContainers") if isinstance(spec, dict) else None
    if not isinstance(containers, list):
        return frozenset()
    return frozenset(c["name"] for c in containers if isinstance(c, dict) and isinstance(c.get("name"), str))


def _missing_injection(missing: Mapping[str, int]) -> Finding:
    """`missing`: how many changes the injection still needs, by the part of the pod they go to."""
    places = sorted(missing)
    return Finding(
        rule=INJECTION_MISSING,
        path="spec",
        message=f"{INJECTION_MISSING.title}: {sum(missing.values())} change(s) pending at {', '.join(places)} "
        f"[{INJECTION_MISSING.id}]",
    )


def _verdict(
    profile: Profile,
    findings: list[Finding],
    patch: list[PatchOperation],
    notes: list[str],
    review: PodUnderReview,
) -> Decision:
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors and profile.mode == "enforce":
        problems = "; ".join(f"({n}) {f.message}" for n, f in enumerate(errors, start=1))
        fixes = " ".join(f"Fix [{rule}]: {fix}." for rule, fix in {f.rule.id: f.fix for f in errors}.items())
        pod_label = f"pod {shown_name(review.namespace)}/{review.name}"
        message = f"keyguard denied {pod_label} (profile {profile.name}): {len(errors)} problem(s): {problems}. {fixes}"
        denied_warnings = tuple(f.message for f in findings if f.severity is Severity.WARNING)
        return Decision(False, "denied", profile.name, profile.mode, tuple(findings), (), denied_warnings, message)
    warnings: tuple[str, ...] = ()
    if profile.mode != "audit" and (findings or notes):
        warnings = tuple([f"keyguard: {f.message}" for f in findings] + [f"keyguard: {n}" for n in notes])
    outcome: Outcome = "patched" if patch else "allowed"
    return Decision(True, outcome, profile.name, profile.mode, tuple(findings), tuple(patch), warnings)


class PodUnderReview(NamedTuple):
    """What the gate lets through to a decision: a Flyte task pod, its namespace, the name messages show, and for
    an `ephemeralcontainers` update the names of the ephemeral containers admitted before (None for a create)."""

    pod: JSONObject
    namespace: str
    name: str
    admitted_ephemeral: frozenset[str] | None = None


IGNORED = Decision(True, "ignored")


def _namespace_of(pod: Mapping[str, Any], given: object) -> str:
    metadata = pod.get("metadata")
    namespace = given or (metadata.get("namespace") if isinstance(metadata, dict) else "")
    return namespace if isinstance(namespace, str) else ""


def _name_of(pod: Mapping[str, Any], given: object) -> str:
    metadata = pod.get("metadata")
    if isinstance(metadata, dict):
        name = metadata.get("name") or metadata.get("generateName")
        if isinstance(name, str) and name:
            return shown_name(name)
    return shown_name(given if isinstance(given, str) and given else "(unnamed)")


def gate(policy: Policy, request: AdmissionRequest) -> PodUnderReview | None:
    """The request's pod when keyguard decides on it: a core/v1 Pod being created (no subresource), or gaining
    ephemeral containers, that the policy's selection calls a Flyte task pod. None: answer `ignored`."""
    kind = request.get("kind")
    if not isinstance(kind, dict) or kind.get("kind") != "Pod" or kind.get("group", "") != "":
        return None
    pod = request.get("object")
    if not isinstance(pod, dict):
        return None
    operation, subresource = request.get("operation"), request.get("subResource") or ""
    creating = operation == "CREATE" and subresource == ""
    debugging = operation == "UPDATE" and subresource == "ephemeralcontainers"
    if not (creating or debugging) or not is_flyte_task_pod(policy.selection, pod):
        return None
    return PodUnderReview(
        pod,
        _namespace_of(pod, request.get("namespace")),
        _name_of(pod, request.get("name")),
        _ephemeral_names(request.get("oldObject")) if debugging else None,
    )


def decide_pod(
    policy: Policy,
    review: PodUnderReview,
    *,
    mutate: bool = True,
    namespace_labels: Mapping[str, str] | None = None,
    today: date | None = None,
    force_profile: str | None = None,
) -> Decision:
    """The decision on a pod the gate let through: exemption, profile, findings, injection, then the mode."""
    pod, namespace = review.pod, review.namespace
    exemption = None
    if policy.exemptions:
        exemption = find_exemption(policy, namespace=namespace, pod=pod, today=today or datetime.now(UTC).date())
    if exemption is not None:
        message = f"exempt until {exemption.expires.isoformat()} (owner {exemption.owner})"
        return Decision(True, "exempt", message=message)
    profile = (
        policy.named_profile(force_profile)
        if force_profile is not None
        else choose_profile(policy, namespace=namespace, pod=pod, namespace_labels=namespace_labels)
    )
    if profile is None:
        return Decision(True, "unmatched")
    if review.admitted_ephemeral is not None:
        findings = find_plaintext_credentials(pod, kinds=("ephemeralContainers",), skip=review.admitted_ephemeral)
        return _verdict(profile, findings, [], [], review)
    findings = find_plaintext_credentials(pod)
    refs = references(pod)
    findings.extend(cross_environment(refs, profile, policy))
    findings.extend(static_credentials(refs, profile) or not_rotatable(pod, refs, profile))
    injection = plan_injection(pod, profile, policy_version=policy.version)
    findings.extend(injection.conflicts)
    patch: list[PatchOperation] = []
    if not injection.conflicts:
        if mutate:
            patch = injection.operations
        else:
            if injection.missing:
                findings.append(_missing_injection(injection.missing))
            findings.extend(unreadable_credentials(pod, profile))  # what a mode repair would fix
    return _verdict(profile, findings, patch, injection.notes, review)


def decide(
    policy: Policy,
    request: AdmissionRequest,
    *,
    mutate: bool = True,
    namespace_labels: Mapping[str, str] | None = None,
    today: date | None = None,
    force_profile: str | None = None,
) -> Decision:
    """Decide one AdmissionRequest: the gate, then the decision on the pod. `mutate=False` is the validating twin:
    same checks, no patch, and a pod that still lacks the injection is itself a finding. `force_profile` (offline
    use) skips profile matching."""
    review = gate(policy, request)
    if review is None:
        return IGNORED
    return decide_pod(
        policy, review, mutate=mutate, namespace_labels=namespace_labels, today=today, force_profile=force_profile
    )


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
    """Exactly what the webhook would decide for a CREATE of `pod` in `namespace` (offline use): the gate's
    question for a create is only whether it is a Flyte task pod.

    `profile` forces a profile by name (the CLI's --profile); an unknown name raises UnknownProfile. `mutate=False`
    is the validating webhook's view, for pods already stored: a Flyte task pod that lacks the injection is a
    finding (`injection-missing`)."""
    if not is_flyte_task_pod(policy.selection, pod):
        return IGNORED
    review = PodUnderReview(pod, _namespace_of(pod, namespace), _name_of(pod, None))
    return decide_pod(
        policy, review, mutate=mutate, namespace_labels=namespace_labels, today=today, force_profile=profile
    )
