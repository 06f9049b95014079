"""The keyguard ASGI application: the lean admission path in front of a small FastAPI app.

FastAPI serves what is not on the pods' critical path — /healthz, /readyz, /metrics — and owns the lifespan, in
which the policy and certificate watchers run. `build_app` wires the pieces; it reads no environment and does no
I/O beyond loading the policy it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from webhook import __version__
from webhook.native import engine_description
from webhook.server.admission_asgi import AdmissionEndpoints
from webhook.server.audit_log import AuditLog
from webhook.server.metrics import Metrics
from webhook.server.policy_watch import PolicyHolder


class CertificateSource(Protocol):
    """What the app needs from the TLS layer (implemented by `webhook.server.tls.CertificateReloader`)."""

    @property
    def not_after(self) -> datetime: ...

    def reload_if_changed(self) -> bool | None: ...


@dataclass(slots=True)
class ServerState:
    policies: PolicyHolder
    metrics: Metrics
    audit: AuditLog
    certificate: CertificateSource | None = None
    policy_poll_seconds: float = 2.0
    cert_poll_seconds: float = 10.0


def _watch_policy_once(state: ServerState) -> None:
    result = state.policies.reload_if_changed()
    if result is None:
        return
    if result:
        state.metrics.policy_reloads.labels(result="success").inc()
        state.metrics.set_policy_version(state.policies.policy.version)
        state.audit.event("policy-reloaded", policyVersion=state.policies.policy.version)
        for warning in state.policies.policy.warnings:
            state.audit.event("policy-warning", warning=warning)
    else:
        state.metrics.policy_reloads.labels(result="error").inc()
        state.audit.event(
            "policy-reload-failed", error=state.policies.last_error, keptVersion=state.policies.policy.version
        )


def _watch_certificate_once(state: ServerState) -> None:
    if state.certificate is None:
        return
    result = state.certificate.reload_if_changed()
    if result is None:
        return
    state.metrics.cert_reloads.labels(result="success" if result else "error").inc()
    state.metrics.cert_expiry.set(state.certificate.not_after.timestamp())
    state.audit.event("certificate-reloaded" if result else "certificate-reload-failed")


async def _every(seconds: float, action: Any, state: ServerState) -> None:
    while True:
        await asyncio.sleep(seconds)
        action(state)


def readiness(state: ServerState) -> tuple[bool, dict[str, Any]]:
    """Ready when a policy is in force and the serving certificate has not expired."""
    detail: dict[str, Any] = {
        "version": __version__,
        "engine": engine_description(),
        "policy": {
            "version": state.policies.policy.version,
            "source": str(state.policies.path or "embedded"),
        },
    }
    ready = True
    if state.policies.last_error:
        detail["policy"]["lastReloadError"] = state.policies.last_error
    if state.policies.policy.warnings:
        detail["policy"]["warnings"] = list(state.policies.policy.warnings)
    if state.certificate is not None:
        not_after = state.certificate.not_after
        remaining = not_after - datetime.now(UTC)
        detail["certificate"] = {"notAfter": not_after.isoformat(), "daysLeft": remaining.days}
        if remaining.total_seconds() <= 0:
            ready = False
            detail["certificate"]["error"] = "serving certificate has expired"
    detail["status"] = "ready" if ready else "not ready"
    return ready, detail


def build_app(state: ServerState, *, max_review_bytes: int) -> AdmissionEndpoints:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.metrics.set_policy_version(state.policies.policy.version)
        if state.certificate is not None:
            state.metrics.cert_expiry.set(state.certificate.not_after.timestamp())
        state.audit.event(
            "started", version=__version__, engine=engine_description(), policyVersion=state.policies.policy.version
        )
        for warning in state.policies.policy.warnings:
            state.audit.event("policy-warning", warning=warning)
        tasks = [asyncio.create_task(_every(state.policy_poll_seconds, _watch_policy_once, state))]
        if state.certificate is not None:
            tasks.append(asyncio.create_task(_every(state.cert_poll_seconds, _watch_certificate_once, state)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            state.audit.event("stopped")

    api = FastAPI(title="keyguard", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz() -> Response:
        ready, detail = readiness(state)
        return Response(orjson.dumps(detail), status_code=200 if ready else 503, media_type="application/json")

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return AdmissionEndpoints(
        api, policies=state.policies, metrics=state.metrics, audit=state.audit, max_bytes=max_review_bytes
    )
