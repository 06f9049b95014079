"""The image, checked where no container engine runs: the Dockerfile's promises (pinned base, multi-stage, no
build tools in the final stage, numeric non-root user, read-only-root friendly, `keyguard` entrypoint) and its
agreement with the Deployment that runs it."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (instruction, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    result: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            result.append([])
        if result:
            result[-1].append((instruction.upper(), arguments.strip()))
    return result


def base_image() -> str:
    text = (REPO / "Dockerfile").read_text()
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert match
    return match.group(1)


def test_base_image_is_an_exact_slim_python_release() -> None:
    image = base_image()
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), image


def test_two_stages_and_the_final_one_only_copies_the_virtualenv() -> None:
    build, final = stages()
    assert build[0] == ("FROM", "${PYTHON_IMAGE} AS build")
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")
    instructions = [instruction for instruction, _ in final]
    assert "RUN" not in instructions, "the final stage must not run installers (no build tools, no caches)"
    copies = [arguments for instruction, arguments in final if instruction == "COPY"]
    assert copies == ["--from=build /opt/keyguard /opt/keyguard"]


def test_runs_as_a_numeric_non_root_user_with_keyguard_as_entrypoint() -> None:
    final = dict(stages()[-1])
    user, _, group = final["USER"].partition(":")
    assert user.isdigit() and int(user) != 0 and group.isdigit()
    assert json.loads(final["ENTRYPOINT"]) == ["keyguard"]
    assert "PYTHONDONTWRITEBYTECODE=1" in final["ENV"], "a read-only root filesystem must not be written to"


def test_image_runs_the_user_the_manifests_expect() -> None:
    final = dict(stages()[-1])
    deployment = yaml.safe_load((REPO / "manifests" / "base" / "deployment.yaml").read_text())
    security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert final["USER"] == f"{security['runAsUser']}:{security['runAsGroup']}"
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == json.loads(final["CMD"])[0] == "serve"


@pytest.mark.parametrize("path", [".venv", "certs/dev", "tests", ".git"])
def test_the_build_context_leaves_out_local_state_and_dev_keys(path: str) -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert path in ignored


def test_the_build_stage_copies_only_what_the_package_needs() -> None:
    build = stages()[0]
    sources = [shlex.split(arguments)[:-1] for instruction, arguments in build if instruction == "COPY"]
    assert sources == [["pyproject.toml", "README.md"], ["webhook"]]
