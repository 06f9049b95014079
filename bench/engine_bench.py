"""Engine micro-benchmark: the pure `decide` call per fixture, without HTTP, in microseconds.

Four timings per fixture, each call timed alone with `time.perf_counter_ns` after a warm-up (the garbage
collector stays on, as in the server, so p99 includes its pauses):
- `parse`: `webhook.review.parse_review(body)` alone (orjson + shape checks): the floor `decide` is judged against,
  since every review pays it and no engine can answer before it;
- `decide`: `webhook.engine.decide(policy, request)` on an already parsed request;
- `parse_decide`: `webhook.review.parse_review(body)` (orjson + shape checks, as the server does) then `decide`;
- `pipeline`: parse, decide, `respond` and `orjson.dumps` — the whole per-review CPU work of the admission path
  except the ASGI/TLS plumbing, the metrics and the audit line.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from webhook.engine import decide
from webhook.policy import Policy, default_policy
from webhook.review import parse_review, respond


def _percentile(sorted_ns: list[int], q: float) -> float:
    index = min(len(sorted_ns) - 1, max(0, round(q / 100 * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1000


def _time(call: Callable[[], object], iterations: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        call()
    clock = time.perf_counter_ns
    samples = [0] * iterations
    for i in range(iterations):
        start = clock()
        call()
        samples[i] = clock() - start
    samples.sort()
    return {
        "p50_us": round(_percentile(samples, 50), 2),
        "p99_us": round(_percentile(samples, 99), 2),
        "mean_us": round(statistics.fmean(samples) / 1000, 2),
        "iterations": iterations,
    }


def bench_engine(
    bodies: dict[str, bytes], *, iterations: int, warmup: int, policy: Policy | None = None
) -> dict[str, dict[str, Any]]:
    """Per scenario: {"parse": {...}, "decide": {...}, "parse_decide": {...}, "pipeline": {...}, "outcome": ...}."""
    policy = policy or default_policy()
    results: dict[str, dict[str, Any]] = {}
    for scenario, body in bodies.items():
        request = parse_review(body)
        before = orjson.dumps(request)
        decision = decide(policy, request)
        if orjson.dumps(request) != before:
            raise AssertionError(f"decide() modified the {scenario} request")
        # large reviews cost ~8x more: fewer iterations keep the run time even
        n = max(100, iterations // 8) if len(body) > 20_000 else iterations
        w = max(10, warmup // 8) if len(body) > 20_000 else warmup

        def pipeline(body: bytes = body) -> bytes:
            parsed = parse_review(body)
            return orjson.dumps(respond(parsed["uid"], decide(policy, parsed)))

        results[scenario] = {
            "outcome": decision.outcome,
            "body_bytes": len(body),
            "parse": _time(lambda body=body: parse_review(body), n, w),  # type: ignore[misc]
            "decide": _time(lambda request=request: decide(policy, request), n, w),  # type: ignore[misc]
            "parse_decide": _time(lambda body=body: decide(policy, parse_review(body)), n, w),  # type: ignore[misc]
            "pipeline": _time(pipeline, n, w),
        }
    return results
