"""One way to reach the cluster: a kubeconfig (the given file, $KUBECONFIG, ~/.kube/config) or the in-cluster
service account; failures become a ClusterError (exit 2) that says which and why."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from webhook.errors import ClusterError

FIELD_MANAGER = "keyguard"
PAGE_SIZE = 250
CONFIG_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def api_client(kubeconfig: Path | None = None, context: str | None = None) -> client.ApiClient:
    try:
        if kubeconfig is None and "KUBECONFIG" not in os.environ and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig) if kubeconfig else None, context=context
        )
        return api
    except (ConfigException, OSError, TypeError) as error:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise ClusterError(f"{where}: cannot load kubeconfig: {error}") from None


def describe_api_error(error: client.ApiException) -> str:
    """The one wording of an API error: `HTTP <status>: <the server's message, else its reason>`, never the
    request body. Every cluster tool says API failures through here."""
    detail = error.reason or ""
    try:
        body: Any = json.loads(error.body or "{}")
        detail = body.get("message") or detail
    except (ValueError, AttributeError):
        pass
    return f"HTTP {error.status}: {detail}"


def api_error(error: client.ApiException, what: str) -> ClusterError:
    """A failure that ends the command: what keyguard was doing, then `describe_api_error`."""
    return ClusterError(f"{what}: {describe_api_error(error)}")


def list_pages(list_call: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """Each page of a `list_*` call as the API's own JSON (no client models: memory stays flat on large clusters)."""
    token: str | None = None
    while True:
        response = list_call(limit=PAGE_SIZE, _continue=token, _preload_content=False)
        page: dict[str, Any] = json.loads(response.data)
        yield page
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


APPLY: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": "application/apply-patch+yaml"}
"""Keyword arguments that make a typed client `patch_*` call a server-side apply under keyguard's field manager:
keyguard owns exactly the fields it applies, and an admin's edits to every other field survive."""


def read_webhook_configuration(admission: client.AdmissionregistrationV1Api, kind: str, name: str) -> Any | None:
    """A Mutating- or ValidatingWebhookConfiguration by name, or None when there is none."""
    try:
        if kind == "MutatingWebhookConfiguration":
            return admission.read_mutating_webhook_configuration(name)
        return admission.read_validating_webhook_configuration(name)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise api_error(error, f"reading {kind} {name}") from None
