"""Drive a server with wrk (a compiled load generator: C, epoll, OpenSSL, LuaJIT) and parse its JSON summary.

A Python load generator would measure itself: on one core it tops out far below the ~35,000 req/s the raw
baseline reaches. wrk keeps its connections alive, formats every request once (bench/admission.lua) and reports
latency percentiles from its histogram; the Lua `done()` prints them as one JSON line that `parse_wrk_output`
reads. Any socket error, timeout or non-200 answer makes the run a failure (`WrkResult.failures`).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson

LUA_SCRIPT = Path(__file__).resolve().parent / "admission.lua"
MARKER = "WRK_JSON "


class WrkError(RuntimeError):
    """wrk could not run or printed no summary."""


@dataclass(frozen=True)
class WrkResult:
    connections: int
    duration_s: float
    requests: int
    reviews_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    errors: dict[str, int]
    mb_per_s: float
    wrk_cpu: float | None = None  # cores wrk used: near 1.0 means the load generator, not the server, limits

    @property
    def failures(self) -> int:
        e = self.errors
        socket = e["connect"] + e["read"] + e["write"] + e["timeout"]
        return socket + max(e["status"], e["non200"])

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failures": self.failures}


def wrk_path() -> str | None:
    return shutil.which("wrk")


def parse_wrk_output(stdout: str, connections: int) -> WrkResult:
    """The summary printed by admission.lua's done(); raises WrkError if there is none."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = orjson.loads(line[len(MARKER) :])
            break
    else:
        raise WrkError(f"wrk printed no summary:\n{stdout[-2000:]}")
    seconds = data["duration_us"] / 1e6
    lat = data["latency_us"]
    return WrkResult(
        connections=connections,
        duration_s=round(seconds, 3),
        requests=data["requests"],
        reviews_per_s=round(data["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        p999_ms=lat["p999"] / 1000,
        max_ms=lat["max"] / 1000,
        mean_ms=round(lat["mean"] / 1000, 3),
        errors=data["errors"],
        mb_per_s=round(data["bytes"] / seconds / 1e6, 2) if seconds else 0.0,
    )


def pin(core: int | None) -> Any:
    """A preexec_fn that pins the child (and every thread it starts) to one CPU core."""
    if core is None:
        return None

    def _pin() -> None:
        os.sched_setaffinity(0, {core})

    return _pin


def run_wrk(
    url: str,
    path: str,
    bodies: Sequence[Path],
    *,
    connections: int,
    duration_s: float,
    core: int | None,
    timeout_s: float = 5.0,
) -> WrkResult:
    """POST `bodies` in turn to `url + path` over `connections` kept-alive connections for `duration_s`."""
    exe = wrk_path()
    if exe is None:
        raise WrkError("wrk is not installed: run bench/install-wrk.sh")
    command = [
        exe,
        "-t1",  # one thread: wrk gets one core of its own
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        path,
        *(str(b) for b in bodies),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        check=False,
        preexec_fn=pin(core),
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    result = parse_wrk_output(done.stdout, connections)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return replace(result, wrk_cpu=round(cpu / result.duration_s, 2) if result.duration_s else None)
