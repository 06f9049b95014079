"""The layers hold by themselves: the CLI starts without the web stack, cryptography or the Kubernetes client, and
import-linter's contracts (pyproject.toml, run by `make test`) fail when a forbidden import is added."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("cryptography", "fastapi", "starlette", "uvicorn", "kubernetes", "prometheus_client", "httpx")


def loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    return set(done.stdout.split())


@pytest.mark.parametrize(
    "code",
    [
        "from webhook.cli import build_parser; build_parser()",  # every --help, and the start of every command
        "from webhook.commands import render_credentials",  # the injected init container
    ],
)
def test_start_up_loads_no_heavy_stack(code: str) -> None:
    assert loaded_after(code) & set(HEAVY) == set()


def test_a_forbidden_import_breaks_the_contract(tmp_path: Path) -> None:
    """Copy the package, make the engine import the server, and lint-imports must fail naming the contract."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "webhook", copy / "webhook")
    shutil.copy(REPO / "pyproject.toml", copy)
    engine = copy / "webhook" / "engine.py"
    engine.write_text(engine.read_text() + "\nimport webhook.server.app  # noqa\n")
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint)], capture_output=True, text=True, check=False, cwd=copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "The engine is pure BROKEN" in done.stdout
    assert "webhook.engine -> webhook.server.app" in done.stdout
