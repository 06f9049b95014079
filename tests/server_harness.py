"""Run the real keyguard server (uvicorn, uvloop, httptools, real TLS) on 127.0.0.1 inside the test process.

In-process so coverage sees the server code; the same `serve`-time wiring (`build_app`, `uvicorn_config`,
`CertificateReloader`) and uvicorn settings (`UVICORN_SETTINGS`) as `keyguard serve`. The audit log goes to a
pipe the tests can read.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import uvicorn

from webhook.certs import generate
from webhook.commands.serve import UVICORN_SETTINGS
from webhook.server.app import ServerState, build_app
from webhook.server.audit_log import AuditLog
from webhook.server.metrics import Metrics
from webhook.server.policy_watch import PolicyHolder
from webhook.server.settings import MAX_REVIEW_BYTES
from webhook.server.tls import CertificateReloader, uvicorn_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def replace_file(path: Path, text: str) -> None:
    """Replace a file atomically, as a ConfigMap volume update does (a half-written file is another test)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(path)


@dataclass
class RunningServer:
    url: str
    ca_file: Path
    cert_dir: Path
    state: ServerState
    audit_read_fd: int

    def audit_lines(self) -> list[dict[str, object]]:
        """Every audit line written so far (non-blocking read of the pipe)."""
        chunks = []
        while True:
            try:
                chunk = os.read(self.audit_read_fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return [orjson.loads(line) for line in b"".join(chunks).splitlines() if line]


@contextmanager
def running_server(tmp: Path, *, policy_file: Path | None = None, poll: float = 0.2) -> Iterator[RunningServer]:
    cert_dir = tmp / "certs"
    generate(cert_dir, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    reloader = CertificateReloader(cert_dir / "tls.crt", cert_dir / "tls.key")
    state = ServerState(
        policies=PolicyHolder(policy_file),
        metrics=Metrics(),
        audit=AuditLog(write_fd),
        certificate=reloader,
        policy_poll_seconds=poll,
        cert_poll_seconds=poll,
    )
    port = free_port()
    config = uvicorn_config(
        build_app(state, max_review_bytes=MAX_REVIEW_BYTES),
        host="127.0.0.1",
        port=port,
        reloader=reloader,
        timeout_graceful_shutdown=5,
        **UVICORN_SETTINGS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("keyguard test server did not start")
        time.sleep(0.02)
    try:
        yield RunningServer(f"https://127.0.0.1:{port}", cert_dir / "ca.crt", cert_dir, state, read_fd)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        os.close(write_fd)
        os.close(read_fd)
