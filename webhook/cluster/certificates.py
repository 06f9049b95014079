"""`keyguard certs install`: publish the certificates from `keyguard certs generate/rotate` to the cluster.

Two server-side applies under keyguard's own field manager: the TLS Secret the replicas mount (certificate, key
and the CA bundle; never the CA key), and `caBundle` on every webhook of both webhook configurations. Only those
fields are keyguard's; an admin's edits to timeouts, selectors or labels survive every install — unlike Flyte's
webhook, whose self-registration overwrote them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from webhook import certs
from webhook.cluster.connection import APPLY, CONFIG_KINDS, api_error, read_webhook_configuration
from webhook.errors import UsageError
from webhook.files import read_file


@dataclass(frozen=True, slots=True)
class Installed:
    secret: str | None
    webhooks: tuple[str, ...]
    authorities: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _webhook_names(admission: client.AdmissionregistrationV1Api, kind: str, name: str) -> list[str]:
    existing = read_webhook_configuration(admission, kind, name)
    if existing is None:
        raise UsageError(f"{kind} {name} not found: apply the manifests first (kubectl apply -k manifests/)")
    return [hook.name for hook in existing.webhooks or []]


def install(
    api: client.ApiClient,
    directory: Path,
    *,
    namespace: str = "keyguard-system",
    secret_name: str = "keyguard-tls",  # noqa: S107 - a Secret name, not a password
    configuration: str = "keyguard",
    write_secret: bool = True,
) -> Installed:
    files = certs.CertificateFiles.in_directory(directory)
    bundle = read_file(files.ca_cert)
    # Refuse to publish something that is not PEM; the count goes into the summary.
    authorities = len(certs.load_certificates(bundle, source=str(files.ca_cert)))
    secret: str | None = None
    if write_secret:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": secret_name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/name": "keyguard", "app.kubernetes.io/managed-by": "keyguard"},
            },
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": _b64(read_file(files.tls_cert)),
                "tls.key": _b64(read_file(files.tls_key)),
                "ca.crt": _b64(bundle),
            },
        }
        try:
            client.CoreV1Api(api).patch_namespaced_secret(secret_name, namespace, body, **APPLY)
        except client.ApiException as error:
            raise api_error(error, f"applying Secret {namespace}/{secret_name}") from None
        secret = f"{namespace}/{secret_name}"
    admission = client.AdmissionregistrationV1Api(api)
    updated: list[str] = []
    for kind in CONFIG_KINDS:
        names = _webhook_names(admission, kind, configuration)
        body = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": configuration},
            "webhooks": [{"name": name, "clientConfig": {"caBundle": _b64(bundle)}} for name in names],
        }
        try:
            if kind == "MutatingWebhookConfiguration":
                admission.patch_mutating_webhook_configuration(configuration, body, **APPLY)
            else:
                admission.patch_validating_webhook_configuration(configuration, body, **APPLY)
        except client.ApiException as error:
            raise api_error(error, f"applying caBundle to {kind} {configuration}") from None
        updated += names
    return Installed(secret, tuple(updated), authorities)
