"""Realistic Flyte task pods and AdmissionReviews, as flytepropeller creates them and keyguard receives them.

Shapes follow ../shared/flyte-context.md: `<project>-<domain>` namespaces, propeller's labels, annotations, owner
reference and FLYTE_INTERNAL_* env, plus what the API server's ServiceAccount admission plugin has already added
by the time a mutating webhook is called (serviceAccountName `default`, the `kube-api-access-*` token volume).
No builder here contains a credential: tests add fake ones generated at run time.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

NAMESPACE = "flytesnacks-development"
EXECUTION_ID = "a4lmk5ws6qkfbhx94dxc"
TASK_VERSION = "Dq2hZL8rGQbZ9Y1y1bH8pA"  # base64url-style version hash, as Flyte computes them
GIT_SHA_VERSION = "3f2b8c1d9e0a4b5c6d7e8f9a0b1c2d3e4f5a6b7c"

TOKEN_VOLUME = {
    "name": "kube-api-access-x7k2p",
    "projected": {
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {
                "downwardAPI": {
                    "items": [
                        {
                            "path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                        }
                    ]
                }
            },
        ],
    },
}
TOKEN_MOUNT = {
    "name": "kube-api-access-x7k2p",
    "readOnly": True,
    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
}


def flyte_env(project: str = "flytesnacks", domain: str = "development") -> list[dict[str, Any]]:
    return [
        {"name": "FLYTE_INTERNAL_EXECUTION_WORKFLOW", "value": f"{project}:{domain}:wf.example.my_wf"},
        {"name": "FLYTE_INTERNAL_EXECUTION_ID", "value": EXECUTION_ID},
        {"name": "FLYTE_INTERNAL_EXECUTION_PROJECT", "value": project},
        {"name": "FLYTE_INTERNAL_EXECUTION_DOMAIN", "value": domain},
        {"name": "FLYTE_ATTEMPT_NUMBER", "value": "0"},
        {"name": "FLYTE_INTERNAL_TASK_PROJECT", "value": project},
        {"name": "FLYTE_INTERNAL_TASK_DOMAIN", "value": domain},
        {"name": "FLYTE_INTERNAL_TASK_NAME", "value": "wf.example.say_hello"},
        {"name": "FLYTE_INTERNAL_TASK_VERSION", "value": TASK_VERSION},
        {"name": "FLYTE_INTERNAL_PROJECT", "value": project},
        {"name": "FLYTE_INTERNAL_DOMAIN", "value": domain},
        {"name": "FLYTE_INTERNAL_NAME", "value": "wf.example.say_hello"},
        {"name": "FLYTE_INTERNAL_VERSION", "value": GIT_SHA_VERSION},
        {"name": "FLYTE_AWS_ENDPOINT", "value": "http://minio.flyte.svc.cluster.local:9000"},
        {"name": "AWS_REGION", "value": "us-east-1"},
        {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/flyte-task"},
        {
            "name": "AWS_WEB_IDENTITY_TOKEN_FILE",
            "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
        },
        {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/etc/gcp/key.json"},
        {"name": "FLYTE_START_TIME", "value": "1732491234567"},
    ]


def container(name: str = "a4lmk5ws6qkfbhx94dxc-n0-0", *, env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "image": "cr.flyte.org/flyteorg/flytekit:py3.11-1.14.0",
        "args": [
            "pyflyte-fast-execute",
            "--additional-distribution",
            "s3://my-s3-bucket/flytesnacks/development/ABCDEFGH2ZGNXHL4LSXBWXNA4Q======/script_mode.tar.gz",
            "--dest-dir",
            "/root",
            "--",
            "pyflyte-execute",
            "--inputs",
            "s3://my-s3-bucket/metadata/propeller/flytesnacks-development-a4lmk5ws6qkfbhx94dxc/n0/data/inputs.pb",
            "--output-prefix",
            "s3://my-s3-bucket/metadata/propeller/flytesnacks-development-a4lmk5ws6qkfbhx94dxc/n0/data/0",
            "--raw-output-data-prefix",
            "s3://my-s3-bucket/data/ky/a4lmk5ws6qkfbhx94dxc-n0-0",
            "--checkpoint-path",
            "s3://my-s3-bucket/data/ky/a4lmk5ws6qkfbhx94dxc-n0-0/_flytecheckpoints",
            "--prev-checkpoint",
            '""',
            "--resolver",
            "flytekit.core.python_auto_container.default_task_resolver",
            "--",
            "task-module",
            "wf.example",
            "task-name",
            "say_hello",
        ],
        "env": flyte_env() if env is None else env,
        "resources": {
            "limits": {"cpu": "500m", "memory": "1Gi"},
            "requests": {"cpu": "500m", "memory": "1Gi"},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "imagePullPolicy": "IfNotPresent",
        "volumeMounts": [dict(TOKEN_MOUNT)],
    }


def task_pod(
    *,
    namespace: str = NAMESPACE,
    domain: str = "development",
    node: str = "n0",
    containers: list[dict[str, Any]] | None = None,
    service_account: str | None = "default",
) -> dict[str, Any]:
    """A Flyte 1.x task pod after the ServiceAccount admission plugin ran (what the webhook receives)."""
    name = f"{EXECUTION_ID}-{node}-0"
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "domain": domain,
                "execution-id": EXECUTION_ID,
                "interruptible": "false",
                "node-id": node,
                "project": namespace.rsplit("-", 1)[0],
                "shard-key": "21",
                "task-name": "wf-example-say-hello",
                "workflow-name": "wf-example-my-wf",
            },
            "annotations": {
                "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
                "primary_container_name": name,
            },
            "ownerReferences": [
                {
                    "apiVersion": "flyte.lyft.com/v1alpha1",
                    "kind": "flyteworkflow",
                    "name": EXECUTION_ID,
                    "uid": str(uuid.UUID(int=7)),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": containers if containers is not None else [container(name)],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "volumes": [copy.deepcopy(TOKEN_VOLUME)],
        },
    }
    if service_account is not None:
        pod["spec"]["serviceAccountName"] = service_account
        pod["spec"]["serviceAccount"] = service_account
    return pod


def flyte2_pod() -> dict[str, Any]:
    """A Flyte 2 action pod: organization/project/domain/run/action labels, no flyteworkflow owner."""
    pod = task_pod(namespace="flytesnacks-staging", domain="staging")
    pod["metadata"]["labels"] = {
        "organization": "demo",
        "project": "flytesnacks",
        "domain": "staging",
        "run": "r7ab3c",
        "action": "a0",
        "attempt": "1",
        "task-name": "main",
    }
    pod["metadata"]["ownerReferences"] = []
    pod["metadata"]["name"] = "r7ab3c-a0-1"
    return pod


def plain_pod(namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nginx", "namespace": namespace, "labels": {"app": "nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
    }


def review(
    pod: dict[str, Any],
    *,
    operation: str = "CREATE",
    sub_resource: str | None = None,
    old: dict[str, Any] | None = None,
    dry_run: bool = False,
    uid: str | None = None,
) -> dict[str, Any]:
    """An admission.k8s.io/v1 AdmissionReview request as the API server sends it."""
    metadata = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    namespace = metadata.get("namespace", NAMESPACE)
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": namespace,
        "operation": operation,
        "userInfo": {
            "username": "system:serviceaccount:flyte:flytepropeller",
            "groups": ["system:serviceaccounts"],
        },
        "object": pod,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if operation == "CREATE":
        request["name"] = metadata.get("name", "")
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
