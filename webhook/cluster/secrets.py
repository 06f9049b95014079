"""`keyguard secret create`: the storage-credential Secret of one environment, from stdin, an env file or a prompt.

Never from command-line arguments, which end up in shell history and process lists. The keys are the ones the
profile's credentials format expects, so the injected volume and the renderer find them; the Secret is labelled so
`doctor` and audits can find every storage-credential Secret. Values go to the API server and nowhere else: the
command prints key names only.
"""

from __future__ import annotations

import base64
import getpass
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from webhook.cluster.connection import APPLY, api_error
from webhook.credential_files import SECRET_KEYS
from webhook.errors import UsageError
from webhook.injection import ANNOTATION_PROFILE
from webhook.policy import Profile

LABEL = "keyguard.flyte.org/storage-credentials"
ROTATED_AT = "keyguard.flyte.org/rotated-at"  # when the keys were last written: doctor's maxAgeDays


def parse_env_text(text: str, source: str) -> dict[str, str]:
    """`key=value` lines (blank lines and `#` comments skipped); errors name the line, never its value."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not key:
            raise UsageError(f"{source}: line {number}: expected key=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def collect(
    profile: Profile, values: Mapping[str, str] | None, prompt: Callable[[str], str] = getpass.getpass
) -> dict[str, str]:
    """The expected keys, from `values` (stdin or file) or asked for one by one without echo."""
    if not profile.credentials.uses_secret:
        raise UsageError(
            f"profile {profile.name} uses {profile.credentials.format}: tasks get short-lived credentials, and a "
            "static key Secret would be refused"
        )
    expected = SECRET_KEYS[profile.credentials.format]
    if values is None:
        values = {key: prompt(f"{key}: ") for key in expected}
    unknown = sorted(set(values) - set(expected) - {"session_token"})
    if unknown:
        raise UsageError(
            f"unexpected key(s) {', '.join(unknown)}; profile {profile.name} expects {', '.join(expected)}"
        )
    missing = [key for key in expected if not values.get(key)]
    if missing:
        raise UsageError(f"missing or empty key(s): {', '.join(missing)}")
    return dict(values)


def apply_secret(api: client.ApiClient, namespace: str, profile: Profile, values: Mapping[str, str]) -> Any:
    annotations = {ANNOTATION_PROFILE: profile.name}
    return apply_labelled_secret(api, namespace, profile.credentials.secret_name, values, annotations)


def apply_labelled_secret(
    api: client.ApiClient, namespace: str, name: str, data: Mapping[str, str], annotations: Mapping[str, str]
) -> Any:
    """Server-side apply of a storage-credential Secret as keyguard labels it, stamped with when its keys were
    written (doctor's maxAgeDays). keyguard owns only the keys it applies: other keys of an existing Secret (an
    admin's, another tool's) stay."""
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {LABEL: "true", "app.kubernetes.io/managed-by": "keyguard"},
            "annotations": {**annotations, ROTATED_AT: datetime.now(UTC).isoformat()},
        },
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }
    try:
        return client.CoreV1Api(api).patch_namespaced_secret(name, namespace, body, **APPLY)
    except client.ApiException as error:
        raise api_error(error, f"applying Secret {namespace}/{name}") from None
