"""A real control plane on loopback: etcd and kube-apiserver as plain processes (what envtest does), and keyguard
as a real `keyguard serve` process. No kubelet and no controllers: pods are stored, never run, which is all
admission needs. Every address is 127.0.0.1 with a free port; the API server speaks real TLS and authenticates
the admin by client certificate.

Nothing outlives the run: every child (servers and one-shot kubectl or keyguard commands) is killed with SIGKILL
by the kernel when pytest dies (PR_SET_PDEATHSIG, even on `kill -9`); each server leads its own process group,
stopped as a group, and an atexit hook kills the groups when pytest exits without tearing down."""

from __future__ import annotations

import atexit
import base64
import contextlib
import copy
import ctypes
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.pki import ClusterPki, make_pki
from tests.leaks import assert_not_leaked
from tests.server_harness import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tests" / "e2e" / "build-k8s.sh"
KEYGUARD = Path(sys.executable).parent / "keyguard"
PORT_ATTEMPTS = 3  # free_port() releases the port before the process binds it: another process may take it first
_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the child only calls it
_RUNNING: set[subprocess.Popen[bytes]] = set()


class HarnessError(RuntimeError):
    """The harness could not start: the message says what and shows the end of the process log."""


class PortTaken(HarnessError):
    """A process could not bind the free port it was given: someone else took it in between (retried)."""


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


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGKILL when pytest dies, however it dies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@atexit.register
def _kill_leftovers() -> None:
    """pytest exiting without teardown (an interrupt in a fixture, os._exit in a plugin): no process survives it."""
    for popen in list(_RUNNING):
        if popen.poll() is None:  # unreaped: its process group id is still ours
            os.killpg(popen.pid, signal.SIGKILL)


@dataclass
class Process:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    log_start: int = 0

    def start(self) -> None:
        handle = self.log.open("ab")
        self.log_start = handle.tell()
        self.popen = subprocess.Popen(
            self.argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=_clean_env(),
            start_new_session=True,  # its own process group: stop() and the guards kill it and its children
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, async-signal-safe
        )
        _RUNNING.add(self.popen)
        handle.close()

    def port_taken(self) -> bool:
        """Whether this start failed because its port was taken (etcd, kube-apiserver and uvicorn all say so)."""
        try:
            with self.log.open("rb") as handle:
                handle.seek(self.log_start)
                return b"address already in use" in handle.read().lower()
        except OSError:
            return False

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
        try:
            if self.popen.poll() is None:  # signal the group while its leader is unreaped: the id is still ours
                os.killpg(self.popen.pid, signal.SIGTERM)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                    self.popen.wait()
            return self.popen.returncode
        finally:
            _RUNNING.discard(self.popen)
            self.popen = None


def wait_until(check: Any, what: str, process: Process | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            error = PortTaken if process.port_taken() else HarnessError
            raise error(f"{what}: {process.name} exited early; its log ends:\n{process.tail()}")
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
    """etcd + kube-apiserver. `kubeconfig` is an admin (system:masters) kubeconfig for 127.0.0.1. `apiserver_args`
    are appended to kube-apiserver's command line (e.g. encryption or audit configuration). With `own_issuer`, the
    service-account issuer is the API server's own https URL, so it serves OIDC discovery and its signing keys
    there, for an STS to trust (workload identity); otherwise it is the in-cluster name, which serves none."""

    bin_dir: Path
    work: Path
    apiserver_args: Sequence[str] = ()
    own_issuer: bool = False
    pki: ClusterPki = field(init=False)
    port: int = field(init=False)
    etcd_url: str = field(init=False)
    processes: list[Process] = field(default_factory=list)
    version: str = ""

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.work / "kubeconfig"

    @property
    def issuer(self) -> str:
        """The `iss` of the service-account tokens this API server signs."""
        return self.url if self.own_issuer else "https://kubernetes.default.svc"

    def start(self) -> None:
        self.pki = make_pki(self.work / "pki")
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start_processes(attempt)
                break
            except PortTaken:
                self.stop()
                if attempt == PORT_ATTEMPTS:
                    raise
        self.version = self.get("/version").json()["gitVersion"]
        self._write_kubeconfig()

    def _start_processes(self, attempt: int) -> None:
        client_port, peer_port, self.port = free_port(), free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        etcd = Process(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                f"--data-dir={self.work / f'etcd-{attempt}'}",  # a failed attempt's member data is not reused
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
            lambda: httpx.get(f"http://127.0.0.1:{client_port}/health", timeout=1, trust_env=False).status_code == 200,
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
                f"--service-account-issuer={self.issuer}",
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

    def client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.pki.serving_ca))
        context.load_cert_chain(self.pki.admin_cert, self.pki.admin_key)
        return httpx.Client(base_url=self.url, verify=context, timeout=30, trust_env=False)

    def get(self, path: str) -> httpx.Response:
        with self.client() as client:
            return client.get(path)

    def token_client(self, token: str) -> httpx.Client:
        """An HTTP client authenticated as whoever holds `token` (a service account's, from a TokenRequest)."""
        context = ssl.create_default_context(cafile=str(self.pki.serving_ca))
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, verify=context, headers=headers, timeout=30, trust_env=False)

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
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        return run_once("kubectl", argv, len(argv) - len(args), stdin=stdin, check=check)

    def etcd_value(self, key: str) -> bytes:
        """The bytes kube-apiserver stored under `key`, read with etcdctl straight from etcd (no API server)."""
        argv = [str(self.bin_dir / "etcdctl"), f"--endpoints={self.etcd_url}", "get", key, "--print-value-only"]
        result = subprocess.run(argv, capture_output=True, check=False)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result.stdout

    def restart_apiserver(self) -> None:
        """A new kube-apiserver process on the same etcd, port and flags: nothing it cached survives."""
        apiserver = self.processes[-1]
        apiserver.stop()
        apiserver.start()
        wait_until(lambda: self.get("/livez").status_code == 200, "kube-apiserver /livez", apiserver, timeout=90)

    def __enter__(self) -> ControlPlane:
        """`with ControlPlane(...) as plane:` starts it and stops it however the block ends."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        while self.processes:
            self.processes.pop().stop()


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
        """Start keyguard. The first start may move to another free port; a restart keeps the port the webhook
        configurations point at."""
        if not (self.cert_dir / "ca.crt").exists():
            run_keyguard("certs", "generate", "--out", str(self.cert_dir), "--dns", "localhost", "--ip", "127.0.0.1")
        first_start = self.process is None and not self.log.exists()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start_process()
                return
            except PortTaken:
                self.stop()
                if not first_start or attempt == PORT_ATTEMPTS:
                    raise
                self.port = free_port()

    @property
    def log(self) -> Path:
        return self.work / "keyguard.log"

    def _start_process(self) -> None:
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
            self.log,
        )
        self.process.start()
        wait_until(lambda: self.get("/readyz").status_code == 200, "keyguard", self.process)

    def get(self, path: str) -> httpx.Response:
        """GET /readyz, /metrics... verified against keyguard's current CA bundle, never through a proxy."""
        ca = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
        return httpx.get(f"{self.url}{path}", verify=ca, timeout=5, trust_env=False)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of keyguard's /metrics (0 when the series does not exist yet)."""
        for family in text_string_to_metric_families(self.get("/metrics").text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def audit_events(self) -> list[dict[str, Any]]:
        """keyguard's JSON log lines so far (decisions and events such as policy-reloaded)."""
        events = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def run_once(
    name: str, argv: list[str], shown_from: int, *, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """A one-shot command that dies with pytest; `check` fails naming `name` and argv[shown_from:] (its own
    arguments, not paths of the harness)."""
    result = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        env=_clean_env(),
        check=False,
        preexec_fn=_die_with_parent,
    )
    if check and result.returncode != 0:
        shown = " ".join(argv[shown_from:])
        raise AssertionError(f"{name} {shown} failed ({result.returncode}): {result.stderr}")
    return result


def run_keyguard(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_once("keyguard", [str(KEYGUARD), *args], 1, stdin=stdin, check=check)


def secret_create(plane: ControlPlane, namespace: str, values: Mapping[str, str]) -> None:
    """The namespace's credentials Secret, made the way an admin makes it: `keyguard secret create`, values on
    stdin; its output names no value."""
    stdin = "".join(f"{name}={value}\n" for name, value in values.items())
    result = run_keyguard("secret", "create", "-n", namespace, "--kubeconfig", str(plane.kubeconfig), stdin=stdin)
    for value in values.values():
        assert_not_leaked(value, result.stdout + result.stderr, "keyguard secret create output")


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
