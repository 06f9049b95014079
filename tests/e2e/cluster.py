"""A real control plane on loopback: etcd and kube-apiserver as plain processes (what envtest does), and keyguard
as a real `keyguard serve` process. No kubelet and no controllers: pods are stored, never run, which is all
admission needs. Every address is 127.0.0.1 with a free port; the API server speaks real TLS and authenticates
the admin by client certificate."""

from __future__ import annotations

import base64
import copy
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.pki import ClusterPki, make_pki
from tests.server_harness import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tests" / "e2e" / "build-k8s.sh"
KEYGUARD = Path(sys.executable).parent / "keyguard"


class HarnessError(RuntimeError):
    """The harness could not start: the message says what and shows the end of the process log."""


def k8s_binaries() -> Path:
    """Build (or find cached) kube-apiserver, kubectl and etcd. A missing toolchain is a failure, never a skip."""
    if shutil.which("go") is None:
        raise HarnessError("the end-to-end suite builds kube-apiserver and etcd with Go, and `go` is not on PATH")
    result = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HarnessError(f"{BUILD_SCRIPT} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@dataclass
class Process:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.argv, stdout=handle, stderr=subprocess.STDOUT, env=_clean_env(), start_new_session=True
        )
        handle.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 20) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        code = self.popen.returncode
        self.popen = None
        return code


def wait_until(check: Any, what: str, process: Process | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise HarnessError(f"{what}: {process.name} exited early; its log ends:\n{process.tail()}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    tail = process.tail() if process is not None else ""
    raise HarnessError(f"{what}: not ready after {timeout:.0f} s\n{tail}")


@dataclass
class ControlPlane:
    """etcd + kube-apiserver. `kubeconfig` is an admin (system:masters) kubeconfig for 127.0.0.1."""

    bin_dir: Path
    work: Path
    pki: ClusterPki = field(init=False)
    port: int = field(init=False)
    processes: list[Process] = field(default_factory=list)
    version: str = ""
    apiserver_args: list[str] = field(default_factory=list)  # added to kube-apiserver's flags (the node suite's)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.work / "kubeconfig"

    def start(self) -> None:
        self.pki = make_pki(self.work / "pki")
        client_port, peer_port, self.port = free_port(), free_port(), free_port()
        etcd = Process(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                f"--data-dir={self.work / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client_port}",
                f"--advertise-client-urls=http://127.0.0.1:{client_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            self.work / "etcd.log",
        )
        etcd.start()
        self.processes.append(etcd)
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{client_port}/health", timeout=1).status_code == 200,
            "etcd",
            etcd,
        )
        apiserver = Process(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{client_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",  # no "kubernetes" Endpoints pointing at loopback (as envtest)
                f"--secure-port={self.port}",
                f"--cert-dir={self.work / 'apiserver-certs'}",
                f"--tls-cert-file={self.pki.serving_cert}",
                f"--tls-private-key-file={self.pki.serving_key}",
                f"--client-ca-file={self.pki.client_ca}",
                "--authorization-mode=RBAC",
                "--enable-admission-plugins=ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
                f"--service-account-key-file={self.pki.sa_pub}",
                f"--service-account-signing-key-file={self.pki.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--allow-privileged=false",
                "--v=1",
                *self.apiserver_args,
            ],
            self.work / "kube-apiserver.log",
        )
        apiserver.start()
        self.processes.append(apiserver)
        wait_until(lambda: self.get("/readyz").status_code == 200, "kube-apiserver /readyz", apiserver, timeout=90)
        self.version = self.get("/version").json()["gitVersion"]
        self._write_kubeconfig()

    def client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.pki.serving_ca))
        context.load_cert_chain(self.pki.admin_cert, self.pki.admin_key)
        return httpx.Client(base_url=self.url, verify=context, timeout=30)

    def get(self, path: str) -> httpx.Response:
        with self.client() as client:
            return client.get(path)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "e2e", "cluster": {"server": self.url, "certificate-authority": str(self.pki.serving_ca)}}
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(self.pki.admin_cert),
                        "client-key": str(self.pki.admin_key),
                    },
                }
            ],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
            "current-context": "e2e",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def token_kubeconfig(self, token: str, path: Path) -> Path:
        """The admin kubeconfig's cluster, with a bearer token as the user (a service account's, or a bad one)."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"] = [{"name": "admin", "user": {"token": token}}]
        path.write_text(yaml.safe_dump(config))
        return path

    def apply_for_real(self, rendered: Sequence[dict[str, Any]], kinds: set[str]) -> None:
        """Server-side apply the rendered objects of these kinds (never the webhooks: those stay on loopback)."""
        documents = yaml.safe_dump_all([d for d in rendered if d["kind"] in kinds])
        self.kubectl("apply", "--server-side", "--field-manager=e2e", "-f", "-", stdin=documents)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=_clean_env(),
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@dataclass
class KeyguardProcess:
    """`keyguard serve` on 127.0.0.1 with its own CA and serving certificate, reloading every `reload` seconds."""

    work: Path
    policy: Path
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def cert_dir(self) -> Path:
        return self.work / "keyguard-certs"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ca_bundle(self) -> bytes:
        return (self.cert_dir / "ca.crt").read_bytes()

    def start(self) -> None:
        if not (self.cert_dir / "ca.crt").exists():
            run_keyguard("certs", "generate", "--out", str(self.cert_dir), "--dns", "localhost", "--ip", "127.0.0.1")
        self.process = Process(
            "keyguard",
            [
                str(KEYGUARD),
                "serve",
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--tls-cert={self.cert_dir / 'tls.crt'}",
                f"--tls-key={self.cert_dir / 'tls.key'}",
                f"--policy={self.policy}",
                "--reload-interval=0.5",
            ],
            self.work / "keyguard.log",
        )
        self.process.start()
        ca = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
        wait_until(
            lambda: httpx.get(f"{self.url}/readyz", verify=ca, timeout=1).status_code == 200, "keyguard", self.process
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def run_keyguard(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(KEYGUARD), *args], input=stdin, capture_output=True, text=True, env=_clean_env(), check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"keyguard {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def webhook_configurations(rendered: Sequence[dict[str, Any]], keyguard: KeyguardProcess) -> list[dict[str, Any]]:
    """The webhook configurations exactly as `manifests/` renders them, with only clientConfig rewritten to
    keyguard on loopback and its CA."""
    configs = []
    for original in rendered:
        if original.get("kind") not in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            continue
        document = copy.deepcopy(original)  # the rendered install stays as rendered for the other tests
        for hook in document["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {
                "url": f"{keyguard.url}{path}",
                "caBundle": base64.b64encode(keyguard.ca_bundle()).decode(),
            }
        configs.append(document)
    return configs
