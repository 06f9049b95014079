"""Encryption at rest with a KMS (issue 13, item 3's stretch): kube-apiserver's KMS v2 provider wraps each Secret's
data-encryption key with a key-encryption key that lives in a PKCS#11 token, SoftHSM from Debian's packages, as
Kubernetes' own e2e does with its mock plugin. The plugin (tests/node/kms-plugin, built by build-node.sh) is that
mock's shape; the token, the API server's envelope encryption and etcd are the real components under test.

In the node tier because it installs SoftHSM with apt-get (root), like the node's other packages; it starts a
control plane of its own and no kubelet."""

from __future__ import annotations

import base64
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from tests import fake_credentials as fake
from tests.e2e.cluster import REPO, ControlPlane, Process, k8s_binaries, secret_create, wait_until
from tests.e2e.safety_net import flyte_environments
from tests.leaks import assert_not_stored
from tests.node.node import Build

NAMESPACE = "flytesnacks-production"
SECRET = "flyte-storage-creds"  # the embedded default policy's Secret name
PROVIDER = "softhsm"
SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


@dataclass
class Token:
    """A SoftHSM token of its own (its directory under the test's work dir), with PINs made at run time."""

    work: Path

    @property
    def conf(self) -> str:
        return f"SOFTHSM2_CONF={self.work / 'softhsm2.conf'}"

    @property
    def pin_file(self) -> Path:
        return self.work / "user.pin"

    def create(self) -> None:
        tokens = self.work / "tokens"
        tokens.mkdir(mode=0o700)
        (self.work / "softhsm2.conf").write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
        self.pin_file.touch(mode=0o600)
        self.pin_file.write_text(secrets.token_hex(12))
        init = ["--init-token", "--free", "--label", "keyguard-kms", "--so-pin", secrets.token_hex(12)]
        util = ["env", self.conf, "softhsm2-util", *init, "--pin", self.pin_file.read_text()]
        subprocess.run(util, capture_output=True, check=True)


def _encryption_config(work: Path, socket: Path) -> Path:
    """The shipped EncryptionConfiguration with a KMS v2 provider first, as docs/lifecycle.md tells admins to
    write it; the shipped secretbox provider stays behind it to read what was written before."""
    document = yaml.safe_load((REPO / "manifests" / "apiserver" / "encryption-config.yaml").read_text())
    providers = document["resources"][0]["providers"]
    providers[0]["secretbox"]["keys"][0]["secret"] = base64.b64encode(secrets.token_bytes(32)).decode()
    kms = {"apiVersion": "v2", "name": PROVIDER, "endpoint": f"unix://{socket}", "timeout": "3s"}
    providers.insert(0, {"kms": kms})
    path = work / "encryption-config.yaml"
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


@dataclass
class Kms:
    plane: ControlPlane
    plugin: Process
    core: client.CoreV1Api


@pytest.fixture(scope="module")
def kms(built: Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kms]:
    work = tmp_path_factory.mktemp("kms")
    token = Token(work)
    token.create()
    socket = work / "kms.sock"
    argv = ["env", token.conf, str(built.kms_plugin), "--listen", str(socket), "--module", str(SOFTHSM_MODULE)]
    plugin = Process("kms-plugin", [*argv, "--pin-file", str(token.pin_file)], work / "kms-plugin.log")
    try:
        plugin.start()
        wait_until(socket.exists, "the KMS plugin's socket", plugin, timeout=30)
        args = [f"--encryption-provider-config={_encryption_config(work, socket)}"]
        with ControlPlane(k8s_binaries(), work, apiserver_args=args) as plane:
            core = client.CoreV1Api(config.new_client_from_config(config_file=str(plane.kubeconfig)))
            flyte_environments(plane, core)
            yield Kms(plane, plugin, core)
    finally:
        plugin.stop()


def _served(core: client.CoreV1Api) -> dict[str, str]:
    data = core.read_namespaced_secret(SECRET, NAMESPACE).data
    return {name: base64.b64decode(value).decode() for name, value in data.items()}


def test_kms_v2_the_credentials_secret_is_wrapped_by_a_key_in_the_hsm(
    kms: Kms, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = {"access_key": fake.aws_access_key_id(), "secret_key": fake.aws_secret_access_key()}
    secret_create(kms.plane, NAMESPACE, keys)
    raw = kms.plane.etcd_value(f"/registry/secrets/{NAMESPACE}/{SECRET}")
    prefix = f"k8s:enc:kms:v2:{PROVIDER}:".encode()
    assert raw.startswith(prefix), f"not stored through the KMS provider: starts with {raw[:16]!r}"
    for value in keys.values():
        assert_not_stored(value, raw, "the Secret's bytes in etcd")
    # A new API server holds no data-encryption key: reading the Secret back makes it ask the token to unwrap one.
    kms.plane.restart_apiserver()
    assert _served(kms.core) == keys, "a restarted API server does not serve the keys it was given"
    # Without the token, a new API server cannot read the Secret: the key that unwraps it is nowhere else.
    kms.plugin.stop()
    kms.plane.restart_apiserver()
    with pytest.raises(client.ApiException) as refused:
        _served(kms.core)
    assert refused.value.status == 500
    for value in keys.values():
        assert_not_stored(value, str(refused.value.body), "the API server's error")
    version = subprocess.run(["softhsm2-util", "--version"], capture_output=True, text=True, check=True).stdout
    with capsys.disabled():
        print(
            f"\nKMS v2: Secret stored as {prefix.decode()}…, key-encryption key in SoftHSM {version.strip()}; "
            "a restarted API server reads it back through the token, and cannot without it"
        )
