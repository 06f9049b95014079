"""`keyguard check` throughput: pod documents per second over a folder of generated manifests.

Measured as the CLI is used in CI: one `keyguard check DIR` process over multi-document Pod YAML files with
the webhook's scenario mix (some files hold leaks, so exit 1 is expected; 2 or more is an error). Interpreter
start-up is part of what CI pays, so `docs_per_s` includes it; `docs_per_s_excl_startup` subtracts the time
of `keyguard --version` (imports and argument parsing only) to show the steady-state rate.
If `keyguard check` does not exist (yet) the result is null with the reason, never an exception.

`bench_check_steady` measures the steady state in process, on typical Flyte task pods only: `check_paths` over
the same files several times (best round, one process, no start-up), next to its floor, libyaml's
`yaml.CSafeLoader` alone loading the same files (read included in both).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from fixtures import write_manifests
from loadgen import pin

from webhook.check.model import CheckOptions
from webhook.check.scan import check_paths
from webhook.policy import default_policy


def _timed(command: list[str], core: int | None, timeout_s: float) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    start = time.perf_counter()
    done = subprocess.run(
        command,
        capture_output=True,
        check=False,
        timeout=timeout_s,
        preexec_fn=pin(core),
    )
    return time.perf_counter() - start, done


def bench_check(
    keyguard: Path, directory: Path, *, documents: int, core: int | None, timeout_s: float = 120.0
) -> dict[str, Any]:
    """Run `keyguard check` over `documents` generated pods; {"docs_per_s": None, "reason": ...} if it cannot."""
    result: dict[str, Any] = {"docs_per_s": None, "documents": documents}
    _, helped = _timed([str(keyguard), "check", "--help"], core, 60)
    if helped.returncode != 0:
        result["reason"] = "`keyguard check --help` failed: " + helped.stderr.decode(errors="replace").strip()[-300:]
        return result
    written = write_manifests(directory, documents)
    startup, _ = _timed([str(keyguard), "--version"], core, 60)
    command = [str(keyguard), "check", "--quiet", str(directory)]
    result["command"] = "keyguard check --quiet DIR"
    try:
        elapsed, done = _timed(command, core, timeout_s)
    except subprocess.TimeoutExpired:
        result["reason"] = f"`keyguard check` took longer than {timeout_s:g} s for {written} documents"
        return result
    result.update(documents=written, files=len(list(directory.glob("*.yaml"))), exit_code=done.returncode)
    if done.returncode not in (0, 1):
        result["reason"] = f"`keyguard check` exited {done.returncode}: " + done.stderr.decode(errors="replace")[-300:]
        return result
    result.update(
        seconds=round(elapsed, 3),
        startup_s=round(startup, 3),
        docs_per_s=round(written / elapsed, 1),
        docs_per_s_excl_startup=round(written / max(elapsed - startup, 1e-6), 1),
    )
    return result


def _best_of(call: Callable[[], object], rounds: int) -> float:
    """The fastest of `rounds` timed calls after one untimed one: the steady state, least disturbed by the machine."""
    call()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def bench_check_steady(directory: Path, *, documents: int, rounds: int = 5) -> dict[str, Any]:
    """Typical Flyte pod documents per second through `check_paths` in this process, and the ratio of its time
    to CSafeLoader's time for loading the same files (the floor: no check reads YAML faster than libyaml)."""
    written = write_manifests(directory, documents, weights={"typical": 1})
    files = sorted(str(f) for f in directory.glob("*.yaml"))
    options = CheckOptions(policy=default_policy())
    report = check_paths(files, options, jobs=1)
    if report.documents != written:
        raise AssertionError(f"check read {report.documents} documents of {written}")

    def libyaml() -> None:
        for name in files:
            with open(name, encoding="utf-8") as stream:
                list(yaml.load_all(stream.read(), Loader=yaml.CSafeLoader))

    check_s = _best_of(lambda: check_paths(files, options, jobs=1), rounds)
    libyaml_s = _best_of(libyaml, rounds)
    return {
        "documents": written,
        "files": len(files),
        "check_s": round(check_s, 4),
        "libyaml_s": round(libyaml_s, 4),
        "typical_docs_per_s": round(written / check_s, 1),
        "libyaml_docs_per_s": round(written / libyaml_s, 1),
        "vs_libyaml": round(check_s / libyaml_s, 3),
    }
