"""The suite-wide leak scan: every fake key a test generates is recorded, and at the end of the run none of them
may appear where keys must never go: keyguard's log, the control plane's logs, events, and any object's
annotations (kubectl's last-applied-configuration is the classic leak) or managedFields.

Object specs are not scanned: a test stores keys there on purpose (a Secret, a warned pod, the ConfigMap that
`check --cluster` must flag). The failure names the places, never the value."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.e2e.cluster import ControlPlane

# The generators of key-shaped values in tests/fake_credentials.py (its harmless look-alikes are not recorded).
GENERATORS = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "pem_private_key",
    "gcp_service_account_json",
    "gcs_hmac_access_id",
    "azure_account_key",
    "azure_connection_string",
    "azure_sas_token",
    "base64_of",
)


@contextmanager
def planted_values(fake: ModuleType) -> Iterator[set[str]]:
    """While active, every value the key generators of `fake` return is added to the yielded set."""
    planted: set[str] = set()

    def recording(generate: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(generate)
        def wrapper(*args: Any, **kwargs: Any) -> str:
            value = generate(*args, **kwargs)
            planted.add(value)
            return value

        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        for name in GENERATORS:
            patch.setattr(fake, name, recording(getattr(fake, name)))
        yield planted


def _metadata_views(listing: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for item in listing.get("items", []):
        metadata = item.get("metadata", {})
        where = f"{item.get('kind')} {metadata.get('namespace', '')}/{metadata.get('name')}"
        if item.get("kind") == "Event":
            yield f"{where} (event)", json.dumps(item)
            continue
        yield f"{where} annotations", json.dumps(metadata.get("annotations") or {})
        yield f"{where} managedFields", json.dumps(metadata.get("managedFields") or [])


def scan_for_leaks(plane: ControlPlane, logs: list[Path], planted: set[str]) -> list[str]:
    """Where a planted value appears (empty: nowhere). Every listable kind is read in one kubectl call."""
    if not planted:
        return []
    kinds = plane.kubectl("api-resources", "--verbs=list", "-o", "name").stdout.split()
    listing = json.loads(plane.kubectl("get", ",".join(kinds), "--all-namespaces", "-o", "json").stdout)
    views = list(_metadata_views(listing))
    for log in logs:
        if log.exists():
            views.append((f"log {log.name}", log.read_text(errors="replace")))
    return sorted({where for where, text in views if any(value in text for value in planted)})
