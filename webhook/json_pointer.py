"""RFC 6901 JSON Pointers and RFC 6902 operations, built by hand.

Hand-built operations are cheaper than diffing a copied pod and say exactly what keyguard changes.
"""

from __future__ import annotations

from typing import Any

from webhook.admission_types import PatchOperation


def escape(token: str) -> str:
    """Escape one reference token: `~` becomes `~0`, `/` becomes `~1` (in that order)."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer(*tokens: str | int) -> str:
    return "".join("/" + (str(t) if isinstance(t, int) else escape(t)) for t in tokens)


def add(path: str, value: Any) -> PatchOperation:
    return {"op": "add", "path": path, "value": value}


def replace(path: str, value: Any) -> PatchOperation:
    return {"op": "replace", "path": path, "value": value}


def remove(path: str) -> PatchOperation:
    return {"op": "remove", "path": path}
