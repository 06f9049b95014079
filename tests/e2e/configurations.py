"""keyguard's webhook configurations in the cluster: which of the two are installed, and knowing when the API
server acts on a change.

The API server reads webhook configurations through an informer, so a create, delete or caBundle update takes
effect a moment after the write returns. `informers_synced` observes that moment instead of sleeping: it creates
a canary configuration of each kind and waits until the canary refuses a probe pod. Watch events of one kind reach
the informer in order, so once the canary is in effect every earlier write of that kind is too."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography import x509
from kubernetes import client

from tests.e2e.pods import create_pod, is_injected, propeller_pod, wait_for

NAME = "keyguard"
KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
CANARY_LABEL = "keyguard-e2e-canary"
UNREACHABLE = "https://127.0.0.1:1/canary"  # nothing listens on port 1: a call fails at once


def _canary(kind: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": f"e2e-canary-{token}"},
        "webhooks": [
            {
                "name": f"canary-{token}.e2e.local",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {"url": UNREACHABLE},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": 1,
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
                "objectSelector": {"matchLabels": {CANARY_LABEL: token}},
            }
        ],
    }


def _refused_by_canary(core: client.CoreV1Api, token: str) -> bool:
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"canary-{token}", "namespace": "default", "labels": {CANARY_LABEL: token}},
        "spec": {"containers": [{"name": "probe", "image": "busybox:1.37"}]},
    }
    try:
        create_pod(core, probe, dry_run=True)
    except client.ApiException as error:
        return f"canary-{token}.e2e.local" in (error.body or "")
    return False


def informers_synced(api: client.ApiClient) -> None:
    """Return once the API server acts on every webhook configuration written before the call."""
    admission = client.AdmissionregistrationV1Api(api)
    core = client.CoreV1Api(api)
    for kind in KINDS:
        token = uuid.uuid4().hex[:10]
        canary = _canary(kind, token)
        name = canary["metadata"]["name"]
        if kind == "MutatingWebhookConfiguration":
            admission.create_mutating_webhook_configuration(canary)
        else:
            admission.create_validating_webhook_configuration(canary)
        try:
            wait_for(lambda: _refused_by_canary(core, token), what=f"{kind} informer in sync")  # noqa: B023
        finally:
            if kind == "MutatingWebhookConfiguration":
                admission.delete_mutating_webhook_configuration(name)
            else:
                admission.delete_validating_webhook_configuration(name)


def read(api: client.ApiClient, kind: str) -> dict[str, Any] | None:
    admission = client.AdmissionregistrationV1Api(api)
    try:
        if kind == "MutatingWebhookConfiguration":
            found = admission.read_mutating_webhook_configuration(NAME)
        else:
            found = admission.read_validating_webhook_configuration(NAME)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    document: dict[str, Any] = api.sanitize_for_serialization(found)
    return document


def create(api: client.ApiClient, document: dict[str, Any]) -> None:
    admission = client.AdmissionregistrationV1Api(api)
    fresh = {**document, "metadata": {"name": NAME, "labels": document["metadata"].get("labels")}}
    if document["kind"] == "MutatingWebhookConfiguration":
        admission.create_mutating_webhook_configuration(fresh)
    else:
        admission.create_validating_webhook_configuration(fresh)


def delete(api: client.ApiClient, kind: str) -> None:
    admission = client.AdmissionregistrationV1Api(api)
    if kind == "MutatingWebhookConfiguration":
        admission.delete_mutating_webhook_configuration(NAME)
    else:
        admission.delete_validating_webhook_configuration(NAME)


def ca_bundles(api: client.ApiClient) -> dict[str, list[x509.Certificate]]:
    """The certificates in every webhook's caBundle, per `<kind>/<webhook name>`, as the API server stores them."""
    bundles = {}
    for kind in KINDS:
        document = read(api, kind)
        assert document is not None, f"{kind} {NAME} is not installed"
        for hook in document["webhooks"]:
            pem = base64.b64decode(hook["clientConfig"]["caBundle"])
            bundles[f"{kind}/{hook['name']}"] = x509.load_pem_x509_certificates(pem)
    return bundles


@contextmanager
def only(api: client.ApiClient, *, mutating: bool, validating: bool) -> Iterator[None]:
    """Only the chosen keyguard configurations installed (as while keyguard is half installed, or bypassed), and
    the installed ones put back exactly as they were afterwards, whatever happens in between."""
    wanted = {"MutatingWebhookConfiguration": mutating, "ValidatingWebhookConfiguration": validating}
    saved = {kind: read(api, kind) for kind in KINDS}
    removed = []
    try:
        for kind, document in saved.items():
            if document is not None and not wanted[kind]:
                delete(api, kind)
                removed.append(document)
        informers_synced(api)
        yield
    finally:
        for document in removed:
            create(api, document)
        informers_synced(api)


@contextmanager
def paused(api: client.ApiClient) -> Iterator[None]:
    """Neither configuration installed: what a cluster looks like before keyguard is installed."""
    with only(api, mutating=False, validating=False):
        yield


def keyguard_in_effect(api: client.ApiClient) -> None:
    """Wait until a Flyte task pod is injected (a dry run): keyguard answers and the API server trusts it."""
    core = client.CoreV1Api(api)
    probe = propeller_pod("flytesnacks-production")
    wait_for(lambda: is_injected(create_pod(core, probe, dry_run=True)), what="keyguard's webhooks in effect")
