"""`keyguard check` and the webhook cannot disagree: for every pod of the test corpus, a file holding the pod gets
exactly the rule ids (and paths) of `webhook.engine.decide` on the same pod; pods the webhook ignores (not Flyte
pods, exempt, unmatched) get exactly `find_plaintext_credentials`. The corpus is the pod builders of
tests/flyte_pods.py and the pods of tests/test_engine.py, tests/test_injection.py and tests/test_detection_rules.py.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import test_detection_rules as detection_cases
from tests import test_engine as engine_cases
from tests import test_injection as injection_cases
from tests.conftest import apply_patch
from tests.flyte_pods import container, flyte2_pod, plain_pod, review, task_pod
from tests.test_check_support import check_json, write_yaml
from webhook.check.model import CheckOptions
from webhook.check.scan import check_objects
from webhook.engine import decide, find_plaintext_credentials
from webhook.policy import Policy, default_policy, parse_policy, parse_policy_text

# Every check test runs with each YAML loader `keyguard check` may use.
pytestmark = pytest.mark.usefixtures("yaml_loader")

POLICIES: dict[str, dict[str, Any]] = {
    "warn": {"apiVersion": "keyguard.flyte.org/v1", "kind": "Policy", "profiles": [{"name": "p", "mode": "warn"}]},
    "allow-spark": {
        "apiVersion": "keyguard.flyte.org/v1",
        "kind": "Policy",
        "profiles": [{"name": "p", "serviceAccount": {"allowed": ["spark"]}}],
    },
    "exempt-dev-prod-only": {
        "apiVersion": "keyguard.flyte.org/v1",
        "kind": "Policy",
        "profiles": [{"name": "prod", "match": {"domains": ["production"]}}],
        "exemptions": [{"namespaces": ["flytesnacks-development"], "owner": "me@example.com", "expires": "2099-01-01"}],
    },
}


def _with_value(value: str, *, where: str = "env") -> dict[str, Any]:
    pod = task_pod()
    if where == "env":
        pod["spec"]["containers"][0]["env"].append({"name": "SOME_SETTING", "value": value})
    else:
        pod["spec"]["containers"][0]["args"] += ["--opt", value]
    return pod


def _corpus() -> list[tuple[str, dict[str, Any]]]:
    pods: list[tuple[str, dict[str, Any]]] = [
        ("task pod", task_pod()),
        ("flyte 2 pod", flyte2_pod()),
        ("plain pod", plain_pod()),
        ("plain pod in a flyte namespace", plain_pod("flytesnacks-development")),
        ("multi-container", task_pod(containers=[container("main"), container("sidecar", env=[])])),
        ("service account admin", task_pod(service_account="admin")),
        ("service account spark", task_pod(service_account="spark")),
        ("staging task pod", task_pod(namespace="flytesnacks-staging", domain="staging")),
    ]
    for leak in engine_cases.LEAKS:
        pods.append((f"engine {leak.__name__}", leak(engine_cases.fake_secret())[0]))
    several = engine_cases.copilot_stow_args(engine_cases.fake_secret())[0]
    several["spec"]["containers"][0]["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": "x" * 12})
    pods.append(("engine several findings", several))
    pods += [
        ("engine secretKeyRef", engine_cases._secret_key_ref()),
        ("engine references", engine_cases._references_in_args()),
        ("engine hashes", engine_cases._hashes_and_paths()),
    ]
    pods += [(f"injection {label}", pod) for label, pod in injection_cases._pods()]
    pods += [
        ("injection volume clash", injection_cases._user_volume_clash()),
        ("injection mount path clash", injection_cases._user_mount_path_clash()),
        ("injection init container clash", injection_cases._user_init_container_clash()),
        ("injection subPath", injection_cases._subpath_mount()),
    ]
    for rule, make in detection_cases.VALUE_LEAKS:
        pods.append((f"detection env {rule}", _with_value(make())))
        pods.append((f"detection args {rule}", _with_value(make(), where="args")))
    for label, make in detection_cases.LOOK_ALIKES:
        pods.append((f"look-alike {label}", _with_value(make())))
    for name in ("minio_root_user", "minio_root_password"):  # the first once passed the args prefilter unseen
        for args, _ in detection_cases._command_line_forms(name):
            pod = task_pod()
            pod["spec"]["containers"][0]["args"] = args
            pods.append((f"command line {args[1:]}", pod))
    leaky_plain = plain_pod()
    leaky_plain["spec"]["initContainers"] = [
        {"name": "i", "image": "x", "env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": engine_cases.fake_secret()}]}
    ]
    pods.append(("plain pod with a key", leaky_plain))
    return pods


CORPUS = _corpus()


def _expected(policy: Policy, pod: dict[str, Any]) -> tuple[list[str], list[str]]:
    decision = decide(policy, review(copy.deepcopy(pod))["request"])
    if decision.outcome in ("ignored", "exempt", "unmatched"):
        findings = find_plaintext_credentials(pod)
    else:
        findings = list(decision.findings)
    return sorted({f.rule.id for f in findings}), sorted({f.path for f in findings})


@pytest.mark.parametrize("policy_name", ["default", *POLICIES])
def test_check_agrees_with_the_webhook_on_every_pod(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, policy_name: str
) -> None:
    """One multi-document file holding the whole corpus; each document judged on its own."""
    args: list[str] = []
    policy = default_policy()
    if policy_name != "default":
        policy = parse_policy(POLICIES[policy_name], policy_name)
        policy_file = tmp_path / "policy.yaml"
        policy_file.write_text(yaml.safe_dump(POLICIES[policy_name]))
        args = ["--policy", str(policy_file)]
    path = write_yaml(tmp_path / "corpus.yaml", *(pod for _, pod in CORPUS))
    _, result = check_json(capsys, str(path), *args)
    assert result["summary"]["checked"] == len(CORPUS)
    for number, (label, pod) in enumerate(CORPUS, start=1):
        findings = [f for f in result["findings"] if f["document"] == number]
        rules, paths = _expected(policy, pod)
        assert sorted({f["rule"] for f in findings}) == rules, label
        assert sorted({f["path"] for f in findings}) == paths, label


@pytest.mark.parametrize("policy_name", ["default", *POLICIES])
@pytest.mark.parametrize("mutate", [True, False], ids=["mutate", "validate"])
def test_dry_run_gets_the_same_verdict_and_patch(policy_name: str, mutate: bool) -> None:
    policy = default_policy() if policy_name == "default" else parse_policy(POLICIES[policy_name], policy_name)
    for label, pod in CORPUS:
        real = decide(policy, review(copy.deepcopy(pod), uid="u")["request"], mutate=mutate)
        dry = decide(policy, review(copy.deepcopy(pod), uid="u", dry_run=True)["request"], mutate=mutate)
        assert dry == real, label


def test_a_file_per_pod_agrees_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy = default_policy()
    for index, (label, pod) in enumerate(CORPUS[:: max(1, len(CORPUS) // 12)]):
        path = write_yaml(tmp_path / f"pod{index}.yaml", pod)
        _, result = check_json(capsys, str(path))
        assert sorted({f["rule"] for f in result["findings"]}) == _expected(policy, pod)[0], label


def test_admission_reviews_agree_including_ephemeral_containers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = default_policy()
    old = apply_patch(task_pod(), decide(policy, review(task_pod())["request"]).patch)
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [
        {"name": "debugger", "image": "busybox", "env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "k" * 30}]}
    ]
    bodies = [
        review(new, operation="UPDATE", sub_resource="ephemeralcontainers", old=old),
        review(engine_cases.sandbox_default_env_vars(engine_cases.fake_secret())[0]),
        review(task_pod()),
    ]
    for index, body in enumerate(bodies):
        path = write_yaml(tmp_path / f"review{index}.yaml", body)
        _, result = check_json(capsys, str(path))
        decision = decide(policy, body["request"])
        assert tuple(sorted({f["rule"] for f in result["findings"]})) == decision.rule_ids
        assert all(f["path"].startswith("request.object.spec.") for f in result["findings"])


def test_check_cluster_chooses_profiles_by_namespace_labels() -> None:
    """Only a live cluster knows namespace labels: with them, the labelled profile (and its service-account rule)
    applies; without them no profile matches and a clean pod is left alone, as the webhook would."""
    policy = parse_policy_text(
        "apiVersion: keyguard.flyte.org/v1\nkind: Policy\nprofiles:\n"
        "  - name: staging\n    match: {namespaceLabels: {flyte.org/domain: staging}}\n",
        "policy.yaml",
    )
    pod = task_pod(namespace="flytesnacks-staging", domain="staging", service_account="spark")
    labels = {"flytesnacks-staging": {"flyte.org/domain": "staging"}}
    known = check_objects([("cluster", pod)], CheckOptions(policy=policy, namespace_labels=labels))
    unknown = check_objects([("cluster", pod)], CheckOptions(policy=policy))
    assert [f.rule.id for f in known.findings] == ["service-account-not-allowed"]
    assert unknown.findings == []
