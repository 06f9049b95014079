"""`make fuzz`: the boundary fuzz suite at scale, in process and over HTTP against a real `keyguard serve`.

In process: `--cases` mutated reviews (default 1,000,000) from `tests/fuzzing.py`, split over worker processes,
bounded by `--seconds`; each case is built from its own seed, so a failure is replayed with
`make_case(random.Random(seed))`. Over HTTP: for `--http-seconds`, several keep-alive connections post mutated
reviews to `keyguard serve` on 127.0.0.1; no answer may be a 5xx, no connection may drop, and no planted key may
reach the audit log (the server's stdout), its stderr or /metrics. Prints one JSON summary; exit 1 on any failure.

    .venv/bin/python bench/fuzz.py [--cases 1000000] [--seconds 3600] [--http-seconds 120] [--workers N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

from servers import BIN, ROOT, free_port, generate_certs  # noqa: E402

from tests.fuzzing import FRAGMENT, check_case, make_case  # noqa: E402
from webhook.policy import default_policy  # noqa: E402

HTTP_CONNECTIONS = 8


def _in_process(worker: int, workers: int, cases: int, deadline: float, base: int) -> tuple[int, dict[str, int]]:
    """Cases worker, worker + workers, ... until `cases` or the deadline; failures -> (count, first seed)."""
    sys.setrecursionlimit(10_000)
    policy = default_policy()
    failures: Counter[str] = Counter()
    first: dict[str, int] = {}
    done = 0
    for index in range(worker, cases, workers):
        if index % 256 == worker and time.monotonic() > deadline:
            break
        seed = base + index
        try:
            case = make_case(random.Random(seed))
        except RecursionError:
            failures["the mutator itself ran out of stack"] += 1
            first.setdefault("the mutator itself ran out of stack", seed)
            continue
        for failure in check_case(policy, case):
            failures[failure] += 1
            first.setdefault(failure, seed)
        done += 1
    return done, {f"{failure} (first seed {first[failure]})": n for failure, n in failures.items()}


def _fragments(keys: list[str]) -> set[str]:
    return {key[i : i + FRAGMENT] for key in keys if key for i in range(len(key) - FRAGMENT + 1)}


def _leaked(fragments: set[str], text: str) -> bool:
    return any(text[i : i + FRAGMENT] in fragments for i in range(len(text) - FRAGMENT + 1))


def _audit_leaks(text: str, by_uid: dict[str, list[str]], fragments: set[str]) -> list[str]:
    """The audit fields that carry a fragment of a planted key: each decision line is checked against the keys of
    the requests that carried its UID (the fragments of half a million random keys, pooled, also turn up by chance
    in the UUIDs and timestamps of half a million lines); any other line against them all."""
    fields: set[str] = set()
    for line in text.splitlines():
        record = orjson.loads(line)
        keys = by_uid.get(record.get("uid", ""), []) if record.get("event") == "admission" else None
        own = _fragments(keys) if keys is not None else fragments
        fields.update(name for name, value in record.items() if _leaked(own, orjson.dumps(value).decode()))
    return sorted(fields)


def _http_connection(port: int, ca_file: Path) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(ca_file))
    return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)


def _http_worker(port: int, ca_file: Path, deadline: float, seed: int, result: dict[str, object]) -> None:
    rng = random.Random(seed)
    statuses: Counter[int] = Counter()
    dropped, keys, sent = 0, [], 0
    by_uid: dict[str, list[str]] = {}
    connection = _http_connection(port, ca_file)
    while time.monotonic() < deadline:
        case_seed = rng.getrandbits(64)
        case = make_case(random.Random(case_seed))
        keys.append(case.key)
        try:
            connection.request("POST", "/mutate", body=case.body, headers={"content-type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            statuses[response.status] += 1
            if response.status == 200 and case.key:  # its audit line carries the UID the answer echoes
                by_uid.setdefault(orjson.loads(answer)["response"]["uid"], []).append(case.key)
            if response.getheader("connection", "").lower() == "close":
                connection.close()
                connection = _http_connection(port, ca_file)
        except (OSError, http.client.HTTPException):
            dropped += 1
            result.setdefault("first_dropped_seed", case_seed)
            connection.close()
            connection = _http_connection(port, ca_file)
        sent += 1
    connection.close()
    result.update(statuses=statuses, dropped=dropped, keys=keys, sent=sent, by_uid=by_uid)


def _http_leg(seconds: float, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ca_file, cert, key = generate_certs(directory / "certs")
        port = free_port()
        audit, errors = directory / "audit.log", directory / "stderr.log"
        command = [str(BIN / "keyguard"), "serve", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]
        with audit.open("wb") as out, errors.open("wb") as err:
            server = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
        try:
            _wait(port, server)
            deadline = time.monotonic() + seconds
            results: list[dict[str, object]] = [{} for _ in range(HTTP_CONNECTIONS)]
            threads = [
                threading.Thread(target=_http_worker, args=(port, ca_file, deadline, seed + n, results[n]))
                for n in range(HTTP_CONNECTIONS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            connection = _http_connection(port, ca_file)
            connection.request("GET", "/metrics")
            metrics = connection.getresponse().read().decode()
            connection.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
        statuses: Counter[int] = Counter()
        for result in results:
            statuses.update(result.get("statuses", {}))  # type: ignore[arg-type]
        fragments = _fragments([k for result in results for k in result.get("keys", [])])  # type: ignore[attr-defined]
        by_uid: dict[str, list[str]] = {}
        for result in results:
            for uid, planted in result.get("by_uid", {}).items():  # type: ignore[attr-defined]
                by_uid.setdefault(uid, []).extend(planted)
        leaks = {"audit log": _audit_leaks(audit.read_text("utf-8", "replace"), by_uid, fragments)}
        leaks["metrics"] = _leaked(fragments, metrics)
        leaks["stderr"] = _leaked(fragments, errors.read_text("utf-8", "replace"))
        return {
            "seconds": seconds,
            "requests": sum(int(r.get("sent", 0)) for r in results),  # type: ignore[call-overload]
            "statuses": {str(s): n for s, n in sorted(statuses.items())},
            "5xx": sum(n for s, n in statuses.items() if s >= 500),
            "dropped": sum(int(r.get("dropped", 0)) for r in results),  # type: ignore[call-overload]
            "first_dropped_seed": next((r["first_dropped_seed"] for r in results if "first_dropped_seed" in r), None),
            "key_leaks": {where: leaked for where, leaked in leaks.items() if leaked},
        }


def _wait(port: int, server: subprocess.Popen[bytes]) -> None:
    import socket  # noqa: PLC0415

    stop = time.monotonic() + 30
    while time.monotonic() < stop:
        if server.poll() is not None:
            raise RuntimeError(f"keyguard serve exited {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("keyguard serve did not listen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=3600, help="time bound of the in-process leg")
    parser.add_argument("--http-seconds", type=float, default=120)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=None, help="default: a random base seed (printed)")
    args = parser.parse_args()
    sys.setrecursionlimit(10_000)  # the mutator nests values 600 deep
    threading.stack_size(64 * 1024 * 1024)
    base = args.seed if args.seed is not None else random.SystemRandom().getrandbits(40) << 24
    started = time.monotonic()
    deadline = started + args.seconds
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(_in_process, w, args.workers, args.cases, deadline, base) for w in range(args.workers)]
        parts = [future.result() for future in futures]
    elapsed = time.monotonic() - started
    failures: Counter[str] = Counter()
    for _, found in parts:
        failures.update(found)
    done = sum(count for count, _ in parts)
    summary: dict[str, object] = {
        "in_process": {
            "base_seed": base,
            "cases": done,
            "seconds": round(elapsed, 1),
            "cases_per_second": round(done / elapsed),
            "workers": args.workers,
            "distinct_failures": len(failures),
            "failures": dict(failures),
        },
    }
    http_result = _http_leg(args.http_seconds, base) if args.http_seconds > 0 else None
    summary["http"] = http_result
    print(json.dumps(summary, indent=2))
    bad_http = http_result is not None and bool(
        http_result["5xx"] or http_result["dropped"] or http_result["key_leaks"] or not http_result["requests"]
    )
    return 1 if failures or bad_http else 0


if __name__ == "__main__":
    sys.exit(main())
