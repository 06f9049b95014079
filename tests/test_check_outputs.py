"""The three output formats and the options around them: JSON validates against our schema, SARIF against the
SARIF 2.1.0 schema (a vendored subset of the official file, see tests/schemas/), `--show-patch` shows the
injection with values redacted, `--verbose` lists what was skipped, `--fail-on` sets the exit code."""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from tests import fake_credentials as fake
from tests.flyte_pods import plain_pod, task_pod
from tests.leaks import assert_not_leaked
from tests.test_check_support import check_json, run_check, write_yaml
from webhook.check.model import CheckOptions
from webhook.check.output_sarif import as_dict as sarif_dict
from webhook.check.scan import check_objects, check_paths, workers_for
from webhook.commands.check import progress_bar
from webhook.policy import default_policy

# Every check test runs with each YAML loader `keyguard check` may use.
pytestmark = pytest.mark.usefixtures("yaml_loader")

SARIF_SCHEMA = Path(__file__).parent / "schemas" / "sarif-schema-2.1.0-subset.json"


def _our_schema() -> dict[str, Any]:
    text = resources.files("webhook").joinpath("schemas/check-output.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _mixed_corpus(tmp: Path) -> tuple[Path, list[str]]:
    secret, key_id = fake.aws_secret_access_key(), fake.aws_access_key_id()
    leaky = task_pod()
    leaky["spec"]["containers"][0]["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": secret})
    write_yaml(tmp / "pods.yaml", leaky, task_pod(node="n2"), plain_pod(), {"kind": "Secret", "apiVersion": "v1"})
    write_yaml(tmp / "nested" / "values.yaml", {"storage": {"bucketName": "b", "s3": {"accessKey": key_id}}})
    (tmp / "empty.yaml").write_text("---\n")
    (tmp / "chart-template.yaml").write_text("kind: Pod\nmetadata: {{ .Values.x }}\n  bad: [\n")
    return tmp, [secret, key_id]


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[str]]:
    (tmp_path / "nested").mkdir()
    return _mixed_corpus(tmp_path)


def test_json_validates_against_our_schema(capsys: pytest.CaptureFixture[str], corpus: tuple[Path, list[str]]) -> None:
    folder, _ = corpus
    code, result = check_json(capsys, str(folder), "--show-patch")
    assert code == 1
    jsonschema.Draft202012Validator.check_schema(_our_schema())
    jsonschema.validate(result, _our_schema(), cls=jsonschema.Draft202012Validator)
    summary = result["summary"]
    assert summary["findings"] == len(result["findings"]) == 3
    assert summary["rules"] == {
        "env-credential-literal": 1,
        "storage-config-literal": 1,
        "template-read-degraded": 1,  # chart-template.yaml is not YAML even with its placeholders inert
    }
    assert summary["files"] == 4
    assert result["patches"] and "keyguard-storage-creds" in result["patches"][0]["diff"]
    reasons = " ".join(s["reason"] for s in result["skipped"])
    assert "kind Secret" in reasons and "empty document" in reasons


def test_sarif_validates_against_the_sarif_schema(
    capsys: pytest.CaptureFixture[str], corpus: tuple[Path, list[str]]
) -> None:
    folder, secrets = corpus
    code, out, _ = run_check(capsys, str(folder), "--output", "sarif")
    assert code == 1
    sarif = orjson.loads(out)
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(sarif, schema, cls=jsonschema.Draft7Validator)
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert set(region) == {"startLine"}  # no snippet, no source text
        assert "Fix:" in result["message"]["text"]
    for secret in secrets:
        assert_not_leaked(secret, out, "SARIF")


def test_sarif_without_lines_still_validates() -> None:
    report = check_objects([("cluster:flyte/pods", plain_pod())], CheckOptions(default_policy()))
    sarif = sarif_dict(report)
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()), cls=jsonschema.Draft7Validator)


def test_show_patch_redacts_every_value(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    secret = fake.aws_secret_access_key()
    pod = task_pod()
    # a pod whose own env holds a key under a harmless-looking name only the value rules judge, admitted in warn
    pod["spec"]["containers"][0]["env"].append({"name": "SOME_SETTING", "value": secret})
    pod["spec"]["containers"][0]["args"].append(secret)
    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: keyguard.flyte.org/v1\nkind: Policy\nprofiles:\n  - name: dev\n    mode: warn\n")
    path = write_yaml(tmp_path / "pod.yaml", pod)
    code, out, _ = run_check(capsys, str(path), "--show-patch", "--policy", str(policy))
    assert code == 1  # the key is still a finding in warn mode: it leaked into the file
    lines = out.splitlines()
    # the tmpfs volume and each mount of it are added lines of the diff, exactly as they read in the pod
    assert "+  - name: keyguard-storage-tmpfs" in lines
    assert "+    - name: keyguard-storage-tmpfs" in lines
    assert "+      mountPath: /var/run/flyte/storage" in lines
    assert "+    - name: AWS_SHARED_CREDENTIALS_FILE" in out
    assert "value: <redacted>" in out
    assert_not_leaked(secret, out, "--show-patch output")


def test_show_patch_is_empty_for_pods_without_injection(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "pod.yaml", plain_pod())
    code, out, _ = run_check(capsys, str(path), "--show-patch")
    assert code == 0
    assert "would inject" not in out


@pytest.mark.parametrize(
    ("fail_on", "severity_findings", "code"),
    [("error", True, 1), ("warning", True, 1), ("never", True, 0), ("error", False, 0)],
)
def test_fail_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fail_on: str, severity_findings: bool, code: int
) -> None:
    pod = plain_pod()
    if severity_findings:
        pod["spec"]["containers"][0]["env"] = [{"name": "MINIO_ROOT_PASSWORD", "value": "miniostorage"}]
    path = write_yaml(tmp_path / "pod.yaml", pod)
    assert run_check(capsys, str(path), "--fail-on", fail_on)[0] == code


def test_verbose_lists_skipped_documents(capsys: pytest.CaptureFixture[str], corpus: tuple[Path, list[str]]) -> None:
    folder, _ = corpus
    _, out, _ = run_check(capsys, str(folder), "--verbose")
    assert "skipped " in out and "kind Secret is not checked" in out
    _, out, err = run_check(capsys, str(folder), "--verbose", "--output", "json")
    assert "kind Secret is not checked" in err
    _, out, _ = run_check(capsys, str(folder))
    assert "skipped " not in out


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    secret = fake.aws_secret_access_key()
    text = f"storage:\n  type: s3\n  connection:\n    auth-type: accesskey\n    secret-key: {secret}\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, result = check_json(capsys, "-")
    assert code == 1
    finding = result["findings"][0]
    assert (finding["file"], finding["line"], finding["path"]) == ("<stdin>", 5, "storage.connection.secret-key")
    assert finding["kind"] == "Flyte config"


def test_progress_bar_draws_and_clears() -> None:
    stream = io.StringIO()
    show = progress_bar(stream, interval=0.0)
    show(1, 2)
    show(2, 2)
    text = stream.getvalue()
    assert "1/2 files" in text and "2/2 files" in text
    assert text.endswith("\r\033[K")


def test_progress_is_reported_per_file(corpus: tuple[Path, list[str]]) -> None:
    folder, _ = corpus
    calls: list[tuple[int, int]] = []
    check_paths([str(folder)], CheckOptions(default_policy()), lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "nope"], "no such profile"),
        (["-", "-"], "stdin) can be given only once"),
        (["missing.yaml"], "missing.yaml: no such file or directory"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    paths = [str(write_yaml(tmp_path / "pod.yaml", plain_pod()))] if args[0] == "--profile" else []
    code, out, err = run_check(capsys, *paths, *args)
    assert code == 2
    assert message in err
    assert out == ""


def _many_files(tmp: Path, count: int) -> list[str]:
    for index in range(count):
        pod = plain_pod()
        pod["spec"]["containers"][0]["env"] = [{"name": "MINIO_SECRET_KEY", "value": f"value-{index}"}]
        write_yaml(tmp / f"pod{index:03d}.yaml", pod, task_pod())
    return [str(tmp)]


def test_worker_processes_give_the_same_report_in_the_same_order(tmp_path: Path) -> None:
    paths = _many_files(tmp_path, 70)
    options = CheckOptions(default_policy())
    serial = check_paths(paths, options, jobs=1)
    calls: list[tuple[int, int]] = []
    parallel = check_paths(paths, options, lambda done, total: calls.append((done, total)), jobs=2)
    assert parallel.findings == serial.findings
    assert parallel.summary() == serial.summary()
    assert calls[-1] == (70, 70)
    assert [f.file for f in parallel.findings] == sorted(f.file for f in parallel.findings)


def test_an_error_in_a_worker_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    paths = _many_files(tmp_path, 70)
    (tmp_path / "pod050.yaml").write_text("a: [\n")
    code, _, err = run_check(capsys, *paths, "--jobs", "2")
    assert code == 2
    assert "pod050.yaml:2:1: invalid YAML" in err


@pytest.mark.parametrize(
    ("files", "jobs", "expected"),
    [(["a"] * 10, None, 1), (["a"] * 100, 1, 1), (["a"] * 100, 3, 3), (["a"] * 40, 8, 2), (["-", "a"], 4, 1)],
)
def test_workers_for(files: list[str], jobs: int | None, expected: int) -> None:
    assert workers_for(files, jobs) == expected


def test_jobs_must_be_positive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_check(capsys, str(write_yaml(tmp_path / "p.yaml", plain_pod())), "--jobs", "0")
    assert code == 2 and "--jobs must be at least 1" in err


def test_pre_commit_hook_runs_keyguard_check() -> None:
    hooks = yaml.safe_load((Path(__file__).parent.parent / ".pre-commit-hooks.yaml").read_text())
    assert hooks[0]["id"] == "keyguard-check"
    assert hooks[0]["entry"].startswith("keyguard check")
    assert set(hooks[0]["types_or"]) == {"yaml", "json"}
