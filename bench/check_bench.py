"""`keyguard check` throughput: pod documents per second over a folder of generated manifests.

Measured as the CLI is used in CI: one `keyguard check DIR` process over multi-document Pod YAML files with
the webhook's scenario mix (some files hold leaks, so exit 1 is expected; 2 or more is an error). Interpreter
start-up is part of what CI pays, so `docs_per_s` includes it; `docs_per_s_excl_startup` subtracts the time
of `keyguard --version` (imports and argument parsing only) to show the steady-state rate.
If `keyguard check` does not exist (yet) the result is null with the reason, never an exception.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from fixtures import write_manifests
from loadgen import pin


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
