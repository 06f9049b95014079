"""The AdmissionReview bodies and manifests the benchmark sends: what keyguard meets in a real Flyte cluster.

The shapes copy `tests/flyte_pods.py` (flytepropeller's labels, owner reference, FLYTE_INTERNAL_* env, the
`kube-api-access-*` token volume the ServiceAccount plugin has already added) but live here so the benchmark
does not depend on the test package. Four scenarios:

- `typical`: one Flyte 1.x task pod as propeller creates it (~4.5 KiB review, the headline);
- `large`: a task pod with sidecars, init containers and many env vars (~40 KiB review);
- `denial`: the typical pod with the Flyte sandbox's `default-env-vars` (a literal `FLYTE_AWS_SECRET_ACCESS_KEY`);
- `nonflyte`: an ordinary Deployment pod that keyguard admits untouched.

Each scenario has several variants that differ in UID and pod name, so the server never sees one body only.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

NAMESPACE = "flytesnacks-development"
EXECUTION_ID = "a4lmk5ws6qkfbhx94dxc"
TASK_VERSION = "Dq2hZL8rGQbZ9Y1y1bH8pA"
GIT_SHA_VERSION = "3f2b8c1d9e0a4b5c6d7e8f9a0b1c2d3e4f5a6b7c"
SCENARIOS = ("typical", "large", "denial", "nonflyte")
# The mix: mostly ordinary task pods, some big ones, the odd leak, and pods of other workloads that a
# namespace-wide webhook configuration lets through (weights per 10 requests).
MIX_WEIGHTS = {"typical": 7, "large": 1, "denial": 1, "nonflyte": 1}

Json = dict[str, Any]
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when available: generation stays fast


def _token_volume(suffix: str = "x7k2p") -> Json:
    return {
        "name": f"kube-api-access-{suffix}",
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }


def _token_mount(suffix: str = "x7k2p") -> Json:
    return {
        "name": f"kube-api-access-{suffix}",
        "readOnly": True,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    }


def flyte_env(project: str = "flytesnacks", domain: str = "development") -> list[Json]:
    """The env flytepropeller sets on a task container (no credentials)."""
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
        {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
        {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/etc/gcp/key.json"},
        {"name": "FLYTE_START_TIME", "value": "1732491234567"},
    ]


def task_args(name: str) -> list[str]:
    """pyflyte-fast-execute's command line, as propeller renders it."""
    prefix = f"s3://my-s3-bucket/metadata/propeller/{NAMESPACE}-{EXECUTION_ID}/n0/data"
    return [
        "pyflyte-fast-execute",
        "--additional-distribution",
        "s3://my-s3-bucket/flytesnacks/development/ABCDEFGH2ZGNXHL4LSXBWXNA4Q======/script_mode.tar.gz",
        "--dest-dir",
        "/root",
        "--",
        "pyflyte-execute",
        "--inputs",
        f"{prefix}/inputs.pb",
        "--output-prefix",
        f"{prefix}/0",
        "--raw-output-data-prefix",
        f"s3://my-s3-bucket/data/ky/{name}",
        "--checkpoint-path",
        f"s3://my-s3-bucket/data/ky/{name}/_flytecheckpoints",
        "--prev-checkpoint",
        '""',
        "--resolver",
        "flytekit.core.python_auto_container.default_task_resolver",
        "--",
        "task-module",
        "wf.example",
        "task-name",
        "say_hello",
    ]


def container(name: str, *, env: list[Json] | None = None, image: str | None = None) -> Json:
    return {
        "name": name,
        "image": image or "cr.flyte.org/flyteorg/flytekit:py3.11-1.14.0",
        "args": task_args(name),
        "env": flyte_env() if env is None else env,
        "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "imagePullPolicy": "IfNotPresent",
        "volumeMounts": [_token_mount()],
    }


def task_pod(*, node: str = "n0", containers: list[Json] | None = None, domain: str = "development") -> Json:
    """A Flyte 1.x task pod after the ServiceAccount admission plugin ran (what the webhook receives)."""
    name = f"{EXECUTION_ID}-{node}-0"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {
                "domain": domain,
                "execution-id": EXECUTION_ID,
                "interruptible": "false",
                "node-id": node,
                "project": "flytesnacks",
                "shard-key": "21",
                "task-name": "wf-example-say-hello",
                "workflow-name": "wf-example-my-wf",
            },
            "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false", "primary_container_name": name},
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
                }
            ],
            "volumes": [_token_volume()],
            "serviceAccountName": "default",
            "serviceAccount": "default",
        },
    }


def typical_pod(variant: int = 0) -> Json:
    return task_pod(node=f"n{variant}")


def large_pod(variant: int = 0) -> Json:
    """A distributed-training style task pod: 4 containers, 2 init containers, ~60 env vars each, config mounts."""
    pod = task_pod(node=f"n{variant}")
    name = pod["metadata"]["name"]
    extra_env = [
        {"name": f"TRAINING_CONFIG_OPTION_{i:02d}", "value": f"hyperparameter-{i}-value-{'x' * (i % 7)}"}
        for i in range(66)
    ]
    extra_env += [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "analytics-db", "key": "password"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
        {"name": "MEMORY_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
    ]
    config_mounts = [
        {"name": f"config-{i}", "mountPath": f"/etc/training/config-{i}", "readOnly": True} for i in range(4)
    ]
    containers = []
    for i, role in enumerate(("", "-worker-a", "-worker-b", "-metrics")):
        c = container(f"{name}{role}", env=flyte_env() + copy.deepcopy(extra_env))
        c["volumeMounts"] += copy.deepcopy(config_mounts)
        c["ports"] = [{"containerPort": 29500 + i, "name": f"dist-{i}", "protocol": "TCP"}]
        c["envFrom"] = [{"configMapRef": {"name": "training-defaults"}}, {"secretRef": {"name": "wandb-api"}}]
        containers.append(c)
    pod["spec"]["containers"] = containers
    pod["spec"]["initContainers"] = [
        {
            "name": f"fetch-dataset-{i}",
            "image": "cr.flyte.org/flyteorg/flytecopilot:v1.14.0",
            "command": ["/bin/flyte-copilot", "--storage.type", "s3", "--storage.container", "my-s3-bucket"],
            "args": [
                "download",
                "--from-remote",
                f"s3://my-s3-bucket/datasets/shard-{i}",
                "--to-output-prefix",
                "/data",
            ],
            "env": flyte_env()[:10] + copy.deepcopy(extra_env[:20]),
            "volumeMounts": [_token_mount(), {"name": "data", "mountPath": "/data"}],
        }
        for i in range(2)
    ]
    pod["spec"]["volumes"] += [{"name": f"config-{i}", "configMap": {"name": f"training-config-{i}"}} for i in range(4)]
    pod["spec"]["volumes"].append({"name": "data", "emptyDir": {"sizeLimit": "20Gi"}})
    pod["spec"]["nodeSelector"] = {"node.kubernetes.io/instance-type": "p4d.24xlarge", "flyte.org/node-role": "gpu"}
    return pod


def denial_pod(variant: int = 0) -> Json:
    """The typical pod with the Flyte sandbox's `plugins.k8s.default-env-vars`: storage keys as literals."""
    pod = typical_pod(variant)
    pod["spec"]["containers"][0]["env"] += [
        {"name": "FLYTE_AWS_ACCESS_KEY_ID", "value": "minio"},
        {"name": "FLYTE_AWS_SECRET_ACCESS_KEY", "value": "miniostorage"},
    ]
    return pod


def nonflyte_pod(variant: int = 0) -> Json:
    """An nginx Deployment's pod (ReplicaSet owner): not a Flyte task pod, admitted untouched."""
    name = f"web-7d4b9c8f6d-{variant:05d}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7d4b9c8f6d-",
            "name": name,
            "namespace": "shop",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d", "tier": "frontend"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-7d4b9c8f6d",
                    "uid": str(uuid.UUID(int=11)),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "nginx",
                    "image": "nginx:1.27",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "NGINX_PORT", "value": "80"}, {"name": "TZ", "value": "UTC"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 5},
                    "volumeMounts": [_token_mount("q9z8w")],
                }
            ],
            "restartPolicy": "Always",
            "serviceAccountName": "default",
            "volumes": [_token_volume("q9z8w")],
        },
    }


POD_BUILDERS: dict[str, Callable[[int], Json]] = {
    "typical": typical_pod,
    "large": large_pod,
    "denial": denial_pod,
    "nonflyte": nonflyte_pod,
}


def review(pod: Json, *, uid: str) -> Json:
    """An admission.k8s.io/v1 AdmissionReview CREATE request as the API server sends it."""
    metadata = pod["metadata"]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": metadata.get("name", ""),
            "namespace": metadata["namespace"],
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:flyte:flytepropeller",
                "uid": str(uuid.UUID(int=3)),
                "groups": ["system:serviceaccounts", "system:serviceaccounts:flyte", "system:authenticated"],
            },
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "flytepropeller"},
        },
    }


@dataclass(frozen=True)
class Fixture:
    scenario: str
    bodies: tuple[bytes, ...]  # serialized AdmissionReviews, one per variant

    @property
    def size(self) -> int:
        return len(self.bodies[0])


def build_fixtures(variants: int = 8) -> dict[str, Fixture]:
    """Every scenario's review bodies (deterministic UIDs, so runs are comparable)."""
    fixtures = {}
    for s, scenario in enumerate(SCENARIOS):
        bodies = tuple(
            orjson.dumps(review(POD_BUILDERS[scenario](v), uid=str(uuid.UUID(int=(s + 1) << 32 | v))))
            for v in range(variants)
        )
        fixtures[scenario] = Fixture(scenario, bodies)
    return fixtures


def write_bodies(fixtures: dict[str, Fixture], directory: Path) -> dict[str, list[Path]]:
    """One file per body (wrk's Lua script reads them), grouped by scenario."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, list[Path]] = {}
    for scenario, fixture in fixtures.items():
        paths[scenario] = []
        for i, body in enumerate(fixture.bodies):
            path = directory / f"{scenario}-{i}.json"
            path.write_bytes(body)
            paths[scenario].append(path)
    return paths


def mix_sequence(paths: dict[str, list[Path]]) -> list[Path]:
    """The request order of the mix: MIX_WEIGHTS per 10 requests, interleaved, cycling through variants."""
    slots: list[tuple[float, str]] = []
    for scenario, weight in MIX_WEIGHTS.items():
        slots += [((i + 0.5) / weight, scenario) for i in range(weight)]
    order = [scenario for _, scenario in sorted(slots)]
    rounds = max(len(p) for p in paths.values())
    counters = dict.fromkeys(paths, 0)
    sequence = []
    for _ in range(rounds):
        for scenario in order:
            files = paths[scenario]
            sequence.append(files[counters[scenario] % len(files)])
            counters[scenario] += 1
    return sequence


def write_manifests(directory: Path, documents: int, per_file: int = 10, weights: dict[str, int] = MIX_WEIGHTS) -> int:
    """A folder of multi-document Pod YAML files for `keyguard check` (by default the webhook's mix; `weights`
    {"typical": 1} gives typical Flyte task pods only); returns the number of documents."""
    directory.mkdir(parents=True, exist_ok=True)
    order = [s for s, w in weights.items() for _ in range(w)]
    written = 0
    file_index = 0
    while written < documents:
        count = min(per_file, documents - written)
        pods = [POD_BUILDERS[order[(written + i) % len(order)]](written + i) for i in range(count)]
        text = yaml.dump_all(pods, Dumper=_DUMPER, sort_keys=False, width=1000)
        (directory / f"pods-{file_index:04d}.yaml").write_text(text, encoding="utf-8")
        written += count
        file_index += 1
    return written
