"""A real flytekit task on the node (issue 12, test 3): `pyflyte-execute`, launched with the arguments and environment
flytepropeller gives a Python container task, reads its inputs from SeaweedFS and writes its outputs there with
nothing but keyguard's injection. The same pod in a namespace the policy exempts (admitted untouched) fails with
botocore's missing-credentials error, and no key value shows in any log or event."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.cluster import ControlPlane
from tests.e2e.pods import is_injected, propeller_pod, wait_for
from tests.leaks import assert_not_leaked
from tests.node.node import Build
from tests.node.pods import EXEMPT_PROJECT, Finished, events_for, on_node, run, task_pod
from tests.node.storage import SeaweedFS

PRODUCTION = "flytesnacks-production"
# Baked into the task image (tests/node/images/task/workflows), as a project's image carries its workflow code.
TASK_MODULE, TASK_NAME = "workflows.storage_check", "double_and_reverse"
RESOLVER = "flytekit.core.python_auto_container.default_task_resolver"
NUMBER, TEXT = 21, "keyguard on a real node"


def pyflyte_execute_pod(namespace: str, image: str, storage: SeaweedFS, bucket: str) -> dict[str, Any]:
    """The pod flytepropeller makes for a Python container task registered without fast registration: the image's
    own workflow code, `args` (no command) from the task template with propeller's data paths filled in, and the
    FLYTE_INTERNAL_* env. FLYTE_AWS_ENDPOINT is what an admin's `default-env-vars` carries (an address, no key);
    AWS_EC2_METADATA_DISABLED keeps botocore's credential chain off 169.254.169.254 when it finds no credentials."""
    pod = on_node(propeller_pod(namespace), image)
    execution = pod["metadata"]["labels"]["execution-id"]
    project, domain = namespace.rsplit("-", 1)
    metadata = f"s3://{bucket}/metadata/propeller/{namespace}-{execution}/n0/data"
    raw = f"s3://{bucket}/data/{execution[:2]}/{execution}-n0-0"
    main = pod["spec"]["containers"][0]
    main["args"] = [
        "pyflyte-execute",
        "--inputs",
        f"{metadata}/inputs.pb",
        "--output-prefix",
        f"{metadata}/0",
        "--raw-output-data-prefix",
        raw,
        "--checkpoint-path",
        f"{raw}/_flytecheckpoints",
        "--prev-checkpoint",
        '""',  # propeller's rendering of "no previous checkpoint"
        "--resolver",
        RESOLVER,
        "--",
        "task-module",
        TASK_MODULE,
        "task-name",
        TASK_NAME,
    ]
    version = "v" + execution[:8]
    env = {
        "FLYTE_INTERNAL_EXECUTION_ID": execution,
        "FLYTE_INTERNAL_EXECUTION_PROJECT": project,
        "FLYTE_INTERNAL_EXECUTION_DOMAIN": domain,
        "FLYTE_INTERNAL_EXECUTION_WORKFLOW": f"{project}:{domain}:{TASK_MODULE}.wf",
        "FLYTE_INTERNAL_TASK_PROJECT": project,
        "FLYTE_INTERNAL_TASK_DOMAIN": domain,
        "FLYTE_INTERNAL_TASK_NAME": f"{TASK_MODULE}.{TASK_NAME}",
        "FLYTE_INTERNAL_TASK_VERSION": version,
        "FLYTE_ATTEMPT_NUMBER": "0",
        "FLYTE_AWS_ENDPOINT": storage.endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    main["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return pod


def _arg(pod: dict[str, Any], flag: str) -> str:
    args: list[str] = pod["spec"]["containers"][0]["args"]
    return args[args.index(flag) + 1]


# propeller's part before the task starts: each task's inputs.pb, a flyteidl LiteralMap (flytekit's own IDL),
# written where the pod's --inputs points.
STAGE = """
import json, os
import boto3
from flyteidl.core import literals_pb2
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1")
inputs = literals_pb2.LiteralMap()
inputs.literals["number"].scalar.primitive.integer = int(os.environ["NUMBER"])
inputs.literals["text"].scalar.primitive.string_value = os.environ["TEXT"]
for uri in json.loads(os.environ["URIS"]):
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=inputs.SerializeToString())
print("RESULT " + json.dumps({"staged": len(json.loads(os.environ["URIS"]))}))
"""

# What the task left in storage: outputs.pb decoded, the file its blob literal points at, and every object under
# each given output prefix (only names are printed); and the image's flytekit and flyteidl versions.
COLLECT = """
import json, os
from importlib.metadata import version
import boto3
from flyteidl.core import literals_pb2
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1")
def split(uri):
    return uri.removeprefix("s3://").split("/", 1)
def names(uri):
    bucket, prefix = split(uri)
    return sorted(o["Key"][len(prefix):] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
bucket, key = split(os.environ["OUTPUT_PREFIX"] + "/outputs.pb")
outputs = literals_pb2.LiteralMap.FromString(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
blob = outputs.literals["reversed"].scalar.blob.uri
bucket, key = split(blob)
print("RESULT " + json.dumps({
    "outputs": sorted(outputs.literals), "doubled": outputs.literals["doubled"].scalar.primitive.integer,
    "blob": blob, "reversed": s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode(),
    "listed": {uri: names(uri) for uri in json.loads(os.environ["PREFIXES"])},
    "versions": {name: version(name) for name in ("flytekit", "flyteidl", "s3fs", "botocore")}}))
"""


def _helper(image: str, program: str, storage: SeaweedFS, **env: str) -> dict[str, Any]:
    """A pod in the Flyte production namespace (injected, like the task) doing propeller's or the test's part."""
    variables = [{"name": "S3_ENDPOINT", "value": storage.endpoint}]
    return task_pod(PRODUCTION, image, program, env=variables + [{"name": k, "value": v} for k, v in env.items()])


@pytest.fixture
def exempt_namespace(cluster: ControlPlane, core: client.CoreV1Api, unique: str) -> Iterator[str]:
    """A Flyte namespace the session policy exempts (conftest.py): keyguard admits its pods untouched."""
    name = f"{EXEMPT_PROJECT}{unique}-development"
    core.create_namespace({"metadata": {"name": name}})
    wait_for(
        lambda: core.list_namespaced_service_account(name, field_selector="metadata.name=default").items,
        timeout=60,
        what=f"service account default in {name}",
    )
    yield name
    core.delete_namespace(name)


def test_pyflyte_execute_writes_its_outputs_with_the_injection_and_fails_without_it(
    cluster: ControlPlane,
    core: client.CoreV1Api,
    built: Build,
    storage: SeaweedFS,
    bucket: str,
    exempt_namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = built.images["task"].name
    injected = pyflyte_execute_pod(PRODUCTION, image, storage, bucket)
    exempt = pyflyte_execute_pod(exempt_namespace, image, storage, bucket)
    uris = json.dumps([_arg(injected, "--inputs"), _arg(exempt, "--inputs")])
    staged = run(core, cluster, _helper(image, STAGE, storage, URIS=uris, NUMBER=str(NUMBER), TEXT=TEXT))
    assert staged.phase == "Succeeded", staged.logs[-3000:]

    started = time.monotonic()
    done = run(core, cluster, injected)
    seconds = time.monotonic() - started
    assert is_injected(done.pod)
    assert done.phase == "Succeeded", done.logs[-4000:]
    env = {e["name"] for e in done.pod["spec"]["containers"][0]["env"]}
    assert "AWS_SHARED_CREDENTIALS_FILE" in env and not {n for n in env if "KEY" in n or "SECRET" in n}

    started = time.monotonic()
    refused = run(core, cluster, exempt)
    failed_seconds = time.monotonic() - started
    assert not is_injected(refused.pod)
    assert refused.phase == "Failed", refused.logs[-4000:]
    # Reading inputs.pb, then writing its error document: both stop at botocore finding no credentials.
    failure = refused.logs
    assert "botocore.exceptions.NoCredentialsError: Unable to locate credentials" in failure, failure[-4000:]
    assert "DownloadDataError" in failure and "UploadDataError" in failure, failure[-4000:]

    output_prefix, raw = _arg(injected, "--output-prefix"), _arg(injected, "--raw-output-data-prefix")
    prefixes = json.dumps([output_prefix, _arg(exempt, "--output-prefix")])
    collected = run(core, cluster, _helper(image, COLLECT, storage, OUTPUT_PREFIX=output_prefix, PREFIXES=prefixes))
    assert collected.phase == "Succeeded", collected.logs[-3000:]
    found = collected.result()
    assert found["outputs"] == ["doubled", "reversed"]
    assert found["doubled"] == 2 * NUMBER
    assert found["blob"].startswith(raw + "/") and found["reversed"] == TEXT[::-1]
    assert found["listed"] == {output_prefix: ["/outputs.pb"], _arg(exempt, "--output-prefix"): []}

    for finished in (staged, done, refused, collected):
        _assert_no_key(finished, core, storage)
    with capsys.disabled():
        print(
            f"\nflytekit task ({', '.join(f'{k} {v}' for k, v in found['versions'].items())}): pyflyte-execute "
            f"{TASK_MODULE}.{TASK_NAME} injected Succeeded in {seconds:.1f} s "
            f"(outputs.pb doubled={found['doubled']}, raw file under --raw-output-data-prefix); the same pod "
            f"exempt from injection Failed in {failed_seconds:.1f} s with NoCredentialsError"
        )


def _assert_no_key(finished: Finished, core: client.CoreV1Api, storage: SeaweedFS) -> None:
    events = json.dumps(events_for(core, finished.namespace, finished.name))
    for value in (storage.keys.access_key, storage.keys.secret_key):
        assert_not_leaked(value, finished.logs, f"the log of pod {finished.name}")
        assert_not_leaked(value, events, f"the events of pod {finished.name}")
