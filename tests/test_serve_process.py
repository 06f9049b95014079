"""`keyguard serve` as a real process, the way `make run` and the Deployment start it: it answers over TLS, logs
one JSON line per decision on stdout, and on SIGTERM lets in-flight reviews finish before it exits."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson

from tests.flyte_pods import review, task_pod
from tests.server_harness import free_port
from webhook.certs import generate


def start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, ssl.SSLContext]:
    generate(tmp_path, dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    port = free_port()
    with (tmp_path / "stdout.log").open("wb") as stdout:  # a file, like a container runtime's log: never full
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "webhook.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--tls-cert",
                str(tmp_path / "tls.crt"),
                "--tls-key",
                str(tmp_path / "tls.key"),
            ],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    context = ssl.create_default_context(cafile=tmp_path / "ca.crt")
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/healthz", verify=context).status_code == 200:
                return process, url, context
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError(f"keyguard serve did not start: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.1)


def test_serve_answers_logs_and_stops_gracefully(tmp_path: Path) -> None:
    process, url, context = start(tmp_path)
    results: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=url, verify=context) as client:
            for _ in range(200):
                try:
                    response = client.post(
                        "/mutate",
                        content=orjson.dumps(review(task_pod())),
                        headers={"content-type": "application/json"},
                    )
                except httpx.TransportError:
                    return  # the server stopped accepting new connections: expected after SIGTERM
                results.append(response.status_code)

    worker = threading.Thread(target=hammer)
    worker.start()
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    worker.join(timeout=30)
    # uvicorn re-raises the captured SIGTERM after its graceful shutdown, as a process should
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert results, "no review was answered"
    assert set(results) == {200}, "a review in flight failed during shutdown"
    lines = [orjson.loads(line) for line in (tmp_path / "stdout.log").read_bytes().splitlines()]
    decisions = [line for line in lines if line.get("event") == "admission"]
    assert len(decisions) >= len(results)
    assert {"uid", "namespace", "name", "operation", "profile", "decision", "rules", "dryRun", "latencyMs"} <= set(
        decisions[0]
    )
    assert lines[-1]["event"] == "stopped"
    assert process.stderr is not None
    assert b"Traceback" not in process.stderr.read()
    process.stderr.close()
