"""`keyguard check` on the configuration files a Flyte admin really has (issue 19), table-driven per point:

1. templates (Helm, Go, Flyte cluster-resource `{{ namespace }}`, Terraform/envsubst `${…}`) are read with their
   placeholders made inert, on the same lines; a template that is still not YAML is read line by line, with a
   warning that names the file and the line;
2. a credential that a template fills into `default-env-vars` is its own warning; templated values elsewhere are
   not findings;
3. MinIO chart values (official, legacy, Bitnami, as a subchart) and MinIO Deployments are recognised;
4. YAML keyguard does not recognise still gets the generic scan, with its false-positive safeguards;
5. both halves of every key pair are reported, at the same severity.

Files are written at run time with fake keys from tests/fake_credentials.py (`@KEY1@`, `@KEY2@` in the texts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import fake_credentials as fake
from tests.test_check_support import assert_no_secret_in_any_output, check_json, run_check, write_yaml
from webhook.check.templates import TOKEN, has_placeholders, is_literal, is_placeholder, neutralise

# Every check test runs with each YAML loader `keyguard check` may use.
pytestmark = pytest.mark.usefixtures("yaml_loader")

# (path, rule, text that identifies the expected line: the first line containing it)
Expected = list[tuple[str, str, str]]


def _fill(text: str) -> tuple[str, list[str]]:
    keys = [fake.aws_secret_access_key(), fake.aws_access_key_id()]
    return text.replace("@KEY1@", keys[0]).replace("@KEY2@", keys[1]), keys


def _line(text: str, marker: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if marker in line)


def _path_line(text: str, path: str) -> int:
    """The line of a dotted path in block YAML: each key searched for below the line of the one before."""
    lines, at = text.splitlines(), 0
    for key in (part.split("[")[0] for part in path.split(".")):
        at = next(n for n in range(at, len(lines)) if f"{key}:" in lines[n])
    return at + 1


def _assert_findings(result: dict[str, Any], text: str, expected: Expected) -> None:
    found = sorted((f["path"], f["rule"], f["line"]) for f in result["findings"])
    assert found == sorted((path, rule, _line(text, marker)) for path, rule, marker in expected)


# --- 1. templates ---------------------------------------------------------------------------------------------

CLUSTER_RESOURCE_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: flyte-storage-config
  namespace: {{ namespace }}
data:
  config.yaml: |
    storage:
      type: minio
      container: {{ namespace }}-data
      connection:
        endpoint: http://minio.flyte:9000
        access-key: @KEY2@
        secret-key: @KEY1@
"""

VALUES_WITH_UNQUOTED_ANNOTATION = """\
flyteadmin:
  podAnnotations:
    checksum/config: {{ include (print $.Template.BasePath "/config.yaml") . | sha256sum }}
storage:
  type: s3
  bucketName: my-bucket
  s3:
    authType: accesskey
    accessKey: @KEY2@
    secretKey: @KEY1@
"""

HELM_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "tools.fullname" . }}
  labels:
    {{- include "tools.labels" . | nindent 4 }}
spec:
  template:
    spec:
      containers:
        - name: tools
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          env:
            {{- if .Values.region }}
            - name: AWS_REGION
              value: {{ .Values.region | quote }}
            {{- end }}
            - name: AWS_ACCESS_KEY_ID
              value: {{ .Values.accessKeyId }}
            - name: AWS_SECRET_ACCESS_KEY
              value: @KEY1@
"""

TERRAFORM_VALUES = """\
configuration:
  storage:
    providerConfig:
      s3:
        authType: accesskey
        accessKey: ${access_key_id}
        secretKey: "${secret_access_key}"
  inline:
    storage:
      connection:
        secret-key: @KEY1@
"""

UNPARSEABLE_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    team: {{ .Values.team }}: {{ .Values.owner }}
spec:
  template:
    spec:
      containers:
        - name: minio
          env:
            - name: MINIO_ROOT_PASSWORD
              value: "@KEY1@"
            - name: MINIO_ROOT_USER
              value: {{ .Values.rootUser }}
          args: ["--access-key-id", "@KEY2@"]
          @KEY2@: "@KEY1@"
        - name: setup
          command:
            - sh
            - -c
            - |
              aws configure set aws_access_key_id @KEY2@ --profile flyte
"""

TEMPLATES: list[tuple[str, str, str, Expected]] = [
    (
        "flyteadmin cluster-resource template",
        "cluster-resources.yaml",
        CLUSTER_RESOURCE_TEMPLATE,
        [
            ('data["config.yaml"].storage.connection.access-key', "storage-config-literal", "access-key:"),
            ('data["config.yaml"].storage.connection.secret-key', "storage-config-literal", "secret-key:"),
        ],
    ),
    (
        "one unquoted expression in an annotation",
        "values.yaml",
        VALUES_WITH_UNQUOTED_ANNOTATION,
        [
            ("storage.s3.accessKey", "storage-config-literal", "accessKey:"),
            ("storage.s3.secretKey", "storage-config-literal", "secretKey:"),
        ],
    ),
    (
        "a Helm chart's Deployment template",
        "deployment.yaml",
        HELM_DEPLOYMENT,
        [("spec.template.spec.containers[0].env[2]", "env-credential-literal", "- name: AWS_SECRET_ACCESS_KEY")],
    ),
    (
        "Terraform templatefile values",
        "values.yaml.tftpl",
        TERRAFORM_VALUES,
        [("configuration.inline.storage.connection.secret-key", "storage-config-literal", "secret-key:")],
    ),
    (
        "still not YAML: read line by line",
        "broken-template.yaml",
        UNPARSEABLE_TEMPLATE,
        [
            ("", "template-read-degraded", "team:"),
            ("MINIO_ROOT_PASSWORD", "config-credential-literal", 'value: "'),
            ("args", "aws-access-key-id", "args:"),
            ("", "aws-secret-access-key", '@KEY2@: "@KEY1@"'),  # under a key-shaped key, which is never named
            ("", "aws-access-key-id", "aws configure"),
        ],
    ),
]


@pytest.mark.parametrize(("label", "name", "template", "expected"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_templates_are_read_with_placeholders_inert(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, label: str, name: str, template: str, expected: Expected
) -> None:
    text, keys = _fill(template)
    path = tmp_path / name
    path.write_text(text)
    code, result = check_json(capsys, str(path))
    assert code == 1, label
    _assert_findings(result, template, expected)  # the same lines as the filled text
    assert result["skipped"] == []
    assert_no_secret_in_any_output(capsys, keys, str(path))


def test_the_degraded_reading_says_so_in_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text, _ = _fill(UNPARSEABLE_TEMPLATE)
    path = tmp_path / "t.yaml"
    path.write_text(text)
    _, out, _ = run_check(capsys, str(path), "--fail-on", "never")
    assert "warning [template-read-degraded]" in out
    assert "line 5: warning [template-read-degraded] (template read line by line)" in out
    assert "(line 5: mapping values are not allowed" in out
    assert "helm template" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: {{ x }}\n", f"a: {TOKEN}\n"),
        ("a: '{{ x }}-{{ y }}'\n", f"a: '{TOKEN}-{TOKEN}'\n"),
        ("a: {{ x }}{{ y }}\n", f"a: {TOKEN}\n"),  # adjacent placeholders are one
        ("  {{- if .Values.a }}\nb: 1\n{{ end }}\n", "\nb: 1\n\n"),  # action lines become blank
        ("a: {{ x\n  }}\nb: ${c}\n", f"a: {TOKEN}\n\nb: {TOKEN}\n"),  # a placeholder over two lines keeps both
        ("a: ${b:-c}\nd: $e\n", f"a: {TOKEN}\nd: $e\n"),
    ],
)
def test_neutralise_keeps_lines(text: str, expected: str) -> None:
    assert neutralise(text) == expected
    assert neutralise(text).count("\n") == text.count("\n")


@pytest.mark.parametrize(
    ("value", "placeholder", "literal"),
    [
        ("{{ .Values.key }}", True, False),
        (" ${secret} ", True, False),
        (TOKEN, True, False),
        ("{{ a }}{{ b }}", True, False),
        ("prefix-{{ .Values.key }}", False, True),  # part of it is written in the file
        ("$(OTHER_VAR)", False, False),
        ("$OTHER_VAR", False, False),
        ("<your-secret-key>", False, False),
        ("AWS_SECRET_ACCESS_KEY", False, False),  # names where the key lives
        ("", False, False),
        ("miniostorage", False, True),
    ],
)
def test_placeholders_and_literals(value: str, placeholder: bool, literal: bool) -> None:
    assert (is_placeholder(value), is_literal(value)) == (placeholder, literal)


# --- 2. templated credentials in default-env-vars ---------------------------------------------------------------

TEMPLATED: list[tuple[str, Any, list[str]]] = [
    (
        "flyte-core configmap, Azure key from values",
        {
            "configmap": {
                "k8s": {
                    "plugins": {
                        "k8s": {
                            "default-env-vars": [
                                {"AZURE_STORAGE_ACCOUNT_NAME": "{{ .Values.userSettings.accountName }}"},
                                {"AZURE_STORAGE_ACCOUNT_KEY": "{{ .Values.userSettings.storageAccountKey }}"},
                            ]
                        }
                    }
                }
            },
            "storage": {
                "type": "custom",
                "custom": {"stow": {"kind": "azure", "config": {"key": "{{ .Values.userSettings.accountKey }}"}}},
            },
        },
        ["configmap.k8s.plugins.k8s.default-env-vars[1].AZURE_STORAGE_ACCOUNT_KEY"],
    ),
    (
        "flyte-binary inline, both AWS halves from values",
        {
            "configuration": {
                "storage": {"providerConfig": {"s3": {"authType": "accesskey", "secretKey": "{{ .Values.s }}"}}},
                "inline": {
                    "plugins": {
                        "k8s": {
                            "default-env-vars": {
                                "FLYTE_AWS_ENDPOINT": "{{ .Values.storage.endpoint }}",
                                "FLYTE_AWS_ACCESS_KEY_ID": "{{ .Values.storage.accessKey }}",
                                "FLYTE_AWS_SECRET_ACCESS_KEY": "{{ .Values.storage.secretKey }}",
                            }
                        }
                    }
                },
            }
        },
        [
            "configuration.inline.plugins.k8s.default-env-vars.FLYTE_AWS_ACCESS_KEY_ID",
            "configuration.inline.plugins.k8s.default-env-vars.FLYTE_AWS_SECRET_ACCESS_KEY",
        ],
    ),
    (
        "propeller config rendered by Terraform",
        {"plugins": {"k8s": {"default-env-vars": [{"AWS_SECRET_ACCESS_KEY": "${aws_secret_access_key}"}]}}},
        ["plugins.k8s.default-env-vars[0].AWS_SECRET_ACCESS_KEY"],
    ),
    (
        "templated values elsewhere are not findings",
        {
            "storage": {
                "type": "stow",
                "stow": {"kind": "s3", "config": {"access_key_id": "{{ .Values.a }}", "secret_key": "{{ .Values.b }}"}},
                "connection": {"secret-key": "${secret}"},
            },
            "plugins": {"k8s": {"default-env-vars": [{"AWS_SECRET_ACCESS_KEY": "$(FROM_ANOTHER_VAR)"}]}},
        },
        [],
    ),
]


@pytest.mark.parametrize(("label", "document", "paths"), TEMPLATED, ids=[t[0] for t in TEMPLATED])
def test_templated_credentials_in_default_env_vars_are_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, label: str, document: Any, paths: list[str]
) -> None:
    path = write_yaml(tmp_path / "values.yaml", document)
    code, result = check_json(capsys, str(path))
    assert code == 0, label  # warnings do not fail the default --fail-on error
    assert sorted(f["path"] for f in result["findings"]) == sorted(paths)
    for finding in result["findings"]:
        name = finding["path"].rsplit(".", 1)[-1]
        assert (finding["rule"], finding["severity"]) == ("env-credential-templated", "warning")
        assert name in finding["message"] and "every task container" in finding["message"]
        assert "default-env-from-secrets" in finding["fix"] and "keyguard" in finding["fix"]
    assert check_json(capsys, str(path), "--fail-on", "warning")[0] == (1 if paths else 0)


FLYTE_POD_TEMPLATE = """\
apiVersion: v1
kind: PodTemplate
metadata:
  name: flyte-default-template
  namespace: {{ .Release.Namespace }}
template:
  spec:
    containers:
      - name: default
        image: docker.io/rwgrim/docker-noop
        env:
          - name: AWS_REGION
            value: {{ .Values.region }}
          - name: FLYTE_AWS_SECRET_ACCESS_KEY
            value: "{{ .Values.storage.secretKey }}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: tools
spec:
  template:
    spec:
      containers:
        - name: tools
          image: busybox
          env:
            - name: AWS_SECRET_ACCESS_KEY
              value: {{ .Values.secretKey }}
"""


def test_a_templated_credential_in_a_pod_template_is_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Flyte merges a PodTemplate into every task pod that uses it; a Deployment's templated env is its own."""
    path = tmp_path / "templates.yaml"
    path.write_text(FLYTE_POD_TEMPLATE)
    code, result = check_json(capsys, str(path))
    assert code == 0
    found = [(f["path"], f["rule"], f["severity"], f["line"]) for f in result["findings"]]
    line = _line(FLYTE_POD_TEMPLATE, "- name: FLYTE_AWS_SECRET_ACCESS_KEY")
    assert found == [("template.spec.containers[0].env[1]", "env-credential-templated", "warning", line)]
    assert "valueFrom.secretKeyRef" in result["findings"][0]["fix"]


# --- 3. MinIO -------------------------------------------------------------------------------------------------

MINIO: list[tuple[str, Any, list[str], str]] = [
    (
        "official chart",
        {"mode": "standalone", "rootUser": "@KEY2@", "rootPassword": "@KEY1@", "buckets": [{"name": "flyte"}]},
        ["rootPassword", "rootUser"],
        "set `existingSecret`",
    ),
    (
        "official chart before 2021",
        {"accessKey": "@KEY2@", "secretKey": "@KEY1@", "persistence": {"size": "10Gi"}, "mode": "standalone"},
        ["accessKey", "secretKey"],
        "`accesskey` and `secretkey`",
    ),
    (
        "official chart users",
        {"rootUser": "", "users": [{"accessKey": "flyte", "secretKey": "@KEY1@", "policy": "readwrite"}]},
        ["users[0].accessKey", "users[0].secretKey"],
        "`existingSecretKey`",
    ),
    (
        "Bitnami chart",
        {"image": {"repository": "bitnami/minio"}, "auth": {"rootUser": "minio", "rootPassword": "@KEY1@"}},
        ["auth.rootPassword", "auth.rootUser"],
        "`auth.existingSecret`",
    ),
    (
        "Bitnami chart before 2021",
        {"image": {"repository": "bitnami/minio"}, "accessKey": {"password": "@KEY2@"}, "secretKey": {"password": "x"}},
        ["accessKey.password", "secretKey.password"],
        "`root-user` and `root-password`",
    ),
    (
        "the Flyte sandbox's minio subchart",
        {
            "flyte-binary": {"configuration": {"database": {"host": "postgres"}}},
            "minio": {"auth": {"rootUser": "minio", "rootPassword": "miniostorage"}, "defaultBuckets": "flyte"},
        },
        ["minio.auth.rootPassword", "minio.auth.rootUser"],
        "set `minio.auth.existingSecret`",
    ),
]


@pytest.mark.parametrize(("label", "values", "paths", "fix"), MINIO, ids=[m[0] for m in MINIO])
def test_minio_values_are_recognised(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, label: str, values: Any, paths: list[str], fix: str
) -> None:
    text, keys = _fill(write_yaml(tmp_path / "v.yaml", values).read_text())
    path = tmp_path / "values.yaml"
    path.write_text(text)
    code, result = check_json(capsys, str(path))
    assert code == 1, label
    assert sorted(f["path"] for f in result["findings"]) == paths
    assert {f["rule"] for f in result["findings"]} == {"storage-config-literal"}
    assert all(fix in f["fix"] for f in result["findings"]), [f["fix"] for f in result["findings"]]
    lines = text.splitlines()
    for finding in result["findings"]:
        assert finding["path"].rsplit(".", 1)[-1].split("[")[0] in lines[finding["line"] - 1]
    assert_no_secret_in_any_output(capsys, keys, str(path))


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "standalone", "existingSecret": "minio-root", "rootUser": "", "rootPassword": ""},
        {"image": {"repository": "bitnami/minio"}, "auth": {"existingSecret": "minio-root"}},
        {"architecture": "replicaset", "auth": {"rootUser": "root", "rootPassword": "x"}},  # Bitnami's MongoDB
    ],
    ids=["official existingSecret", "Bitnami existingSecret", "not MinIO"],
)
def test_minio_values_without_keys_and_look_alikes_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, values: Any
) -> None:
    code, result = check_json(capsys, str(write_yaml(tmp_path / "values.yaml", values)))
    assert (code, result["findings"]) == (0, [])


def test_a_minio_deployment_reports_both_halves(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key = fake.aws_secret_access_key()
    env = [
        {"name": "MINIO_ROOT_USER", "value": "minio"},
        {"name": "MINIO_ROOT_PASSWORD", "value": key},
        {"name": "MINIO_ROOT_USER_FILE", "value": "/run/secrets/user"},
    ]
    container = {"name": "minio", "image": "minio/minio", "args": ["server", "/data"], "env": env}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "minio", "namespace": "flyte"},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }
    path = write_yaml(tmp_path / "minio.yaml", deployment)
    code, result = check_json(capsys, str(path))
    assert code == 1
    found = [(f["path"], f["rule"], f["severity"]) for f in result["findings"]]
    assert found == [
        ("spec.template.spec.containers[0].env[0]", "env-credential-literal", "error"),
        ("spec.template.spec.containers[0].env[1]", "env-credential-literal", "error"),
    ]


# --- 4. YAML keyguard does not recognise ----------------------------------------------------------------------

GENERIC: list[tuple[str, Any, list[tuple[str, str]]]] = [
    (
        "some other chart's values",
        {"backup": {"s3": {"bucket": "b", "secretKey": "@KEY1@"}}, "replicas": 2},
        [("backup.s3.secretKey", "config-credential-literal")],
    ),
    (
        "a key shape under an innocent name",
        {"notes": {"id": "@KEY2@"}},
        [("notes.id", "aws-access-key-id")],
    ),
    (
        "a kind keyguard has no scanner for",
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "flyte"},
            "spec": {"values": {"storage": {"s3": {"secretKey": "@KEY1@"}}}},
        },
        [("spec.values.storage.s3.secretKey", "config-credential-literal")],
    ),
    (
        "a ConfigMap read by envFrom",
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"AWS_REGION": "r", "AWS_SECRET_ACCESS_KEY": "@KEY1@"}},
        [("data.AWS_SECRET_ACCESS_KEY", "config-credential-literal")],
    ),
    (
        "a kustomize JSON patch (a list)",
        [
            {
                "op": "add",
                "path": "/spec/template/spec/containers/0/env/-",
                "value": {"name": "MINIO_ROOT_USER", "value": "@KEY2@"},
            }
        ],
        [("[0].value", "env-credential-literal")],
    ),
    (
        "env-style pairs in a custom resource",
        {
            "apiVersion": "sparkoperator.k8s.io/v1beta2",
            "kind": "SparkApplication",
            "spec": {
                "driver": {
                    "env": [
                        {"name": "AWS_REGION", "value": "us-east-1"},
                        {"name": "AWS_SECRET_ACCESS_KEY", "value": "@KEY1@"},
                        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "s", "key": "id"}}},
                    ]
                }
            },
        },
        [("spec.driver.env[1]", "env-credential-literal")],
    ),
    (
        "safeguards",
        {
            "a": {"secretKey": "{{ .Values.secretKey }}"},
            "b": {"secretKey": "${SECRET_KEY}"},
            "c": {"secretKey": ""},
            "d": {"secretKey": "<your-secret-key>"},
            "e": {"secretKey": "$SECRET_KEY", "accessKey": "$(ACCESS_KEY)"},
            "f": {"secretKey": "AWS_SECRET_ACCESS_KEY"},
            "g": {"accessKeySecretRef": {"name": "s", "key": "access_key"}},
        },
        [],
    ),
    (
        "an ExternalSecret names keys, it holds none",
        {
            "apiVersion": "external-secrets.io/v1beta1",
            "kind": "ExternalSecret",
            "spec": {"data": [{"secretKey": "password", "remoteRef": {"key": "flyte/storage"}}]},
        },
        [],
    ),
]


@pytest.mark.parametrize(("label", "document", "expected"), GENERIC, ids=[g[0] for g in GENERIC])
def test_unrecognised_yaml_gets_the_generic_scan(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, label: str, document: Any, expected: list[tuple[str, str]]
) -> None:
    text, keys = _fill(write_yaml(tmp_path / "v.yaml", document).read_text())
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    code, result = check_json(capsys, str(path))
    assert code == (1 if expected else 0), label
    assert sorted((f["path"], f["rule"]) for f in result["findings"]) == expected
    assert_no_secret_in_any_output(capsys, keys, str(path))


# --- 5. both halves of every pair -----------------------------------------------------------------------------


def _env(id_name: str, secret_name: str) -> dict[str, Any]:
    return {"plugins": {"k8s": {"default-env-vars": [{id_name: "@ID@"}, {secret_name: "@S@"}]}}}


# The key-id half is reported like the secret half (README, "Detection rules"): it names the account the secret
# unlocks, rotating one means rotating both, and a file that holds one nearly always holds the other.
PAIRS: list[tuple[str, Any]] = [
    ("AWS env", _env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
    ("Flyte env", _env("FLYTE_AWS_ACCESS_KEY_ID", "FLYTE_AWS_SECRET_ACCESS_KEY")),
    ("MinIO env", _env("MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")),
    ("MinIO root env", _env("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")),
    ("stdlib connection", {"storage": {"type": "s3", "connection": {"access-key": "@ID@", "secret-key": "@S@"}}}),
    ("stow s3", {"storage": {"type": "stow", "stow": {"config": {"access_key_id": "@ID@", "secret_key": "@S@"}}}}),
    ("flyte-core", {"storage": {"bucketName": "b", "s3": {"accessKey": "@ID@", "secretKey": "@S@"}}}),
    (
        "flyte-binary",
        {"configuration": {"storage": {"providerConfig": {"s3": {"accessKey": "@ID@", "secretKey": "@S@"}}}}},
    ),
    ("MinIO chart", {"rootUser": "@ID@", "rootPassword": "@S@"}),
    ("MinIO Bitnami chart", {"minio": {"auth": {"rootUser": "@ID@", "rootPassword": "@S@"}}}),
    (
        "Spark S3A",
        {"sparkConf": {"spark.hadoop.fs.s3a.access.key": "@ID@", "spark.hadoop.fs.s3a.secret.key": "@S@"}},
    ),
]


@pytest.mark.parametrize(("label", "document"), PAIRS, ids=[p[0] for p in PAIRS])
def test_both_halves_of_every_pair_are_reported_alike(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, label: str, document: Any
) -> None:
    text = write_yaml(tmp_path / "v.yaml", document).read_text()
    path = tmp_path / "doc.yaml"
    path.write_text(text.replace("@ID@", "flyteuser").replace("@S@", "flytestorage"))
    code, result = check_json(capsys, str(path))
    assert code == 1, label
    assert len(result["findings"]) == 2, [f["path"] for f in result["findings"]]
    first, second = result["findings"]
    assert (first["rule"], first["severity"]) == (second["rule"], second["severity"])
    assert first["line"] != second["line"]


# --- done when: one folder of every shape above -----------------------------------------------------------------


def test_a_folder_of_third_party_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Every literal key flagged with its setting and line; templated values only ever warned about in
    default-env-vars (and the one template that could only be read line by line)."""
    folder = tmp_path / "deploy"
    folder.mkdir()
    keys: list[str] = []
    expected: set[tuple[str, str, str, int]] = set()
    for number, (_, name, template, found) in enumerate(TEMPLATES):
        text, made = _fill(template)
        keys += made
        (folder / f"t{number}-{name}").write_text(text)
        expected |= {(f"t{number}-{name}", path, rule, _line(template, marker)) for path, rule, marker in found}
    documents = [(f"minio{n}.yaml", m[1], m[2], "storage-config-literal") for n, m in enumerate(MINIO)]
    documents += [(f"env{n}.yaml", t[1], t[2], "env-credential-templated") for n, t in enumerate(TEMPLATED)]
    for name, document, paths, rule in documents:
        text, made = _fill(write_yaml(folder / name, document).read_text())
        keys += made
        (folder / name).write_text(text)
        for path in paths:
            expected.add((name, path, rule, _path_line(text, path)))
    code, result = check_json(capsys, str(folder))
    assert code == 1
    got = {(Path(f["file"]).name, f["path"], f["rule"], f["line"]) for f in result["findings"]}
    assert got == expected
    warnings = {f["rule"] for f in result["findings"] if f["severity"] == "warning"}
    assert warnings == {"env-credential-templated", "template-read-degraded"}
    _, out, _ = run_check(capsys, str(folder))
    for name, path, rule, line in expected:
        assert f"line {line}: " in out and f"[{rule}] {path}" in out, (name, path)
    assert_no_secret_in_any_output(capsys, keys, str(folder))


@pytest.mark.parametrize(
    ("text", "templated"),
    [
        ("a: {{ .Values.x }}\n", True),
        ("a: ${x}\n", True),
        ("a: {}\nb: $HOME\n", False),
        ("a: '{ {' \n", False),
        ("a: [" + "{}, " * 100 + "{{ .Values.x }}]\n", True),  # past 64 single braces: one plain scan
        ("a: [" + "{}, " * 100 + "]\n", False),
    ],
)
def test_placeholders_are_found_among_many_single_braces(text: str, templated: bool) -> None:
    assert has_placeholders(text) is templated
