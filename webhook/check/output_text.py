"""The default output: findings grouped by file, in line order, each with its rule, message and fix.

Built for a terminal or a CI log; a human reads it top to bottom and knows which line to change and how.
"""

from __future__ import annotations

from itertools import groupby

from webhook.check.scan import Report


def render(report: Report, *, verbose: bool = False) -> str:
    lines: list[str] = []
    for file, group in groupby(report.findings, key=lambda f: f.file):
        lines.append(file)
        for finding in sorted(group, key=lambda f: (f.document, f.line or 0)):
            where = f"line {finding.line}" if finding.line is not None else f"document {finding.document}"
            what = f"{finding.kind} {finding.name}" if finding.name else finding.kind
            place = f"{finding.path} " if finding.path else ""  # a finding about the whole file has no path
            lines.append(f"  {where}: {finding.severity.value} [{finding.rule.id}] {place}({what})")
            lines.append(f"    {finding.message}")
            lines.append(f"    fix: {finding.fix}")
        lines.append("")
    for patch in report.patches:
        what = f"{patch.kind} {patch.name}" if patch.name else patch.kind
        lines.append(f"{patch.file} (document {patch.document}, {what}): the webhook would inject")
        lines.append(patch.diff.rstrip("\n"))
        lines.append("")
    if verbose:
        for skipped in report.skipped:
            where = f"{skipped.file} (document {skipped.document})" if skipped.document else skipped.file
            lines.append(f"skipped {where}: {skipped.reason}")
    s = report.summary()
    lines.append(
        f"{s['findings']} finding(s): {s['errors']} error(s), {s['warnings']} warning(s) in {s['files']} file(s), "
        f"{s['checked']} object(s) checked, {s['skipped']} skipped"
    )
    return "\n".join(lines) + "\n"
