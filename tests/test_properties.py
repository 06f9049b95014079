"""Properties that must hold for any pod, not just the ones we thought of (hypothesis).

- the engine never raises, whatever the pod looks like;
- on well-formed Flyte task pods the patch applies, the result validates against the Kubernetes Pod schema, and a
  second review yields no operations;
- a secret planted anywhere never appears in any output (decision, response, warnings, message).
"""

from __future__ import annotations

import string
from typing import Any

import kubernetes_validate
import orjson
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tests.conftest import apply_patch
from tests.flyte_pods import review, task_pod
from tests.leaks import assert_not_leaked
from webhook.engine import decide
from webhook.policy import default_policy, parse_policy
from webhook.review import respond

POLICY = default_policy()
# per-environment Secrets and service accounts, and the refresher sidecar: every planner and rule has work to do
ENVIRONMENTS = parse_policy(
    {
        "apiVersion": "keyguard.flyte.org/v1",
        "kind": "Policy",
        "profiles": [
            {
                "name": env,
                "match": {"domains": [env]} if env != "other" else {},
                "credentials": {"secretName": f"creds-{env}", "refresh": "watch"},
                "serviceAccount": {"name": f"task-{env}"},
            }
            for env in ("development", "production", "other")
        ],
    },
    "properties",
)
NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)
ENV_NAMES = st.one_of(
    st.from_regex(r"[A-Z_][A-Z0-9_]{0,30}", fullmatch=True),
    st.sampled_from(["AWS_SECRET_ACCESS_KEY", "FLYTE_AWS_ACCESS_KEY_ID", "_FSEC_S3_KEY", "AWS_REGION", "PATH"]),
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), TEXT)
ANYTHING = st.recursive(
    JSON_LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=20
)


@st.composite
def arbitrary_pods(draw: st.DrawFn) -> dict[str, Any]:
    """Pods with Flyte labels and anything at all in the places keyguard reads."""
    pod = draw(st.dictionaries(st.sampled_from(["metadata", "spec", "kind"]), ANYTHING, max_size=3))
    if draw(st.booleans()):
        pod["metadata"] = {"labels": {"execution-id": "e", "node-id": "n"}, "annotations": draw(ANYTHING)}
    if draw(st.booleans()):
        pod["spec"] = draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "containers",
                        "initContainers",
                        "ephemeralContainers",
                        "volumes",
                        "serviceAccountName",
                        "automountServiceAccountToken",
                    ]
                ),
                st.one_of(
                    ANYTHING,
                    st.lists(
                        st.dictionaries(
                            st.sampled_from(["name", "env", "args", "command", "volumeMounts"]), ANYTHING, max_size=5
                        ),
                        max_size=3,
                    ),
                ),
                max_size=6,
            )
        )
    return pod


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arbitrary_pods(), st.sampled_from(["CREATE", "UPDATE"]), st.booleans())
# Found by this property: an ephemeral container whose name is a list, next to an admitted one, raised TypeError.
@example({"metadata": {}, "spec": {"ephemeralContainers": [{"name": ""}, {"name": []}]}}, "UPDATE", True)
def test_engine_never_raises(pod: dict[str, Any], operation: str, mutate: bool) -> None:
    body = review(
        pod,
        operation=operation,
        sub_resource="ephemeralcontainers" if operation == "UPDATE" else None,
        old=pod if operation == "UPDATE" else None,
    )
    for policy in (POLICY, ENVIRONMENTS):
        decision = decide(policy, body["request"], mutate=mutate)
        orjson.dumps(respond("uid", decision))


@st.composite
def flyte_pods(draw: st.DrawFn) -> dict[str, Any]:
    pod = task_pod()
    containers = []
    for i in range(draw(st.integers(1, 3))):
        env = [
            {"name": n, "value": v}
            for n, v in draw(
                st.dictionaries(
                    st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True),
                    st.text(string.ascii_letters, max_size=12),
                    max_size=4,
                )
            ).items()
            if "KEY" not in n and "SECRET" not in n and "TOKEN" not in n and "PASSWORD" not in n
        ]
        c: dict[str, Any] = {"name": f"c{i}", "image": "busybox"}
        if env or draw(st.booleans()):
            c["env"] = env
        if draw(st.booleans()):
            c["volumeMounts"] = [
                {"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
            ]
        containers.append(c)
    pod["spec"]["containers"] = containers
    if draw(st.booleans()):
        pod["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    if draw(st.booleans()):
        del pod["spec"]["volumes"]
        for c in containers:
            c.pop("volumeMounts", None)
    if draw(st.booleans()):
        del pod["metadata"]["annotations"]
    if draw(st.booleans()):
        pod["spec"].pop("serviceAccountName")
        pod["spec"].pop("serviceAccount")
    return pod


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flyte_pods())
def test_patches_apply_validate_and_are_idempotent(pod: dict[str, Any]) -> None:
    decision = decide(POLICY, review(pod)["request"])
    assert decision.allowed, decision.message
    patched = apply_patch(pod, decision.patch)
    kubernetes_validate.validate(patched, "1.37.0", strict=True)
    again = decide(POLICY, review(patched)["request"])
    assert again.patch == ()


SECRET_ALPHABET = string.ascii_letters + string.digits + "/+"


@settings(max_examples=150, deadline=None)
@given(
    st.text(SECRET_ALPHABET, min_size=12, max_size=60),
    st.sampled_from(["env", "args", "command", "init-env", "ephemeral-env"]),
    st.sampled_from(["AWS_SECRET_ACCESS_KEY", "FLYTE_AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_KEY", "_FSEC_GROUP_KEY"]),
)
def test_no_planted_secret_appears_in_any_output(secret: str, place: str, name: str) -> None:
    outputs = [_outputs(_planted(other, place, name)) for other in ("0" * len(secret), "1" * len(secret))]
    assume(not any(secret in text for text in outputs))  # the value happens to be a word keyguard always writes
    leaking = _planted(secret, place, name)
    for mutate in (True, False):
        decision = decide(POLICY, review(leaking)["request"], mutate=mutate)
        assert not decision.allowed
    assert_not_leaked(secret, _outputs(leaking), "the decision or the AdmissionReview response")


def _outputs(pod: dict[str, Any]) -> str:
    texts = []
    for mutate in (True, False):
        decision = decide(POLICY, review(pod, uid="uid")["request"], mutate=mutate)
        texts.append(orjson.dumps(respond("uid", decision)).decode() + repr(decision))
    return "".join(texts)


def _planted(secret: str, place: str, name: str) -> dict[str, Any]:
    pod = task_pod()
    main = pod["spec"]["containers"][0]
    if place == "env":
        main["env"].append({"name": name, "value": secret})
    elif place in ("args", "command"):
        main[place] = ["run", f"--storage.connection.secret-key={secret}"]
    elif place == "init-env":
        pod["spec"]["initContainers"] = [{"name": "i", "image": "x", "env": [{"name": name, "value": secret}]}]
    else:
        pod["spec"]["ephemeralContainers"] = [{"name": "e", "image": "x", "env": [{"name": name, "value": secret}]}]
    return pod
