"""The generic scan: a key anywhere in a file that is not a pod is a finding, whether or not keyguard knows the file.

It runs over Flyte configuration and chart values (after the specific scanners, which know Flyte's and MinIO's
storage settings and give the sharpest fix), and alone over YAML keyguard does not recognise: other charts' values,
other kinds, ConfigMaps without Flyte configuration. So recall does not hang on recognising every chart. It uses
the engine's own detection: a credential-named setting (`clientSecret`, `AWS_SECRET_ACCESS_KEY`, `secret_key`)
with a literal value, and any value shaped like a key (AWS key ids, PEM keys, Azure connection strings, ...)
under any name. Paths a specific scanner already reported are left to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from webhook.check.model import Located, Path, render_path
from webhook.check.rules import CONFIG_CREDENTIAL_LITERAL
from webhook.check.templates import is_literal
from webhook.detection import ENV_CREDENTIAL_LITERAL, is_credential_name, scan_value

_MIN_VALUE_LENGTH = 20


def _items(node: Any) -> Iterator[tuple[str | int, Any]]:
    if isinstance(node, dict):
        yield from ((str(k), v) for k, v in node.items())
    elif isinstance(node, list):
        yield from enumerate(node)


def _env_pair(node: Any, path: Path) -> Located | None:
    """A `{name: …, value: …}` entry, the shape of env lists everywhere (a chart's `extraEnvVars`, a
    SparkApplication's `env`, a kustomize JSON patch's `value`): judged by its name, like a pod's env var."""
    if not isinstance(node, dict):
        return None
    name, value = node.get("name"), node.get("value")
    if not (isinstance(name, str) and is_credential_name(name) and is_literal(value)):
        return None
    where = render_path(path)
    message = f"`{where}` sets {name} to a literal value [{ENV_CREDENTIAL_LITERAL.id}]"
    fix = f"set `{name}` with valueFrom.secretKeyRef (or the chart's Secret setting) instead of a literal `value`"
    return Located(path, ENV_CREDENTIAL_LITERAL, message, fix)


def scan_tree(data: Any, prefix: Path = (), reported: frozenset[Path] = frozenset()) -> list[Located]:
    """Every credential-named literal, env-style name/value pair and key-shaped string below `data` (iterative:
    no depth limit)."""
    found: list[Located] = []
    stack: list[tuple[Path, Any]] = [(prefix, data)]
    while stack:
        path, node = stack.pop()
        pair = _env_pair(node, path) if path not in reported else None
        if pair is not None:
            found.append(pair)
        for key, value in _items(node):
            here = (*path, key)
            if not isinstance(value, str):
                stack.append((here, value))
                continue
            if here in reported or (pair is not None and key == "value"):
                continue
            where = render_path(here)
            if isinstance(key, str) and is_credential_name(key) and is_literal(value):
                message = f"`{where}` holds a literal credential [{CONFIG_CREDENTIAL_LITERAL.id}]"
                fix = f"remove `{key}` from the file; keep the value in a Kubernetes Secret and reference the Secret"
                found.append(Located(here, CONFIG_CREDENTIAL_LITERAL, message, fix))
            elif len(value) >= _MIN_VALUE_LENGTH:
                for hit in scan_value(value):
                    message = f"`{where}`: {hit.detail} [{hit.rule.id}]"
                    fix = f"remove the value at `{where}`; keep it in a Kubernetes Secret and reference the Secret"
                    found.append(Located(here, hit.rule, message, fix))
    found.sort(key=lambda item: render_path(item.path))
    return found
