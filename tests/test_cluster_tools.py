"""The parts of the cluster tools that need no cluster: reading secret values safely, judging a webhook's scope,
and the doctor's report. Everything that talks to the API is tested against the real API server (tests/e2e)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from tests import fake_credentials as fake
from tests.leaks import assert_not_leaked
from webhook.cli import main
from webhook.cluster.doctor import Report, Settings, check_webhook, probe_pod, secret_age_days
from webhook.cluster.secrets import collect, parse_env_text
from webhook.errors import UsageError
from webhook.policy import default_policy
from webhook.selection import is_flyte_task_pod

PROFILE = default_policy().profiles[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("access_key=a\nsecret_key=b\n", {"access_key": "a", "secret_key": "b"}),
        ("# comment\n\nexport access_key = 'a'\nsecret_key=\"b=c\"\n", {"access_key": "a", "secret_key": "b=c"}),
    ],
)
def test_env_text_is_parsed(text: str, expected: dict[str, str]) -> None:
    assert parse_env_text(text, "stdin") == expected


def test_a_malformed_env_line_is_named_without_its_value() -> None:
    secret = fake.aws_secret_access_key()
    with pytest.raises(UsageError) as error:
        parse_env_text(f"access_key=a\n{secret}\n", "creds.env")
    assert str(error.value) == "creds.env: line 2: expected key=value"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"access_key": "a"}, "missing or empty key(s): secret_key"),
        ({"access_key": "a", "secret_key": ""}, "missing or empty key(s): secret_key"),
        ({"access_key": "a", "secret_key": "b", "password": "c"}, "unexpected key(s) password"),
    ],
)
def test_secret_values_must_match_the_profile(values: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        collect(PROFILE, values)


def test_values_are_prompted_for_when_none_are_given() -> None:
    asked: list[str] = []

    def prompt(question: str) -> str:
        asked.append(question)
        return "x"

    assert collect(PROFILE, None, prompt) == {"access_key": "x", "secret_key": "x"}
    assert asked == ["access_key: ", "secret_key: "]


def test_secret_create_refuses_values_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    secret = fake.aws_secret_access_key()
    with pytest.raises(SystemExit) as exit_:
        main(["secret", "create", "--namespace", "flytesnacks-production", f"--secret-key={secret}"])
    assert exit_.value.code == 2
    assert_not_leaked(secret, capsys.readouterr().err, "usage error")


def _hook(**overrides: Any) -> client.V1MutatingWebhook:
    fields: dict[str, Any] = {
        "name": "mutate.keyguard.flyte.org",
        "admission_review_versions": ["v1"],
        "side_effects": "None",
        "failure_policy": "Fail",
        "timeout_seconds": 3,
        "client_config": client.AdmissionregistrationV1WebhookClientConfig(
            service=client.AdmissionregistrationV1ServiceReference(
                name="keyguard", namespace="keyguard-system", path="/mutate"
            )
        ),
        "match_conditions": [client.V1MatchCondition(name="flyte-task-pod", expression="true")],
        "namespace_selector": client.V1LabelSelector(
            match_expressions=[
                client.V1LabelSelectorRequirement(
                    key="kubernetes.io/metadata.name", operator="NotIn", values=["kube-system", "kube-node-lease"]
                )
            ]
        ),
    }
    fields.update(overrides)
    return client.V1MutatingWebhook(**fields)


@pytest.mark.parametrize(
    ("overrides", "status", "detail"),
    [
        ({}, "ok", "failurePolicy Fail, timeout 3 s, Flyte pods only"),
        ({"match_conditions": None}, "warning", "an outage blocks every pod"),
        ({"namespace_selector": None}, "warning", "kube-system is not excluded"),
        ({"timeout_seconds": 10}, "warning", "timeoutSeconds 10"),
        ({"side_effects": "Some"}, "warning", "dry runs will be refused"),
    ],
)
def test_doctor_judges_the_webhook_scope(overrides: dict[str, Any], status: str, detail: str) -> None:
    report = Report()
    check_webhook(report, "MutatingWebhookConfiguration", _hook(**overrides), Settings())
    where, scope = report.checks
    assert (where.status, scope.status) == ("ok", status)
    assert detail in scope.detail
    assert report.healthy


@pytest.mark.parametrize(
    ("config", "status"),
    [
        (
            client.AdmissionregistrationV1WebhookClientConfig(
                service=client.AdmissionregistrationV1ServiceReference(name="old", namespace="flyte")
            ),
            "problem",
        ),
        (client.AdmissionregistrationV1WebhookClientConfig(url="https://127.0.0.1:9443/mutate"), "warning"),
    ],
)
def test_doctor_says_where_the_webhook_points(config: Any, status: str) -> None:
    report = Report()
    check_webhook(report, "MutatingWebhookConfiguration", _hook(client_config=config), Settings())
    assert report.checks[0].status == status
    assert report.healthy is (status != "problem")
    assert report.to_dict()["summary"][status] == 1


def test_the_doctor_probe_is_a_flyte_task_pod_of_its_namespace() -> None:
    pod = probe_pod("flytesnacks-production")
    assert is_flyte_task_pod(default_policy().selection, pod)
    assert pod["metadata"]["labels"]["domain"] == "production"


@pytest.mark.parametrize(
    ("annotations", "created", "age"),
    [
        ({"keyguard.flyte.org/rotated-at": "2026-11-20T10:00:00+00:00"}, "2026-01-01T00:00:00+00:00", 10),
        ({}, "2026-08-01T00:00:00+00:00", 121),  # written by hand: its creation is all we know
        ({"keyguard.flyte.org/rotated-at": "not a date"}, "2026-11-29T00:00:00+00:00", 1),
        (None, None, None),
    ],
)
def test_secret_age_for_doctors_max_age(annotations: Any, created: Any, age: int | None) -> None:
    metadata = SimpleNamespace(
        annotations=annotations, creation_timestamp=datetime.fromisoformat(created) if created else None
    )
    assert secret_age_days(SimpleNamespace(metadata=metadata), datetime(2026, 11, 30, 12, tzinfo=UTC)) == age
