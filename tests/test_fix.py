"""`keyguard fix` on Flyte's own shapes: the sandbox, flyte-binary and flyte-core values with literal keys (fake,
made at run time) are fixed, the result passes `keyguard check`, comments survive, a second run changes nothing,
and no value is ever printed or written (no diff line, no backup file)."""

from __future__ import annotations

import dataclasses
import difflib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import fake_credentials as fake
from tests.flyte_values import CHARTS, with_literals
from tests.leaks import assert_not_leaked
from webhook.check import CheckOptions, check_paths
from webhook.check.model import render_path
from webhook.cli import main
from webhook.fix import BINARY_SECRET_KEY, CORE_SECRET_KEY, MASK, parse_path, plan_fix
from webhook.policy import default_policy

ROTATE = "keyguard secret create --namespace <project>-<domain>"


def run_fix(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["fix", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def leaky_file(tmp_path: Path, chart: str) -> tuple[Path, list[str]]:
    leaky = with_literals(chart)
    file = tmp_path / f"{chart}.yaml"
    file.write_text(leaky.text)
    return file, [leaky.access_key, leaky.secret_key]


def assert_nothing_holds(values: list[str], directory: Path, output: str) -> None:
    for value in values:
        assert_not_leaked(value, output, "keyguard fix's output")
        for written in directory.iterdir():
            assert_not_leaked(value, written.read_bytes(), str(written))


@pytest.mark.parametrize("chart", CHARTS)
def test_dry_run_shows_a_masked_diff_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, chart: str
) -> None:
    file, values = leaky_file(tmp_path, chart)
    before = file.read_bytes()
    code, output = run_fix(capsys, str(file))
    assert code == 1, output
    assert file.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [file.name]
    diff = [line for line in output.splitlines() if line.startswith(("-", "+"))]
    assert any("accessKey" in line and MASK in line for line in diff), output
    assert ROTATE in output
    for value in values:
        assert_not_leaked(value, output, "keyguard fix's output")


@pytest.mark.parametrize("chart", CHARTS)
def test_write_fixes_the_file_keeps_its_comments_and_a_second_run_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, chart: str
) -> None:
    file, values = leaky_file(tmp_path, chart)
    original = file.read_text()
    comments = [line.strip() for line in original.splitlines() if line.strip().startswith("#")]
    code, output = run_fix(capsys, "--write", str(file))
    assert code == 0, output
    assert ROTATE in output
    fixed = file.read_text()
    assert all(comment in fixed for comment in comments)
    removed = [line for line in difflib.ndiff(original.splitlines(), fixed.splitlines()) if line.startswith("- ")]
    assert removed, "the keys' lines go"
    assert all(any(v in line for v in values) or "authType" in line for line in removed), removed
    assert main(["check", str(file)]) == 0, capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == [file.name], "no backup, no temporary file left"
    assert_nothing_holds(values, tmp_path, output)
    code, output = run_fix(capsys, "--write", str(file))
    assert (code, file.read_text()) == (0, fixed)
    assert "nothing to fix" in output


@pytest.mark.parametrize(
    ("chart", "reference", "secret_key"),
    [
        ("flyte-binary", "configuration.inlineSecretRef", BINARY_SECRET_KEY),
        ("flyte-sandbox", "flyte-binary.configuration.inlineSecretRef", BINARY_SECRET_KEY),
        ("flyte-core", "storage.secretName", CORE_SECRET_KEY),
    ],
)
def test_the_secrets_hold_the_values_the_file_no_longer_has(
    tmp_path: Path, chart: str, reference: str, secret_key: str
) -> None:
    file, (access, secret) = leaky_file(tmp_path, chart)
    options = CheckOptions(policy=default_policy())
    result = plan_fix(file.read_text(), str(file), check_paths([str(file)], options).findings, options)
    control, tasks = result.secrets
    assert (control.scope, control.referenced_by, list(control.data)) == ("control-plane", reference, [secret_key])
    config = yaml.safe_load(control.data[secret_key])["storage"]
    keys = config["stow"]["config"] if "stow" in config else config["connection"]
    assert access in keys.values() and secret in keys.values()
    assert (tasks.scope, tasks.name, tasks.data) == (
        "tasks", "flyte-storage-creds", {"access_key": access, "secret_key": secret}
    )  # fmt: skip
    assert access not in repr(result) and secret not in repr(result)


ODD_BUT_VALID = """\
  rbac:
    # Flyte's sandbox mixes sequence styles; every line that holds no key stays exactly as it is.
    extraRules:
      - apiGroups:
        - '*'
        verbs: [ '*' ]   # flow style, odd spacing
"""


def test_lines_without_a_key_stay_byte_for_byte(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    file, values = leaky_file(tmp_path, "flyte-sandbox")
    original = file.read_text().replace("minio:\n", ODD_BUT_VALID + "minio:\n")  # under flyte-binary
    file.write_text(original)
    assert run_fix(capsys, "--write", str(file))[0] == 0
    fixed = file.read_text()
    assert ODD_BUT_VALID in fixed
    kept = [line for line in original.splitlines(True) if not any(v in line for v in values) and "authType" not in line]
    assert [line for line in fixed.splitlines(True) if line in kept] == kept


def test_a_value_left_elsewhere_is_named_by_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The sandbox's MinIO root password is its storage secret key: not a Flyte setting, so it stays, named with
    the fix check gives for MinIO chart values."""
    file, values = leaky_file(tmp_path, "flyte-sandbox")
    file.write_text(file.read_text() + f"  rootPassword: {values[1]}\n")
    code, output = run_fix(capsys, "--write", str(file))
    assert code == 1
    assert "a moved value also appears at minio.rootPassword" in output
    assert "left for you: minio.rootPassword [storage-config-literal]" in output  # check knows MinIO values
    assert_not_leaked(values[1], output, "output")


def test_what_fix_cannot_remedy_is_left_for_the_admin(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    file = tmp_path / "pod.yaml"
    leaky, values = leaky_file(tmp_path, "flyte-core")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "args": [f"--secret-key={values[1]}"]}]},
    }
    file.write_text(leaky.read_text() + "---\n" + yaml.safe_dump(pod))
    leaky.unlink()
    code, output = run_fix(capsys, "--write", str(file))
    assert code == 1
    assert "left for you: spec.containers[0].args[0] [cli-credential-flag]" in output
    assert main(["check", str(file)]) == 1
    assert_nothing_holds(values[:1], tmp_path, output)
    assert_not_leaked(values[1], output, "output")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.yaml"], "missing.yaml"),
        (["."], "a folder"),
        (["-"], "stdin"),
        (["--apply-secrets", "LEAKY"], "--task-namespace"),
    ],
)
def test_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    file, values = leaky_file(tmp_path, "flyte-binary")
    with_literals_text = file.read_text()
    code, output = run_fix(capsys, *[str(file) if a == "LEAKY" else a for a in args])
    assert code == 2
    assert message in output
    assert file.read_text() == with_literals_text
    for value in values:
        assert_not_leaked(value, output, "keyguard fix's output")


@pytest.mark.parametrize("path", ["a.b[2].c", 'data["storage.yaml"].storage', "x[0][1]", 'a["q\\"uote"]'])
def test_check_paths_parse_back_to_their_parts(path: str) -> None:
    assert render_path(parse_path(path)) == path


def test_a_path_check_never_renders_is_refused() -> None:
    with pytest.raises(ValueError, match="not a check path"):
        parse_path("a..b")


TASKS = ("tasks", "flyte-storage-creds", ["access_key", "secret_key"])
EDGES = [
    (
        "flyte-binary on Azure",
        "configuration:\n  storage:\n    provider: azure\n    providerConfig:\n      azure:\n"
        "        account: acct\n        key: {secret}\n",
        [],
        [("control-plane", "flyte-storage-config", [BINARY_SECRET_KEY])],
        "  inlineSecretRef: flyte-storage-config\n",
    ),
    (
        "default-env-vars as a map, in a Flyte config file",
        "plugins:\n  k8s:\n    default-env-vars:\n      FLYTE_AWS_ACCESS_KEY_ID: {access}\n"
        "      FLYTE_AWS_SECRET_ACCESS_KEY: {secret}\n      FLYTE_AWS_ENDPOINT: http://minio:9000\n",
        [],
        [TASKS],
        "      FLYTE_AWS_ENDPOINT: http://minio:9000\n",
    ),
    (
        "an existing reference and an admin's comment are kept",
        "configuration:\n  inlineSecretRef: mine\n  storage:\n    providerConfig:\n      s3:\n"
        "        authType: accesskey  # ours\n        accessKey: {access}\n        secretKey: {secret}\n",
        [],
        [("control-plane", "mine", [BINARY_SECRET_KEY]), TASKS],
        "        authType: iam  # ours\n",
    ),
    (
        "flyte-core with an empty secretName",
        "storage:\n  type: s3\n  bucketName: b\n  secretName: ''\n  s3:\n    authType: accesskey\n"
        "    accessKey: {access}\n    secretKey: {secret}\n",
        [],
        [("control-plane", "flyte-storage-config", [CORE_SECRET_KEY]), TASKS],
        "  secretName: flyte-storage-config  # the control plane's storage section\n",
    ),
    (
        "a sequence at its key's indentation ends the block the reference goes after",
        "configuration:\n  storage:\n    providerConfig:\n      s3:\n        accessKey: {access}\n"
        "        secretKey: {secret}\n  extra:\n  - a\n  - b\n# the end\n",
        [],
        [("control-plane", "flyte-storage-config", [BINARY_SECRET_KEY]), TASKS],
        "      s3: {}\n  extra:\n  - a\n  - b\n  inlineSecretRef: flyte-storage-config\n# the end\n",
    ),
    (
        "a list item with other settings is not split",
        "plugins:\n  k8s:\n    default-env-vars:\n      - FLYTE_AWS_SECRET_ACCESS_KEY: {secret}\n        OTHER: x\n",
        ["plugins.k8s.default-env-vars[0].FLYTE_AWS_SECRET_ACCESS_KEY"],
        [],
        "        OTHER: x\n",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("label", "template", "left", "secrets", "line"), EDGES, ids=[e[0] for e in EDGES])
def test_each_shape_is_fixed_or_left(
    tmp_path: Path, label: str, template: str, left: list[str], secrets: list[tuple[str, str, list[str]]], line: str
) -> None:
    access, secret = fake.aws_access_key_id(), fake.azure_account_key()
    file = tmp_path / "values.yaml"
    file.write_text(template.format(access=access, secret=secret))
    options = CheckOptions(policy=default_policy())
    result = plan_fix(file.read_text(), str(file), check_paths([str(file)], options).findings, options)
    assert [f.path for f in result.remaining] == left, label
    assert [(s.scope, s.name, sorted(s.data)) for s in result.secrets] == secrets
    assert line in result.text
    if not left:
        assert access not in result.text and secret not in result.text
    assert access not in result.diff and secret not in result.diff


def test_a_layout_it_cannot_edit_safely_changes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    access, secret = fake.aws_access_key_id(), fake.aws_secret_access_key()
    file = tmp_path / "values.yaml"
    text = f"configuration:\n  storage:\n    providerConfig:\n      s3: {{accessKey: {access}, secretKey: {secret}}}\n"
    file.write_text(text)
    code, output = run_fix(capsys, "--write", str(file))
    assert code == 2
    assert "cannot edit safely" in output
    assert file.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == [file.name]
    for value in (access, secret):
        assert_not_leaked(value, output, "output")


def test_secrets_are_checked_before_any_is_applied(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Only the secret key leaked: the task Secret would lack access_key, so nothing is applied (and no cluster is
    even contacted: there is none here)."""
    secret = fake.aws_secret_access_key()
    file = tmp_path / "config.yaml"
    file.write_text(f"plugins:\n  k8s:\n    default-env-vars:\n      - FLYTE_AWS_SECRET_ACCESS_KEY: {secret}\n")
    code, output = run_fix(
        capsys,
        "--apply-secrets",
        "--task-namespace",
        "flytesnacks-production",
        "--kubeconfig",
        "/nonexistent",
        str(file),
    )
    assert code == 2
    assert "missing or empty key(s): access_key" in output
    assert_not_leaked(secret, output, "output")


def test_the_command_line_loads_ruamel_only_when_fix_runs() -> None:
    """`keyguard serve` builds the same parser: it must not pay for (or depend on) the YAML editor."""
    probe = "import sys, webhook.cli as c; c.build_parser(); print('ruamel.yaml' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_windows_line_endings_stay(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    file, _ = leaky_file(tmp_path, "flyte-binary")
    file.write_bytes(file.read_text().replace("\n", "\r\n").encode())
    assert run_fix(capsys, "--write", str(file))[0] == 0
    fixed = file.read_bytes().decode()
    assert "inlineSecretRef: flyte-storage-config\r\n" in fixed
    assert fixed.count("\n") == fixed.count("\r\n")
    assert main(["check", str(file)]) == 0


def test_a_finding_it_cannot_locate_is_left_and_no_diff_is_shown(tmp_path: Path) -> None:
    """Check's path format is check's: a path this version cannot read is never guessed at, and the diff, whose
    context could show that finding's value, is withheld."""
    file, values = leaky_file(tmp_path, "flyte-binary")
    options = CheckOptions(policy=default_policy())
    findings = check_paths([str(file)], options).findings
    odd = dataclasses.replace(findings[0], path="configuration..storage")
    result = plan_fix(file.read_text(), str(file), [odd, *findings[1:]], options)
    assert [f.path for f in result.remaining] == ["configuration.storage.providerConfig.s3.accessKey"]
    assert "diff withheld" in result.diff
    assert not any(v in result.diff for v in values)
