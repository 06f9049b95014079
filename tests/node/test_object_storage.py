"""Flyte tasks reach real object storage (SeaweedFS's S3 gateway) with nothing but keyguard's injection: boto3 and
s3fs find the rendered credentials file through AWS_SHARED_CREDENTIALS_FILE, no key is in their environment, and a
wrong or missing Secret fails the way a platform engineer can diagnose without any value showing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.e2e.cluster import ControlPlane, run_keyguard
from tests.e2e.pods import create_pod, wait_for
from tests.leaks import assert_not_leaked
from tests.node.node import Build
from tests.node.pods import events_for, run, task_pod
from tests.node.storage import KeyPair, SeaweedFS, secret_create

PRODUCTION = "flytesnacks-production"

# Writes, lists and reads back one object with boto3, then one with s3fs (fsspec, as flytekit reaches S3), and
# reports which credential source botocore used. Only object names and booleans are printed.
ROUND_TRIP = """
import json, os, uuid
import boto3, s3fs
endpoint, bucket = os.environ["S3_ENDPOINT"], os.environ["S3_BUCKET"]
prefix = "node-suite/" + uuid.uuid4().hex
session = boto3.session.Session()
method = session.get_credentials().method
s3 = session.client("s3", endpoint_url=endpoint, region_name="us-east-1")
s3.put_object(Bucket=bucket, Key=prefix + "/boto3.txt", Body=b"written by boto3")
listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
boto3_ok = s3.get_object(Bucket=bucket, Key=prefix + "/boto3.txt")["Body"].read() == b"written by boto3"
fs = s3fs.S3FileSystem(endpoint_url=endpoint, client_kwargs={"region_name": "us-east-1"})
with fs.open(f"{bucket}/{prefix}/s3fs.txt", "wb") as handle:
    handle.write(b"written by s3fs")
s3fs_listed = sorted(p.rsplit("/", 1)[1] for p in fs.ls(f"{bucket}/{prefix}"))
s3fs_ok = fs.cat(f"{bucket}/{prefix}/s3fs.txt") == b"written by s3fs"
print("RESULT " + json.dumps({"method": method, "listed": listed, "boto3": boto3_ok, "s3fs_listed": s3fs_listed,
      "s3fs": s3fs_ok, "key_env": sorted(k for k in os.environ if k.startswith("AWS_") and "FILE" not in k)}))
"""

# One authenticated call; the storage's error code is what the task's log shows when the keys are wrong.
LIST = """
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1")
try:
    s3.list_objects_v2(Bucket=os.environ["S3_BUCKET"])
except Exception as error:
    print("storage error:", getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__))
    sys.exit(1)
print("listed")
"""


def _storage_env(storage: SeaweedFS, bucket: str) -> list[dict[str, str]]:
    return [{"name": "S3_ENDPOINT", "value": storage.endpoint}, {"name": "S3_BUCKET", "value": bucket}]


def test_boto3_and_s3fs_round_trip_with_only_the_injected_credentials_file(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, storage: SeaweedFS, bucket: str
) -> None:
    pod = task_pod(PRODUCTION, built.images["task"].name, ROUND_TRIP, env=_storage_env(storage, bucket))
    done = run(core, cluster, pod)
    assert done.phase == "Succeeded", done.logs[-3000:]
    facts = done.result()
    assert facts["method"] == "shared-credentials-file"
    assert facts["key_env"] == []  # no key in the environment: only AWS_SHARED_CREDENTIALS_FILE
    assert facts["boto3"] and len(facts["listed"]) == 1
    assert facts["s3fs"] and facts["s3fs_listed"] == ["boto3.txt", "s3fs.txt"]
    for value in (storage.keys.access_key, storage.keys.secret_key):
        assert_not_leaked(value, done.logs, "the task's log")


@pytest.fixture
def namespace(cluster: ControlPlane, core: client.CoreV1Api, unique: str) -> Iterator[str]:
    """A fresh Flyte namespace (development domain) with keyguard's task account and no Secret yet."""
    name = f"node{unique}-development"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_service_account(
        name, {"metadata": {"name": "flyte-task"}, "automountServiceAccountToken": False}
    )
    yield name
    core.delete_namespace(name)


def test_a_wrong_key_fails_the_task_with_the_storage_authentication_error(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, storage: SeaweedFS, bucket: str, namespace: str
) -> None:
    wrong = KeyPair.fake()
    secret_create(cluster, namespace, wrong)
    done = run(core, cluster, task_pod(namespace, built.images["task"].name, LIST, env=_storage_env(storage, bucket)))
    assert done.phase == "Failed"
    assert "storage error: InvalidAccessKeyId" in done.logs, done.logs[-2000:]
    events = json.dumps(events_for(core, namespace, done.name))
    for value in (wrong.access_key, wrong.secret_key, storage.keys.secret_key):
        assert_not_leaked(value, done.logs, "the task's log")
        assert_not_leaked(value, events, "the pod's events")


def test_a_missing_secret_leaves_the_pod_pending_and_doctor_names_it(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, namespace: str
) -> None:
    pod = task_pod(namespace, built.images["task"].name, "print('never runs')")
    name = pod["metadata"]["name"]
    create_pod(core, pod)

    def failed_mount() -> list[dict[str, str]]:
        return [e for e in events_for(core, namespace, name) if e["reason"] == "FailedMount"]

    events = wait_for(failed_mount, timeout=60, what="a FailedMount event")
    assert "flyte-storage-creds" in events[0]["message"] and "not found" in events[0]["message"]
    assert core.read_namespaced_pod(name, namespace).status.phase == "Pending"
    report = run_keyguard(
        "doctor", "--output", "json", "--namespace", namespace, "--kubeconfig", str(cluster.kubeconfig), check=False
    )
    checks = json.loads(report.stdout)["checks"]
    problems = [f"{c['check']}: {c['detail']}" for c in checks if c["status"] == "problem"]
    assert any(p.startswith(f"{namespace}: Secret flyte-storage-creds: missing") for p in problems), problems
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
