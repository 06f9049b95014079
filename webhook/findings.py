"""The vocabulary every part of keyguard speaks: rules, hits and findings.

Detection returns *hits* (a rule matched a value, nothing about where); the engine and the offline checker turn
hits into *findings* by adding the location (object path, container, field). Nothing in here ever holds a secret
value: messages are built from names, indices and rule titles only, so any of these objects may be logged,
serialised or shown to a user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

MAX_NAME_LENGTH = 128
"""Longer than any real setting name (the longest, Spark's per-bucket S3A keys, stay under 100 characters with
a 63-character bucket name). A longer name is still judged, but never cached and never shown whole."""
_SHOWN_HEAD = 16
# A run of key alphabet with a capital and a digit, or 16 long with a capital and not camelCase words: the shape of
# every access key id, secret key and account key, and of no Kubernetes or Flyte name (lowercase, short words in
# capitals, or camelCase words like `serviceAccountName`).
# A character no setting name holds (a quote, a space, a control or non-ASCII character) does not end a run: a key
# split by one is still judged, and hidden, as one.
_RUN = re.compile(r"[A-Za-z0-9+/=](?:[^A-Za-z0-9+/=_.:-]*[A-Za-z0-9+/=])*")
_GLUE = re.compile(r"[^A-Za-z0-9+/=]")
_CAMEL_WORDS = re.compile(r"(?:[A-Z]?[a-z]+)+")


def _key_like(run: str) -> bool:
    if len(run) < 8 or not any(c.isupper() for c in run):
        return False
    if any(c.isdigit() for c in run):
        return True
    return len(run) >= 16 and not _CAMEL_WORDS.fullmatch(run)


def shown_name(name: object) -> str:
    """A name from the request (env var, container, service account) as messages show it: whole when it has a
    real length and no key-shaped run, else its first characters before any such run, plus its length.

    Not a string only where no `parse_review` ran before (`keyguard check` on a manifest): shown by its type."""
    if not isinstance(name, str):
        return f"(a {type(name).__name__})"
    return cached_shown_names(name) if len(name) <= MAX_NAME_LENGTH else _shown(name)


def _shown(name: str) -> str:
    """With a key-shaped run in it, the name is cut before its first run of 8 or more key characters, key-shaped
    or not: a key split by a separator (`AKIAQWERTY--UI2345OPAS`) may have a plain-looking first part."""
    runs = [(run.start(), _GLUE.sub("", run.group())) for run in _RUN.finditer(name)]
    if any(_key_like(text) for _, text in runs):
        cut = next(start for start, text in runs if len(text) >= 8)
    elif len(name) <= MAX_NAME_LENGTH:
        return name
    else:
        cut = len(name)
    return f"{name[: min(_SHOWN_HEAD, cut)]}… (a {len(name)}-character name)"


# Every admitted pod shows its container, namespace and pod names, and pods repeat the same few hundred: the
# regex scan runs once per name. Only names of real length are kept (8,192 x 128 characters at most, ~3 MiB).
cached_shown_names = lru_cache(maxsize=8192)(_shown)


class Severity(StrEnum):
    """How bad a finding is; `error` findings deny in enforce mode, `warning` findings never deny."""

    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return 1 if self is Severity.WARNING else 2


@dataclass(frozen=True, slots=True)
class Rule:
    """A detection or policy rule: a stable id, a severity, what it means and the generic fix."""

    id: str
    severity: Severity
    title: str
    fix: str

    # Pickled through the constructor (keyguard check's worker processes send findings back): the mypyc-compiled
    # class cannot be unpickled by assigning to its frozen fields (webhook/native.py).
    def __reduce__(self) -> tuple[type[Rule], tuple[str, Severity, str, str]]:
        return (Rule, (self.id, self.severity, self.title, self.fix))


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that matched one value. `detail` names what matched (a variable or flag name), never the value."""

    rule: Rule
    detail: str

    def __reduce__(self) -> tuple[type[Hit], tuple[Rule, str]]:
        return (Hit, (self.rule, self.detail))


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that matched at a place in an object.

    `path` is the location inside the object in dotted/indexed form, e.g. `spec.containers[0].env[2]`.
    `container` is the container name when the place is inside a container, and `field` the human form of the
    place inside it (`env FLYTE_AWS_SECRET_ACCESS_KEY`, `args[3]`).
    """

    rule: Rule
    path: str
    message: str
    container: str | None = None
    field: str | None = None

    def __reduce__(self) -> tuple[type[Finding], tuple[Rule, str, str, str | None, str | None]]:
        return (Finding, (self.rule, self.path, self.message, self.container, self.field))

    @property
    def severity(self) -> Severity:
        return self.rule.severity

    @property
    def fix(self) -> str:
        return self.rule.fix
