"""Start the servers under test as separate processes, pinned to one core, and read their memory and CPU.

Separate processes, started the way they are deployed (`keyguard serve ...`), so the measurement includes
everything production runs: the CLI's imports, uvloop, TLS, the audit log on stdout (sent to /dev/null here,
which still costs the write system call per review), the metrics.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loadgen import pin

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def generate_certs(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a serving certificate for localhost/127.0.0.1, made by `keyguard certs generate`."""
    subprocess.run(
        [
            str(BIN / "keyguard"),
            "certs",
            "generate",
            "--out",
            str(directory),
            "--dns",
            "localhost",
            "--ip",
            "127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return directory / "ca.crt", directory / "tls.crt", directory / "tls.key"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    ca_file: Path
    log_file: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def post(self, path: str, body: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
        """One HTTPS POST with certificate verification (used to check answers before loading the server)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        host, port = self.url.removeprefix("https://").split(":")
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            tls.sendall(head + body)
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
        response = b"".join(chunks)
        header, _, payload = response.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in header.lower():
            payload = _dechunk(payload)
        return status, payload

    def memory_mib(self) -> dict[str, float]:
        """VmRSS (now) and VmHWM (peak) of the server process, in MiB."""
        fields = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = round(int(value.split()[0]) / 1024, 1)
        return fields

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """User and system CPU time the server has used so far, apart."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        parts = stat.rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(parts[11]) / tick, int(parts[12]) / tick


def _dechunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        data = rest[size + 2 :]
    return b"".join(out)


def _wait_listening(server: Server, deadline_s: float = 30.0) -> None:
    host, port = server.url.removeprefix("https://").split(":")
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited {server.process.returncode}: {server.log_file.read_text()[-2000:]}"
            )
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not listen within {deadline_s:g} s")


@contextmanager
def running(
    name: str, command: Sequence[str], *, port: int, ca_file: Path, log_dir: Path, core: int | None
) -> Iterator[Server]:
    """Run `command` (which must serve HTTPS on 127.0.0.1:port) pinned to `core`; SIGTERM it on exit."""
    log_file = log_dir / f"{name}.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            stdout=subprocess.DEVNULL,  # keyguard's audit log: one JSON line per review
            stderr=log,
            cwd=ROOT,
            preexec_fn=pin(core),  # noqa: PLW1509 (the bench process starts no threads)
        )
    server = Server(name, process, f"https://127.0.0.1:{port}", ca_file, log_file)
    try:
        _wait_listening(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
