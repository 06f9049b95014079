"""Kubernetes objects that are or contain a pod, judged by the webhook's own engine.

Pods, PodTemplates, the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs,
and AdmissionReviews. A Flyte task pod gets exactly the webhook's decision (`check_pod`, or `decide` for a
review): a pod it would simply inject is clean; any finding of its decision is a finding here. Any other pod
(not selected, exempt, unmatched) still has every container scanned: a key written into a manifest has leaked
into the repository whether or not the pod ever reaches the webhook. A PodTemplate's env that a template fills
with a credential is a warning: Flyte merges the PodTemplate into every task pod that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.admission_types import AdmissionRequest, JSONObject
from webhook.check.model import CheckOptions, Located, Path, parse_engine_path
from webhook.check.patch_view import injection_diff
from webhook.check.rules import ENV_CREDENTIAL_TEMPLATED
from webhook.check.templates import is_placeholder
from webhook.detection import is_credential_name
from webhook.engine import CONTAINER_KINDS, Decision, check_pod, decide, find_plaintext_credentials
from webhook.findings import Finding

# Where each workload kind keeps its pod template (() for a Pod itself).
TEMPLATE_PATHS: dict[str, Path] = {
    "Pod": (),
    "PodTemplate": ("template",),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def _get(obj: Any, path: Path) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _namespace(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    return namespace if isinstance(namespace, str) and namespace else "default"


def is_workload(data: Mapping[str, Any]) -> bool:
    kind = data.get("kind")
    if kind == "AdmissionReview":
        return isinstance(data.get("request"), dict)
    return isinstance(kind, str) and kind in TEMPLATE_PATHS


def _located(findings: tuple[Finding, ...] | list[Finding], prefix: Path) -> list[Located]:
    return [Located(prefix + parse_engine_path(f.path), f.rule, f.message, f.fix) for f in findings]


def _judge(decision: Decision, pod: Mapping[str, Any], prefix: Path) -> list[Located]:
    if decision.outcome in ("ignored", "exempt", "unmatched"):
        return _located(find_plaintext_credentials(pod), prefix)
    return _located(decision.findings, prefix)


def templated_credentials(template: Mapping[str, Any], prefix: Path) -> list[Located]:
    """A PodTemplate is merged by Flyte into every task pod that uses it (the default pod template, or
    `pod_template_name`): a credential a template fills into its env reaches each of those pods."""
    found: list[Located] = []
    spec = template.get("spec")
    for kind in CONTAINER_KINDS:
        containers = spec.get(kind) if isinstance(spec, dict) else None
        for index, container in enumerate(containers if isinstance(containers, list) else []):
            env = container.get("env") if isinstance(container, dict) else None
            for position, var in enumerate(env if isinstance(env, list) else []):
                name, value = (var.get("name"), var.get("value")) if isinstance(var, dict) else (None, None)
                if (
                    isinstance(name, str)
                    and isinstance(value, str)
                    and is_placeholder(value)
                    and is_credential_name(name)
                ):
                    message = (
                        f"variable {name} is filled in by a template at deploy time, in a PodTemplate Flyte merges "
                        f"into every task pod that uses it: the rendered key reaches each of them "
                        f"[{ENV_CREDENTIAL_TEMPLATED.id}]"
                    )
                    fix = (
                        f"replace the value of `{name}` with valueFrom.secretKeyRef, or drop it and let keyguard "
                        "mount the storage Secret"
                    )
                    path = (*prefix, "spec", kind, index, "env", position)
                    found.append(Located(path, ENV_CREDENTIAL_TEMPLATED, message, fix))
    return found


def pod_of(data: Mapping[str, Any]) -> tuple[JSONObject, Path] | None:
    """The pod a workload object describes and where it sits in the object."""
    prefix = TEMPLATE_PATHS[str(data.get("kind"))]
    if not prefix:
        return dict(data), ()
    template = _get(data, prefix)
    if not isinstance(template, dict):
        return None
    pod: JSONObject = {"apiVersion": "v1", "kind": "Pod", "metadata": template.get("metadata") or {}}
    pod["spec"] = template.get("spec")
    return pod, prefix


def scan_workload(
    data: Mapping[str, Any], options: CheckOptions, label: str
) -> tuple[list[Located], str | None, str | None]:
    """Findings for one workload or AdmissionReview, the injection diff when asked for, or a skip reason."""
    if data.get("kind") == "AdmissionReview":
        request: AdmissionRequest = data["request"]
        pod = request.get("object")
        if not isinstance(pod, dict):
            return [], None, "an AdmissionReview without an object"
        decision = decide(options.policy, request, force_profile=options.profile)
        prefix: Path = ("request", "object")
    else:
        found = pod_of(data)
        if found is None:
            return [], None, f"a {data.get('kind')} without a pod template"
        pod, prefix = found
        stored_pod = options.stored and data.get("kind") == "Pod"
        namespace = _namespace(data)
        decision = check_pod(
            options.policy,
            pod,
            namespace=namespace,
            profile=options.profile,
            namespace_labels=options.namespace_labels.get(namespace),
            mutate=not stored_pod,
        )
    diff = None
    if options.show_patch and decision.patch:
        diff = injection_diff(pod, decision.patch, label)
    judged = _judge(decision, pod, prefix)
    if data.get("kind") == "PodTemplate":
        judged += templated_credentials(pod, prefix)
    return judged, diff, None
