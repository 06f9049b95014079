"""The admission endpoints as a raw ASGI callable in front of the FastAPI app.

Every Flyte task pod waits for this path, so it carries no framework machinery it does not need: no routing
tables, no request objects, no dependency injection, no pydantic. It enforces the HTTP contract itself
(405 wrong method, 415 wrong content type, 413 body over the limit — read bounded, never buffered unbounded —,
400 not an AdmissionReview) and answers every decidable review with HTTP 200 and an AdmissionReview, including
keyguard's own failures (`allowed: false`, code 500, the UID echoed). Everything else goes to FastAPI.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from webhook.admission_types import AdmissionRequest
from webhook.engine import Decision, decide
from webhook.errors import BadReview
from webhook.review import internal_error, parse_review, respond
from webhook.server.audit_log import AuditLog, audit_record
from webhook.server.metrics import Metrics
from webhook.server.policy_watch import PolicyHolder

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ENDPOINTS = {"/mutate": True, "/validate": False}  # path -> mutate?
_JSON_HEADERS = [(b"content-type", b"application/json")]


class _TooLarge(Exception):
    pass


def _content_type_ok(headers: list[tuple[bytes, bytes]]) -> tuple[bool, int | None]:
    json_type, length = False, None
    for name, value in headers:
        if name == b"content-type":
            json_type = value.split(b";", 1)[0].strip().lower() == b"application/json"
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
    return json_type, length


class AdmissionEndpoints:
    """Serve POST /mutate and /validate; hand every other request to `app`."""

    def __init__(
        self, app: ASGIApp, *, policies: PolicyHolder, metrics: Metrics, audit: AuditLog, max_bytes: int
    ) -> None:
        self.app = app
        self.policies = policies
        self.metrics = metrics
        self.audit = audit
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mutate = ENDPOINTS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if mutate is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if scope["method"] != "POST":
            await self._plain(send, 405, b"only POST is accepted", extra=((b"allow", b"POST"),))
            return
        json_type, length = _content_type_ok(scope["headers"])
        if not json_type:
            await self._plain(send, 415, b"content type must be application/json")
            return
        if length is not None and length > self.max_bytes:
            await self._plain(send, 413, b"review larger than the limit")
            return
        try:
            body = await self._read_body(receive)
        except _TooLarge:
            await self._plain(send, 413, b"review larger than the limit")
            return
        if body is None:
            return  # client went away
        try:
            request = parse_review(body)
        except BadReview as error:
            await self._plain(send, 400, str(error).encode())
            return
        endpoint = "mutate" if mutate else "validate"
        uid = request["uid"]
        policy = self.policies.policy
        try:
            decision = decide(policy, request, mutate=mutate)
            payload = orjson.dumps(respond(uid, decision))
        except Exception as error:  # keyguard's own bug: answer, log where (never the values), count it
            self._internal_error(error, uid)
            payload = orjson.dumps(internal_error(uid))
            decision = Decision(False, "errored", message="internal error")
        await send({"type": "http.response.start", "status": 200, "headers": _JSON_HEADERS})
        await send({"type": "http.response.body", "body": payload})
        elapsed = time.perf_counter() - started
        self._record(endpoint, request, decision, policy.version, elapsed)

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _plain(self, send: Send, status: int, text: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self.metrics.bad_requests.labels(status=str(status)).inc()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": text + b"\n"})

    def _internal_error(self, error: Exception, uid: str) -> None:
        self.metrics.internal_errors.inc()
        frames = traceback.extract_tb(error.__traceback__)
        where = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in frames[-5:]]
        # Exception messages can quote the input; only the type and the code location are logged.
        self.audit.event("internal-error", uid=uid, error=type(error).__name__, where=where)
        print(f"keyguard: internal error {type(error).__name__} at {where[-1:]}", file=sys.stderr)

    def _record(
        self, endpoint: str, request: AdmissionRequest, decision: Decision, policy_version: str, elapsed: float
    ) -> None:
        profile = decision.profile or ""
        self.metrics.review_counter(endpoint, decision.outcome, profile).inc()
        self.metrics.latency_histogram(endpoint).observe(elapsed)
        rules = decision.rule_ids
        for rule in rules:
            self.metrics.finding_counter(rule, profile).inc()
        self.audit.write(audit_record(endpoint, request, decision, policy_version, elapsed))
