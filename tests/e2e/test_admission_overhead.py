"""keyguard's admission overhead next to its own floor (issue 14): the same pod creation through keyguard's two
webhooks, through two no-op webhooks (a Python one on keyguard's uvicorn settings, and Go's net/http built here),
and through none. Reported, never asserted: timing belongs to `make bench`, this only puts the three side by side in
one run on one API server."""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.e2e import configurations
from tests.e2e.cluster import KeyguardProcess, Process, webhook_configurations
from tests.e2e.pods import FLYTE_NAMESPACES, create_pod, is_injected, propeller_pod, wait_for
from tests.server_harness import free_port

HERE = Path(__file__).resolve().parent
GO_SOURCE = HERE / "noop-webhook"
CACHE = Path.home() / ".cache" / "keyguard" / "noop-webhook"
pytestmark = pytest.mark.usefixtures("webhooks")  # keyguard installed, and the Flyte namespaces with it
ROUNDS, PER_ROUND = 4, 15
PRODUCTION = FLYTE_NAMESPACES[-1]


@dataclass
class NoopWebhook:
    """A no-op server with keyguard's certificate, shaped like KeyguardProcess for webhook_configurations()."""

    name: str
    process: Process
    port: int
    keyguard: KeyguardProcess

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ca_bundle(self) -> bytes:
        return self.keyguard.ca_bundle()


def _go_binary() -> Path:
    """Built once per source version with the machine's Go (a README prerequisite); standard library only."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(GO_SOURCE.iterdir()))).hexdigest()[:16]
    binary = CACHE / digest / "noop-webhook"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        go = shutil.which("go")
        assert go is not None, "the Go no-op webhook is built with Go, a prerequisite of make e2e"
        subprocess.run(
            [go, "build", "-C", str(GO_SOURCE), "-trimpath", "-o", str(binary), "."],
            check=True,
            capture_output=True,
            env={**os.environ, "CGO_ENABLED": "0"},
        )
    return binary


def _start(name: str, keyguard: KeyguardProcess, work: Path) -> NoopWebhook:
    port = free_port()
    cert, key = keyguard.cert_dir / "tls.crt", keyguard.cert_dir / "tls.key"
    if name == "go":
        argv = [str(_go_binary()), "--addr", f"127.0.0.1:{port}", "--cert", str(cert), "--key", str(key)]
    else:
        argv = [sys.executable, str(HERE / "noop_webhook.py"), str(port), str(cert), str(key)]
    process = Process(f"noop-{name}", argv, work / f"noop-{name}.log")
    process.start()
    wait_for(lambda: process.alive() and _listening(port), timeout=30, what=f"the {name} no-op webhook listening")
    return NoopWebhook(name, process, port, keyguard)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def noops(keyguard: KeyguardProcess, tmp_path: Path) -> Iterator[list[NoopWebhook]]:
    servers = [_start(name, keyguard, tmp_path) for name in ("python", "go")]
    try:
        yield servers
    finally:
        for server in servers:
            server.process.stop()


def _creations_ms(core: client.CoreV1Api, *, injected: bool, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        stored = create_pod(core, propeller_pod(PRODUCTION))
        samples.append((time.perf_counter() - start) * 1000)
        assert is_injected(stored) is injected
    return samples


def _as_noop(rendered: list[dict[str, Any]], server: NoopWebhook) -> list[dict[str, Any]]:
    """keyguard's two configurations, every field as rendered (rules, scope, matchConditions, timeout), pointed at
    the no-op under names of their own."""
    documents = webhook_configurations(rendered, server)  # type: ignore[arg-type]
    for document in documents:
        document["metadata"] = {"name": f"noop-{server.name}"}
        for hook in document["webhooks"]:
            hook["name"] = hook["name"].replace("keyguard", f"noop-{server.name}")
    return documents


@contextmanager
def _installed(api: client.ApiClient, documents: list[dict[str, Any]]) -> Iterator[None]:
    admission = client.AdmissionregistrationV1Api(api)
    for document in documents:
        if document["kind"] == "MutatingWebhookConfiguration":
            admission.create_mutating_webhook_configuration(copy.deepcopy(document))
        else:
            admission.create_validating_webhook_configuration(copy.deepcopy(document))
    try:
        configurations.informers_synced(api)
        yield
    finally:
        for document in documents:
            name = document["metadata"]["name"]
            if document["kind"] == "MutatingWebhookConfiguration":
                admission.delete_mutating_webhook_configuration(name)
            else:
                admission.delete_validating_webhook_configuration(name)
        configurations.informers_synced(api)


def test_admission_overhead_next_to_no_op_webhooks(
    api: client.ApiClient,
    core: client.CoreV1Api,
    rendered: list[dict[str, Any]],
    noops: list[NoopWebhook],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Rounds that alternate the four set-ups on the same namespace and pod, so drift on a shared machine falls on
    all of them alike: keyguard's webhooks, none (the floor), and each no-op pair in keyguard's place."""
    samples: dict[str, list[float]] = {name: [] for name in ("keyguard", "none", "python", "go")}
    for _ in range(ROUNDS):
        configurations.keyguard_in_effect(api)
        _creations_ms(core, injected=True, count=3)  # warm the connection
        samples["keyguard"] += _creations_ms(core, injected=True, count=PER_ROUND)
        with configurations.paused(api):
            _creations_ms(core, injected=False, count=3)
            samples["none"] += _creations_ms(core, injected=False, count=PER_ROUND)
            for server in noops:
                with _installed(api, _as_noop(rendered, server)):
                    _creations_ms(core, injected=False, count=3)
                    samples[server.name] += _creations_ms(core, injected=False, count=PER_ROUND)
    p50 = {name: statistics.median(values) for name, values in samples.items()}
    over = {name: p50[name] - p50["none"] for name in ("keyguard", "python", "go")}
    line = (
        f"admission overhead, mutate + validate, p50 of {ROUNDS * PER_ROUND} creations each over {p50['none']:.2f} ms "
        f"without webhooks: keyguard {over['keyguard']:.2f} ms; Python no-op on keyguard's uvicorn settings "
        f"{over['python']:.2f} ms; Go net/http no-op {over['go']:.2f} ms"
    )
    if over["python"] > 0 and over["go"] > 0:
        ratios = over["keyguard"] / over["python"], over["keyguard"] / over["go"]
        line += f" (keyguard / Python no-op {ratios[0]:.2f}, keyguard / Go no-op {ratios[1]:.2f})"
    with capsys.disabled():
        print(f"\n{line}")
