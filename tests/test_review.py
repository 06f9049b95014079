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
from webhook.errors import BadReview
from webhook.policy import Policy
from webhook.review import internal_error, parse_review, respond

GOOD = review(task_pod())


def mutated(**changes: Any) -> bytes:
    body = json.loads(json.dumps(GOOD))
    body["request"].update(changes)
    return orjson.dumps(body)


def with_pod(path: str, value: Any) -> bytes:
    """GOOD with the pod field at dotted `path` (list indices as numbers) set to `value`."""
    body = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = body["request"]["object"]
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[int(last) if last.isdigit() else last] = value
    return orjson.dumps(body)


# The exact review of issue 17 that crashed the server with an HTTP 500.
OPERATION_AS_LIST = (
    b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",'
    b'"kind":{"group":"","version":"v1","kind":"Pod"},"operation":[]}}'
)


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
        (OPERATION_AS_LIST, "request.operation must be one of 'CREATE', 'UPDATE', 'DELETE' or 'CONNECT'"),
        (mutated(operation={"op": "CREATE"}), "request.operation must be one of"),
        (mutated(namespace={"a": 1}), "request.namespace must be a string"),
        (mutated(name=["a"]), "request.name must be a string"),
        (mutated(subResource={}), "request.subResource must be a string"),
        (mutated(dryRun="false"), "request.dryRun must be a boolean"),
        (
            with_pod("spec.ephemeralContainers", [{"name": ["x"]}]),
            r"request.object.spec.ephemeralContainers\[0\].name ",
        ),
        (with_pod("spec.containers.0.env.0.value", {"k": 1}), r"request.object.spec.containers\[0\].env\[0\].value "),
        (with_pod("spec.containers.0.args", "--flag"), r"request.object.spec.containers\[0\].args must be a list"),
        (with_pod("spec.volumes.0", "v"), r"request.object.spec.volumes\[0\] must be an object"),
        (with_pod("metadata.labels.project", 1), "request.object.metadata.labels.project must be a string"),
        (with_pod("metadata.labels", {"app.kubernetes.io/name": 1}), r"labels\['app.kubernetes.io/name'\] must be a "),
        (with_pod("metadata.labels", {"\n" * 70: 1}), r"request.object.metadata.labels\[…\] must be a string"),
        (with_pod("metadata.labels", {"AKIA" + "Q7" * 8: 1}), r"request.object.metadata.labels\[…\] must be a string"),
        (with_pod("spec.serviceAccountName", None), "request.object.spec.serviceAccountName must be a string"),
        (with_pod("spec.containers", [{}] * 1001), "request.object.spec.containers has more than 1000 items"),
        (mutated(oldObject={"spec": {"ephemeralContainers": [{"name": 1}]}}), "request.oldObject.spec"),
        (b"[" * 2000 + b"]" * 2000, "nested deeper than 1024 levels"),
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


def test_keyguard_review_answers_odd_reviews_without_a_traceback(tmp_path: Path, capfd: Any) -> None:
    """Exit 2 with the file and the field for a bad review; a review the engine refuses is a denial (exit 1)."""
    bad = tmp_path / "operation.json"
    bad.write_bytes(OPERATION_AS_LIST)
    assert main(["review", str(bad)]) == 2
    assert f"{bad}: request.operation must be one of" in capfd.readouterr().err
    twice = task_pod()
    twice["spec"]["volumes"] = [{"name": "keyguard-storage-creds", "secret": {"secretName": "flyte-storage-creds"}}] * 2
    path = tmp_path / "twice.json"
    path.write_bytes(orjson.dumps(review(twice)))
    assert main(["review", str(path)]) == 1
    captured = capfd.readouterr()
    assert "reserved-name-conflict" in captured.out
    assert "Traceback" not in captured.err
