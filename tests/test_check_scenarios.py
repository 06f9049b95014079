"""`keyguard check` tried as a new user would: the issue's "Done when" scenarios, end to end through the CLI.

A Flyte sandbox-style values file, a flyte-core values file with an access-key pair, a propeller config with stow
keys and a multi-document workload file: each leak reported at its path with a fix, exit 1, no value printed.
Values that use `storage.secretName` pass; broken YAML exits 2 with the file and the line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import fake_credentials as fake
from tests.flyte_pods import task_pod
from tests.leaks import assert_not_leaked
from tests.test_check_support import assert_no_secret_in_any_output, check_json, run_check, write_yaml

# Every check test runs with each YAML loader `keyguard check` may use.
pytestmark = pytest.mark.usefixtures("yaml_loader")

# Each scenario writes its file(s) into a folder and returns the leaked values and the expected
# (path, rule, fix fragment) of every finding.
Expected = list[tuple[str, str, str]]
Scenario = Callable[[Path], tuple[Path, list[str], Expected]]


def sandbox_values(tmp: Path) -> tuple[Path, list[str], Expected]:
    secret = fake.aws_secret_access_key()
    values = {
        "flyte-binary": {
            "configuration": {
                "database": {"host": "postgres"},
                "inline": {
                    "plugins": {
                        "k8s": {
                            "default-env-vars": [
                                {"FLYTE_AWS_ENDPOINT": "http://flyte-sandbox-minio.flyte:9000"},
                                {"FLYTE_AWS_ACCESS_KEY_ID": "minio"},
                                {"FLYTE_AWS_SECRET_ACCESS_KEY": secret},
                            ]
                        }
                    }
                },
            }
        }
    }
    base = "flyte-binary.configuration.inline.plugins.k8s"
    fix = f"to a Secret listed in `{base}.default-env-from-secrets`"
    expected = [
        (f"{base}.default-env-vars[1].FLYTE_AWS_ACCESS_KEY_ID", "env-credential-literal", fix),
        (f"{base}.default-env-vars[2].FLYTE_AWS_SECRET_ACCESS_KEY", "env-credential-literal", fix),
    ]
    return write_yaml(tmp / "values-sandbox.yaml", values), [secret], expected


def flyte_core_values(tmp: Path) -> tuple[Path, list[str], Expected]:
    key_id, secret = fake.aws_access_key_id(), fake.aws_secret_access_key()
    values = {
        "storage": {
            "type": "s3",
            "bucketName": "my-s3-bucket",
            "s3": {"region": "us-east-1", "authType": "accesskey", "accessKey": key_id, "secretKey": secret},
        },
        "flytepropeller": {"enabled": True},
    }
    fix = "create the Secret `flyte-storage-creds` with the storage section and set `storage.secretName"
    expected = [
        ("storage.s3.accessKey", "storage-config-literal", fix),
        ("storage.s3.secretKey", "storage-config-literal", fix),
    ]
    return write_yaml(tmp / "values-flyte-core.yaml", values), [key_id, secret], expected


def propeller_config(tmp: Path) -> tuple[Path, list[str], Expected]:
    key_id, secret = fake.aws_access_key_id(), fake.aws_secret_access_key()
    config = {
        "propeller": {"workers": 4},
        "storage": {
            "type": "stow",
            "container": "my-s3-bucket",
            "stow": {
                "kind": "s3",
                "config": {"auth_type": "accesskey", "access_key_id": key_id, "secret_key": secret, "region": "x"},
            },
        },
    }
    fix = "remove `secret_key` from `storage.stow.config`"
    expected = [
        ("storage.stow.config.access_key_id", "storage-config-literal", "remove `access_key_id`"),
        ("storage.stow.config.secret_key", "storage-config-literal", fix),
    ]
    return write_yaml(tmp / "propeller.yaml", config), [key_id, secret], expected


def workload_file(tmp: Path) -> tuple[Path, list[str], Expected]:
    one, two, three = fake.aws_secret_access_key(), fake.aws_secret_access_key(), fake.aws_secret_access_key()
    leaky_task = task_pod()
    leaky_task["spec"]["containers"][0]["env"].append({"name": "FLYTE_AWS_SECRET_ACCESS_KEY", "value": one})
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "flyte-tools", "namespace": "flyte"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "tools"}},
                "spec": {
                    "containers": [
                        {
                            "name": "tools",
                            "image": "busybox",
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": "2"},
                                {"name": "AWS_SECRET_ACCESS_KEY", "value": two},
                            ],
                        }
                    ]
                },
            }
        },
    }
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "sync"},
        "spec": {
            "schedule": "@daily",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "sync",
                                    "image": "amazon/aws-cli",
                                    "args": ["s3", "sync", f"--secret-key={three}"],
                                }
                            ]
                        }
                    }
                }
            },
        },
    }
    clean_task = task_pod(node="n1")
    expected = [
        ("spec.containers[0].env[19]", "env-credential-literal", "secretKeyRef"),
        ("spec.template.spec.containers[0].env[2]", "env-credential-literal", "secretKeyRef"),
        ("spec.jobTemplate.spec.template.spec.containers[0].args[2]", "cli-credential-flag", "command/args"),
    ]
    path = write_yaml(tmp / "workloads.yaml", leaky_task, deployment, cron, clean_task)
    return path, [one, two, three], expected


SCENARIOS: list[Scenario] = [sandbox_values, flyte_core_values, propeller_config, workload_file]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_each_leak_is_reported_at_its_path_with_a_fix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scenario: Scenario
) -> None:
    path, secrets, expected = scenario(tmp_path)
    code, result = check_json(capsys, str(path))
    assert code == 1
    found = {(f["path"], f["rule"]): f for f in result["findings"]}
    for where, rule, fix in expected:
        finding = found[(where, rule)]
        assert fix in finding["fix"], finding["fix"]
        assert finding["file"] == str(path)
        assert finding["line"] >= 1
    assert len(result["findings"]) == len(expected)
    code, out, err = run_check(capsys, str(path))
    assert code == 1
    assert err == ""
    for where, rule, _ in expected:
        assert where in out and f"[{rule}]" in out
    assert "fix:" in out
    assert_no_secret_in_any_output(capsys, secrets, str(path))


def test_lines_point_at_the_offending_setting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for scenario in SCENARIOS:
        path, secrets, _ = scenario(tmp_path)
        lines = path.read_text().splitlines()
        _, result = check_json(capsys, str(path))
        for finding in result["findings"]:
            text = lines[finding["line"] - 1]
            last = finding["path"].rsplit(".", 1)[-1].split("[")[0]
            container_leak = any(s in text for s in secrets) or "name: " in text or "- " in text
            assert last in text or container_leak, (finding["path"], finding["line"])


@pytest.mark.parametrize(
    "values",
    [
        {"storage": {"type": "s3", "bucketName": "b", "secretName": "flyte-storage-creds", "s3": {"region": "r"}}},
        {"storage": {"type": "s3", "bucketName": "b", "s3": {"authType": "iam", "region": "us-east-1"}}},
        {
            "configuration": {
                "storage": {"providerConfig": {"s3": {"authType": "iam", "region": "us-east-1"}}},
                "inline": {"plugins": {"k8s": {"default-env-from-secrets": ["flyte-storage-creds"]}}},
                "inlineSecretRef": "flyte-binary-storage",
            }
        },
        {"storage": {"type": "s3", "connection": {"auth-type": "iam", "region": "us-east-1"}}},
    ],
    ids=["flyte-core secretName", "flyte-core iam", "flyte-binary iam", "stdlib iam"],
)
def test_values_without_keys_pass(capsys: pytest.CaptureFixture[str], tmp_path: Path, values: dict[str, Any]) -> None:
    path = write_yaml(tmp_path / "values.yaml", values)
    code, out, _ = run_check(capsys, str(path))
    assert code == 0, out
    assert out.startswith("0 finding(s)")


def test_clean_flyte_pod_is_not_a_finding(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "pod.yaml", task_pod())
    code, out, _ = run_check(capsys, str(path))
    assert code == 0
    assert "0 finding(s)" in out


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("storage:\n  s3:\n    secretKey: {secret}\n   bad: [\n", 4),
        ("a: 1\n---\nb: {{ c\n", 4),
        ("a:\n\t- {secret}\n", 2),
    ],
)
def test_broken_yaml_exits_2_with_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, line: int
) -> None:
    secret = fake.aws_secret_access_key()
    path = tmp_path / "broken.yaml"
    path.write_text(text.replace("{secret}", secret).replace("{{", "{"))
    code, out, err = run_check(capsys, str(path))
    assert code == 2
    assert out == ""
    assert f"{path}:{line}:" in err
    assert "invalid YAML" in err
    assert "Traceback" not in err
    assert_not_leaked(secret, err, "the error")
    assert_not_leaked(secret[:8], err, "the error (a prefix)")
