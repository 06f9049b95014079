"""Shared helpers for the `keyguard check` tests (no tests here): run the CLI in-process, write fixtures.

Fixture files are generated into tmp_path at run time with fake keys from tests/fake_credentials.py; no
committed file holds anything that looks like a key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.leaks import assert_not_leaked
from webhook.cli import main

OUTPUTS = ("text", "json", "sarif")


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_yaml(path: Path, *documents: Any) -> Path:
    path.write_text(yaml.safe_dump_all(list(documents), sort_keys=False))
    return path


def check_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run_check(capsys, "--output", "json", *args)
    result: dict[str, Any] = orjson.loads(out)
    return code, result


def assert_no_secret_in_any_output(capsys: pytest.CaptureFixture[str], secrets: list[str], *args: str) -> None:
    """Every output format, and stderr, with --show-patch and --verbose: no secret, no prefix of one."""
    for output in OUTPUTS:
        _, out, err = run_check(capsys, "--output", output, "--show-patch", "--verbose", *args)
        for secret in secrets:
            for text, where in ((out, f"{output} output"), (err, f"{output} stderr")):
                assert_not_leaked(secret, text, where)
                if len(secret) >= 16:
                    assert_not_leaked(secret[:12], text, f"{where} (a prefix)")
