"""AdmissionReview in, AdmissionReview out: the wire boundary shared by the server and `keyguard review`.

`parse_review` turns untrusted bytes into a request or a `BadReview` (HTTP 400: the caller's fault, nothing was
decided); `respond` turns a Decision into the exact response the API server expects. Both are pure so the
offline command prints byte-for-byte what the webhook sends.
"""

from __future__ import annotations

import base64
from typing import Any, Final

import orjson

from webhook.admission_types import AdmissionRequest, AdmissionResponse, AdmissionReviewResponse
from webhook.engine import Decision
from webhook.errors import KeyguardError

API_VERSION: Final = "admission.k8s.io/v1"
_OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})


class BadReview(KeyguardError):
    """The body is not a usable admission.k8s.io/v1 AdmissionReview request (HTTP 400)."""


def parse_review(body: bytes | str) -> AdmissionRequest:
    """Parse and shape-check an AdmissionReview; only fields the engine relies on are checked."""
    try:
        review: Any = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadReview(f"body is not valid JSON (at character {error.pos})") from None
    if not isinstance(review, dict):
        raise BadReview("body is not a JSON object")
    if review.get("kind") != "AdmissionReview" or review.get("apiVersion") != API_VERSION:
        raise BadReview(f"body is not an {API_VERSION} AdmissionReview")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("AdmissionReview has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid is missing")
    kind = request.get("kind")
    if not isinstance(kind, dict) or not all(isinstance(kind.get(k), str) for k in ("group", "version", "kind")):
        raise BadReview("request.kind must have group, version and kind")
    if request.get("operation") not in _OPERATIONS:
        raise BadReview("request.operation must be CREATE, UPDATE, DELETE or CONNECT")
    for key in ("object", "oldObject"):
        if request.get(key) is not None and not isinstance(request[key], dict):
            raise BadReview(f"request.{key} must be an object")
    return request  # type: ignore[return-value]


def respond(uid: str, decision: Decision) -> AdmissionReviewResponse:
    """The AdmissionReview response for a decision (the UID echoed, the patch base64-encoded JSON)."""
    response: AdmissionResponse = {"uid": uid, "allowed": decision.allowed}
    if not decision.allowed:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": decision.message}
    if decision.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(decision.patch)).decode("ascii")
    if decision.warnings:
        response["warnings"] = list(decision.warnings)
    if decision.outcome != "ignored":
        annotations: dict[str, str] = {"decision": decision.outcome}
        if decision.profile:
            annotations["profile"] = decision.profile
        if decision.findings:
            annotations["rules"] = ",".join(decision.rule_ids)
        response["auditAnnotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def internal_error(uid: str) -> AdmissionReviewResponse:
    """A well-formed refusal when keyguard itself failed: the API server applies the failure policy."""
    return {
        "apiVersion": API_VERSION,
        "kind": "AdmissionReview",
        "response": {
            "uid": uid,
            "allowed": False,
            "status": {
                "code": 500,
                "reason": "InternalError",
                "message": "keyguard: internal error; see its log",
            },
        },
    }
