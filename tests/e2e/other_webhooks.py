"""Other mutating webhooks that share the pod with keyguard, as in real clusters: a sidecar injector, Flyte's own
secrets webhook (`inject-flyte-secrets`, mounts under /etc/flyte/secrets) and a careless injector that adds a key.
A tiny HTTPS server on loopback built on the standard library, with its own certificate."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webhook.certs import generate

Mutation = Callable[[dict[str, Any]], list[dict[str, Any]]]


def sidecar(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """A log-shipping sidecar with env of its own, appended after keyguard ran."""
    if any(c["name"] == "log-shipper" for c in pod["spec"]["containers"]):
        return []
    shipper = {
        "name": "log-shipper",
        "image": "fluent/fluent-bit:3.2",
        "env": [{"name": "SHIP_TO", "value": "stdout"}],
    }
    return [{"op": "add", "path": "/spec/containers/-", "value": shipper}]


def flyte_secrets(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Flyte's secrets webhook (file mount variant): a Secret volume under /etc/flyte/secrets in every container."""
    if pod["metadata"].get("labels", {}).get("inject-flyte-secrets") != "true":
        return []
    if any(v["name"] == "flyte-secret-user-token" for v in pod["spec"].get("volumes", [])):
        return []
    ops: list[dict[str, Any]] = []
    if "volumes" not in pod["spec"]:
        ops.append({"op": "add", "path": "/spec/volumes", "value": []})
    ops.append(
        {
            "op": "add",
            "path": "/spec/volumes/-",
            "value": {"name": "flyte-secret-user-token", "secret": {"secretName": "user-token"}},
        }
    )
    for kind in ("initContainers", "containers"):
        for index, container in enumerate(pod["spec"].get(kind, [])):
            if "volumeMounts" not in container:
                ops.append({"op": "add", "path": f"/spec/{kind}/{index}/volumeMounts", "value": []})
            mount = {"name": "flyte-secret-user-token", "mountPath": "/etc/flyte/secrets/user", "readOnly": True}
            ops.append({"op": "add", "path": f"/spec/{kind}/{index}/volumeMounts/-", "value": mount})
    return ops


class LateKey:
    """Adds a plaintext key to the main container after keyguard: keyguard must still refuse the pod."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __call__(self, pod: dict[str, Any]) -> list[dict[str, Any]]:
        env = {"name": "AWS_SECRET_ACCESS_KEY", "value": self.secret}
        return [{"op": "add", "path": "/spec/containers/0/env/-", "value": env}]


class _Handler(BaseHTTPRequestHandler):
    mutations: dict[str, Mutation] = {}
    calls: dict[str, int] = {}

    def do_POST(self) -> None:
        path = urlsplit(self.path).path  # the API server appends ?timeout=…
        self.calls[path] = self.calls.get(path, 0) + 1
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
        mutation = self.mutations.get(path)
        ops = mutation(request["object"]) if mutation else []
        if ops:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


class OtherWebhooks:
    """The server and where it is: `url(path)` for a webhook clientConfig, `ca_bundle` for its caBundle."""

    def __init__(self, directory: Path) -> None:
        generate(directory, ["localhost"], ["127.0.0.1"])
        self.ca_bundle = base64.b64encode((directory / "ca.crt").read_bytes()).decode()
        handler = type("Handler", (_Handler,), {"mutations": {}, "calls": {}})
        self.mutations: dict[str, Mutation] = handler.mutations
        self.calls: dict[str, int] = handler.calls
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}{path}"

    def configuration(self, name: str, namespace: str, mutation: Mutation) -> dict[str, Any]:
        """A MutatingWebhookConfiguration named `name` (configurations run in name order) for one namespace."""
        path = f"/{name}"
        self.mutations[path] = mutation
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": f"{name}.test.local",
                    "admissionReviewVersions": ["v1"],
                    "clientConfig": {"url": self.url(path), "caBundle": self.ca_bundle},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "timeoutSeconds": 5,
                    "reinvocationPolicy": "Never",
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ],
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}
                        ]
                    },
                }
            ],
        }


@contextmanager
def other_webhooks(directory: Path) -> Iterator[OtherWebhooks]:
    server = OtherWebhooks(directory)
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
