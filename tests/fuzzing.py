"""A structure-aware mutator of realistic Flyte AdmissionReviews, and the properties every review must keep.

One mutator, two drivers: `tests/test_fuzz.py` feeds it hypothesis' recorded randomness (`st.randoms`), so a
failure is replayed and reported by hypothesis; `bench/fuzz.py` (`make fuzz`) feeds it `random.Random` for a
million reviews in process and over HTTP. A case starts from a realistic review (Flyte 1 and 2 task pods, Spark
and copilot shapes, a plain pod, CREATE / ephemeral-container UPDATE / DELETE), plants a fake key (generated from
the case's own randomness) where values live, then applies a few mutations: drop, duplicate, retype, rename,
deepen, enlarge and odd unicode. The properties (`check_case`):

- nothing but `BadReview` leaves `parse_review`;
- `decide` never raises, for the mutating and the validating endpoint;
- the planted key (or any 8 characters of it) never appears in the response, the patch, the warnings, the
  decision's messages, the audit line or the metric labels.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tests.flyte_pods import container, flyte2_pod, plain_pod, review, task_pod
from webhook.engine import decide
from webhook.errors import BadReview
from webhook.policy import Policy
from webhook.review import parse_review, respond
from webhook.server.audit_log import audit_record

FRAGMENT = 8
_B64 = string.ascii_letters + string.digits + "+/"
_FIELDS = (
    "name", "value", "env", "args", "command", "containers", "initContainers", "ephemeralContainers", "volumes",
    "volumeMounts", "mountPath", "metadata", "spec", "labels", "annotations", "namespace", "operation", "object",
    "oldObject", "subResource", "secret", "secretName", "emptyDir", "medium", "serviceAccountName", "kind",
)  # fmt: skip
_CREDENTIAL_NAMES = (
    "FLYTE_AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "_FSEC_S3_KEY", "MINIO_SECRET_KEY", "secret_key",
    "PYSPARK_SUBMIT_ARGS", "SECRETS", "AWS_SHARED_CREDENTIALS_FILE",
)  # fmt: skip
_ODD_TEXT = (
    "\u0000", "\ud800", "\u0130", "\u00df", "\u202e", "\U0001f511", "e\u0301", "\u01c5", "\uff21\uff2b\uff29\uff21",
    "\u00a0", "\ufeff", "\\", '"', "$(", "${", "\n", "=", "--", "\u212a",
)  # fmt: skip
_DEPTHS = (1, 2, 10, 100, 260, 600)


@dataclass(frozen=True)
class Case:
    body: bytes
    key: str  # the planted fake key ("" when none was planted)


def _mixed(text: str) -> bool:
    return any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)


def fake_key(rng: random.Random) -> str:
    """A fake key of one of the shapes keyguard knows (random content, nothing real)."""
    shape = rng.randrange(4)
    if shape == 0:
        return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))
    if shape == 1:
        return "GOOG1" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(56))
    length = 40 if shape == 2 else 86
    while True:
        key = "".join(rng.choice(_B64) for _ in range(length))
        if _mixed(key):
            return key + ("==" if shape == 3 else "")


_PLANTINGS: tuple[Callable[[str], str], ...] = (
    lambda key: key,
    lambda key: f"secret_key={key}",
    lambda key: f"--storage.connection.secret-key={key}",
    lambda key: f"spark.hadoop.fs.s3a.secret.key={key}",
    lambda key: f"x={key}.secret_key=v",
    lambda key: f"--{key}.secret-key",
    lambda key: base64.b64encode(f"{key}_secret_key=1".encode()).decode(),
    lambda key: base64.b64encode(f"aws_secret_access_key = {key}\n".encode()).decode(),
    lambda key: f"AccountKey={key}",
)


def _base(rng: random.Random) -> dict[str, Any]:
    pods: tuple[Callable[[], dict[str, Any]], ...] = (task_pod, flyte2_pod, plain_pod, task_pod)
    pod = rng.choice(pods)()
    if rng.random() < 0.3:
        pod.setdefault("spec", {}).setdefault("initContainers", []).append(container("init", env=[]))
    if rng.random() < 0.2:
        pod["spec"]["containers"][0]["args"] = ["spark-submit", "--conf", "spark.executor.instances=2", "app.py"]
    operation = rng.choice(("CREATE", "CREATE", "CREATE", "UPDATE", "DELETE"))
    if operation == "UPDATE":
        old = copy.deepcopy(pod)
        pod["spec"]["ephemeralContainers"] = [container("debugger", env=[])]
        return review(pod, operation="UPDATE", sub_resource="ephemeralcontainers", old=old)
    return review(pod, operation=operation)


def _slots(node: Any, limit: int = 4000) -> list[tuple[Any, Any]]:
    """(parent, key or index) of every value below `node`, breadth first, at most `limit`."""
    slots: list[tuple[Any, Any]] = []
    queue = [node]
    for parent in queue:
        items = parent.items() if isinstance(parent, dict) else enumerate(parent)
        for key, value in items:
            slots.append((parent, key))
            if isinstance(value, dict | list):
                queue.append(value)
        if len(slots) >= limit:
            break
    return slots


def _plant(request: dict[str, Any], key: str, rng: random.Random) -> None:
    text = rng.choice(_PLANTINGS)(key)
    strings = [(p, k) for p, k in _slots(request) if isinstance(p[k], str) and not (p is request and k == "uid")]
    if strings and rng.random() < 0.6:
        parent, slot = rng.choice(strings)
        parent[slot] = text
        return
    pod = request.get("object") or {}
    if rng.random() < 0.1:  # a key pasted as a label key, with a value of the wrong type: refused by name
        pod.setdefault("metadata", {}).setdefault("labels", {})[text] = rng.choice((1, "v"))
        return
    containers = pod.get("spec", {}).get("containers") or [{}]
    target = rng.choice(containers)
    if rng.random() < 0.5:
        target.setdefault("env", []).append({"name": rng.choice(_CREDENTIAL_NAMES), "value": text})
    else:
        target.setdefault("args", []).extend(["--conf", text] if rng.random() < 0.5 else [text])


def _retyped(value: Any, rng: random.Random) -> Any:
    return rng.choice((None, True, False, 0, -1, 2**70, 1.5, "", "x", [], {}, [value], {"k": value}, str(value)[:50]))


def _mutate(request: dict[str, Any], rng: random.Random, depth_budget: list[int]) -> None:
    slots = _slots(request)
    if not slots:
        return
    parent, slot = rng.choice(slots)
    value = parent[slot]
    op = rng.randrange(7)
    if op == 0:  # drop
        del parent[slot]
    elif op == 1:  # duplicate
        if isinstance(parent, list):
            parent.insert(rng.randrange(len(parent) + 1), copy.deepcopy(value))
        else:
            parent[rng.choice(_FIELDS)] = copy.deepcopy(value)
    elif op == 2:  # retype
        parent[slot] = _retyped(value, rng)
    elif op == 3 and isinstance(parent, dict):  # rename
        parent[rng.choice((*_FIELDS, "", slot.upper(), slot + "s", rng.choice(_ODD_TEXT)))] = parent.pop(slot)
    elif op == 4:  # deepen (at most 600 levels per case: copying deeper values would exhaust Python's stack)
        depth = min(rng.choice(_DEPTHS), depth_budget[0])
        depth_budget[0] -= depth
        for _ in range(depth):
            value = [value] if rng.random() < 0.5 else {"k": value}
        parent[slot] = value
    elif op == 5:  # enlarge (bounded: a few hundred KiB at most, so a million cases stay affordable)
        big = rng.random() < 0.1
        if isinstance(value, str):
            parent[slot] = (value or "x") * ((70_000 if big else 200) // max(1, len(value)) + 1)
        elif isinstance(value, list) and value:
            small = len(json.dumps(value[0], default=str)) < 300
            parent[slot] = value * (1100 if big and small else rng.choice((2, 5, 20)))
        else:
            parent[slot] = {f"k{n}": value for n in range(200 if big else 10)}
    elif isinstance(value, str):  # odd unicode
        at = rng.randrange(len(value) + 1)
        parent[slot] = value[:at] + rng.choice(_ODD_TEXT) + value[at:]


def make_case(rng: random.Random) -> Case:
    """One review: realistic, a fake key planted (most of the time), then 0-4 mutations, serialised."""
    body = _base(rng)
    key = ""
    if rng.random() < 0.8:
        key = fake_key(rng)
        _plant(body["request"], key, rng)
    depth_budget = [max(_DEPTHS)]
    for _ in range(rng.choice((0, 1, 1, 2, 3, 4))):
        request = body.get("request")
        _mutate(request if isinstance(request, dict) and rng.random() < 0.95 else body, rng, depth_budget)
    text = json.dumps(body, ensure_ascii=rng.random() < 0.5)
    return Case(text.encode("utf-8", "surrogatepass"), key)


def _leaks(key: str, text: str | bytes) -> bool:
    if not key:
        return False
    data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return any(key[i : i + FRAGMENT] in data for i in range(len(key) - FRAGMENT + 1))


def check_case(policy: Policy, case: Case) -> list[str]:
    """Which properties `case` breaks (names and code locations only, never a value); [] when it keeps all."""
    try:
        request = parse_review(case.body)
    except BadReview as error:
        return ["the 400 message carries the key"] if _leaks(case.key, str(error)) else []
    except Exception as error:  # the property under test
        return [f"parse_review raised {_where(error)}"]
    failures: list[str] = []
    for endpoint in ("mutate", "validate"):
        try:
            decision = decide(policy, request, mutate=endpoint == "mutate")
            response = orjson.dumps(respond(request["uid"], decision))
            line = orjson.dumps(audit_record(endpoint, request, decision, policy.version, 0.001))
        except Exception as error:  # the property under test
            failures.append(f"{endpoint}: decide/respond/audit raised {_where(error)}")
            continue
        labels = ",".join((decision.outcome, decision.profile or "", *decision.rule_ids))
        patch = base64.b64decode(orjson.loads(response)["response"].get("patch", ""))
        outputs = {"response": response, "patch": patch, "decision": repr(decision), "audit": line, "labels": labels}
        failures.extend(
            f"{endpoint}: the key reaches the {where}" for where, text in outputs.items() if _leaks(case.key, text)
        )
    return failures


def _where(error: BaseException) -> str:
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    location = f"{frame.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.tb_lineno}" if frame else "?"
    return f"{type(error).__name__} at {location}"
