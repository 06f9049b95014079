"""The values files docs/flyte.md documents, and the same files with the literal storage keys put back the way
Flyte's charts and sandbox ship them (fake keys made at run time). No test here: shared by the docs tests and
`keyguard fix`'s."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from tests import fake_credentials as fake

DOCS = Path(__file__).resolve().parents[1] / "docs" / "flyte-values"
CHARTS = ("flyte-binary", "flyte-core", "flyte-sandbox")


@dataclass(frozen=True)
class Leaky:
    """A documented file with its keys back: the text, the two fake values, the paths `check` must name."""

    text: str
    access_key: str
    secret_key: str
    paths: tuple[str, ...]


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def with_literals(chart: str) -> Leaky:
    access, secret = fake.aws_access_key_id(), fake.aws_secret_access_key()
    yaml = _yaml()
    data = yaml.load((DOCS / f"{chart}.yaml").read_text())
    root, prefix = (data["flyte-binary"], "flyte-binary.") if chart == "flyte-sandbox" else (data, "")
    if chart == "flyte-core":
        del root["storage"]["secretName"]
        s3, s3_path = root["storage"]["s3"], "storage.s3"
        env, env_path = root["configmap"]["k8s"]["plugins"]["k8s"]["default-env-vars"], "configmap.k8s.plugins.k8s"
    else:
        del root["configuration"]["inlineSecretRef"]
        s3 = root["configuration"]["storage"]["providerConfig"]["s3"]
        s3_path = "configuration.storage.providerConfig.s3"
        env = root["configuration"]["inline"]["plugins"]["k8s"]["default-env-vars"]
        env_path = "configuration.inline.plugins.k8s"
    s3["authType"] = "accesskey"
    s3["accessKey"], s3["secretKey"] = access, secret
    # Where the sandbox has them: right after FLYTE_AWS_ENDPOINT.
    env.insert(1, {"FLYTE_AWS_SECRET_ACCESS_KEY": secret})
    env.insert(1, {"FLYTE_AWS_ACCESS_KEY_ID": access})
    out = io.StringIO()
    yaml.dump(data, out)
    paths = (
        f"{prefix}{s3_path}.accessKey",
        f"{prefix}{s3_path}.secretKey",
        f"{prefix}{env_path}.default-env-vars[1].FLYTE_AWS_ACCESS_KEY_ID",
        f"{prefix}{env_path}.default-env-vars[2].FLYTE_AWS_SECRET_ACCESS_KEY",
    )
    return Leaky(out.getvalue(), access, secret, paths)
