"""keyguard's admission overhead next to its own floor (issue 14): the same pod creation through keyguard's two
webhooks, through two no-op webhooks (a Python one on keyguard's uvicorn settings, and Go's net/http built here),
through the same two answering /mutate with keyguard's own patch for that pod, and through none. The patching no-ops
split keyguard's overhead in two: what the API server spends applying and storing keyguard's patch (any injector
pays it), and what keyguard spends deciding it. Reported, never asserted: timing belongs to `make bench`, this only
puts them side by side in one run on one API server."""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.e2e import configurations
from tests.e2e.cluster import KeyguardProcess, Process, webhook_configurations
from tests.e2e.pods import FLYTE_NAMESPACES, create_pod, is_injected, propeller_pod, wait_for
from tests.flyte_pods import review
from tests.server_harness import free_port

HERE = Path(__file__).resolve().parent
GO_SOURCE = HERE / "noop-webhook"
CACHE = Path.home() / ".cache" / "keyguard" / "noop-webhook"
pytestmark = pytest.mark.usefixtures("webhooks")  # keyguard installed, and the Flyte namespaces with it
ROUNDS, PER_ROUND = 6, 20
PRODUCTION = FLYTE_NAMESPACES[-1]


@dataclass
class NoopWebhook:
    """A no-op server with keyguard's certificate, shaped like KeyguardProcess for webhook_configurations()."""

    name: str
    patches: bool
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


def _start(stack: str, keyguard: KeyguardProcess, work: Path, patch: Path | None) -> NoopWebhook:
    port = free_port()
    cert, key = keyguard.cert_dir / "tls.crt", keyguard.cert_dir / "tls.key"
    if stack == "go":
        argv = [str(_go_binary()), "--addr", f"127.0.0.1:{port}", "--cert", str(cert), "--key", str(key)]
        argv += ["--patch", str(patch)] if patch else []
    else:
        argv = [sys.executable, str(HERE / "noop_webhook.py"), str(port), str(cert), str(key)]
        argv += [str(patch)] if patch else []
    name = f"{stack}-patch" if patch else stack
    process = Process(f"noop-{name}", argv, work / f"noop-{name}.log")
    process.start()
    wait_for(lambda: process.alive() and _listening(port), timeout=30, what=f"the {name} no-op webhook listening")
    return NoopWebhook(name, patch is not None, process, port, keyguard)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _keyguards_patch(api: client.ApiClient, keyguard: KeyguardProcess, work: Path) -> Path:
    """keyguard's answer for the measured pod as the API server sends it to /mutate: the pod after the built-in
    admission plugins (a dry run with keyguard paused), reviewed by the running keyguard. Only paths and names."""
    with configurations.paused(api):
        admitted = create_pod(client.CoreV1Api(api), propeller_pod(PRODUCTION), dry_run=True)
    trust = ssl.create_default_context(cafile=str(keyguard.cert_dir / "ca.crt"))
    answer = httpx.post(f"{keyguard.url}/mutate", json=review(admitted), verify=trust, timeout=10, trust_env=False)
    answer.raise_for_status()
    patch = work / "keyguard-patch.b64"
    patch.write_text(answer.json()["response"]["patch"])
    return patch


@pytest.fixture
def noops(api: client.ApiClient, keyguard: KeyguardProcess, tmp_path: Path) -> Iterator[list[NoopWebhook]]:
    patch = _keyguards_patch(api, keyguard, tmp_path)
    servers = [_start(stack, keyguard, tmp_path, p) for p in (None, patch) for stack in ("python", "go")]
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
    setups = ("keyguard", "none", *(server.name for server in noops))
    samples: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(ROUNDS):
        configurations.keyguard_in_effect(api)
        _creations_ms(core, injected=True, count=3)  # warm the connection
        samples["keyguard"] += _creations_ms(core, injected=True, count=PER_ROUND)
        with configurations.paused(api):
            _creations_ms(core, injected=False, count=3)
            samples["none"] += _creations_ms(core, injected=False, count=PER_ROUND)
            for server in noops:
                with _installed(api, _as_noop(rendered, server)):
                    _creations_ms(core, injected=server.patches, count=3)
                    samples[server.name] += _creations_ms(core, injected=server.patches, count=PER_ROUND)
    p50 = {name: statistics.median(values) for name, values in samples.items()}
    over = {name: p50[name] - p50["none"] for name in setups if name != "none"}
    with capsys.disabled():
        print(f"\n{overhead_report(over, p50['none'], ROUNDS * PER_ROUND)}")


def overhead_report(over: dict[str, float], floor: float, count: int) -> str:
    """One line per figure: each set-up's overhead over no webhooks, and keyguard's against each floor."""

    def ratio(name: str) -> str:
        return f"{over['keyguard'] / over[name]:.2f}" if over[name] > 0 else "n/a"

    applying = over["python-patch"] - over["python"]
    return "\n".join(
        [
            f"admission overhead, mutate + validate, p50 of {count} creations each over {floor:.2f} ms without "
            f"webhooks: keyguard {over['keyguard']:.2f} ms; no-ops answering allow: Python on keyguard's uvicorn "
            f"settings {over['python']:.2f} ms, Go net/http {over['go']:.2f} ms; the same answering keyguard's "
            f"patch: Python {over['python-patch']:.2f} ms, Go {over['go-patch']:.2f} ms",
            f"keyguard / Python no-op {ratio('python')}, / Go no-op {ratio('go')}; keyguard / Python no-op with "
            f"keyguard's patch {ratio('python-patch')}, / Go with the patch {ratio('go-patch')}",
            f"the API server applying and storing keyguard's patch: {applying:.2f} ms (Python patching no-op minus "
            f"Python no-op); keyguard deciding it: {over['keyguard'] - over['python-patch']:.2f} ms (keyguard minus "
            "the Python patching no-op)",
        ]
    )
