"""The engine's verdicts on realistic Flyte pods: leak shapes denied with a clear message, clean pods injected,
everything else untouched; modes, dry-run, the validating twin and the ephemeral-container path."""

from __future__ import annotations

import copy
import secrets
import string
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import apply_patch
from tests.flyte_pods import container, flyte2_pod, plain_pod, review, task_pod
from tests.leaks import assert_not_leaked
from webhook.engine import check_pod, decide, find_plaintext_credentials
from webhook.policy import Policy, parse_policy
from webhook.review import respond


def fake_secret(length: int = 40) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits + "/+") for _ in range(length))


def fake_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))


def policy_with(mode: str = "enforce", **profile: Any) -> Policy:
    data = {
        "apiVersion": "keyguard.flyte.org/v1",
        "kind": "Policy",
        "profiles": [{"name": "p", "mode": mode, **profile}],
    }
    return parse_policy(data, "test")


def with_env(*pairs: tuple[str, str]) -> dict[str, Any]:
    pod = task_pod()
    pod["spec"]["containers"][0]["env"] += [{"name": n, "value": v} for n, v in pairs]
    return pod


def sandbox_default_env_vars(secret: str) -> tuple[dict[str, Any], str, str]:
    return (
        with_env(("FLYTE_AWS_ACCESS_KEY_ID", "minio"), ("FLYTE_AWS_SECRET_ACCESS_KEY", secret)),
        "containers[0]",
        "env FLYTE_AWS_SECRET_ACCESS_KEY",
    )


def copilot_stow_args(secret: str) -> tuple[dict[str, Any], str, str]:
    pod = task_pod()
    pod["spec"]["initContainers"] = [
        {
            "name": "flyte-copilot-downloader",
            "image": "cr.flyte.org/flyteorg/flytecopilot:v1.14.1",
            "command": [
                "/bin/flyte-copilot",
                "--storage.limits.maxDownloadMBs=0",
                "--storage.container=my-s3-bucket",
                "--storage.type=minio",
                "--storage.stow.kind=s3",
                "--storage.stow.config",
                f"auth_type=accesskey,access_key_id=minio,secret_key={secret},disable_ssl=true",
                "download",
            ],
        }
    ]
    return pod, "initContainers[0]", "command[6]"


def copilot_connection_flag(secret: str) -> tuple[dict[str, Any], str, str]:
    pod = task_pod()
    pod["spec"]["containers"].append(
        {
            "name": "flyte-copilot-sidecar",
            "image": "cr.flyte.org/flyteorg/flytecopilot:v1.14.1",
            "args": [
                "sidecar",
                "--storage.connection.endpoint=http://minio:9000",
                f"--storage.connection.secret-key={secret}",
            ],
        }
    )
    return pod, "containers[1]", "args[2]"


def flyte_global_secret(secret: str) -> tuple[dict[str, Any], str, str]:
    return with_env(("_FSEC_AWS_SECRET_ACCESS_KEY", secret)), "containers[0]", "env _FSEC_AWS_SECRET_ACCESS_KEY"


def flyte2_union_literal(secret: str) -> tuple[dict[str, Any], str, str]:
    pod = flyte2_pod()
    pod["spec"]["containers"][0]["env"].append({"name": "_UNION_S3_SECRET", "value": secret})
    return pod, "containers[0]", "env _UNION_S3_SECRET"


def access_key_id_under_any_name(_: str) -> tuple[dict[str, Any], str, str]:
    return with_env(("MY_SETTING", fake_key_id())), "containers[0]", "env MY_SETTING"


def shell_export(secret: str) -> tuple[dict[str, Any], str, str]:
    pod = task_pod()
    pod["spec"]["containers"][0]["command"] = ["sh", "-c", f"export AWS_SECRET_ACCESS_KEY={secret}; pyflyte-execute"]
    return pod, "containers[0]", "command[2]"


def minio_root_password(_: str) -> tuple[dict[str, Any], str, str]:
    return with_env(("MINIO_ROOT_PASSWORD", "miniostorage")), "containers[0]", "env MINIO_ROOT_PASSWORD"


LEAKS: list[Callable[[str], tuple[dict[str, Any], str, str]]] = [
    sandbox_default_env_vars,
    copilot_stow_args,
    copilot_connection_flag,
    flyte_global_secret,
    flyte2_union_literal,
    access_key_id_under_any_name,
    shell_export,
    minio_root_password,
]


@pytest.mark.parametrize("leak", LEAKS, ids=lambda f: f.__name__)
def test_every_leak_shape_is_denied_naming_container_and_field(policy: Policy, leak: Any) -> None:
    secret = fake_secret()
    pod, where, field = leak(secret)
    body = review(pod)
    decision = decide(policy, body["request"])
    assert decision.allowed is False
    assert decision.outcome == "denied"
    assert decision.patch == ()
    response = respond(body["request"]["uid"], decision)["response"]
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    index = int(where.split("[")[1].rstrip("]"))
    kind = where.split("[")[0]
    name = pod["spec"][kind][index]["name"]
    assert f"container {name}, {field}" in message
    assert "Fix [" in message
    assert any(f.path.startswith(f"spec.{where}") for f in decision.findings)
    assert_not_leaked(secret, repr(decision), "the decision")
    assert_not_leaked(secret[:8], message, "the message (a prefix)")


def test_several_findings_are_all_reported(policy: Policy) -> None:
    pod, _, _ = copilot_stow_args(fake_secret())
    pod["spec"]["containers"][0]["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": fake_secret()})
    decision = decide(policy, review(pod)["request"])
    assert len(decision.findings) >= 2
    assert "(1)" in decision.message and "(2)" in decision.message


def _secret_key_ref() -> dict[str, Any]:
    pod = task_pod()
    pod["spec"]["containers"][0]["env"] += [
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "secret_key"}}},
        {"name": "_FSEC_AWS_KEY", "valueFrom": {"secretKeyRef": {"name": "aws", "key": "key"}}},
    ]
    pod["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "flyte-storage-creds"}}]
    return pod


def _references_in_args() -> dict[str, Any]:
    pod = task_pod()
    pod["spec"]["containers"][0]["args"] = ["--storage.connection.secret-key=$(AWS_SECRET_ACCESS_KEY)"]
    return pod


def _hashes_and_paths() -> dict[str, Any]:
    return with_env(
        ("IMAGE_DIGEST", "sha256:" + secrets.token_hex(32)),
        ("GIT_COMMIT", secrets.token_hex(20)),
        ("RUN_UUID", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/var/run/flyte/storage/credentials"),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AZURE_STORAGE_ACCOUNT", "flytedata"),
    )


@pytest.mark.parametrize(
    ("label", "pod"),
    [
        ("propeller pod", task_pod()),
        ("flyte 2 pod", flyte2_pod()),
        ("secretKeyRef and envFrom", _secret_key_ref()),
        ("$(VAR) in args", _references_in_args()),
        ("hashes, uuids and paths", _hashes_and_paths()),
    ],
)
def test_legitimate_pods_are_injected_not_denied(policy: Policy, label: str, pod: dict[str, Any]) -> None:
    decision = decide(policy, review(pod)["request"])
    assert decision.allowed, decision.message
    assert decision.outcome == "patched"
    # a storage key from secretKeyRef is no leak; it only cannot follow a rotation (tests/test_environments.py)
    rotation = ("credential-not-rotatable",) if label == "secretKeyRef and envFrom" else ()
    assert decision.rule_ids == rotation
    patched = apply_patch(pod, decision.patch)
    again = decide(policy, review(patched)["request"])
    assert again.outcome == "allowed"
    assert again.patch == ()


@pytest.mark.parametrize(
    "body",
    [
        review(plain_pod()),
        review(plain_pod("flytesnacks-development")),
        review(task_pod(), operation="DELETE"),
        review(task_pod(), operation="UPDATE"),
        {
            "request": {
                **review(task_pod())["request"],
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            }
        },
        {"request": {**review(task_pod())["request"], "object": None}},
    ],
    ids=["plain pod", "plain pod in a flyte namespace", "delete", "update", "other kind", "no object"],
)
def test_everything_else_is_untouched(policy: Policy, body: dict[str, Any]) -> None:
    decision = decide(policy, body["request"])
    assert (decision.allowed, decision.outcome, decision.patch) == (True, "ignored", ())


@pytest.mark.parametrize(
    ("mode", "allowed", "patched", "warns"),
    [("enforce", False, False, False), ("warn", True, True, True), ("audit", True, True, False)],
)
def test_modes(mode: str, allowed: bool, patched: bool, warns: bool) -> None:
    pod, _, _ = sandbox_default_env_vars(fake_secret())
    decision = decide(policy_with(mode), review(pod)["request"])
    assert decision.allowed is allowed
    assert bool(decision.patch) is patched
    assert bool(decision.warnings) is warns
    assert decision.findings


def test_dry_run_gets_the_same_decision(policy: Policy) -> None:
    for pod in (task_pod(), sandbox_default_env_vars(fake_secret())[0]):
        body = review(pod)
        dry = copy.deepcopy(body)
        dry["request"]["dryRun"] = True
        assert decide(policy, body["request"]) == decide(policy, dry["request"])


def test_validate_refuses_a_pod_that_missed_the_injection(policy: Policy) -> None:
    body = review(task_pod())
    decision = decide(policy, body["request"], mutate=False)
    assert decision.allowed is False
    assert decision.rule_ids == ("injection-missing",)
    patched = apply_patch(task_pod(), decide(policy, body["request"]).patch)
    assert decide(policy, review(patched)["request"], mutate=False).outcome == "allowed"


def test_a_pod_injected_under_an_earlier_policy_version_is_not_missing_the_injection(policy: Policy) -> None:
    patched = apply_patch(task_pod(), decide(policy, review(task_pod())["request"]).patch)
    patched["metadata"]["annotations"]["keyguard.flyte.org/policy-version"] = "0123456789ab"
    assert decide(policy, review(patched)["request"], mutate=False).outcome == "allowed"
    del patched["spec"]["volumes"][-1]
    assert decide(policy, review(patched)["request"], mutate=False).rule_ids == ("injection-missing",)


def test_ephemeral_container_with_a_key_is_refused(policy: Policy) -> None:
    old = apply_patch(task_pod(), decide(policy, review(task_pod())["request"]).patch)
    new = copy.deepcopy(old)
    secret = fake_secret()
    new["spec"]["ephemeralContainers"] = [
        {
            "name": "debugger",
            "image": "busybox",
            "targetContainerName": old["spec"]["containers"][0]["name"],
            "env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": secret}],
        }
    ]
    body = review(new, operation="UPDATE", sub_resource="ephemeralcontainers", old=old)
    decision = decide(policy, body["request"])
    assert decision.allowed is False
    assert "container debugger, env AWS_SECRET_ACCESS_KEY" in decision.message
    assert_not_leaked(secret, decision.message, "the denial message")
    # an already-admitted debug container is not re-judged; a clean one passes without a patch
    new["spec"]["ephemeralContainers"][0]["env"] = []
    clean = decide(policy, review(new, operation="UPDATE", sub_resource="ephemeralcontainers", old=old)["request"])
    assert (clean.allowed, clean.patch) == (True, ())


def test_exempt_and_unmatched_pods_are_admitted_untouched() -> None:
    policy = parse_policy(
        {
            "apiVersion": "keyguard.flyte.org/v1",
            "kind": "Policy",
            "profiles": [{"name": "prod", "match": {"domains": ["production"]}}],
            "exemptions": [
                {"namespaces": ["flytesnacks-development"], "owner": "me@example.com", "expires": "2099-01-01"}
            ],
        },
        "t",
    )
    pod, _, _ = sandbox_default_env_vars(fake_secret())
    exempt = decide(policy, review(pod)["request"])
    assert (exempt.allowed, exempt.outcome, exempt.patch) == (True, "exempt", ())
    assert "me@example.com" in exempt.message
    other = task_pod(namespace="flytesnacks-staging", domain="staging")
    assert decide(policy, review(other)["request"]).outcome == "unmatched"


def test_find_plaintext_credentials_covers_every_container_kind() -> None:
    secret = fake_secret()
    pod = plain_pod()
    leak = [{"name": "AWS_SECRET_ACCESS_KEY", "value": secret}]
    pod["spec"]["initContainers"] = [{"name": "i", "image": "x", "env": leak}]
    pod["spec"]["ephemeralContainers"] = [{"name": "e", "image": "x", "env": leak}]
    pod["spec"]["containers"][0]["env"] = leak
    paths = sorted(f.path for f in find_plaintext_credentials(pod))
    assert paths == ["spec.containers[0].env[0]", "spec.ephemeralContainers[0].env[0]", "spec.initContainers[0].env[0]"]


def test_check_pod_matches_the_webhook_and_forces_profiles(policy: Policy) -> None:
    pod = task_pod()
    assert check_pod(policy, pod, namespace="flytesnacks-development") == decide(policy, review(pod)["request"])
    assert check_pod(policy, pod, namespace="x", profile="default").profile == "default"
    with pytest.raises(KeyError):
        check_pod(policy, pod, namespace="x", profile="nope")


def test_multi_container_pod_each_container_injected(policy: Policy) -> None:
    pod = task_pod(containers=[container("main"), container("sidecar", env=[])])
    patched = apply_patch(pod, decide(policy, review(pod)["request"]).patch)
    for c in patched["spec"]["containers"]:
        assert {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/var/run/flyte/storage/credentials"} in c["env"]
