"""The engine compiled with mypyc, used only when it was built from exactly the sources beside it.

Every Flyte task pod waits for `decide`, and pure Python spends most of its time there interpreting dict walks.
mypyc (part of mypy, which already checks this code with `--strict`) compiles the same typed modules to C
extensions: `decide` on the typical pod takes about half the time (`make bench`). The sources stay the one truth:

- `python -m webhook.native_build` compiles `COMPILED_MODULES` into `<sys.prefix>/keyguard-native/` with a stamp,
  the SHA-256 of their sources (the dev venv: `.venv/keyguard-native/`; the image: `/opt/keyguard/keyguard-native/`);
- at import, `webhook` and `webhook.server` put that directory in front of their `__path__` only if the stamp
  matches the sources here, so an edited module is never shadowed by a stale build: keyguard runs pure Python until
  it is rebuilt (`make` targets rebuild it);
- `KEYGUARD_ENGINE=python` forces pure Python (the coverage run and the fallback's own test run);
  `KEYGUARD_ENGINE=compiled` makes a missing or stale build an import error (the compiled test run, the bench).

Nothing else changes: the compiled modules are the same code, and the whole unit suite runs on both.
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cache
from pathlib import Path
from typing import Final, NamedTuple

PACKAGE_DIR: Final = Path(__file__).resolve().parent
COMPILED_MODULES: Final = (
    "engine",
    "detection",
    "injection",
    "secret_references",
    "selection",
    "findings",
    "json_pointer",
    "readability",
    "review",
    "server/audit_log",
    "server/admission_asgi",
)
"""The admission path's modules, relative to the package (`admission_types` and `policy` hold pydantic and
TypedDict declarations mypyc does not compile)."""
STAMPED_IMPORTS: Final = (
    "admission_types",
    "policy",
    "credential_files",
    "errors",
    "server/metrics",
    "server/policy_watch",
)
"""What the compiled modules import from the package, not compiled but read by mypyc at compile time (types, and
`Final` constants it may copy into the compiled code): part of the stamp too (tests/test_native.py keeps the list
whole)."""
GROUP: Final = "webhook.native_lib"
"""mypyc's shared library for the group, inside the package so the build directory needs no `sys.path` entry."""
STAMP: Final = "SOURCES.sha256"
ENV: Final = "KEYGUARD_ENGINE"


class EngineChoice(NamedTuple):
    compiled: bool
    reason: str  # why pure Python runs ("" when compiled)
    directory: Path


def native_dir() -> Path:
    return Path(sys.prefix) / "keyguard-native"


def sources_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """The SHA-256 over the sources a build depends on and the interpreter it was compiled for."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode())
    for module in (*COMPILED_MODULES, *STAMPED_IMPORTS):
        digest.update(f"\0{module}\0".encode())
        digest.update((package_dir / f"{module}.py").read_bytes())
    return digest.hexdigest()


def choose(directory: Path, mode: str, package_dir: Path = PACKAGE_DIR) -> EngineChoice:
    """Compiled when allowed by `mode` and `directory` holds a build of exactly the sources in `package_dir`."""
    if mode == "python":
        return EngineChoice(False, f"{ENV}=python", directory)
    try:
        stamp = (directory / STAMP).read_text().strip()
    except OSError:
        return EngineChoice(False, f"not built ({directory} has no build; make native)", directory)
    if stamp != sources_digest(package_dir):
        return EngineChoice(False, f"the build in {directory} is stale (sources changed since; make native)", directory)
    return EngineChoice(True, "", directory)


@cache
def engine_choice() -> EngineChoice:
    mode = os.environ.get(ENV, "auto")
    if mode not in ("auto", "python", "compiled"):
        raise ImportError(f"{ENV} must be auto, python or compiled, not {mode!r}")
    choice = choose(native_dir(), mode)
    if mode == "compiled" and not choice.compiled:
        raise ImportError(f"{ENV}=compiled but the compiled engine cannot be used: {choice.reason}")
    return choice


def package_path(package: str, path: list[str], choice: EngineChoice | None = None) -> list[str]:
    """`path` (a package's `__path__`) with the compiled modules' directory first when they may be used."""
    if choice is None:
        choice = engine_choice()
    if not choice.compiled:
        return path
    return [str(choice.directory.joinpath(*package.split("."))), *path]


def describe(choice: EngineChoice) -> str:
    return "mypyc-compiled" if choice.compiled else f"pure Python: {choice.reason}"


def engine_description() -> str:
    """What `keyguard --version`, the start-up audit event and /readyz say about the engine."""
    return describe(engine_choice())
