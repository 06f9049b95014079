"""Memory under a flood of distinct long names: a running `keyguard serve` must not keep what reviews bring.

Issue 17 found the name caches keyed by whole env-var names: 100 distinct 64 KiB names raised the server's RSS by
about 121 KiB per name. This starts `keyguard serve` as deployed, warms it up with ordinary reviews, then sends
2,000 distinct 64 KiB env names (50 per review, half of them credential names so both verdicts are exercised)
and compares the resident set size before and after. Exit 1 when it grew by the limit or more.

    .venv/bin/python bench/memory_flood.py [--names 2000] [--limit-mib 50]
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path

import orjson

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # the tests' pod builders
sys.path.insert(0, str(BENCH_DIR))

from servers import BIN, free_port, generate_certs, running  # noqa: E402

from tests.flyte_pods import review, task_pod  # noqa: E402

NAME_BYTES = 64 * 1024
NAMES_PER_REVIEW = 50


def flood_review(first: int, count: int) -> bytes:
    pod = task_pod()
    env = pod["spec"]["containers"][0]["env"]
    for n in range(first, first + count):
        suffix = "_SECRET_KEY" if n % 2 else "_SETTING"
        env.append({"name": f"N{n:06d}_" + "X" * NAME_BYTES + suffix, "value": "v"})
    return orjson.dumps(review(pod))


def huge_header(port: int, ca_file: Path, size: int = 32 * 1024 * 1024) -> tuple[int | None, float]:
    """Send a request whose one header is `size` bytes; the status the server answered and the seconds it took."""
    started = time.monotonic()
    context = ssl.create_default_context(cafile=str(ca_file))
    answer = b""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-Pad: ")
        for _ in range(size // 65536):
            try:
                tls.sendall(b"a" * 65536)
                tls.setblocking(False)
                answer = tls.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except OSError:
                break
            finally:
                tls.settimeout(30)
            break
        try:
            while chunk := tls.recv(65536):
                answer += chunk
        except OSError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return status, round(time.monotonic() - started, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=2000)
    parser.add_argument("--limit-mib", type=float, default=50.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ca_file, cert, key = generate_certs(directory / "certs")
        port = free_port()
        command = [str(BIN / "keyguard"), "serve", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]
        with running("keyguard", command, port=port, ca_file=ca_file, log_dir=directory, core=None) as server:
            ordinary = orjson.dumps(review(task_pod()))
            for _ in range(200):
                server.post("/mutate", ordinary)
            before = server.memory_mib()
            statuses: dict[int, int] = {}
            for first in range(0, args.names, NAMES_PER_REVIEW):
                status, _ = server.post("/mutate", flood_review(first, min(NAMES_PER_REVIEW, args.names - first)))
                statuses[status] = statuses.get(status, 0) + 1
            after = server.memory_mib()
            header_status, header_seconds = huge_header(port, ca_file)
            after_header = server.memory_mib()
    growth = round(after["VmRSS"] - before["VmRSS"], 1)
    result = {
        "names": args.names,
        "name_bytes": NAME_BYTES,
        "statuses": statuses,
        "rss_before_mib": before["VmRSS"],
        "rss_after_mib": after["VmRSS"],
        "rss_peak_mib": after["VmHWM"],
        "growth_mib": growth,
        "limit_mib": args.limit_mib,
        "header_32mib_status": header_status,
        "header_32mib_seconds": header_seconds,
        "rss_after_header_mib": after_header["VmRSS"],
        "rss_peak_after_header_mib": after_header["VmHWM"],
    }
    print(json.dumps(result))
    refused = header_status is not None and 400 <= header_status < 500
    return 0 if growth < args.limit_mib and set(statuses) == {200} and refused else 1


if __name__ == "__main__":
    sys.exit(main())
