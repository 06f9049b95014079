"""The wire boundary: bad bodies are refused with a reason, responses have the exact AdmissionReview shape, and
`keyguard review` prints the server's bytes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.flyte_pods import review, task_pod
from webhook.cli import main
from webhook.engine import decide
from webhook.policy import Policy
from webhook.review import BadReview, internal_error, parse_review, respond

GOOD = review(task_pod())


def mutated(**changes: Any) -> bytes:
    body = json.loads(json.dumps(GOOD))
    body["request"].update(changes)
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1", "request": {}}', "v1 AdmissionReview"),
        (b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}', "has no request"),
        (mutated(uid=""), "request.uid"),
        (mutated(kind={"kind": "Pod"}), "request.kind"),
        (mutated(operation="PATCH"), "request.operation"),
        (mutated(object="a string"), "request.object must be an object"),
    ],
)
def test_bad_reviews_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadReview, match=reason):
        parse_review(body)


def test_response_shape(policy: Policy) -> None:
    request = parse_review(orjson.dumps(GOOD))
    response = respond(request["uid"], decide(policy, request))
    assert response["apiVersion"] == "admission.k8s.io/v1"
    assert response["kind"] == "AdmissionReview"
    inner = response["response"]
    assert inner["uid"] == GOOD["request"]["uid"]
    assert inner["allowed"] is True
    assert inner["patchType"] == "JSONPatch"
    assert isinstance(json.loads(base64.b64decode(inner["patch"])), list)
    assert inner["auditAnnotations"] == {"decision": "patched", "profile": "default"}


def test_internal_error_is_a_well_formed_refusal() -> None:
    inner = internal_error("u-1")["response"]
    assert inner == {
        "uid": "u-1",
        "allowed": False,
        "status": {"code": 500, "reason": "InternalError", "message": "keyguard: internal error; see its log"},
    }


def test_keyguard_review_prints_the_server_bytes(policy: Policy, tmp_path: Path, capsysbinary: Any) -> None:
    path = tmp_path / "review.json"
    path.write_bytes(orjson.dumps(GOOD))
    assert main(["review", str(path)]) == 0
    request = parse_review(orjson.dumps(GOOD))
    expected = orjson.dumps(respond(request["uid"], decide(policy, request))) + b"\n"
    assert capsysbinary.readouterr().out == expected


def test_keyguard_review_exit_codes(tmp_path: Path, capsys: Any) -> None:
    leaky = task_pod()
    leaky["spec"]["containers"][0]["env"].append({"name": "FLYTE_AWS_SECRET_ACCESS_KEY", "value": "miniostorage"})
    path = tmp_path / "leak.json"
    path.write_bytes(orjson.dumps(review(leaky)))
    assert main(["review", str(path), "--endpoint", "validate", "--pretty"]) == 1
    out = capsys.readouterr().out
    assert '"allowed": false' in out
    assert "miniostorage" not in out
    assert main(["review", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot read: No such file or directory" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{")
    assert main(["review", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: body is not valid JSON" in capsys.readouterr().err
    assert main(["review", str(path), "--policy", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read policy" in capsys.readouterr().err
