"""A key rotation end to end, on the real node and the real object storage (issue 13, item 1): a long-running Flyte
task keeps writing and reading SeaweedFS with boto3 while the admin rotates its key in the documented order (add
the new key to the storage, rewrite the Secret with `keyguard secret create`, wait the propagation window, revoke
the old key), several times. No call fails. The window (Secret rewritten → first call signed with the new key: the
kubelet's sync of the Secret volume, then keyguard's refresher sidecar) is measured each time. Revoking the old key
before the window has passed (the contrast) fails exactly the calls still signed with it.

Which key signed a call is never printed, hashed or logged: the task prints the inode of the credentials file it
built its client from (each render is a new file, renamed into place), and the test maps inodes to keys by reading
the rendered file on the host, in the pod's tmpfs under the kubelet's directory, comparing in memory."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client

from tests.e2e.cluster import ControlPlane
from tests.e2e.pods import create_pod, is_injected
from tests.leaks import assert_not_leaked
from tests.node.node import Build, Node
from tests.node.pods import describe_usage, events_for, refresher_usage, task_pod
from tests.node.storage import KeyPair, SeaweedFS, secret_create
from webhook.injection import CREDENTIALS_ENV, CREDS_VOLUME, TMPFS_VOLUME

STAGING = "flytesnacks-staging"  # refresh: watch, refreshSeconds 2 (conftest.py's policy_file)
USER = "flyte-task-rotation"  # an identity of its own: the other tests' key is never revoked
ROTATIONS = 5
CALL = "CALL "

# Every ~0.5 s: a new boto3 session (it reads the shared-credentials file again; boto3.client() would reuse the
# default session, whose credentials are loaded once), a put and a get. Also one put through an s3fs filesystem made
# once at start, as flytekit's data layer holds one per task execution. Prints the time, the outcome, the storage's
# error code (never its message) and the inode of the file the session read.
CALLS = """
import json, os, time, uuid
import boto3, s3fs
path = os.environ["AWS_SHARED_CREDENTIALS_FILE"]
endpoint, bucket = os.environ["S3_ENDPOINT"], os.environ["S3_BUCKET"]
key = "rotation/" + uuid.uuid4().hex
def code(error):
    return getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
def session():
    while True:  # the file the credentials came from: the same inode before and after reading it
        inode = os.stat(path).st_ino
        fresh = boto3.session.Session()
        fresh.get_credentials()
        if os.stat(path).st_ino == inode:
            return fresh, inode
held = s3fs.S3FileSystem(endpoint_url=endpoint, client_kwargs={"region_name": "us-east-1"})
while True:
    began = time.time()
    fresh, inode = session()
    s3 = fresh.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    body = uuid.uuid4().bytes
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        ok = s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        error = None if ok else "ContentMismatch"
    except Exception as failure:
        ok, error = False, code(failure)
    try:
        held.pipe_file(f"{bucket}/{key}.s3fs", body)
        held_error = None
    except Exception as failure:
        held_error = type(failure).__name__
    print("CALL " + json.dumps({"t": began, "ok": ok, "error": error, "inode": inode, "held": held_error}), flush=True)
    time.sleep(max(0.0, 0.5 - (time.time() - began)))
"""


@dataclass(frozen=True)
class Call:
    t: float
    ok: bool
    error: str | None
    inode: int
    held: str | None


@dataclass
class Watch:
    """The running task seen from outside: its calls (from its log); when each `..data` link of the Secret volume
    and each credentials file the refresher rendered first appeared (on the host, in the pod's volumes); and which
    of the test's keys each rendered file holds (compared in memory, never shown)."""

    core: client.CoreV1Api
    name: str
    container: str
    volumes: Path
    file_name: str
    keys: list[KeyPair]
    files: dict[int, KeyPair | None] = field(default_factory=dict)
    seen: dict[int | str, float] = field(default_factory=dict)  # inode or `..data` target -> first seen
    usage: tuple[float, float] | None = None

    def poll_host(self) -> None:
        try:
            link = os.readlink(self.volumes / "kubernetes.io~secret" / CREDS_VOLUME / "..data")
            self.seen.setdefault(link, time.time())
            with (self.volumes / "kubernetes.io~empty-dir" / TMPFS_VOLUME / self.file_name).open() as handle:
                inode = os.fstat(handle.fileno()).st_ino
                if inode not in self.files:
                    self.seen[inode] = time.time()
                    content = handle.read()
                    self.files[inode] = next((k for k in self.keys if k.access_key in content), None)
        except FileNotFoundError:  # before the volumes are set up
            pass

    def poll(self) -> list[Call]:
        pod = self.core.api_client.sanitize_for_serialization(self.core.read_namespaced_pod(self.name, STAGING))
        self.usage = refresher_usage(pod) or self.usage
        try:
            logs = self.core.read_namespaced_pod_log(self.name, STAGING, container=self.container)
        except client.ApiException as error:
            if error.status == 400:  # the task has not started yet
                return []
            raise
        return [Call(**json.loads(line[len(CALL) :])) for line in logs.splitlines() if line.startswith(CALL)]

    def wait(self, seconds: float) -> list[Call]:
        """Watch the host closely for `seconds`, then read the task's calls."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.poll_host()
            time.sleep(0.05)
        return self.poll()

    def first_call_with(self, keys: KeyPair, after: float, timeout: float = 120) -> Call:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.wait(0.5):
                if call.t >= after and self.files.get(call.inode) == keys:
                    return call
        raise AssertionError(f"no call signed with the new key within {timeout} s of the Secret's update")

    def first_seen(self, after: float, kind: type) -> float:
        """When the first `..data` target (str) or rendered file (int) that appeared after `after` was seen."""
        return min(t for what, t in self.seen.items() if isinstance(what, kind) and t > after)


@pytest.fixture
def rotation_user(storage: SeaweedFS) -> Iterator[KeyPair]:
    first = KeyPair.fake()
    storage.add_user(USER, first)
    yield first
    storage.remove_user(USER)


def _spread(seconds: list[float]) -> str:
    each = ", ".join(f"{s:.1f}" for s in seconds)
    return f"p50 {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s ({each})"


def _failures(calls: list[Call]) -> str:
    return ", ".join(f"{c.t:.1f} {c.error}" for c in calls if not c.ok)


def test_rotation_in_the_documented_order_fails_no_call_and_revoking_early_fails_the_old_keys_calls(
    cluster: ControlPlane,
    core: client.CoreV1Api,
    node: Node,
    built: Build,
    storage: SeaweedFS,
    bucket: str,
    rotation_user: KeyPair,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret_create(cluster, STAGING, rotation_user)
    env = [{"name": "S3_ENDPOINT", "value": storage.endpoint}, {"name": "S3_BUCKET", "value": bucket}]
    pod = task_pod(STAGING, built.images["task"].name, CALLS, env=env)
    stored = create_pod(core, pod)
    assert is_injected(stored)
    main = next(c for c in stored["spec"]["containers"] if c["name"] == pod["spec"]["containers"][0]["name"])
    file_name = Path(next(e["value"] for e in main["env"] if e["name"] == CREDENTIALS_ENV)).name
    volumes = node.root / "kubelet" / "pods" / stored["metadata"]["uid"] / "volumes"
    keys = [rotation_user]
    watch = Watch(core, stored["metadata"]["name"], main["name"], volumes, file_name, keys)
    windows: list[tuple[float, float, float]] = []  # Secret updated -> ..data swapped, -> rendered, -> first call
    revoked: list[float] = []
    logs, events = "", ""
    try:
        watch.first_call_with(rotation_user, after=0, timeout=120)
        current = rotation_user
        for _ in range(ROTATIONS):  # the documented order
            new = KeyPair.fake()
            keys.append(new)
            storage.add_key(USER, new)  # both keys valid
            updated = time.time()
            secret_create(cluster, STAGING, new)
            signed = watch.first_call_with(new, after=updated)
            swapped, rendered = watch.first_seen(updated, str), watch.first_seen(updated, int)
            windows.append((swapped - updated, rendered - updated, signed.t - updated))
            storage.remove_key(USER, current)
            revoked.append(time.time())
            current = new
        documented = watch.wait(3)
        # The contrast: the old key revoked right after the Secret's update, before the window has passed.
        new = KeyPair.fake()
        keys.append(new)
        storage.add_key(USER, new)
        updated = time.time()
        secret_create(cluster, STAGING, new)
        storage.remove_key(USER, current)
        early = time.time()
        recovered = watch.first_call_with(new, after=updated)
        calls = watch.wait(2)
        logs = core.read_namespaced_pod_log(watch.name, STAGING, container=main["name"])
        events = json.dumps(events_for(core, STAGING, watch.name))
    finally:
        core.delete_namespaced_pod(watch.name, STAGING, grace_period_seconds=0)
        secret_create(cluster, STAGING, storage.keys)  # the namespace's working keys back
    for value in (v for k in keys for v in (k.access_key, k.secret_key)):
        assert_not_leaked(value, logs, "the task's log")
        assert_not_leaked(value, events, "the pod's events")

    assert len(documented) > 20, "too few calls to show anything"
    assert all(c.ok for c in documented), f"calls failed in the documented order: {_failures(documented)}"
    old, fresh = current, new
    contrast = [c for c in calls if c.t > early]
    for call in contrast:  # a call fails exactly when it is signed with the revoked key
        signed_with = watch.files.get(call.inode)
        if signed_with == old:
            assert not call.ok and call.error == "InvalidAccessKeyId", call
        elif signed_with == fresh:
            assert call.ok, call
    # s3fs's filesystem made before the first rotation keeps the first key: it fails once that key is revoked.
    held = [c for c in documented if c.t > revoked[0] + 1]
    assert held and all(c.held for c in held), "a filesystem made before the rotation kept working"

    to_swap, to_render, to_call = ([w[i] for w in windows] for i in range(3))
    failed = [c for c in contrast if not c.ok]
    lost = f"{len(failed)} calls failed over {recovered.t - early:.1f} s (InvalidAccessKeyId)" if failed else "none"
    with capsys.disabled():
        print(
            f"\nrotation against SeaweedFS, {ROTATIONS} rotations in the documented order, {len(documented)} calls "
            f"(a new boto3 session each): none failed. From the Secret's update to the kubelet's ..data swap "
            f"{_spread(to_swap)}, to the refresher's new file {_spread(to_render)}, to the first call signed with "
            f"the new key {_spread(to_call)} (kubelet syncFrequency 10 s, refreshSeconds 2). "
            f"Old key revoked right after the update instead: {lost}. s3fs filesystem made before the first "
            f"rotation: failing since the first key was revoked ({held[0].held}). "
            f"Refresher sidecar: {describe_usage(watch.usage)}"
        )
