"""What `keyguard check` produces: located findings, injection previews and skipped documents.

Scanners report a finding at a *path* (parts: keys and list indices) inside a document; the pipeline then adds
the file, the document number and the line. Like the engine's findings, nothing here ever holds a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from webhook.findings import Rule, Severity
from webhook.policy import Policy

PathPart = str | int
Path = tuple[PathPart, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_/-]+")
_ENGINE_PATH = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def render_path(parts: Sequence[PathPart]) -> str:
    """`("spec", "containers", 0, "env", 2)` -> `spec.containers[0].env[2]`; odd keys as `data["config.yaml"]`."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            quoted = part.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{quoted}"]')
    return "".join(out)


def parse_engine_path(path: str) -> Path:
    """The engine's `spec.containers[0].env[2]` as parts."""
    return tuple(key if key else int(index) for key, index in _ENGINE_PATH.findall(path))


@dataclass(frozen=True, slots=True)
class Located:
    """A scanner's finding: a rule at a path inside one document, with a message and a concrete fix. `line` is
    set only by a reading that has no tree to map paths on (a template read line by line)."""

    path: Path
    rule: Rule
    message: str
    fix: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class CheckFinding:
    """A finding placed in a file: `document` is 1-based, `line` is None for sources without text (a cluster)."""

    file: str
    line: int | None
    document: int
    kind: str
    name: str | None
    path: str
    rule: Rule
    message: str
    fix: str

    @property
    def severity(self) -> Severity:
        return self.rule.severity


@dataclass(frozen=True, slots=True)
class PatchPreview:
    """What the webhook would inject into one Flyte pod, as a unified diff with every env value redacted."""

    file: str
    document: int
    kind: str
    name: str | None
    diff: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file or document that is not checked, and why (listed with --verbose)."""

    file: str
    document: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """How to judge: the policy, a forced profile (None: match as the webhook does), whether to preview the
    injection, and the storage Secret name that fixes should point at."""

    policy: Policy
    profile: str | None = None
    show_patch: bool = False
    # Objects read from a live cluster: a stored Pod is judged as the validating webhook judges it, so a Flyte
    # task pod created without the injection (webhook down, or older than keyguard) is a finding.
    stored: bool = False
    # Namespace labels by namespace name, where the source knows them (a live cluster): profiles matching on
    # namespaceLabels can then be chosen.
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def secret_name(self) -> str:
        chosen = self.policy.profile(self.profile) if self.profile else None
        profiles = [chosen] if chosen is not None else list(self.policy.profiles)
        return profiles[0].credentials.secret_name if profiles else "flyte-storage-creds"
