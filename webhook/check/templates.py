"""Reading configuration that is a template: placeholders made inert, and a line-by-line reading as the last resort.

Flyte admins keep much of their configuration as templates: Helm chart templates (`{{ .Values.x }}`), flyteadmin's
cluster-resource templates (`{{ namespace }}`, which `helm template` cannot render), Terraform `templatefile`
inputs and envsubst files (`${var}`). The storage keys in them are often plain literals beside the placeholders,
so skipping a template would hide exactly what `keyguard check` is for. Such a file is read the way a careful
reviewer would read it:

1. `neutralise`: each run of placeholders becomes one inert token, `$(KEYGUARD_TEMPLATE)`, a reference that every
   rule already leaves alone (the engine included), and a line holding nothing but template actions
   (`{{- if … }}`, `{{ end }}`, `{{ include … | nindent 4 }}`) becomes blank. Line numbers do not move.
2. When the result still is not YAML, `read_lines` scans it line by line for credential settings and key
   shapes, and the file gets a `template-read-degraded` warning saying so: a file that may hold a key is never
   skipped without a word.

A value that is nothing but placeholders (`is_placeholder`) is decided at deploy time: it is not a literal key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from webhook.check.model import Located
from webhook.check.rules import CONFIG_CREDENTIAL_LITERAL, TEMPLATE_READ_DEGRADED
from webhook.detection import is_credential_name, is_reference, scan_value

TOKEN = "$(KEYGUARD_TEMPLATE)"
# `{{ … }}` (Helm, Go, Flyte cluster resources; may span lines) and `${…}` (Terraform, envsubst); adjacent
# placeholders form one run, so `{{ a }}{{ b }}` is one token.
_PLACEHOLDERS = re.compile(r"(?:\{\{.*?\}\}|\$\{[^{}\n]*\})+", re.DOTALL)
_ACTION_LINE = re.compile(r"^[ \t]*(?:\{\{.*?\}\}[ \t]*)+$", re.MULTILINE)


def _contains(text: str, pair: str) -> bool:
    """`pair in text`, found through its first character: CPython finds one character at memchr speed but scans
    for two at about a nanosecond a character (30-50 µs on a 40 KiB manifest, for every file `check` reads)."""
    first = pair[0]
    at = text.find(first)
    for _ in range(64):
        if at < 0:
            return False
        if text.startswith(pair, at):
            return True
        at = text.find(first, at + 1)
    return pair in text  # many of the first character: one scan is cheaper


def has_placeholders(text: str) -> bool:
    return (_contains(text, "{{") or _contains(text, "${")) and _PLACEHOLDERS.search(text) is not None


def _token(match: re.Match[str]) -> str:
    return TOKEN + "\n" * match.group().count("\n")


def neutralise(text: str) -> str:
    """`text` with template actions blanked and placeholders replaced by `TOKEN`, on the same lines."""
    return _PLACEHOLDERS.sub(_token, _ACTION_LINE.sub("", text))


def is_placeholder(value: str) -> bool:
    """A value that is nothing but template placeholders (or the token that replaced them)."""
    text = value.strip()
    return text == TOKEN or _PLACEHOLDERS.fullmatch(text) is not None


def is_literal(value: object) -> bool:
    """A value someone wrote into the file: not empty, not a `$VAR`/`$(VAR)`/`${VAR}` reference, not a template
    placeholder, not a `<your-key>` documentation placeholder, and not the *name* of a credential (a value like
    `AWS_SECRET_ACCESS_KEY` says where a key lives, not what it is)."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    if not text or is_reference(text) or is_placeholder(text):
        return False
    if text.startswith("<") and text.endswith(">"):
        return False
    return not is_credential_name(text)


@dataclass(frozen=True, slots=True)
class UnparsedTemplate:
    """A template file that is not YAML even with its placeholders made inert: its text (neutralised), the
    1-based line the parser stopped at and the parser's reason (never the offending text)."""

    text: str
    line: int
    problem: str


_SETTING = re.compile(
    r"""^[ \t]*(?:-[ \t]+)?(?P<q>["']?)(?P<key>[^\s"'#:{}\[\],=]+)(?P=q)[ \t]*(?::(?=[ \t]|$)|=)[ \t]*(?P<value>.*)$"""
)
_BLOCK_OR_NODE = re.compile(r"^(?:[|>][-+0-9]*|[&*!{\[].*)$")


def _value(raw: str) -> str:
    """The scalar a setting line holds: quotes removed, a trailing comment dropped from a plain value."""
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text.split(" #", 1)[0].strip()


def read_lines(template: UnparsedTemplate) -> list[Located]:
    """The degraded reading: a warning that names the line the parser stopped at, then every `name: literal`
    setting (and env `name:`/`value:` pair) whose name says it is a credential, and every key-shaped value."""
    found = [
        Located(
            (),
            TEMPLATE_READ_DEGRADED,
            f"not YAML even with its template placeholders made inert (line {template.line}: {template.problem}); "
            f"read line by line, so a key this reading cannot see may be missed [{TEMPLATE_READ_DEGRADED.id}]",
            "render the template and check the result (e.g. `helm template <chart> | keyguard check -`), or fix "
            f"the template at line {template.line}",
            line=template.line,
        )
    ]
    env_name: str | None = None
    for number, line in enumerate(template.text.splitlines(), start=1):
        match = _SETTING.match(line)
        if match is None:
            if len(line.strip()) >= 20:
                found.extend(_shapes(line.strip(), None, number))
            continue
        key, value = match.group("key"), _value(match.group("value"))
        name = env_name if key == "value" and env_name is not None else key
        env_name = value if key == "name" else None
        if _BLOCK_OR_NODE.match(value):
            if value[:1] in "[{":  # a flow collection on one line: its items are judged by shape only
                found.extend(_shapes(value, key, number))
            continue
        if is_credential_name(name) and is_literal(value):
            message = f"`{name}` holds a literal credential (read line by line) [{CONFIG_CREDENTIAL_LITERAL.id}]"
            fix = f"remove the value of `{name}` from the file; keep it in a Kubernetes Secret and reference the Secret"
            found.append(Located((name,), CONFIG_CREDENTIAL_LITERAL, message, fix, line=number))
        else:
            found.extend(_shapes(value, key, number))
    return found


def _shapes(text: str, key: str | None, number: int) -> list[Located]:
    """Key-shaped values in one line's text, under `key` (None: a line that is not a setting). A key that is
    itself key-shaped is never named: the finding then says only the line."""
    if key is not None and scan_value(key):
        key = None
    where = f"`{key}`: " if key else ""
    return [
        Located(
            (key,) if key else (),
            hit.rule,
            f"{where}{hit.detail} (read line by line) [{hit.rule.id}]",
            f"remove the value at line {number}; keep it in a Kubernetes Secret and reference the Secret",
            line=number,
        )
        for hit in scan_value(text)
    ]
