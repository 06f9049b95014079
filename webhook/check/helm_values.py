"""Storage keys in the values of Flyte's Helm charts: flyte-core, flyte-binary and the sandbox.

- flyte-core: `storage.s3.accessKey/secretKey` (with `authType: accesskey`); the fix is `storage.secretName`
  (a Secret holding the storage section, chart v1.16.0+). Its `configmap.*` blocks are Flyte configuration.
- flyte-binary: `configuration.storage.providerConfig.s3.accessKey/secretKey` and `…azure.key`; its
  `configuration.inline` block is Flyte configuration (where `plugins.k8s.default-env-vars` lives).
- flyte-sandbox: flyte-binary values under a `flyte-binary` key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from webhook.check.flyte_config import scan_flyte_config
from webhook.check.model import Located, Path, render_path
from webhook.check.rules import STORAGE_CONFIG_LITERAL
from webhook.check.templates import is_literal

S3_KEYS = ("accessKey", "secretKey")
UMBRELLA_KEYS = ("flyte-binary", "flyte-core", "flyte")


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def is_flyte_binary(data: Mapping[str, Any]) -> bool:
    configuration = _dict(data.get("configuration"))
    return bool({"storage", "inline", "database", "inlineSecretRef"} & configuration.keys())


def is_flyte_core(data: Mapping[str, Any]) -> bool:
    storage = _dict(data.get("storage"))
    return bool({"s3", "gcs", "bucketName", "secretName", "custom"} & storage.keys()) or bool(
        {"configmap", "flyteadmin", "flytepropeller"} & data.keys()
    )


def _literal_keys(section: Mapping[str, Any], keys: tuple[str, ...], path: Path, fix: str) -> Iterator[Located]:
    for key in keys:
        if is_literal(section.get(key)):
            where = (*path, key)
            message = f"`{render_path(where)}` holds a literal storage key [{STORAGE_CONFIG_LITERAL.id}]"
            yield Located(where, STORAGE_CONFIG_LITERAL, message, fix.format(key=key))


def scan_flyte_core(data: Mapping[str, Any], secret_name: str, prefix: Path = ()) -> list[Located]:
    storage_path = (*prefix, "storage")
    where = render_path(storage_path)
    fix = (
        f"remove `{{key}}` from `{where}.s3`; create the Secret `{secret_name}` with the storage section and set "
        f"`{where}.secretName: {secret_name}`, or use `authType: iam` with IRSA"
    )
    found = list(_literal_keys(_dict(_dict(data.get("storage")).get("s3")), S3_KEYS, (*storage_path, "s3"), fix))
    for name, block in _dict(data.get("configmap")).items():
        if isinstance(block, dict):
            found.extend(scan_flyte_config(block, (*prefix, "configmap", str(name))))
    return found


def scan_flyte_binary(data: Mapping[str, Any], prefix: Path = ()) -> list[Located]:
    configuration = _dict(data.get("configuration"))
    provider = (*prefix, "configuration", "storage", "providerConfig")
    providers = _dict(_dict(configuration.get("storage")).get("providerConfig"))
    found: list[Located] = []
    for name, keys in (("s3", S3_KEYS), ("azure", ("key",))):
        where = render_path((*provider, name))
        fix = (
            f"remove `{{key}}` from `{where}`; use `authType: iam` (IRSA / workload identity), or move the storage "
            "keys into a Secret referenced by `configuration.inlineSecretRef`"
        )
        found.extend(_literal_keys(_dict(providers.get(name)), keys, (*provider, name), fix))
    inline = configuration.get("inline")
    if isinstance(inline, dict):
        found.extend(scan_flyte_config(inline, (*prefix, "configuration", "inline")))
    return found


def scan_values(data: Mapping[str, Any], secret_name: str, prefix: Path = ()) -> list[Located]:
    """Findings in a values file of any of Flyte's charts, umbrella charts included."""
    found: list[Located] = []
    if is_flyte_core(data):
        found.extend(scan_flyte_core(data, secret_name, prefix))
    if is_flyte_binary(data):
        found.extend(scan_flyte_binary(data, prefix))
    for key in UMBRELLA_KEYS:
        nested = data.get(key)
        if isinstance(nested, dict):
            found.extend(scan_values(nested, secret_name, (*prefix, key)))
    return found


def is_values(data: Mapping[str, Any]) -> bool:
    return (
        is_flyte_core(data)
        or is_flyte_binary(data)
        or any(isinstance(data.get(k), dict) and is_values(data[k]) for k in UMBRELLA_KEYS)
    )
