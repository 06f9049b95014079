"""A real node next to the end-to-end control plane: containerd (with runc), the kubelet, kube-scheduler and
kube-controller-manager as plain processes on 127.0.0.1, images imported from local archives and never pulled.

The kubelet registers as node `localhost`, and the API server reaches it by the Hostname address type, so `kubectl
logs` and `exec` stay on loopback without touching /etc/hosts. Every pod uses hostNetwork; the only CNI network is
`loopback`, which containerd needs to report its network ready.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.cluster import ControlPlane, HarnessError, Process, wait_until
from tests.node.host import HostState
from tests.server_harness import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tests" / "node" / "build-node.sh"
NODE_NAME = "localhost"  # resolves to 127.0.0.1 from /etc/hosts on every Debian machine
CNI_BIN = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
# The API server reaches the kubelet by the node's name, never by the InternalIP the kubelet detects.
APISERVER_ARGS = ("--kubelet-preferred-address-types=Hostname",)
POD_LOGS = "pod-logs"  # under the node's root: the kubelet's podLogsDir


@dataclass(frozen=True)
class Image:
    name: str
    archive: Path


@dataclass(frozen=True)
class Build:
    """What tests/node/build-node.sh built (or found cached)."""

    k8s_bin: Path
    weed: Path
    kubernetes_version: str
    seaweedfs_version: str
    kms_plugin: Path
    containerd_bin: Path  # containerd, containerd-shim-runc-v2 and ctr
    runc: Path
    images: dict[str, Image]


def build() -> Build:
    result = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{BUILD_SCRIPT} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return Build(
        k8s_bin=Path(data["k8s_bin"]),
        weed=Path(data["weed"]),
        kubernetes_version=data["kubernetes_version"],
        seaweedfs_version=data["seaweedfs_version"],
        kms_plugin=Path(data["kms_plugin"]),
        containerd_bin=Path(data["containerd_bin"]),
        runc=Path(data["runc"]),
        images={k: Image(v["name"], Path(v["archive"])) for k, v in data["images"].items()},
    )


def _containerd_config(root: Path, built: Build) -> str:
    """containerd's state under the node's own directory (its shims' sockets stay in /run/containerd, which the host
    restore covers). containerd 2.x also reads drop-ins from /etc/containerd/conf.d whatever `imports` says; there are
    none on the machines this suite runs on."""
    runtime, images = "plugins.'io.containerd.cri.v1.runtime'", "plugins.'io.containerd.cri.v1.images'"
    return f"""version = 3
root = "{root / "containerd" / "root"}"
state = "{root / "containerd" / "state"}"
# NRI would listen on /var/run/nri, outside the node's own directory.
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.nri.v1.nri"]

[grpc]
  address = "{root / "containerd.sock"}"

[plugins.'io.containerd.internal.v1.opt']
  path = "{root / "containerd" / "opt"}"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"

[{images}]
  snapshotter = "overlayfs"
  [{images}.pinned_images]
    sandbox = "{built.images["pause"].name}"

[{runtime}]
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below the caller's, and fails with "can't
  # get final child's PID from pipe: EOF" when the kubelet asks for -998 unless containerd clamps it.
  restrict_oom_score_adj = true
  cdi_spec_dirs = ["{root / "cdi"}"]
  [{runtime}.cni]
    bin_dirs = ["{CNI_BIN}"]
    conf_dir = "{root / "cni"}"
  [{runtime}.containerd]
    default_runtime_name = "runc"
    [{runtime}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      # The shim and runc this suite built, never whatever else is on PATH.
      runtime_path = "{built.containerd_bin / "containerd-shim-runc-v2"}"
      [{runtime}.containerd.runtimes.runc.options]
        BinaryName = "{built.runc}"
        Root = "{root / "runc"}"
        SystemdCgroup = false
"""


def _kubelet_config(root: Path, port: int, healthz: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz,
        # Only the API server on loopback calls the kubelet (logs, exec).
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        # containerd 2.x reports its cgroup driver (RuntimeConfig), which the kubelet uses; this is the same one.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{root / 'containerd.sock'}",
        "podLogsDir": str(root / POD_LOGS),
        "registerNode": True,
        # Nothing may be pulled, so nothing may be collected either; a busy shared disk must not evict test pods.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "maxPods": 30,
        "shutdownGracePeriod": "0s",
        "syncFrequency": "10s",
        "nodeStatusUpdateFrequency": "2s",
        "serializeImagePulls": False,
    }


@dataclass
class Node:
    """containerd, kubelet, scheduler and controller manager for `plane`; `start()` then `stop()` (always)."""

    plane: ControlPlane
    built: Build
    logs: Path
    root: Path = field(default_factory=lambda: Path(f"/var/lib/keyguard-node-{os.getpid()}"))
    processes: list[Process] = field(default_factory=list)
    host: HostState | None = None
    import_seconds: float = 0.0  # containerd start and the image imports
    ready_seconds: float = 0.0  # then kubelet, scheduler and controller manager start until the node is Ready

    @property
    def pod_logs(self) -> Path:
        return self.root / POD_LOGS

    @property
    def socket(self) -> Path:
        return self.root / "containerd.sock"

    def start(self) -> None:
        self.host = HostState.save(owned=[self.root])
        self.root.mkdir(parents=True)
        (self.root / "cni").mkdir()
        (self.root / "cni" / "10-loopback.conflist").write_text(
            json.dumps({"cniVersion": "1.0.0", "name": "loopback", "plugins": [{"type": "loopback"}]})
        )
        began = time.monotonic()
        self._start_containerd()
        for image in self.built.images.values():
            self.ctr("images", "import", str(image.archive))
        self.import_seconds = time.monotonic() - began
        began = time.monotonic()
        self._start_control_loops()
        self._start_kubelet()
        self.ready_seconds = time.monotonic() - began

    def _spawn(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.logs / f"{name}.log")
        process.start()
        self.processes.append(process)
        return process

    def _ctr(self, *args: str) -> list[str]:
        return [str(self.built.containerd_bin / "ctr"), f"--address={self.socket}", "--namespace=k8s.io", *args]

    def ctr(self, *args: str) -> str:
        return subprocess.run(self._ctr(*args), capture_output=True, text=True, check=True).stdout

    def _start_containerd(self) -> None:
        config = self.root / "containerd.toml"
        config.write_text(_containerd_config(self.root, self.built))
        process = self._spawn("containerd", [str(self.built.containerd_bin / "containerd"), f"--config={config}"])

        def serving() -> bool:
            return subprocess.run(self._ctr("version"), capture_output=True, check=False).returncode == 0

        wait_until(serving, "containerd", process)

    def _start_control_loops(self) -> None:
        pki, kubeconfig = self.plane.pki, str(self.plane.kubeconfig)
        bin_dir = self.built.k8s_bin
        self._spawn(
            "kube-scheduler",
            [
                str(bin_dir / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",  # no HTTPS endpoint needed: nothing scrapes or probes it
                "--v=1",
            ],
        )
        self._spawn(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",  # no HTTPS endpoint needed: nothing scrapes or probes it
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.serving_ca}",
                "--use-service-account-credentials=false",
                "--v=1",
            ],
        )

    def _start_kubelet(self) -> None:
        port, healthz = free_port(), free_port()
        config = self.root / "kubelet.yaml"
        config.write_text(yaml.safe_dump(_kubelet_config(self.root, port, healthz)))
        process = self._spawn(
            "kubelet",
            [
                str(self.built.k8s_bin / "kubelet"),
                f"--config={config}",
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--root-dir={self.root / 'kubelet'}",
                f"--cert-dir={self.root / 'kubelet-pki'}",
                f"--hostname-override={NODE_NAME}",
                "--v=1",
            ],
        )
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{healthz}/healthz", timeout=1).status_code == 200,
            "kubelet /healthz",
            process,
        )
        wait_until(self._ready, "node Ready", process, timeout=120)

    def _ready(self) -> bool:
        for process in self.processes:
            if not process.alive():
                raise HarnessError(f"{process.name} exited; its log ends:\n{process.tail()}")
        response = self.plane.get(f"/api/v1/nodes/{NODE_NAME}")
        if response.status_code != 200:
            return False
        node = response.json()
        conditions = {c["type"]: c["status"] for c in node["status"].get("conditions", [])}
        taints = [t["key"] for t in node["spec"].get("taints", [])]
        return conditions.get("Ready") == "True" and not taints

    def stop(self) -> None:
        """Pods deleted through the API (the kubelet unmounts their volumes), every process stopped, containerd's
        containers removed, then the host restored; raises if anything could not be put back."""
        try:
            self._drain()
        finally:
            for process in reversed(self.processes):
                if process.name == "containerd":
                    self._remove_containers()
                process.stop()
            self._kill_shims()
            if self.host is not None:
                self.host.restore()

    def _drain(self) -> None:
        kubelet = next((p for p in self.processes if p.name == "kubelet"), None)
        if kubelet is None or not kubelet.alive():
            return
        self.plane.kubectl("delete", "pods", "--all", "--all-namespaces", "--wait=false", check=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pods = self.plane.get("/api/v1/pods").json()["items"]
            if not pods:
                return
            time.sleep(0.5)
        # A pod the kubelet could not finish: force it, the host restore removes what it left.
        self.plane.kubectl("delete", "pods", "--all", "--all-namespaces", "--force", "--grace-period=0", check=False)

    def _remove_containers(self) -> None:
        """Whatever the kubelet left: tasks killed, containers and sandboxes deleted (their shims then exit)."""
        try:
            containers = self.ctr("containers", "list", "--quiet").split()
        except subprocess.CalledProcessError:
            return
        for container in containers:
            subprocess.run(self._ctr("tasks", "kill", "-s", "SIGKILL", container), capture_output=True, check=False)
        time.sleep(0.5)
        for container in containers:
            for what in (["tasks", "delete", "--force"], ["containers", "delete"]):
                subprocess.run(self._ctr(*what, container), capture_output=True, check=False)

    def _kill_shims(self) -> None:
        """containerd-shim-runc-v2 processes outlive containerd by design; ours name our socket on their command
        line, so they are found by it and ended by pid."""
        marker = str(self.socket).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and marker in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)
