"""Short-lived credentials, no static key at all (issue 13, item 2), on the real node: kube-apiserver is the OIDC
issuer (its own https URL, discovery readable anonymously as the Kubernetes documentation binds it), SeaweedFS's
STS trusts it over TLS with the API server's CA, and a Flyte task pod in keyguard's `web-identity` profile
exchanges its projected token for temporary credentials with boto3's default chain, then reads and writes its
bucket. A pod under another service account is refused by the STS, and a task outliving its session keeps working
because the SDK refreshes on its own. Tasks print only names, booleans, error codes and timings, never a key."""

from __future__ import annotations

import json
import ssl
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.e2e.cluster import ControlPlane
from tests.e2e.pods import create_pod
from tests.node import identity
from tests.node.node import Build
from tests.node.pods import run, task_pod
from tests.node.storage import BUCKET, SeaweedFS
from webhook.injection import IDENTITY_TOKEN, IDENTITY_VOLUME

OTHER_BUCKET = "another-team-data"
EXCHANGES = 100  # AssumeRoleWithWebIdentity calls timed inside the pod

# boto3's default chain only (env AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ENDPOINT_URL_STS from keyguard):
# a round trip in the task's bucket, a write to another bucket, then the exchange itself timed, the token read from
# the projected file each time as the SDK reads it.
ROUND_TRIP = """
import json, os, time, uuid
import boto3, botocore.exceptions
session = boto3.session.Session()
credentials = session.get_credentials()
s3 = session.client("s3")
bucket, key = os.environ["S3_BUCKET"], "node-suite/" + uuid.uuid4().hex + "/sts.txt"
s3.put_object(Bucket=bucket, Key=key, Body=b"written with short-lived credentials")
read = s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"written with short-lived credentials"
listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]] == [key]
try:
    s3.put_object(Bucket=os.environ["OTHER_BUCKET"], Key="x", Body=b"x")
    other = "written"
except botocore.exceptions.ClientError as error:
    other = error.response["Error"]["Code"]
sts = session.client("sts")
samples = []
for n in range(int(os.environ["EXCHANGES"])):
    with open(os.environ["AWS_WEB_IDENTITY_TOKEN_FILE"]) as handle:
        token = handle.read()
    began = time.perf_counter()
    sts.assume_role_with_web_identity(RoleArn=os.environ["AWS_ROLE_ARN"], RoleSessionName=f"latency-{n}",
                                      WebIdentityToken=token)
    samples.append(time.perf_counter() - began)
print("RESULT " + json.dumps({"method": credentials.method, "read": read, "listed": listed, "other_bucket": other,
      "samples": samples, "key_env": sorted(k for k in os.environ if "SECRET" in k or "ACCESS_KEY" in k
      or "SESSION_TOKEN" in k), "secret_dir": os.path.exists("/etc/flyte/storage")}), flush=True)
"""

# Outlives several sessions with one client: a write and a read every few seconds, counting the distinct sets of
# temporary credentials the SDK used (in memory, never printed). The first set, pinned in a client of its own, is
# tried at the start and again once it has expired.
OUTLIVE = """
import json, os, time, uuid
import boto3, botocore.exceptions, botocore.session
session = boto3.session.Session()
credentials = session.get_credentials()
s3 = session.client("s3")
bucket, prefix = os.environ["S3_BUCKET"], "node-suite/" + uuid.uuid4().hex
first = credentials.get_frozen_credentials()
pinned = botocore.session.get_session()
pinned.set_credentials(*first)
stale = boto3.session.Session(botocore_session=pinned).client("s3")
def try_first(key):
    try:
        stale.put_object(Bucket=bucket, Key=key, Body=b"x")
        return "written"
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
first_before = try_first(f"{prefix}/first")
began, seen, changes, failures, calls = time.time(), {first.access_key}, [], [], 0
while time.time() - began < float(os.environ["OUTLIVE_SECONDS"]):
    try:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{calls}", Body=b"still here")
        s3.get_object(Bucket=bucket, Key=f"{prefix}/{calls}")["Body"].read()
    except botocore.exceptions.ClientError as error:
        failures.append(error.response["Error"]["Code"])
    calls += 1
    current = credentials.get_frozen_credentials().access_key
    if current not in seen:
        seen.add(current)
        changes.append(round(time.time() - began, 1))
    time.sleep(3)
first_after = try_first(f"{prefix}/stale")
windows = [credentials._advisory_refresh_timeout, credentials._mandatory_refresh_timeout]  # botocore's, to report
print("RESULT " + json.dumps({"seconds": time.time() - began, "calls": calls, "failures": failures,
      "credential_sets": len(seen), "changes": changes, "first_before": first_before, "first_after": first_after,
      "windows": windows}), flush=True)
"""

# Under a service account the role does not trust: the exchange itself, then what the SDK's chain makes of it.
REFUSED = """
import json, os
import boto3, botocore.exceptions
with open(os.environ["AWS_WEB_IDENTITY_TOKEN_FILE"]) as handle:
    token = handle.read()
try:
    boto3.client("sts").assume_role_with_web_identity(RoleArn=os.environ["AWS_ROLE_ARN"], RoleSessionName="refused",
                                                      WebIdentityToken=token)
    sts = "granted"
except botocore.exceptions.ClientError as error:
    sts = error.response["Error"]["Code"]
try:
    boto3.client("s3").list_objects_v2(Bucket=os.environ["S3_BUCKET"])
    s3 = "listed"
except Exception as error:
    s3 = type(error).__name__
print("RESULT " + json.dumps({"sts": sts, "s3": s3}), flush=True)
"""


@pytest.fixture(scope="module")
def sts(cluster: ControlPlane, core: client.CoreV1Api, built: Build, work: Path, sts_port: int) -> Iterator[SeaweedFS]:
    """The discovery RBAC, the namespace with its two accounts, and a SeaweedFS of its own whose STS trusts the
    API server, on the port keyguard's profile names, with the task's bucket and another team's."""
    cluster.kubectl(*identity.DISCOVERY_BINDING)
    core.create_namespace({"metadata": {"name": identity.NAMESPACE}})
    for account in (identity.TASK_ACCOUNT, identity.OTHER_ACCOUNT):
        body = {"metadata": {"name": account}, "automountServiceAccountToken": False}
        core.create_namespaced_service_account(identity.NAMESPACE, body)
    directory = work / "sts"
    directory.mkdir()
    config = identity.iam_config(cluster.issuer, cluster.pki.serving_ca, BUCKET)
    seaweed = SeaweedFS(built.weed, directory, port=sts_port, iam=config)
    try:
        seaweed.start()
        seaweed.create_bucket(BUCKET)
        seaweed.create_bucket(OTHER_BUCKET)
        yield seaweed
    finally:
        seaweed.stop()


def _env(sts: SeaweedFS, **extra: str) -> list[dict[str, str]]:
    """Where the storage is, never how to sign in: the S3 endpoint and region, the buckets."""
    values = {"AWS_ENDPOINT_URL_S3": sts.endpoint, "AWS_REGION": "us-east-1", "S3_BUCKET": BUCKET, **extra}
    return [{"name": name, "value": value} for name, value in values.items()]


def _stored(core: client.CoreV1Api, pod: dict[str, Any]) -> dict[str, Any]:
    """What keyguard makes of the pod, as the API server would store it (a dry run)."""
    return create_pod(core, pod, dry_run=True)


def test_the_api_server_serves_oidc_discovery_and_its_keys_to_anonymous_callers_over_tls(
    cluster: ControlPlane, sts: SeaweedFS
) -> None:
    verify = ssl.create_default_context(cafile=str(cluster.pki.serving_ca))
    with httpx.Client(verify=verify, timeout=10, trust_env=False) as anonymous:
        discovery = anonymous.get(f"{cluster.issuer}/.well-known/openid-configuration").json()
        keys = anonymous.get(discovery["jwks_uri"]).json()["keys"]
        assert anonymous.get(f"{cluster.url}/api/v1/namespaces").status_code == 403  # and nothing else
    assert cluster.issuer.startswith("https://127.0.0.1:")
    assert discovery["issuer"] == cluster.issuer
    assert discovery["jwks_uri"] == f"{cluster.issuer}/openid/v1/jwks"
    assert [(k["kty"], k["alg"]) for k in keys] == [("EC", "ES256")]


def test_a_task_pod_with_no_key_exchanges_its_token_and_reads_and_writes_its_bucket(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, sts: SeaweedFS, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _env(sts, OTHER_BUCKET=OTHER_BUCKET, EXCHANGES=str(EXCHANGES))
    pod = task_pod(identity.NAMESPACE, built.images["task"].name, ROUND_TRIP, env=env)
    stored = _stored(core, pod)
    spec = stored["spec"]
    assert spec["serviceAccountName"] == identity.TASK_ACCOUNT
    assert [v["name"] for v in spec["volumes"]] == [IDENTITY_VOLUME]  # no Secret, no API token
    (source,) = spec["volumes"][0]["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == identity.AUDIENCE
    assert "initContainers" not in spec  # nothing to render
    injected = {e["name"]: e["value"] for e in spec["containers"][0]["env"] if e["name"].startswith("AWS_")}
    assert injected == {
        "AWS_ENDPOINT_URL_S3": sts.endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ROLE_ARN": identity.ROLE_ARN,
        "AWS_WEB_IDENTITY_TOKEN_FILE": IDENTITY_TOKEN,
        "AWS_ENDPOINT_URL_STS": sts.endpoint,
    }
    done = run(core, cluster, pod)
    assert done.phase == "Succeeded", done.logs[-3000:]
    facts = done.result()
    assert facts["method"] == "assume-role-with-web-identity"
    assert facts["key_env"] == [] and not facts["secret_dir"]
    assert facts["read"] and facts["listed"]
    assert facts["other_bucket"] == "AccessDenied"  # the role's policy names the task's bucket only
    samples = sorted(1000 * s for s in facts["samples"])
    p90 = statistics.quantiles(samples, n=10)[8]
    with capsys.disabled():
        print(
            f"\nSTS AssumeRoleWithWebIdentity from inside the task pod ({len(samples)} exchanges, boto3, "
            f"{sts.version}): p50 {statistics.median(samples):.1f} ms, p90 {p90:.1f} ms, max {samples[-1]:.1f} ms"
        )


def test_a_pod_under_another_service_account_is_refused_by_the_sts(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, sts: SeaweedFS
) -> None:
    pod = task_pod(identity.NAMESPACE, built.images["task"].name, REFUSED, env=_env(sts))
    pod["spec"]["serviceAccountName"] = identity.OTHER_ACCOUNT  # allowed by keyguard's profile, not by the role
    done = run(core, cluster, pod)
    assert done.phase == "Succeeded", done.logs[-3000:]
    assert done.result() == {"sts": "AccessDenied", "s3": "ClientError"}


def test_a_token_for_another_audience_is_refused_by_the_sts(cluster: ControlPlane, sts: SeaweedFS) -> None:
    """The audience is the provider's to check (its clientId): a real token of the trusted account, made for
    another audience with the TokenRequest API, is not accepted."""
    token = cluster.kubectl(
        "create", "token", "-n", identity.NAMESPACE, identity.TASK_ACCOUNT, "--audience=another-sts", "--duration=10m"
    ).stdout.strip()
    form = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": identity.ROLE_ARN,
        "RoleSessionName": "wrong-audience",
        "WebIdentityToken": token,
    }
    response = httpx.post(f"{sts.endpoint}/", data=form, timeout=30, trust_env=False)
    assert response.status_code == 400
    assert "<Code>InvalidParameterValue</Code>" in response.text
    assert "audience" in response.text


def test_a_task_outliving_its_session_keeps_working_as_the_sdk_refreshes(
    cluster: ControlPlane, core: client.CoreV1Api, built: Build, sts: SeaweedFS, capsys: pytest.CaptureFixture[str]
) -> None:
    outlive = 2.5 * identity.SESSION_SECONDS
    env = _env(sts, OUTLIVE_SECONDS=str(outlive))
    done = run(core, cluster, task_pod(identity.NAMESPACE, built.images["task"].name, OUTLIVE, env=env), timeout=300)
    assert done.phase == "Succeeded", done.logs[-3000:]
    facts = done.result()
    assert facts["seconds"] >= outlive and facts["failures"] == [], json.dumps(facts)
    assert facts["credential_sets"] >= 3  # the first session and at least two more, all without a restart
    # The sessions really do end: the first set, good at the start, is refused once expired (SeaweedFS answers
    # InvalidAccessKeyId for an expired session token, where AWS says ExpiredToken).
    assert (facts["first_before"], facts["first_after"]) == ("written", "InvalidAccessKeyId"), json.dumps(facts)
    with capsys.disabled():
        print(
            f"\nSTS sessions of {identity.SESSION_SECONDS} s: the task ran {facts['seconds']:.0f} s with one boto3 "
            f"client, {facts['calls']} write+read rounds, none failed; the SDK fetched {facts['credential_sets']} "
            f"credential sets (new ones first seen at {facts['changes'][:4]} s ...); the first set: "
            f"{facts['first_before']} at the start, {facts['first_after']} after it expired; botocore refreshes "
            f"{facts['windows'][0]} s before expiry and blocks for it {facts['windows'][1]} s before"
        )
