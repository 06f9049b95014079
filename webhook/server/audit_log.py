"""One JSON line per decision on stdout, the way Kubernetes log collectors expect it.

Only identifiers and verdicts are written: uid, namespace, pod name, operation, profile, decision, rule ids,
dry-run and latency. Findings' messages are not logged (they are names only, but the rule ids say enough), and
values never reach this module. A single `os.write` per line keeps lines whole and avoids logging machinery on
the hot path.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any

import orjson

from webhook.admission_types import AdmissionRequest
from webhook.engine import Decision
from webhook.findings import shown_name


def _shown(name: str | None) -> str | None:
    return shown_name(name) if name else name


def audit_record(
    endpoint: str, request: AdmissionRequest, decision: Decision, policy_version: str, elapsed: float
) -> dict[str, Any]:
    """The audit line of one decision: identifiers and the verdict (every field typed by `parse_review`; names
    bounded and shaped as in messages, so a key pasted into a name is not copied into the log)."""
    obj = request.get("object")
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    name = request.get("name") or (
        (metadata.get("name") or metadata.get("generateName")) if isinstance(metadata, dict) else None
    )
    return {
        "event": "admission",
        "endpoint": endpoint,
        "uid": request["uid"],
        "namespace": _shown(request.get("namespace")),
        "name": _shown(name),
        "operation": request.get("operation"),
        "subResource": _shown(request.get("subResource")),
        "profile": decision.profile,
        "mode": decision.mode,
        "decision": decision.outcome,
        "allowed": decision.allowed,
        "rules": decision.rule_ids,
        "patchOps": len(decision.patch),
        "dryRun": bool(request.get("dryRun", False)),
        "policyVersion": policy_version,
        "latencyMs": round(elapsed * 1000, 3),
    }


class AuditLog:
    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdout.fileno() if fd is None else fd

    def write(self, record: dict[str, Any]) -> None:
        """Write one line; never raises. `parse_review` lets only typed fields through, so a record orjson cannot
        write (nested past its depth limit, a non-string key) is a keyguard bug: it is replaced by a line that
        says so, without any of the record's values, instead of failing after the response was sent."""
        record["ts"] = time.time()
        try:
            line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError as error:
            unwritable = {"event": "audit-record-unwritable", "ts": record["ts"], "error": type(error).__name__}
            line = orjson.dumps(unwritable, option=orjson.OPT_APPEND_NEWLINE)
        with contextlib.suppress(OSError):  # a closed stdout must never fail an admission
            os.write(self._fd, line)

    def event(self, event: str, **fields: Any) -> None:
        """A non-decision event (policy reload, certificate reload, start, stop)."""
        self.write({"event": event, **fields})
