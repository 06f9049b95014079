"""Shared fixtures: the default policy and helpers that apply keyguard's patches the way the API server does."""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import Iterator
from typing import Any

import jsonpatch
import orjson
import pytest

from tests.fresh_machine import fresh_path
from webhook.check import rapid_yaml
from webhook.policy import Policy, default_policy


@pytest.fixture(scope="session", autouse=True)
def fresh_machine_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every unit test sees only what a fresh machine has (tests/fresh_machine.py). tests/e2e overrides this: the
    real-cluster tiers run what the project's own build scripts installed."""
    original = os.environ["PATH"]
    os.environ["PATH"] = fresh_path(tmp_path_factory.mktemp("fresh-machine-bin"), original)
    try:
        yield
    finally:
        os.environ["PATH"] = original


@pytest.fixture(scope="session")
def policy() -> Policy:
    return default_policy()


def apply_patch(obj: dict[str, Any], operations: Any) -> dict[str, Any]:
    """Apply RFC 6902 operations (a list, or a response's base64 `patch`) to a copy of `obj`."""
    if isinstance(operations, str):
        operations = orjson.loads(base64.b64decode(operations))
    # values are copied too: keyguard shares its injected structures between reviews
    return jsonpatch.apply_patch(copy.deepcopy(obj), copy.deepcopy(list(operations)))  # type: ignore[no-any-return]


@pytest.fixture(params=["rapidyaml", "libyaml"])
def yaml_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """`keyguard check` reads YAML with rapidyaml when it is installed and with libyaml otherwise (or when
    rapidyaml leaves a document to it): the check tests run on both."""
    if request.param == "libyaml":
        monkeypatch.setattr(rapid_yaml, "available", lambda: False)
    return str(request.param)
