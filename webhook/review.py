"""AdmissionReview in, AdmissionReview out: the wire boundary shared by the server and `keyguard review`.

`parse_review` turns untrusted bytes into a request or a `BadReview` (HTTP 400: the caller's fault, nothing was
decided). It checks the type of every field the engine reads, in one declaration (`admission_types`), so the
engine never raises on a request that passed. `respond` turns a Decision into the exact response the API server
expects. Both are pure so the offline command prints byte-for-byte what the webhook sends.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Final

import orjson
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from webhook.admission_types import AdmissionRequest, AdmissionResponse, AdmissionReviewResponse
from webhook.engine import Decision
from webhook.errors import BadReview
from webhook.findings import shown_name

API_VERSION: Final = "admission.k8s.io/v1"
MAX_JSON_DEPTH: Final = 1024
"""orjson's own nesting limit: a deeper body is refused as invalid JSON."""
_REQUEST_SHAPE: TypeAdapter[AdmissionRequest] = TypeAdapter(AdmissionRequest)
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
# pydantic's error types, in words; pydantic's own messages are not used, so no input can ever be quoted.
_REASONS = {
    "string_type": "must be a string",
    "bool_type": "must be a boolean",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "missing": "is missing",
    "string_too_short": "must not be empty",
    "literal_error": "must be one of {expected}",
    "too_long": "has more than {max_length} items",
}


def _field(location: tuple[int | str, ...]) -> str:
    """`('object', 'spec', 'containers', 0, 'name')` -> `request.object.spec.containers[0].name`."""
    path = "request"
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif shown_name(part) != part:  # a key-shaped or overlong key (labels, annotations): never quoted
            path += "[…]"
        elif _FIELD.fullmatch(part):
            path += f".{part}"
        else:  # a label or annotation key: shown when it is shaped like one, never as arbitrary text
            path += f"[{part!r}]" if _LABEL_KEY.fullmatch(part) else "[…]"
    return path


def _shape_error(error: ErrorDetails) -> str:
    context = error.get("ctx") or {}
    reason = _REASONS.get(error["type"], "has the wrong type").format(
        expected=context.get("expected", ""), max_length=context.get("max_length", "")
    )
    # a union (`object` may be null) adds its member's name to the location: not a field
    location = tuple(part for part in error["loc"] if part not in ("typed-dict", "none"))
    return f"{_field(location)} {reason}"


def parse_review(body: bytes | str) -> AdmissionRequest:
    """Parse an AdmissionReview and check the type of every field the engine reads (400 naming the field)."""
    try:
        review: Any = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if str(error).startswith("depth limit exceeded"):
            raise BadReview(f"body is nested deeper than {MAX_JSON_DEPTH} levels") from None
        raise BadReview(f"body is not valid JSON (at character {error.pos})") from None
    if not isinstance(review, dict):
        raise BadReview("body is not a JSON object")
    if review.get("kind") != "AdmissionReview" or review.get("apiVersion") != API_VERSION:
        raise BadReview(f"body is not an {API_VERSION} AdmissionReview")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("AdmissionReview has no request")
    try:
        _REQUEST_SHAPE.validate_python(request)  # the copy it returns is dropped: the engine reads the original
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BadReview(_shape_error(problems[0]) + more) from None
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
