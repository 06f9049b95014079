"""Which pods keyguard acts on, which profile applies, and whether an exemption holds.

Selection must be cheap and predictable: a few dict lookups on labels and owner references, glob matching on the
namespace name. Anything that is not a Flyte task pod is admitted untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from fnmatch import fnmatchcase
from typing import Any

from webhook.policy import Exemption, Match, Policy, Profile, Selection


def _labels(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = pod.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return labels if isinstance(labels, dict) else {}


def is_flyte_task_pod(selection: Selection, pod: Mapping[str, Any]) -> bool:
    """A pod is a Flyte task pod when it carries one complete label set or is owned by a Flyte workflow."""
    labels = _labels(pod)
    for label_set in selection.label_sets:
        if all(map(labels.__contains__, label_set)):  # no generator frame: asked of every pod the API server sends
            return True
    metadata = pod.get("metadata")
    owners = metadata.get("ownerReferences") if isinstance(metadata, dict) else None
    if isinstance(owners, list):
        kinds = {kind.lower() for kind in selection.owner_kinds}
        for owner in owners:
            kind = owner.get("kind") if isinstance(owner, dict) else None
            if isinstance(kind, str) and kind.lower() in kinds:
                return True
    return False


def _matches(
    match: Match, *, namespace: str, pod_labels: Mapping[str, Any], namespace_labels: Mapping[str, str] | None
) -> bool:
    if match.namespaces and not any(fnmatchcase(namespace, pattern) for pattern in match.namespaces):
        return False
    if match.domains and pod_labels.get("domain") not in match.domains:
        return False
    if match.namespace_labels:
        if namespace_labels is None:
            return False
        if any(namespace_labels.get(k) != v for k, v in match.namespace_labels.items()):
            return False
    return True


def choose_profile(
    policy: Policy,
    *,
    namespace: str,
    pod: Mapping[str, Any],
    namespace_labels: Mapping[str, str] | None = None,
) -> Profile | None:
    """The first profile whose match holds; None when no profile matches (the pod is then left alone).

    Profiles that match on namespace labels only match when the caller knows the namespace's labels.
    """
    labels = _labels(pod)
    for profile in policy.profiles:
        if _matches(profile.match, namespace=namespace, pod_labels=labels, namespace_labels=namespace_labels):
            return profile
    return None


def find_exemption(policy: Policy, *, namespace: str, pod: Mapping[str, Any], today: date) -> Exemption | None:
    """The first exemption in force (not expired) that covers this namespace or these pod labels."""
    labels = _labels(pod)
    for exemption in policy.exemptions:
        if exemption.expires < today:
            continue
        if any(fnmatchcase(namespace, pattern) for pattern in exemption.namespaces):
            return exemption
        if exemption.pod_labels and all(labels.get(k) == v for k, v in exemption.pod_labels.items()):
            return exemption
    return None
