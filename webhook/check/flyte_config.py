"""Storage keys in Flyte's own configuration: flytestdlib `storage` sections and `plugins.k8s` env settings.

These are the places keys live before they ever reach a pod: `storage.connection.access-key/secret-key`,
`storage.stow.config` (`access_key_id`, `secret_key`, Azure `key`, Google `json`), `plugins.k8s.default-env-vars`
(copied as literals into every task container: the Flyte sandbox ships its MinIO keys this way) and
`default-env-vars-from-env` (copies propeller's own env values into pods). The same sections appear in plain
config files, inside ConfigMaps (each data value is itself YAML) and in Helm values (`configuration.inline`,
flyte-core's `configmap.*`). Env entries are judged by the engine's detection rules, the rest by `rules.py`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from webhook.check.model import Located, Path, render_path
from webhook.check.rules import ENV_CREDENTIAL_TEMPLATED, ENV_FROM_ENV_CREDENTIAL, STORAGE_CONFIG_LITERAL
from webhook.check.templates import is_literal, is_placeholder
from webhook.detection import is_credential_name, scan_env_literal

CONNECTION_KEYS = ("access-key", "secret-key")
STOW_KEYS = frozenset({"access_key_id", "secret_key", "key", "json", "session_token"})
FLYTE_SECTIONS = ("storage", "plugins")


def looks_like_flyte_config(data: Mapping[str, Any]) -> bool:
    storage, plugins = data.get("storage"), data.get("plugins")
    return (isinstance(storage, dict) and bool({"connection", "stow", "type", "container"} & storage.keys())) or (
        isinstance(plugins, dict) and isinstance(plugins.get("k8s"), dict)
    )


def _storage_fix(key: str, where: str, *, google: bool = False) -> str:
    if google:
        return (
            f"remove `{key}` from `{where}`; use GKE Workload Identity, or mount the service-account key from a "
            "Secret and point GOOGLE_APPLICATION_CREDENTIALS at it"
        )
    return (
        f"remove `{key}` from `{where}`; use `auth_type: iam` / `auth-type: iam` with IRSA or workload identity, "
        "or load this storage section from a Secret (flyte-core: `storage.secretName`, flyte-binary: "
        "`configuration.inlineSecretRef`)"
    )


def _scan_storage(storage: Mapping[str, Any], prefix: Path) -> Iterator[Located]:
    connection = storage.get("connection")
    if isinstance(connection, dict):
        for key in CONNECTION_KEYS:
            if is_literal(connection.get(key)):
                path = (*prefix, "connection", key)
                message = f"`{render_path(path)}` holds a literal storage key [{STORAGE_CONFIG_LITERAL.id}]"
                yield Located(path, STORAGE_CONFIG_LITERAL, message, _storage_fix(key, render_path(path[:-1])))
    stow = storage.get("stow")
    config = stow.get("config") if isinstance(stow, dict) else None
    if isinstance(config, dict):
        for key, value in config.items():
            if isinstance(key, str) and (key in STOW_KEYS or is_credential_name(key)) and is_literal(value):
                path = (*prefix, "stow", "config", key)
                message = f"`{render_path(path)}` holds a literal storage key [{STORAGE_CONFIG_LITERAL.id}]"
                fix = _storage_fix(key, render_path(path[:-1]), google=key == "json")
                yield Located(path, STORAGE_CONFIG_LITERAL, message, fix)


def _env_entries(value: Any, path: Path) -> Iterator[tuple[str, Any, Path]]:
    """`default-env-vars` as a map or, as Flyte's charts write it, a list of one-entry maps."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield str(name), item, (*path, str(name))
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            if isinstance(entry, dict):
                for name, item in entry.items():
                    yield str(name), item, (*path, index, str(name))


def _scan_k8s_plugin(k8s: Mapping[str, Any], prefix: Path) -> Iterator[Located]:
    where = render_path(prefix)
    for name, value, path in _env_entries(k8s.get("default-env-vars"), (*prefix, "default-env-vars")):
        if isinstance(value, str) and is_placeholder(value):
            if is_credential_name(name):
                message = (
                    f"variable {name} in `{where}.default-env-vars` is filled in by a template at deploy time: the "
                    f"rendered key reaches every task container [{ENV_CREDENTIAL_TEMPLATED.id}]"
                )
                fix = (
                    f"remove `{name}` from `{where}.default-env-vars`; put the key in a Secret listed in "
                    f"`{where}.default-env-from-secrets`, or let keyguard mount the storage Secret"
                )
                yield Located(path, ENV_CREDENTIAL_TEMPLATED, message, fix)
        elif isinstance(value, str):
            for hit in scan_env_literal(name, value):
                message = (
                    f"{hit.detail} in `{where}.default-env-vars`, which Flyte copies into every task container "
                    f"[{hit.rule.id}]"
                )
                fix = (
                    f"move `{name}` from `{where}.default-env-vars` to a Secret listed in "
                    f"`{where}.default-env-from-secrets`"
                )
                yield Located(path, hit.rule, message, fix)
    from_env = (*prefix, "default-env-vars-from-env")
    for name, value, path in _env_entries(k8s.get("default-env-vars-from-env"), from_env):
        if is_credential_name(name) or (isinstance(value, str) and is_credential_name(value)):
            message = (
                f"`{where}.default-env-vars-from-env` copies {name} from propeller's environment into every task "
                f"pod as a literal [{ENV_FROM_ENV_CREDENTIAL.id}]"
            )
            fix = (
                f"move `{name}` from `{where}.default-env-vars-from-env` to a Secret listed in "
                f"`{where}.default-env-from-secrets`"
            )
            yield Located(path, ENV_FROM_ENV_CREDENTIAL, message, fix)


def scan_flyte_config(config: Mapping[str, Any], prefix: Path = ()) -> list[Located]:
    """Findings in one Flyte configuration tree (a config file, a ConfigMap value, `configuration.inline`)."""
    found: list[Located] = []
    storage = config.get("storage")
    if isinstance(storage, dict):
        found.extend(_scan_storage(storage, (*prefix, "storage")))
    plugins = config.get("plugins")
    k8s = plugins.get("k8s") if isinstance(plugins, dict) else None
    if isinstance(k8s, dict):
        found.extend(_scan_k8s_plugin(k8s, (*prefix, "plugins", "k8s")))
    return found
