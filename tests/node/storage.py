"""SeaweedFS as real S3-compatible object storage on 127.0.0.1: master, volume server, filer and S3 gateway in one
`weed server` process. Its SigV4 identities live in the filer's IAM store (/etc/iam) and are changed the way an
admin changes them, with `weed shell` (`s3.configure`, `s3.accesskey.create`, `s3.accesskey.delete`,
`s3.user.delete`); the S3 gateway follows the filer's metadata and reloads them live, so a key can be added or
revoked while tasks run. Keys are fake, made at run time, and reach `weed shell` on stdin, never on a command line;
its output (which repeats them) is never shown. With `iam`, the gateway also loads SeaweedFS's advanced IAM
configuration (`-s3.iam.config`: its STS, identity providers, roles and policies), which serves
AssumeRoleWithWebIdentity on the same port."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests import fake_credentials
from tests.e2e.cluster import ControlPlane, Process, run_keyguard, wait_until
from tests.server_harness import free_port

BUCKET = "flyte-data"
USER = "flyte-task"  # the identity the Flyte environments' Secrets hold keys of
ACTIONS = "Read,Write,List,Tagging,Admin"


@dataclass(frozen=True)
class KeyPair:
    # Out of the repr: a failing test's arguments (this, or the storage holding it) are printed by pytest.
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)

    @classmethod
    def fake(cls) -> KeyPair:
        # Looked up on the module at call time, so the suite's leak scan records them.
        return cls(fake_credentials.aws_access_key_id(), fake_credentials.aws_secret_access_key())


@dataclass
class SeaweedFS:
    weed: Path
    work: Path
    keys: KeyPair = field(default_factory=KeyPair.fake)
    port: int = field(default_factory=free_port)
    master: int = field(default_factory=free_port)
    master_grpc: int = field(default_factory=free_port)
    iam: dict[str, Any] | None = None
    process: Process | None = None
    version: str = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        data = self.work / "seaweedfs"
        data.mkdir()
        volume, filer = free_port(), free_port()
        iam: list[str] = []
        if self.iam is not None:
            iam_config = self.work / "s3-iam.json"
            iam_config.write_text(json.dumps(self.iam))
            iam_config.chmod(0o600)  # holds the STS signing key
            iam = [f"-s3.iam.config={iam_config}"]
        self.process = Process(
            "seaweedfs",
            [
                str(self.weed),
                "server",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={data}",
                f"-master.port={self.master}",
                f"-master.port.grpc={self.master_grpc}",
                f"-volume.port={volume}",
                f"-volume.port.grpc={free_port()}",
                "-volume.max=8",
                f"-filer.port={filer}",
                f"-filer.port.grpc={free_port()}",
                "-s3",
                f"-s3.port={self.port}",
                f"-s3.port.grpc={free_port()}",
                *iam,
            ],
            self.work / "seaweedfs.log",
        )
        self.process.start()
        # The gateway answers once its filer is up; with no identity yet it lets anyone in, so the first identity
        # is made before anything else, and authentication is on from the moment the gateway has it.
        wait_until(
            lambda: httpx.get(self.endpoint, timeout=1).status_code > 0, "SeaweedFS S3", self.process, timeout=90
        )
        self.add_user(USER, self.keys)
        output = subprocess.run([str(self.weed), "version"], capture_output=True, text=True, check=True).stdout
        self.version = output.splitlines()[0].strip()  # "version 30GB 4.53  linux amd64"

    def shell(self, commands: str, *, hiding: tuple[KeyPair, ...] = ()) -> str:
        """SeaweedFS's admin shell, commands on stdin. A failure shows its output with every value of `hiding`
        masked (the IAM commands echo the keys they were given)."""
        result = subprocess.run(
            [str(self.weed), "shell", f"-master=127.0.0.1:{self.master}.{self.master_grpc}"],  # host:port.grpcPort
            input=commands + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0 or "error" in result.stdout.lower():
            for keys in hiding:
                output = output.replace(keys.secret_key, "<secret key>").replace(keys.access_key, "<access key>")
            shown = commands.split(maxsplit=1)[0]
            raise RuntimeError(f"weed shell {shown} failed ({result.returncode}): {output[-2000:]}")
        return output

    def create_bucket(self, name: str) -> None:
        self.shell(f"s3.bucket.create -name {name}")

    def add_user(self, user: str, keys: KeyPair) -> None:
        """A new identity with one key pair and the actions Flyte tasks need; returns once the gateway has it."""
        self.shell(
            f"s3.configure -user {user} -actions {ACTIONS} -access_key {keys.access_key} "
            f"-secret_key {keys.secret_key} -apply",
            hiding=(keys,),
        )
        wait_until(lambda: self.knows(keys.access_key), f"SeaweedFS S3 serving identity {user}", self.process)

    def remove_user(self, user: str) -> None:
        self.shell(f"s3.user.delete -name {user}")

    def add_key(self, user: str, keys: KeyPair) -> None:
        """One more key pair for `user`, next to its others (the first step of a rotation); returns once the
        gateway accepts it."""
        self.shell(
            f"s3.accesskey.create -user {user} -access_key {keys.access_key} -secret_key {keys.secret_key}",
            hiding=(keys,),
        )
        wait_until(lambda: self.knows(keys.access_key), f"SeaweedFS S3 accepting a new key of {user}", self.process)

    def remove_key(self, user: str, keys: KeyPair) -> None:
        """Revoke one key pair of `user` (the last step of a rotation); returns once the gateway refuses it."""
        self.shell(f"s3.accesskey.delete -user {user} -access_key {keys.access_key}", hiding=(keys,))
        wait_until(lambda: not self.knows(keys.access_key), f"SeaweedFS S3 refusing a key of {user}", self.process)

    def knows(self, access_key: str) -> bool:
        """Whether the S3 gateway holds `access_key` now, asked without its secret: a request with a zero signature
        fails `SignatureDoesNotMatch` for a key the gateway has and `InvalidAccessKeyId` for one it has not."""
        now = datetime.now(UTC)
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{now:%Y%m%d}/us-east-1/s3/aws4_request, "
            f"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={'0' * 64}"
        )
        headers = {
            "Authorization": authorization,
            "x-amz-date": f"{now:%Y%m%dT%H%M%SZ}",
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        }
        response = httpx.get(self.endpoint, headers=headers, timeout=5)
        code = ET.fromstring(response.text).findtext("Code") if response.text else None
        if code not in ("SignatureDoesNotMatch", "InvalidAccessKeyId"):
            raise RuntimeError(f"SeaweedFS S3 answered a zero signature with {response.status_code} {code}")
        return code == "SignatureDoesNotMatch"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def secret_create(plane: ControlPlane, namespace: str, keys: KeyPair) -> None:
    """The namespace's storage Secret, made the way an admin makes it (`keyguard secret create`, values on stdin)."""
    run_keyguard(
        "secret",
        "create",
        "--namespace",
        namespace,
        "--kubeconfig",
        str(plane.kubeconfig),
        stdin=f"access_key={keys.access_key}\nsecret_key={keys.secret_key}\n",
    )
