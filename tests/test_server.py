"""The HTTPS service as the API server sees it: real uvicorn, real TLS, httpx as the client."""

from __future__ import annotations

import asyncio
import functools
import gc
import http.client
import json
import os
import secrets
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import apply_patch
from tests.flyte_pods import plain_pod, review, task_pod
from tests.leaks import assert_not_leaked
from tests.server_harness import RunningServer, replace_file, running_server
from webhook.server.audit_log import AuditLog
from webhook.server.http_limits import BoundedHttpToolsProtocol


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=server.ca_file)) as c:
        yield c


def post(client: httpx.Client, path: str, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=content, headers={"content-type": "application/json", **headers})


def metric(client: httpx.Client, sample: str) -> float:
    """The value of one sample of /metrics (0 before its first increment: an unlabelled family starts there)."""
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


def leaky_pod(secret: str) -> dict[str, Any]:
    pod = task_pod()
    pod["spec"]["containers"][0]["env"].append({"name": "FLYTE_AWS_SECRET_ACCESS_KEY", "value": secret})
    return pod


def test_mutate_injects_a_flyte_task_pod(client: httpx.Client) -> None:
    body = review(task_pod())
    response = post(client, "/mutate", body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["response"]["uid"] == body["request"]["uid"]
    assert answer["response"]["allowed"] is True
    assert answer["response"]["patchType"] == "JSONPatch"
    patched = apply_patch(task_pod(), answer["response"]["patch"])
    assert (patched["spec"]["serviceAccountName"], patched["spec"]["automountServiceAccountToken"]) == (
        "flyte-task",
        False,
    )
    assert "keyguard-storage-creds" in [v["name"] for v in patched["spec"]["volumes"]]


def test_non_flyte_pod_untouched(client: httpx.Client) -> None:
    answer = post(client, "/mutate", review(plain_pod())).json()["response"]
    assert answer["allowed"] is True
    assert "patch" not in answer


@pytest.mark.parametrize("path", ["/mutate", "/validate"])
def test_leak_denied_and_value_never_leaves(server: RunningServer, client: httpx.Client, path: str) -> None:
    secret = secrets.token_urlsafe(30)
    response = post(client, path, review(leaky_pod(secret)))
    answer = response.json()["response"]
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 403
    assert "env FLYTE_AWS_SECRET_ACCESS_KEY" in answer["status"]["message"]
    assert_not_leaked(secret, response.text, "the response")
    metrics = client.get("/metrics").text
    assert_not_leaked(secret, metrics, "the metrics")
    assert 'keyguard_admission_findings_total{profile="default",rule="env-credential-literal"}' in metrics
    lines = server.audit_lines()
    assert any(line.get("decision") == "denied" for line in lines)
    assert_not_leaked(secret, orjson.dumps(lines), "the audit log")


@pytest.mark.parametrize(
    ("method", "headers", "body", "status", "text"),
    [
        ("POST", {"content-type": "application/json"}, b"{oops", 400, b"body is not valid JSON (at character 1)\n"),
        (
            "POST",
            {"content-type": "application/json"},
            b'{"kind": "Pod"}',
            400,
            b"body is not an admission.k8s.io/v1 AdmissionReview\n",
        ),
        ("POST", {"content-type": "application/json"}, b"", 400, b"body is not valid JSON (at character 0)\n"),
        ("POST", {"content-type": "text/plain"}, b"{}", 415, b"content type must be application/json\n"),
        ("POST", {}, b"{}", 415, b"content type must be application/json\n"),
        ("GET", {}, b"", 405, b"only POST is accepted\n"),
        (
            "POST",
            {"content-type": "application/json"},
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",'
            b'"kind":{"group":"","version":"v1","kind":"Pod"},"operation":[]}}',
            400,
            b"request.operation must be one of 'CREATE', 'UPDATE', 'DELETE' or 'CONNECT'\n",
        ),
    ],
)
def test_bad_requests_get_exact_errors(
    client: httpx.Client, method: str, headers: dict[str, str], body: bytes, status: int, text: bytes
) -> None:
    response = client.request(method, "/mutate", content=body, headers=headers)
    assert (response.status_code, response.content) == (status, text)


def test_content_type_with_charset_is_accepted(client: httpx.Client) -> None:
    response = post(client, "/validate", review(plain_pod()), **{"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 200


def test_oversized_reviews_are_413_by_header_and_by_stream(client: httpx.Client) -> None:
    huge = b'{"pad": "' + b"x" * (7 * 1024 * 1024) + b'"}'
    by_header = post(client, "/mutate", huge)
    assert (by_header.status_code, by_header.content) == (413, b"review larger than the limit\n")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count while reading
        for _ in range(8):
            yield b"x" * (1024 * 1024)

    response = client.post("/mutate", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    # the exact answer, as for every other bad input: a short plain-text reason, nothing of the body echoed
    assert (response.headers["content-type"], response.content) == (
        "text/plain; charset=utf-8",
        b"review larger than the limit\n",
    )


def test_internal_error_answers_with_the_uid(
    server: RunningServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A policy in a state validation never lets through makes `decide` raise: keyguard's own bug, simulated the same
    # way on the pure-Python and the compiled engine (a compiled module's functions cannot be monkeypatched).
    policy = server.state.policies.policy
    monkeypatch.setattr(server.state.policies, "policy", policy.model_copy(update={"profiles": None}))
    body = review(task_pod())
    errors = 'keyguard_admission_reviews_total{decision="errored",endpoint="mutate",profile=""}'
    before = (metric(client, "keyguard_admission_internal_errors_total"), metric(client, errors))
    response = post(client, "/mutate", body)
    assert response.status_code == 200
    assert response.json()["response"] == {
        "uid": body["request"]["uid"],
        "allowed": False,
        "status": {"code": 500, "reason": "InternalError", "message": "keyguard: internal error; see its log"},
    }
    # counted once (the server is shared by the module: compare with before, whatever ran first), and as keyguard's
    # own failure, its own outcome, never as a policy denial
    after = (metric(client, "keyguard_admission_internal_errors_total"), metric(client, errors))
    assert after == (before[0] + 1, before[1] + 1)
    audit = server.audit_lines()
    decisions = [
        line["decision"] for line in audit if line["event"] == "admission" and line["uid"] == body["request"]["uid"]
    ]
    assert decisions == ["errored"]


def test_health_readiness_and_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    detail = ready.json()
    assert detail["status"] == "ready"
    assert detail["policy"]["source"] == "embedded"
    assert detail["certificate"]["daysLeft"] > 30
    metrics = client.get("/metrics").text
    assert "keyguard_certificate_expiry_timestamp_seconds" in metrics
    assert "keyguard_policy_info{version=" in metrics


def test_concurrent_reviews_each_get_their_own_answer(server: RunningServer) -> None:
    async def run() -> None:
        context = ssl.create_default_context(cafile=server.ca_file)
        async with httpx.AsyncClient(base_url=server.url, verify=context) as c:
            bodies = [review(task_pod() if i % 3 else leaky_pod(secrets.token_urlsafe(20))) for i in range(60)]
            responses = await asyncio.gather(
                *(
                    c.post("/mutate", content=orjson.dumps(b), headers={"content-type": "application/json"})
                    for b in bodies
                )
            )
            for body, response in zip(bodies, responses, strict=True):
                answer = response.json()["response"]
                assert answer["uid"] == body["request"]["uid"]
                assert answer["allowed"] is (
                    not any(
                        e["name"].startswith("FLYTE_AWS_SECRET")
                        for e in body["request"]["object"]["spec"]["containers"][0]["env"]
                    )
                )

    asyncio.run(run())


def test_policy_reload_and_last_good_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    template = "apiVersion: keyguard.flyte.org/v1\nkind: Policy\nprofiles:\n  - name: p\n    mode: {mode}\n"
    policy.write_text(template.format(mode="enforce"))
    with running_server(tmp_path, policy_file=policy, poll=0.05) as server:
        context = ssl.create_default_context(cafile=server.ca_file)
        with httpx.Client(base_url=server.url, verify=context) as c:
            body = review(leaky_pod(secrets.token_urlsafe(20)))
            assert post(c, "/mutate", body).json()["response"]["allowed"] is False
            replace_file(policy, template.format(mode="warn"))
            wait_for(lambda: post(c, "/mutate", body).json()["response"]["allowed"] is True)
            assert post(c, "/mutate", body).json()["response"]["warnings"]
            replace_file(policy, template.format(mode="block"))
            wait_for(lambda: "lastReloadError" in c.get("/readyz").json()["policy"])
            ready = c.get("/readyz")
            assert ready.status_code == 200
            assert "profiles[0].mode" in ready.json()["policy"]["lastReloadError"]
            assert post(c, "/mutate", body).json()["response"]["allowed"] is True  # still the last good (warn)
            assert 'keyguard_policy_reloads_total{result="error"} 1.0' in c.get("/metrics").text
        events = [line["event"] for line in server.audit_lines()]
        assert "policy-reloaded" in events
        assert "policy-reload-failed" in events


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_a_profile_the_webhook_cannot_select_is_said_at_start_and_on_readyz(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: keyguard.flyte.org/v1\nkind: Policy\nprofiles:\n"
        "  - name: staging\n    match: {namespaceLabels: {env: staging}}\n  - name: other\n"
    )
    with running_server(tmp_path, policy_file=policy) as server:
        context = ssl.create_default_context(cafile=server.ca_file)
        with httpx.Client(base_url=server.url, verify=context) as c:
            ready = c.get("/readyz")
        assert ready.status_code == 200
        (warning,) = ready.json()["policy"]["warnings"]
        assert warning.startswith("profile staging matches on namespaceLabels")
        events = [line for line in server.audit_lines() if line["event"] == "policy-warning"]
        assert [e["warning"] for e in events] == [warning]


def test_a_bad_review_never_costs_the_next_one_its_connection(server: RunningServer) -> None:
    """Issue 17: a namespace nested 254 lists deep broke the audit line after the response, uvicorn closed the
    keep-alive connection, and the next request queued on it got no answer."""
    host, port = server.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(
        host, int(port), context=ssl.create_default_context(cafile=server.ca_file), timeout=10
    )
    nested: Any = "flytesnacks-development"
    for _ in range(254):
        nested = [nested]
    bodies = [review(task_pod()) for _ in range(4)]
    bodies[0]["request"]["namespace"] = nested
    bodies[1]["request"]["name"] = {"k": secrets.token_urlsafe(30)}
    bodies[2]["request"]["subResource"] = ["status"]
    answers, sockets = [], set()
    for body in bodies:
        connection.request("POST", "/mutate", body=json.dumps(body), headers={"content-type": "application/json"})
        response = connection.getresponse()
        answers.append((response.status, response.read().split(b" ", 1)[0]))
        sockets.add(id(connection.sock))
    connection.close()
    assert answers[:3] == [(400, b"request.namespace"), (400, b"request.name"), (400, b"request.subResource")]
    assert answers[3][0] == 200
    assert len(sockets) == 1, "the connection was closed and reopened"


def test_an_idle_kept_alive_connection_outlives_the_api_servers_idle_timeout(server: RunningServer) -> None:
    """Found on the node: the API server's webhook client keeps idle connections for 90 s (Go's http.Transport
    default, which client-go keeps) and reuses them without retrying a POST, while uvicorn closed them after 5 s idle;
    a review sent on a connection keyguard was closing failed with EOF, and under `failurePolicy: Fail` the pod was
    refused. keyguard must be the side that never closes first: an idle connection is still served after 6 s."""
    host, port = server.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(
        host, int(port), context=ssl.create_default_context(cafile=server.ca_file), timeout=10
    )
    statuses, sockets = [], set()
    for pause in (0, 6):
        time.sleep(pause)
        connection.request(
            "POST", "/mutate", body=json.dumps(review(task_pod())), headers={"content-type": "application/json"}
        )
        response = connection.getresponse()
        statuses.append(response.status)
        response.read()
        sockets.add(id(connection.sock))
    connection.close()
    assert statuses == [200, 200]
    assert len(sockets) == 1, "the connection was closed and reopened"


def _lost_connections() -> int:
    """Protocols of connections already lost (uvicorn drops their parser) that something still keeps alive."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, BoundedHttpToolsProtocol) and o.parser is None)


def test_a_connection_reset_by_its_client_is_freed_at_once(server: RunningServer) -> None:
    """Found by `make bench` after the keep-alive went to 120 s: RSS grew 18 MiB. uvicorn cancels its keep-alive
    timer on a clean close only; a connection lost with an error (a reset) stayed referenced by the timer, with its
    TLS state and last request, for the whole keep-alive period."""
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=server.ca_file)
    body = json.dumps(review(task_pod())).encode()
    request = b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    for _ in range(5):
        raw = socket.create_connection((host, int(port)), timeout=10)
        tls = context.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(request % len(body) + body)
        assert tls.recv(12) == b"HTTP/1.1 200"
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        tls.close()
    deadline = time.monotonic() + 5
    while _lost_connections() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _lost_connections() == 0


@pytest.mark.parametrize(
    "record",
    [
        {"event": "admission", "namespace": functools.reduce(lambda inner, _: [inner], range(300), "ns")},
        {"event": "admission", "name": {1: "a key that is not a string"}},
    ],
)
def test_an_audit_record_orjson_cannot_write_is_replaced_not_raised(record: dict[str, Any]) -> None:
    read_fd, write_fd = os.pipe()
    try:
        AuditLog(write_fd).write(record)
        line = orjson.loads(os.read(read_fd, 1 << 16))
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert line["event"] == "audit-record-unwritable"
    assert set(line) == {"event", "ts", "error"}
