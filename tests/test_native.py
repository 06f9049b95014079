"""The compiled engine (webhook/native.py): used only when built from exactly these sources, and really used.

`make unit` runs the suite with KEYGUARD_ENGINE=python (under coverage), `make unit-compiled` again with
KEYGUARD_ENGINE=compiled; each run checks here that it exercised the engine it names.
"""

from __future__ import annotations

import ast
import importlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from webhook import native_build
from webhook.findings import Finding, Hit, Rule, Severity
from webhook.native import COMPILED_MODULES, STAMP, STAMPED_IMPORTS, choose, native_dir, package_path, sources_digest

MODE = os.environ.get("KEYGUARD_ENGINE", "auto")
ROOT = Path(__file__).resolve().parent.parent


def _module_file(module: str) -> str:
    loaded = importlib.import_module("webhook." + module.replace("/", "."))
    return str(loaded.__file__)


@pytest.mark.skipif(MODE == "auto", reason="the Makefile's runs name their engine (KEYGUARD_ENGINE)")
@pytest.mark.parametrize("module", COMPILED_MODULES)
def test_the_run_uses_the_engine_it_names(module: str) -> None:
    path = _module_file(module)
    if MODE == "compiled":
        assert path.startswith(str(native_dir())), path
        assert path.endswith(".so"), path
    else:
        assert path.endswith(".py"), path


def _stamped(directory: Path, digest: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / STAMP).write_text(digest + "\n")
    return directory


@pytest.mark.parametrize(
    ("stamp", "mode", "compiled", "reason"),
    [
        ("fresh", "auto", True, ""),
        ("fresh", "compiled", True, ""),
        ("fresh", "python", False, "KEYGUARD_ENGINE=python"),
        ("stale", "auto", False, "is stale"),
        (None, "auto", False, "not built"),
    ],
)
def test_choice_of_engine(tmp_path: Path, stamp: str | None, mode: str, compiled: bool, reason: str) -> None:
    build = tmp_path / "native"
    if stamp is not None:
        _stamped(build, sources_digest() if stamp == "fresh" else "0" * 64)
    choice = choose(build, mode)
    assert choice.compiled is compiled
    assert reason in choice.reason
    expected = [str(build / "webhook" / "server"), "src"] if compiled else ["src"]
    assert package_path("webhook.server", ["src"], choice) == expected


def _edited_copy(directory: Path, module: str) -> Path:
    """A copy of the package in `directory` with `module` edited after the venv's build was made."""
    package = directory / "webhook"
    shutil.copytree(ROOT / "webhook", package, ignore=shutil.ignore_patterns("__pycache__"))
    with (package / f"{module}.py").open("a") as source:
        source.write("\n# edited after the build\n")
    return package


def test_an_edited_module_is_never_shadowed_by_its_build(tmp_path: Path) -> None:
    """A copy of the package with one compiled module edited: the venv's build no longer matches, so every module
    is imported from source (a half-compiled mix is never loaded)."""
    if MODE != "compiled":
        pytest.skip("needs the compiled build: `make unit-compiled` runs this")
    package = _edited_copy(tmp_path, "engine")
    probe = (
        "import webhook.engine, webhook.server.audit_log\n"
        "from webhook.native import engine_description\n"
        "print(webhook.engine.__file__, webhook.server.audit_log.__file__, engine_description(), sep='\\n')\n"
    )
    env = {**os.environ, "KEYGUARD_ENGINE": "auto"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    engine, audit_log, description = result.stdout.splitlines()
    assert engine == str(package / "engine.py")
    assert audit_log == str(package / "server" / "audit_log.py")
    assert description.startswith("pure Python: the build in") and "is stale" in description


def test_a_forced_compiled_engine_that_is_stale_refuses_to_start(tmp_path: Path) -> None:
    env = {**os.environ, "KEYGUARD_ENGINE": "compiled"}
    _edited_copy(tmp_path, "detection")
    result = subprocess.run(
        [sys.executable, "-c", "import webhook.engine"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "KEYGUARD_ENGINE=compiled but the compiled engine cannot be used" in result.stderr


def _package_imports(module: str) -> set[str]:
    path = ROOT / "webhook" / f"{module}.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("webhook"):
            if node.module == "webhook":
                found |= {alias.name for alias in node.names if alias.name != "__version__"}
            else:
                found.add(node.module.removeprefix("webhook.").replace(".", "/"))
    return found


def test_the_stamp_covers_every_module_the_compiled_ones_import() -> None:
    """Else an edit to, say, a `Final` constant in credential_files.py would leave a build that copied the old value
    in use, unnoticed."""
    closure, pending = set(COMPILED_MODULES), list(COMPILED_MODULES)
    while pending:
        for imported in _package_imports(pending.pop()) - closure:
            closure.add(imported)
            pending.append(imported)
    assert closure - set(COMPILED_MODULES) == set(STAMPED_IMPORTS)


def test_findings_survive_pickling() -> None:
    """`keyguard check` workers send findings back by pickle; the compiled frozen classes once could not be rebuilt
    (FrozenInstanceError in the parent, a broken process pool)."""
    rule = Rule("plaintext-env", Severity.ERROR, "a key in env", "mount the Secret")
    for value in (rule, Hit(rule, "env X"), Finding(rule, "spec.containers[0].env[1]", "msg", "main", "env X")):
        assert pickle.loads(pickle.dumps(value)) == value


def test_without_a_compiler_the_build_says_so_and_keyguard_runs_pure_python(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh machine has no C compiler (the unit tier's PATH holds only the README's prerequisites): `make run`
    and `make test` must still work, on the pure-Python engine, and say why."""
    out = tmp_path / "native"
    assert native_build.missing_toolchain() is not None
    assert native_build.main(["--out", str(out)]) == 0
    assert "the compiled engine is not built: no C compiler" in capsys.readouterr().err
    assert not out.exists()
    assert native_build.main(["--out", str(out), "--check"]) == 1
    assert "pure Python: not built" in capsys.readouterr().out
