"""`--output sarif`: SARIF 2.1.0, so GitHub code scanning and similar tools show findings inline.

Each result points at the file and line, and names the path inside the document as a logical location. No
snippet, no region text and no context lines: a SARIF viewer would otherwise copy the source line, key and all.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from webhook import __version__
from webhook.check.rules import CHECK_RULES
from webhook.check.scan import Report
from webhook.engine import all_rules
from webhook.findings import Rule, Severity

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/flyte-keyguard/keyguard"
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning"}


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.title},
        "help": {"text": rule.fix},
        "defaultConfiguration": {"level": _LEVELS[rule.severity]},
    }


def _uri(file: str) -> str:
    return "stdin" if file == "<stdin>" else quote(file.replace("\\", "/"))


def as_dict(report: Report) -> dict[str, Any]:
    rules = [*all_rules(), *CHECK_RULES]
    index = {rule.id: position for position, rule in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for finding in report.findings:
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(finding.file)}}
        if finding.line is not None:
            physical["region"] = {"startLine": finding.line}
        results.append(
            {
                "ruleId": finding.rule.id,
                "ruleIndex": index[finding.rule.id],
                "level": _LEVELS[finding.severity],
                "message": {"text": f"{finding.message}. Fix: {finding.fix}"},
                "locations": [
                    {
                        "physicalLocation": physical,
                        "logicalLocations": [{"fullyQualifiedName": finding.path, "kind": "member"}],
                    }
                ],
                "properties": {"document": finding.document, "kind": finding.kind},
            }
        )
    driver = {"name": "keyguard", "version": __version__, "informationUri": INFORMATION_URI}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {**driver, "rules": [_rule(r) for r in rules]}}, "results": results}],
    }


def render(report: Report) -> str:
    return orjson.dumps(as_dict(report), option=orjson.OPT_INDENT_2).decode() + "\n"
