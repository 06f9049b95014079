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
import sys
import tempfile
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
    }
    print(json.dumps(result))
    return 0 if growth < args.limit_mib and set(statuses) == {200} else 1


if __name__ == "__main__":
    sys.exit(main())
