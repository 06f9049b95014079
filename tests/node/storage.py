"""SeaweedFS as real S3-compatible object storage on 127.0.0.1: master, volume server, filer and S3 gateway in one
`weed server` process, with SigV4 identities from a config file made at run time (fake keys, never committed).
With `iam`, the gateway also loads SeaweedFS's advanced IAM configuration (`-s3.iam.config`: its STS, identity
providers, roles and policies), which serves AssumeRoleWithWebIdentity on the same port."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.cluster import ControlPlane, Process, run_keyguard, wait_until
from tests.fake_credentials import aws_access_key_id, aws_secret_access_key
from tests.server_harness import free_port

BUCKET = "flyte-data"


@dataclass(frozen=True)
class KeyPair:
    access_key: str
    secret_key: str

    @classmethod
    def fake(cls) -> KeyPair:
        return cls(aws_access_key_id(), aws_secret_access_key())


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
        config = self.work / "s3-identities.json"
        identity = {
            "name": "flyte-task",
            "credentials": [{"accessKey": self.keys.access_key, "secretKey": self.keys.secret_key}],
            "actions": ["Read", "Write", "List", "Tagging", "Admin"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)
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
                f"-s3.config={config}",
                *iam,
            ],
            self.work / "seaweedfs.log",
        )
        self.process.start()
        # Unauthenticated requests are refused with 403 once the gateway is up, which is all this waits for.
        wait_until(
            lambda: httpx.get(self.endpoint, timeout=1).status_code == 403, "SeaweedFS S3", self.process, timeout=90
        )
        output = subprocess.run([str(self.weed), "version"], capture_output=True, text=True, check=True).stdout
        self.version = output.splitlines()[0].strip()  # "version 30GB 4.53  linux amd64"

    def create_bucket(self, name: str) -> None:
        """With SeaweedFS's own admin shell, so the host needs no S3 client."""
        result = subprocess.run(
            [str(self.weed), "shell", f"-master=127.0.0.1:{self.master}.{self.master_grpc}"],  # host:port.grpcPort
            input=f"s3.bucket.create -name {name}\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0 or "error" in result.stdout.lower():
            raise RuntimeError(f"weed shell s3.bucket.create {name}: {result.stdout}{result.stderr}")

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
