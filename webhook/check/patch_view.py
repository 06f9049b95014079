"""`--show-patch`: the webhook's injection for one Flyte pod, shown as a unified diff of the pod's YAML.

The injection itself carries no value (a Secret name, paths, an init container), but the pod's own env might,
so every env `value` and every `command`/`args` item of the pod as written is replaced by `<redacted>` first; the
operations are then applied to that redacted copy (with `jsonpatch`, the RFC 6902 implementation the tests use),
so what the injection adds shows in full and nothing the pod carried can appear on either side.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from typing import Any

import jsonpatch
import yaml

from webhook.admission_types import CONTAINER_KINDS, PatchOperation

REDACTED = "<redacted>"

try:
    _Dumper: type[yaml.SafeDumper] = yaml.CSafeDumper  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Dumper = yaml.SafeDumper


def redact(pod: Any) -> Any:
    """A copy of `pod` with every env value and command/args item replaced by `<redacted>`."""
    result = copy.deepcopy(pod)
    spec = result.get("spec") if isinstance(result, dict) else None
    if not isinstance(spec, dict):
        return result
    for kind in CONTAINER_KINDS:
        containers = spec.get(kind)
        for container in containers if isinstance(containers, list) else []:
            if not isinstance(container, dict):
                continue
            for variable in container.get("env") or []:
                if isinstance(variable, dict) and "value" in variable:
                    variable["value"] = REDACTED
            for field in ("command", "args"):
                if isinstance(container.get(field), list):
                    container[field] = [REDACTED for _ in container[field]]
    return result


def _dump(pod: Any) -> list[str]:
    text: str = yaml.dump(pod, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return text.splitlines(keepends=True)


def injection_diff(pod: Any, operations: Sequence[PatchOperation], label: str) -> str:
    """The unified diff between the pod as written and the pod after the webhook's patch, values redacted."""
    before = redact(pod)
    after = jsonpatch.apply_patch(before, list(operations))  # a new object; `before` is left as it is
    lines = difflib.unified_diff(_dump(before), _dump(after), f"{label} (as written)", f"{label} (after keyguard)")
    return "".join(lines)
