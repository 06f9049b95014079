"""`--output json`: a stable, documented shape for scripts (schema: webhook/schemas/check-output.schema.json).

`{"findings": [{file, line, document, kind, name, path, rule, severity, message, fix}], "summary": {...}}`,
plus `skipped` and, with --show-patch, `patches`. Messages and fixes hold names and paths, never values.
"""

from __future__ import annotations

from typing import Any

import orjson

from webhook.check.scan import Report


def as_dict(report: Report) -> dict[str, Any]:
    result: dict[str, Any] = {
        "findings": [
            {
                "file": f.file,
                "line": f.line,
                "document": f.document,
                "kind": f.kind,
                "name": f.name,
                "path": f.path,
                "rule": f.rule.id,
                "severity": f.severity.value,
                "message": f.message,
                "fix": f.fix,
            }
            for f in report.findings
        ],
        "summary": report.summary(),
        "skipped": [{"file": s.file, "document": s.document, "reason": s.reason} for s in report.skipped],
    }
    if report.patches:
        result["patches"] = [
            {"file": p.file, "document": p.document, "kind": p.kind, "name": p.name, "diff": p.diff}
            for p in report.patches
        ]
    return result


def render(report: Report) -> str:
    return orjson.dumps(as_dict(report), option=orjson.OPT_INDENT_2).decode() + "\n"
