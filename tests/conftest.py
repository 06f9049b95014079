"""Shared fixtures: the default policy and helpers that apply keyguard's patches the way the API server does."""

from __future__ import annotations

import base64
import copy
from typing import Any

import jsonpatch
import orjson
import pytest

from webhook.policy import Policy, default_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    return default_policy()


def apply_patch(obj: dict[str, Any], operations: Any) -> dict[str, Any]:
    """Apply RFC 6902 operations (a list, or a response's base64 `patch`) to a copy of `obj`."""
    if isinstance(operations, str):
        operations = orjson.loads(base64.b64decode(operations))
    # values are copied too: keyguard shares its injected structures between reviews
    return jsonpatch.apply_patch(copy.deepcopy(obj), copy.deepcopy(list(operations)))  # type: ignore[no-any-return]
