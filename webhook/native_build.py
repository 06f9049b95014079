"""`python -m webhook.native_build`: compile the admission path with mypyc into `<sys.prefix>/keyguard-native/`.

Run by `make native` (and so by `make run`, `make test`, `make bench`) and by the image's build stage. A no-op when
the stamp already matches the sources. It needs mypy (a dev dependency; the image installs it in its build stage
only), a C compiler and the Python headers. Without a compiler it says so and exits 0: keyguard then runs the same
code as pure Python (`webhook.native`), which is slower but decides identically.

The build runs on a copy of the package in a temporary directory: setuptools would otherwise read the project's
pyproject.toml as the metadata of this throwaway extension build.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from webhook.native import COMPILED_MODULES, GROUP, PACKAGE_DIR, STAMP, choose, describe, native_dir, sources_digest

MYPY_OPTIONS = ("--strict", "--python-version", "3.11", "--ignore-missing-imports")


def missing_toolchain() -> str | None:
    """Why this interpreter cannot compile extensions here, or None."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.is_file():
        return f"no Python headers ({headers}; Debian: python3-dev)"
    if importlib.util.find_spec("mypyc") is None:
        return "mypy (mypyc) is not installed"
    return None


def build(out: Path) -> None:
    """Compile into `out` (replaced as a whole, so a failed build leaves no half-written directory in use)."""
    from mypyc.build import mypycify  # noqa: PLC0415 (build-time tools: not imported by `keyguard`)
    from setuptools import setup  # noqa: PLC0415

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keyguard-native-") as tmp:
        work = Path(tmp)
        shutil.copytree(PACKAGE_DIR, work / "webhook", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        staging = work / "out"
        paths = [f"webhook/{module}.py" for module in COMPILED_MODULES]
        log = io.StringIO()  # mypyc's and setuptools' chatter: shown only when the build fails
        try:
            with contextlib.chdir(work), contextlib.redirect_stdout(log):
                extensions = mypycify([*MYPY_OPTIONS, *paths], opt_level="3", group_name=GROUP)
                setup(
                    name="keyguard-native",
                    ext_modules=extensions,
                    script_args=["build_ext", "--build-lib", str(staging), "--build-temp", str(work / "temp"), "-q"],
                )
        except BaseException:
            sys.stderr.write(log.getvalue())
            raise
        (staging / STAMP).write_text(sources_digest(work / "webhook") + "\n")
        previous = out.with_name(out.name + ".old")
        shutil.rmtree(previous, ignore_errors=True)
        if out.exists():
            out.rename(previous)
        shutil.move(staging, out)
        shutil.rmtree(previous, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=native_dir(), help="build directory (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="build nothing: exit 0 if a fresh build is there, else 1")
    args = parser.parse_args(argv)
    out: Path = args.out
    choice = choose(out, "auto")
    if args.check:
        print(f"keyguard: engine {describe(choice)}")
        return 0 if choice.compiled else 1
    if choice.compiled:
        return 0
    reason = missing_toolchain()
    if reason:
        print(
            f"keyguard: the compiled engine is not built: {reason}. keyguard runs its pure-Python engine "
            "(same decisions, slower; see README, Performance).",
            file=sys.stderr,
        )
        return 0
    print(f"keyguard: compiling the admission path with mypyc into {out} ...", file=sys.stderr)
    build(out)
    print("keyguard: compiled engine built", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
