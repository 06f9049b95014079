"""The unit tier runs with only what a fresh machine has (tests/fresh_machine.py, applied by tests/conftest.py).

Issue 10: a smoke test called `wrk`, which only `make bench` installs, and CI stayed green because the machine that
ran it had wrk. These tests fail if the reduced PATH is ever dropped on a machine where such tools exist.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.fresh_machine import ALLOWED, PREREQUISITES

# Tools a person or another target may have installed on a development machine; none is a prerequisite.
NOT_ON_A_FRESH_MACHINE = ("wrk", "h2load", "kubectl", "helm", "curl", "openssl", "docker", "containerd", "buildah")


def test_path_holds_only_the_venv_and_the_allowed_tools() -> None:
    venv_bin, *others = os.environ["PATH"].split(os.pathsep)
    assert venv_bin == str(Path(sys.executable).parent)
    assert len(others) == 1
    assert {entry.name for entry in Path(others[0]).iterdir()} <= set(ALLOWED)


@pytest.mark.parametrize("tool", NOT_ON_A_FRESH_MACHINE)
def test_tools_installed_by_hand_are_invisible(tool: str) -> None:
    assert shutil.which(tool) is None


@pytest.mark.parametrize("tool", PREREQUISITES)
def test_the_readme_prerequisites_are_there(tool: str) -> None:
    assert shutil.which(tool) is not None
