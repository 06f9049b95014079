"""Spark's S3A settings carry S3 keys in Flyte Spark tasks: `--conf` args, java options, env values, conf files
(spark-defaults.conf, core-site.xml) and a SparkApplication's `sparkConf` / `hadoopConf` (issue 17). Each place is
found, in the webhook and in `keyguard check`, without the value; the settings that do not hold a key pass."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests import fake_credentials as fake
from tests.flyte_pods import review, task_pod
from tests.leaks import assert_no_fragment
from tests.test_check_support import assert_no_secret_in_any_output, check_json, write_yaml
from webhook.detection import SPARK_S3A_CREDENTIAL, scan_args, scan_env_literal, scan_value
from webhook.engine import decide
from webhook.policy import Policy
from webhook.review import parse_review, respond

RULE = SPARK_S3A_CREDENTIAL.id
SETTINGS = [
    "spark.hadoop.fs.s3a.access.key",
    "spark.hadoop.fs.s3a.secret.key",
    "spark.hadoop.fs.s3a.session.token",
    "fs.s3a.secret.key",
    "spark.hadoop.fs.s3a.bucket.flyte-data.secret.key",
    "fs.s3a.bucket.my.dotted.bucket.access.key",
]
ARGS: list[Callable[[str, str], list[str]]] = [
    lambda name, key: ["spark-submit", "--conf", f"{name}={key}", "app.py"],
    lambda name, key: ["spark-submit", f"--conf={name}={key}"],
    lambda name, key: ["java", f"-D{name}={key}", "-jar", "app.jar"],
    lambda name, key: ["sh", "-c", f"spark-submit --conf {name}={key} --conf spark.executor.instances=2 app.py"],
]


@pytest.mark.parametrize("name", SETTINGS)
@pytest.mark.parametrize("shape", range(len(ARGS)))
def test_s3a_keys_on_the_command_line(name: str, shape: int) -> None:
    key = fake.aws_secret_access_key()
    hits = scan_args(ARGS[shape](name, key))
    assert RULE in [hit.rule.id for _, hit in hits]
    for _, hit in hits:
        assert_no_fragment(key, hit.detail, "a hit's detail")


@pytest.mark.parametrize("name", SETTINGS)
@pytest.mark.parametrize(
    "value",
    [
        lambda name, key: f"{name}={key}",
        lambda name, key: f"--conf {name}={key} pyspark-shell",
        lambda name, key: f"spark.master k8s://x\n{name}  {key}\n",
        lambda name, key: f"<property><name>{name}</name><value>{key}</value></property>",
        lambda name, key: fake.base64_of(f"{name}={key}\n"),
    ],
)
def test_s3a_keys_in_env_values_and_conf_text(name: str, value: Callable[[str, str], str]) -> None:
    key = fake.aws_secret_access_key()
    text = value(name, key)
    assert RULE in [hit.rule.id for hit in scan_value(text)]
    assert RULE in [hit.rule.id for hit in scan_env_literal("SPARK_CONF", text)]


@pytest.mark.parametrize(
    "text",
    [
        "spark.hadoop.fs.s3a.aws.credentials.provider=com.amazonaws.auth.WebIdentityTokenCredentialsProvider",
        "spark.hadoop.fs.s3a.endpoint=http://minio.flyte.svc.cluster.local:9000",
        "spark.hadoop.fs.s3a.secret.key=$(AWS_SECRET_ACCESS_KEY)",
        "spark.hadoop.fs.s3a.secret.key=${AWS_SECRET_ACCESS_KEY}",
        "spark.hadoop.fs.s3a.secret.key=",
        "# set spark.hadoop.fs.s3a.secret.key through the credentials provider instead",
    ],
)
def test_s3a_settings_without_a_key_pass(text: str) -> None:
    assert scan_value(text) == []
    assert scan_args(["--conf", text]) == []


def test_the_webhook_denies_a_spark_task_pod_with_an_s3a_key(policy: Policy) -> None:
    key = fake.aws_secret_access_key()
    pod = task_pod()
    pod["spec"]["containers"][0]["args"] = ["--conf", f"spark.hadoop.fs.s3a.secret.key={key}"]
    pod["spec"]["containers"][0]["env"].append(
        {"name": "PYSPARK_SUBMIT_ARGS", "value": f"--conf fs.s3a.access.key={key}"}
    )
    request = parse_review(orjson.dumps(review(pod)))
    decision = decide(policy, request)
    assert not decision.allowed
    assert [f.rule.id for f in decision.findings] == [RULE, RULE]
    assert "spark.hadoop.fs.s3a.secret.key" in decision.message
    assert_no_fragment(key, orjson.dumps(respond(request["uid"], decision)), "the response")


def _spark_application(key: str) -> dict[str, Any]:
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "job", "namespace": "flytesnacks-development"},
        "spec": {
            "type": "Python",
            "sparkConf": {"spark.hadoop.fs.s3a.secret.key": key, "spark.executor.instances": "2"},
            "hadoopConf": {"fs.s3a.bucket.flyte-data.access.key": key, "fs.s3a.endpoint": "http://minio:9000"},
        },
    }


def _config_map(key: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "spark-defaults"},
        "data": {"spark-defaults.conf": f"spark.executor.instances 2\nspark.hadoop.fs.s3a.secret.key  {key}\n"},
    }


@pytest.mark.parametrize(
    ("make", "paths"),
    [
        (
            _spark_application,
            [
                'spec.hadoopConf["fs.s3a.bucket.flyte-data.access.key"]',
                'spec.sparkConf["spark.hadoop.fs.s3a.secret.key"]',
            ],
        ),
        (_config_map, ['data["spark-defaults.conf"]']),
    ],
)
def test_keyguard_check_finds_s3a_keys(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make: Callable[[str], Any], paths: list[str]
) -> None:
    key = fake.aws_secret_access_key()
    file = write_yaml(tmp_path / "spark.yaml", make(key))
    code, result = check_json(capsys, str(file))
    assert code == 1
    assert sorted((f["path"], f["rule"]) for f in result["findings"]) == [(path, RULE) for path in paths]
    assert_no_secret_in_any_output(capsys, [key], str(file))
