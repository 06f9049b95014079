"""Names in messages are bounded and shaped: a name cut out of a value never carries a piece of that value.

Issue 17: `_assignment_name` and `_flag_name` copied the whole name-shaped run before a credential keyword, so
`x=<KEY>.secret_key=v` produced the message "<KEY>.secret_key is set to a literal value". Every case here plants a
fake key where a name is read from and checks that the verdict holds and no six characters of the key reach the
decision, the response or the warnings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests import fake_credentials as fake
from tests.flyte_pods import review, task_pod
from tests.leaks import assert_no_fragment
from webhook.detection import setting_name
from webhook.engine import decide
from webhook.findings import MAX_NAME_LENGTH, cached_shown_names, shown_name
from webhook.policy import Policy, parse_policy_text
from webhook.review import parse_review, respond
from webhook.server.audit_log import audit_record

KEYS: dict[str, Callable[[], str]] = {
    "aws secret": fake.aws_secret_access_key,
    "aws id": fake.aws_access_key_id,
    "azure key": fake.azure_account_key,
    "gcs hmac": fake.gcs_hmac_access_id,
}


def _args(*items: str) -> Callable[[dict[str, Any]], None]:
    def plant(container: dict[str, Any]) -> None:
        container["args"] = list(items)

    return plant


def _env(name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def plant(container: dict[str, Any]) -> None:
        container["env"].append({"name": name, "value": value})

    return plant


PLACEMENTS: dict[str, Callable[[str], Callable[[dict[str, Any]], None]]] = {
    "assignment in an arg": lambda key: _args(f"x={key}.secret_key=v"),
    "flag before its value": lambda key: _args(f"--{key.rstrip('=')}.secret-key", "v"),
    "base64 env value": lambda key: _env("CONFIG", fake.base64_of(f"{key}_secret_key=1")),
    "spark per-bucket conf": lambda key: _args("--conf", f"spark.hadoop.fs.s3a.bucket.{key.rstrip('=')}.secret.key=v"),
    "env name": lambda key: _env(f"{key}_SECRET_KEY", "v"),
    "long env name": lambda key: _env("X" * 200 + key + "_SECRET_KEY", "v"),
}


def _outputs(policy: Policy, pod: dict[str, Any]) -> dict[str, str]:
    request = parse_review(orjson.dumps(review(pod)))
    decision = decide(policy, request)
    return {
        "decision": repr(decision),
        "response": orjson.dumps(respond(request["uid"], decision)).decode(),
        "rules": ",".join(decision.rule_ids),
    }


WARN = parse_policy_text(
    "apiVersion: keyguard.flyte.org/v1\nkind: Policy\nprofiles:\n  - name: dev\n    mode: warn\n", "inline"
)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("key_kind", KEYS)
@pytest.mark.parametrize("mode", ["enforce", "warn"])
def test_no_fragment_of_a_key_planted_in_a_name_leaves(
    policy: Policy, placement: str, key_kind: str, mode: str
) -> None:
    key = KEYS[key_kind]()
    pod = task_pod()
    PLACEMENTS[placement](key)(pod["spec"]["containers"][0])
    outputs = _outputs(policy if mode == "enforce" else WARN, pod)
    assert outputs["rules"], "the planted credential setting must still be found"
    for where, text in outputs.items():
        assert_no_fragment(key, text, f"{where} ({placement}, {key_kind}, {mode})")


@pytest.mark.parametrize("key_kind", KEYS)
def test_a_key_pasted_into_the_pods_own_names_stays_out_of_messages_and_the_audit_line(
    policy: Policy, key_kind: str
) -> None:
    """Found by the fuzz suite: the service account was quoted whole in its refusal, and the pod's name and
    namespace were written whole to the audit line."""
    key = KEYS[key_kind]()
    pod = task_pod()
    pod["spec"]["serviceAccountName"] = pod["spec"]["serviceAccount"] = f"secret_key={key}"
    pod["metadata"]["name"] = f"job-{key}"
    body = review(pod)
    body["request"]["namespace"] = body["request"]["name"] = key
    request = parse_review(orjson.dumps(body))
    decision = decide(policy, request)
    assert decision.rule_ids == ("service-account-not-allowed",)
    line = orjson.dumps(audit_record("mutate", request, decision, "v1", 0.001))
    for where, text in {
        "decision": repr(decision),
        "response": orjson.dumps(respond("u", decision)),
        "audit": line,
    }.items():
        assert_no_fragment(key, text, where)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("FLYTE_AWS_SECRET_ACCESS_KEY", "FLYTE_AWS_SECRET_ACCESS_KEY"),
        ("a4lmk5ws6qkfbhx94dxc-n0-0", "a4lmk5ws6qkfbhx94dxc-n0-0"),  # a Flyte execution id: lowercase, shown
        ("n" * (MAX_NAME_LENGTH + 1), "nnnnnnnnnnnnnnnn… (a 129-character name)"),
        ("AWSSECRETACCESSKEYVALUE", "… (a 23-character name)"),
        ("sparkExecutorMemoryOverhead", "sparkExecutorMemoryOverhead"),
        ("AKIA" + "Q2" * 8 + "_SECRET_KEY", "… (a 31-character name)"),
        ("MY_" + "Q2" * 10 + "_KEY", "MY_… (a 27-character name)"),
        # Found by the fuzz suite (seed 8117836177930): a key split by an odd character showed its first part
        ('--AKIAQWERTY"UI2345OPAS.secret-key', "--… (a 34-character name)"),
        ("AKIAQWERTY\u00a0UIOPASDFGH", "… (a 21-character name)"),  # split, and no part key-shaped alone
        ("AKIAQWERTY--UI2345OPAS", "… (a 22-character name)"),  # split by a separator
        ("My Cool Setting Name", "My Cool Setting Name"),
        ("FLYTE_AWS_SECRET_ACCESS_KEY_ID", "FLYTE_AWS_SECRET_ACCESS_KEY_ID"),
        ("spark.hadoop.fs.s3a.bucket.My-Bucket.secret.key", "spark.hadoop.fs.s3a.bucket.My-Bucket.secret.key"),
        (["a list from a manifest"], "(a list)"),
    ],
)
def test_shown_names_are_bounded(name: object, shown: str) -> None:
    assert shown_name(name) == shown
    assert shown_name(name) == shown  # the cached answer is the same


def test_only_names_of_real_length_are_remembered() -> None:
    """Like the credential-name cache (issue 17): distinct huge names must not each stay in memory."""
    cached_shown_names.cache_clear()  # a full cache (other tests' names) would evict rather than grow
    before = cached_shown_names.cache_info().currsize
    for n in range(20):
        assert shown_name(f"x{n}-" + "a" * (64 * 1024)).endswith(f"(a {64 * 1024 + 2 + len(str(n))}-character name)")
    assert cached_shown_names.cache_info().currsize == before
    shown_name("a-name-of-real-length-" + "b" * (MAX_NAME_LENGTH - 22))
    assert cached_shown_names.cache_info().currsize == before + 1


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("storage.connection.secret-key", "storage.connection.secret-key"),
        ("spark.hadoop.fs.s3a.secret.key", "spark.hadoop.fs.s3a.secret.key"),
        ("FLYTE_AWS_SECRET_ACCESS_KEY", "FLYTE_AWS_SECRET_ACCESS_KEY"),
        ("secretAccessKey", "secretAccessKey"),
        ("Zq8vTb.secret_key", "…secret_key (a 17-character name)"),
        ("spark.hadoop.fs.s3a.bucket.flyte-data.secret.key", "…secret.key (a 48-character name)"),
    ],
)
def test_setting_names_show_only_known_words(name: str, shown: str) -> None:
    assert setting_name(name) == shown
