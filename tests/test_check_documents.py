"""Reading inputs: files, folders, stdin, YAML and JSON; the fast loader matches PyYAML's safe loader; paths map
to the right lines (embedded ConfigMap YAML included); bad input is exit 2 with file, line and reason."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import fake_credentials as fake
from tests.leaks import assert_not_leaked
from tests.test_check_support import check_json, run_check
from webhook.check import documents, fast_yaml
from webhook.check.model import parse_engine_path, render_path
from webhook.errors import UsageError

# Every check test runs with each YAML loader `keyguard check` may use.
pytestmark = pytest.mark.usefixtures("yaml_loader")

TRICKY_YAML = [
    "a: yes\nb: No\nc: on\nd: OFF\ne: ~\nf: null\ng: ''\n",
    "n: 012\nh: 0x1f\nf: 1.5e3\ni: .inf\nj: -.nan\nk: 1_000\nl: +7\nm: 190:20:30\n",
    "d: 2026-11-29\nt: 2026-11-29T10:00:00Z\ns: '2026-11-29'\n",
    "bin: !!binary aGVsbG8=\nstr: !!str 123\nint: !!int '7'\n",
    "base: &b {x: 1, y: [1, 2]}\nother: *b\n",
    "base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n",
    "s: !!set {a, b}\n",
    "o: !!omap [a: 1, b: 2]\n",
    "text: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
    "---\na: 1\n---\n---\nb: [x, {c: d}]\n...\n",
    "=: value\n'=': quoted\n",
    "",
]


@pytest.mark.parametrize("text", TRICKY_YAML)
def test_documents_match_pyyaml_safe_load(text: str) -> None:
    expected = list(yaml.safe_load_all(text))
    assert documents._parse(text) == expected


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "no", "on", "off", "~", "null", "0o17", "1e3", "2026-01-01", "<<", "=", "-", "+1"]),
    st.dates(min_value=datetime.date(1900, 1, 1)),
)
trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(trees, st.sampled_from([False, True]))
def test_fast_loader_is_safe_load_on_generated_documents(tree: Any, flow: bool) -> None:
    text = yaml.safe_dump_all([tree, {"k": tree}], default_flow_style=flow, allow_unicode=True)
    assert fast_yaml.load_all(text) == list(yaml.safe_load_all(text))


@pytest.mark.parametrize(
    "text",
    ["base: &b {x: 1}\nmerged:\n  <<: *b\n", "s: !!set {a, b}\n", "? [a, b]\n: v\n", "a: &a [*a]\n"],
)
def test_fast_loader_leaves_unusual_documents_to_pyyaml(text: str) -> None:
    with pytest.raises(fast_yaml.Unusual):
        fast_yaml.load_all(text)


def test_deep_nesting_falls_back() -> None:
    text = "a: " + "[" * 990 + "]" * 990 + "\n"
    with pytest.raises(fast_yaml.Unusual):
        fast_yaml.load_all(text)


@pytest.mark.parametrize(
    ("parts", "text"),
    [
        (("spec", "containers", 0, "env", 2), "spec.containers[0].env[2]"),
        (
            ("data", "storage.yaml", "storage", "connection", "secret-key"),
            'data["storage.yaml"].storage.connection.secret-key',
        ),
        (("flyte-binary", "configuration"), "flyte-binary.configuration"),
        (("a b", 'q"x'), '["a b"]["q\\"x"]'),
        ((), ""),
    ],
)
def test_render_path(parts: tuple[str | int, ...], text: str) -> None:
    assert render_path(parts) == text


def test_parse_engine_path() -> None:
    assert parse_engine_path("spec.initContainers[1].args[3]") == ("spec", "initContainers", 1, "args", 3)
    assert parse_engine_path("spec") == ("spec",)


CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: flyte-propeller-config
data:
  admin.yaml: |
    admin:
      endpoint: dns:///flyteadmin:81
  storage.yaml: |

    storage:
      type: minio
      connection:
        auth-type: accesskey
        secret-key: @KEY@
  k8s.yaml: "plugins:\\n  k8s:\\n    default-env-vars:\\n      AWS_SECRET_ACCESS_KEY: @KEY@\\n"
"""


def test_lines_inside_embedded_config_map_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    secret = fake.aws_secret_access_key()
    path = tmp_path / "cm.yaml"
    path.write_text(CONFIG_MAP.replace("@KEY@", secret))
    code, result = check_json(capsys, str(path))
    assert code == 1
    by_path = {f["path"]: f for f in result["findings"]}
    block = by_path['data["storage.yaml"].storage.connection.secret-key']
    assert block["line"] == 15 and block["kind"] == "ConfigMap" and block["name"] == "flyte-propeller-config"
    quoted = by_path['data["k8s.yaml"].plugins.k8s.default-env-vars.AWS_SECRET_ACCESS_KEY']
    assert quoted["line"] == 16  # a quoted string: the line of the value
    assert_not_leaked(secret, str(result), "json")


def test_config_map_without_flyte_configuration_gets_the_generic_scan(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a: 'b: c'\n  n: '1'\n  bad: '[x'\n")
    code, result = check_json(capsys, str(path))
    assert (code, result["findings"], result["skipped"]) == (0, [], [])
    assert result["summary"]["checked"] == 1


def test_folders_recurse_and_skip_hidden_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    names = ("a/b/x.yaml", "a/y.yml", "z.JSON", ".git/config.yaml", "a/readme.md", "a/_helpers.tpl", "v.yaml.tftpl")
    for name in names:
        (tmp_path / name).write_text("{}")
    files = documents.expand([str(tmp_path), "-"])
    found = [Path(f).relative_to(tmp_path).as_posix() for f in files[:-1]]
    assert found == ["a/b/x.yaml", "a/y.yml", "v.yaml.tftpl", "z.JSON"]
    assert files[-1] == "-"


def test_json_files_and_json_on_stdin_like_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    secret = fake.aws_secret_access_key()
    path = tmp_path / "values.json"
    path.write_text(
        '{\n  "storage": {\n    "bucketName": "b",\n    "s3": {\n      "secretKey": "@KEY@"\n    }\n  }\n}\n'.replace(
            "@KEY@", secret
        )
    )
    code, result = check_json(capsys, str(path))
    assert code == 1
    assert (result["findings"][0]["path"], result["findings"][0]["line"]) == ("storage.s3.secretKey", 5)
    # a flow-style YAML file that is not JSON still parses as YAML
    flow = tmp_path / "flow.yaml"
    flow.write_text("{storage: {bucketName: b, s3: {accessKey: minio}}}\n")
    assert check_json(capsys, str(flow))[0] == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", '{\n  "a": [1,\n}', "bad.json:3:1: invalid JSON"),
        ("latin1.yaml", b"a: caf\xe9\n", "not UTF-8 text (byte 6)"),
        ("tag.yaml", "a: !vault SECRET\n", "could not determine a constructor for the tag '!vault'"),
        ("date.yaml", "a: 2027-02-30\nb: SECRET\n", "invalid YAML: a value cannot be read (ValueError)"),
        ("dup-anchor.yaml", "a: *nope SECRET\n", "invalid YAML"),
    ],
)
def test_bad_input_exits_2_without_value(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    secret = fake.aws_secret_access_key()
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content.replace("SECRET", secret))
    code, out, err = run_check(capsys, str(path))
    assert code == 2
    assert message in err and str(path) in err
    assert_not_leaked(secret, err + out, "the error")


def test_unreadable_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(UsageError, match=r"x\.yaml: cannot read: Permission denied"):
        documents.load(str(path))


def test_line_of_a_path_that_does_not_exist_is_its_deepest_parent(tmp_path: Path) -> None:
    docs = documents.load(str(_write(tmp_path, "a:\n  b:\n    c: 1\n  d: [x, y]\n")))
    doc = docs[0]
    assert doc.line(("a", "b", "c")) == 3
    assert doc.line(("a", "d", 1)) == 4
    assert doc.line(("a", "missing", "x")) == 1
    assert doc.line(("a", "d", 9)) == 4
    assert doc.line(("a", "b", "c", "deeper")) == 3  # a plain scalar has nothing below it
    assert documents.Document("cluster", 0, {}).line(("a",)) is None


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    return path


# --- the pure-Python block subset ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["", "# generated by kustomize\n", "---\n", "# comment\n---\n"],
    ids=["bare", "comment", "leading-marker", "comment-and-marker"],
)
def test_lines_of_a_later_document_count_the_documents_before_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, header: str
) -> None:
    secret = fake.aws_secret_access_key()
    clean = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: y\n"
    leaky = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: i\n"
        f"    env:\n    - name: AWS_SECRET_ACCESS_KEY\n      value: {secret}\n"
    )
    text = header + clean + "---\n" + clean + "--- # third\n" + leaky
    path = tmp_path / "multi.yaml"
    path.write_text(text)
    _, result = check_json(capsys, str(path))
    (finding,) = result["findings"]
    lines = text.splitlines()
    assert lines[finding["line"] - 1].strip() == "- name: AWS_SECRET_ACCESS_KEY"
    assert finding["document"] == 3
