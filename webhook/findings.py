"""The vocabulary every part of keyguard speaks: rules, hits and findings.

Detection returns *hits* (a rule matched a value, nothing about where); the engine and the offline checker turn
hits into *findings* by adding the location (object path, container, field). Nothing in here ever holds a secret
value: messages are built from names, indices and rule titles only, so any of these objects may be logged,
serialised or shown to a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that matched one value. `detail` names what matched (a variable or flag name), never the value."""

    rule: Rule
    detail: str


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

    @property
    def severity(self) -> Severity:
        return self.rule.severity

    @property
    def fix(self) -> str:
        return self.rule.fix
