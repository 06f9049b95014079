"""Issue 11: whatever uid and gid a task image runs as, it can read the credentials keyguard injects.

The kubelet's ownership rules are modelled in webhook/readability.py. The model is first held to what a real kubelet
1.37.2 showed for keyguard's old injection (0440 files, renderer in group 0), then every row of
tests/credential_access_matrix.py is judged on a pod injected by the current engine.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from tests.conftest import apply_patch
from tests.credential_access_matrix import ROWS, Row
from tests.flyte_pods import task_pod
from webhook.engine import check_pod
from webhook.injection import CREDS_VOLUME, RENDERER_NAME
from webhook.policy import Policy
from webhook.readability import FileOwner, can_read, identity, rendered_file, secret_file


def injected(policy: Policy, row: Row) -> dict[str, Any]:
    pod = task_pod()
    pod["spec"]["securityContext"] = copy.deepcopy(row.pod_security)
    pod["spec"]["containers"][0]["securityContext"] = copy.deepcopy(row.container_security)
    decision = check_pod(policy, pod, namespace="flytesnacks-development")
    assert decision.outcome == "patched", decision.message
    return apply_patch(pod, decision.patch)


def files(pod: dict[str, Any]) -> tuple[dict[str, Any], FileOwner, FileOwner]:
    spec = pod["spec"]
    context = spec.get("securityContext") or {}
    volume = next(v for v in spec["volumes"] if v["name"] == CREDS_VOLUME)
    renderer = next(c for c in spec["initContainers"] if c["name"] == RENDERER_NAME)
    return (
        context,
        secret_file(context, volume["secret"]["defaultMode"]),
        rendered_file(context, identity(context, renderer)),
    )


# What the real kubelet showed for the old injection (issue 11): uid 1000 / gid 1000 is denied both files without an
# fsGroup, and reads both with fsGroup 2000.
KUBELET_PROBE = (
    ({}, {"runAsUser": 1000, "runAsGroup": 1000}, False, False),
    ({"fsGroup": 2000}, {"runAsUser": 1000, "runAsGroup": 1000}, True, True),
)


@pytest.mark.parametrize(("pod_context", "container_context", "reads_secret", "reads_rendered"), KUBELET_PROBE)
def test_the_model_reproduces_the_real_kubelet_on_the_old_injection(
    pod_context: dict[str, Any], container_context: dict[str, Any], reads_secret: bool, reads_rendered: bool
) -> None:
    old_renderer = identity(pod_context, {"securityContext": {"runAsUser": 65532, "runAsGroup": 0}})
    old_rendered = dataclasses.replace(rendered_file(pod_context, old_renderer), mode=0o440)
    task = identity(pod_context, {"securityContext": container_context})
    assert can_read(task, secret_file(pod_context, 0o440)) is reads_secret
    assert can_read(task, old_rendered) is reads_rendered


@pytest.mark.parametrize("row", ROWS, ids=[r.label for r in ROWS])
def test_every_task_user_reads_its_credentials(policy: Policy, row: Row) -> None:
    pod = injected(policy, row)
    context, secret, rendered = files(pod)
    task = identity(context, pod["spec"]["containers"][0])
    assert (can_read(task, secret), can_read(task, rendered)) == (row.reads_secret, row.reads_rendered)
    renderer = identity(context, next(c for c in pod["spec"]["initContainers"] if c["name"] == RENDERER_NAME))
    assert can_read(renderer, secret)
    # and the validating webhook, `keyguard check --cluster` and doctor see a healthy pod
    validated = check_pod(policy, pod, namespace="flytesnacks-development", mutate=False)
    assert validated.findings == (), [f.message for f in validated.findings]


def test_files_stay_read_only_to_the_task(policy: Policy) -> None:
    pod = injected(policy, ROWS[2])
    _, secret, rendered = files(pod)
    assert not (secret.mode | rendered.mode) & 0o222  # no write bit for anyone, owner included
    task_mounts = pod["spec"]["containers"][0]["volumeMounts"]
    assert all(m["readOnly"] for m in task_mounts if m["name"].startswith("keyguard-"))


def old_injection(policy: Policy) -> dict[str, Any]:
    """A pod injected by keyguard 0.1.0: Secret files 0440, renderer in group 0."""
    pod = injected(policy, ROWS[2])
    next(v for v in pod["spec"]["volumes"] if v["name"] == CREDS_VOLUME)["secret"]["defaultMode"] = 0o440
    next(c for c in pod["spec"]["initContainers"] if c["name"] == RENDERER_NAME)["securityContext"]["runAsGroup"] = 0
    return pod


def test_a_stored_pod_with_the_old_modes_is_reported_unreadable(policy: Policy) -> None:
    decision = check_pod(policy, old_injection(policy), namespace="flytesnacks-development", mutate=False)
    assert [f.rule.id for f in decision.findings] == ["credentials-unreadable"]
    finding = decision.findings[0]
    assert finding.container == "a4lmk5ws6qkfbhx94dxc-n0-0"
    assert "uid 1000" in finding.message and "0440" in finding.message
    assert decision.allowed  # a warning: the validating webhook does not refuse the pod for it


def test_the_webhook_repairs_the_old_modes_and_a_second_review_is_a_no_op(policy: Policy) -> None:
    pod = old_injection(policy)
    decision = check_pod(policy, pod, namespace="flytesnacks-development")
    assert [op["path"] for op in decision.patch] == [
        f"/spec/volumes/{[v['name'] for v in pod['spec']['volumes']].index(CREDS_VOLUME)}/secret/defaultMode"
    ]
    repaired = apply_patch(pod, decision.patch)
    assert check_pod(policy, repaired, namespace="flytesnacks-development").patch == ()
    assert check_pod(policy, repaired, namespace="flytesnacks-development", mutate=False).findings == ()
