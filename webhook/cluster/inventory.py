"""What `keyguard check --cluster` reads: every object that is or holds a pod, and every ConfigMap (Flyte keeps
its configuration in ConfigMaps), as the API's own JSON, page by page so memory stays flat on large clusters.

Read access only: `list` on namespaces (for their labels), pods, podtemplates, configmaps, deployments,
statefulsets, daemonsets, replicasets, jobs and cronjobs (cluster-wide, or in the given namespaces). The
ClusterRole `keyguard-auditor` in manifests/ grants exactly that and nothing on Secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from kubernetes import client

from webhook.cluster.connection import api_error, list_pages


@dataclass(frozen=True, slots=True)
class Source:
    kind: str
    api_version: str
    api: Callable[[client.ApiClient], Any]
    plural: str  # list_<plural>_for_all_namespaces / list_namespaced_<plural>


SOURCES = (
    Source("Pod", "v1", client.CoreV1Api, "pod"),
    Source("PodTemplate", "v1", client.CoreV1Api, "pod_template"),
    Source("ConfigMap", "v1", client.CoreV1Api, "config_map"),
    Source("Deployment", "apps/v1", client.AppsV1Api, "deployment"),
    Source("StatefulSet", "apps/v1", client.AppsV1Api, "stateful_set"),
    Source("DaemonSet", "apps/v1", client.AppsV1Api, "daemon_set"),
    Source("ReplicaSet", "apps/v1", client.AppsV1Api, "replica_set"),
    Source("Job", "batch/v1", client.BatchV1Api, "job"),
    Source("CronJob", "batch/v1", client.BatchV1Api, "cron_job"),
)
RBAC = "list " + ", ".join(sorted({s.plural.replace("_", "") + "s" for s in SOURCES} | {"namespaces"}))


def namespace_labels(api: client.ApiClient, namespaces: Sequence[str] = ()) -> dict[str, dict[str, str]]:
    """Every namespace's labels (for profiles that match on them); `list namespaces`."""
    try:
        found = {
            item["metadata"]["name"]: item["metadata"].get("labels") or {}
            for page in list_pages(client.CoreV1Api(api).list_namespace)
            for item in page.get("items") or []
        }
    except client.ApiException as error:
        raise api_error(error, "listing namespaces (needs list namespaces)") from None
    return {name: labels for name, labels in found.items() if not namespaces or name in namespaces}


def objects(api: client.ApiClient, namespaces: Sequence[str] = ()) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, object) for every object of `SOURCES`; the label reads `cluster:<namespace>/<kind>/<name>`."""
    for source in SOURCES:
        group = source.api(api)
        scopes: Sequence[str | None] = namespaces or [None]
        for namespace in scopes:
            if namespace is None:
                call = getattr(group, f"list_{source.plural}_for_all_namespaces")
            else:
                call = partial(getattr(group, f"list_namespaced_{source.plural}"), namespace)

            try:
                for page in list_pages(call):
                    for item in page.get("items") or []:
                        item.setdefault("apiVersion", source.api_version)
                        item.setdefault("kind", source.kind)
                        metadata = item.get("metadata") or {}
                        yield f"cluster:{metadata.get('namespace')}/{source.kind}/{metadata.get('name')}", item
            except client.ApiException as error:
                where = f"in {namespace}" if namespace else "cluster-wide"
                raise api_error(error, f"listing {source.kind}s {where} (needs {RBAC})") from None
