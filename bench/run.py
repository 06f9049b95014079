"""`make bench`: how much keyguard costs the API server, against the limit of its own stack.

One run measures, on this machine and at the same time of day (so the numbers can be compared):
1. the engine alone (`decide` per fixture, µs) — bench/engine_bench.py;
2. `keyguard serve` as deployed (separate process, one worker, real TLS, audit log on) pinned to one core, driven
   by wrk pinned to the other core over kept-alive HTTPS: each scenario at 32 connections, the typical pod and the
   mix at 1, 8 and 128 too — bench/loadgen.py, bench/admission.lua, bench/servers.py;
3. two no-op baselines on the same uvicorn + TLS settings, typical body, 32 connections: a raw ASGI callable
   (the stack's limit) and an ordinary FastAPI route — bench/baseline_raw.py, bench/baseline_fastapi.py;
4. the server's memory after the load, and `keyguard check` throughput — bench/check_bench.py: as CI runs it
   (one process, start-up included) and in steady state on typical pods next to libyaml's load of the same files.
It writes bench/results/latest.json (with the targets of issues 7 and 14 and pass/fail) and prints a table, each
figure with a floor (parse for decide, the raw-ASGI no-op for the server, CSafeLoader for check) beside it.
Before any load, every scenario's answer from the server is compared with the engine's in-process answer, so the
server is known to do the real work. Exit status: 0 when every measurement ran cleanly (targets missed or not), 1 when a
run had socket errors or non-200 answers or an answer was wrong, 2 when wrk is missing.

    .venv/bin/python bench/run.py            # full, ~3 minutes
    .venv/bin/python bench/run.py --quick    # concurrency 32 only, short runs, < 1 minute
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from check_bench import bench_check, bench_check_steady
from engine_bench import bench_engine
from fixtures import SCENARIOS, build_fixtures, mix_sequence, write_bodies
from loadgen import WrkError, WrkResult, run_wrk, wrk_path
from servers import BENCH_DIR, BIN, Server, free_port, generate_certs, running

from webhook.engine import decide
from webhook.native import engine_description
from webhook.policy import default_policy
from webhook.review import parse_review, respond

RESULTS = BENCH_DIR / "results" / "latest.json"
HEADLINE_CONNECTIONS = 32

# issues 7 and 14's targets: (key in the results, comparison, bound). Ratios to a floor measured in the same run
# judge this machine fairly; the absolute ones are issue 7's.
TARGETS: list[tuple[str, str, float]] = [
    ("ratio_vs_raw", ">=", 0.5),
    ("ratio_vs_raw_cpu", ">=", 0.5),
    ("p99_ms", "<=", 5.0),
    ("p99_ms_c1", "<=", 1.0),
    ("engine_us_p50", "<=", 30.0),
    ("engine_us_p50_large", "<=", 100.0),
    ("engine_vs_parse", "<=", 2.0),
    ("engine_vs_parse_large", "<=", 2.0),
    ("rss_mib", "<=", 100.0),
    ("check_docs_per_s", ">=", 5000.0),
    ("check_typical_docs_per_s", ">=", 5000.0),
    ("check_vs_libyaml", "<=", 1.5),
]


class Plan:
    """What to run: durations, concurrencies and iteration counts for a full or a quick run."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.duration_s = 3.0 if quick else 10.0
        self.warmup_s = 1.0 if quick else 3.0
        self.sweep = [HEADLINE_CONNECTIONS] if quick else [1, 8, HEADLINE_CONNECTIONS, 128]
        self.engine_iterations = 3000 if quick else 20000
        self.engine_warmup = 300 if quick else 2000
        self.check_documents = 300 if quick else 3000
        self.steady_documents = 300 if quick else 1000
        self.steady_rounds = 3 if quick else 7
        self.check_timeout_s = 15.0 if quick else 120.0


def machine(server_core: int | None, wrk_core: int | None) -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk = wrk_path()  # absent until bench/install-wrk.sh ran: `make test` runs this without it
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False).stdout if wrk else ""
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "engine": engine_description(),  # what the bench process and the `keyguard serve` it starts both import
        "kernel": platform.release(),
        "wrk": wrk_version.splitlines()[0].strip() if wrk_version else None,
        "server_core": server_core,
        "wrk_core": wrk_core,
        "loadavg_before": os.getloadavg(),
        "core_busy_before": core_busy(),
    }


def core_busy(seconds: float = 1.0) -> dict[str, float]:
    """How busy each core is before we start (other work on the machine makes every figure lower)."""

    def sample() -> dict[str, tuple[int, int]]:
        times = {}
        with open("/proc/stat", encoding="utf-8") as stat:
            for line in stat:
                name, *fields = line.split()
                if name.startswith("cpu") and name != "cpu":
                    values = [int(v) for v in fields]
                    times[name] = (sum(values), values[3] + values[4])  # total, idle + iowait
        return times

    first = sample()
    time.sleep(seconds)
    second = sample()
    busy = {}
    for name, (total, idle) in second.items():
        d_total, d_idle = total - first[name][0], idle - first[name][1]
        busy[name] = round(1 - d_idle / d_total, 2) if d_total else 0.0
    return busy


def pick_cores() -> tuple[int | None, int | None]:
    """Server on the first core we may use, wrk on the second; no pinning on a single-core machine."""
    cores = sorted(os.sched_getaffinity(0))
    return (cores[0], cores[1]) if len(cores) >= 2 else (None, None)


def expected_answers(bodies: dict[str, bytes]) -> dict[str, Any]:
    policy = default_policy()
    answers = {}
    for scenario, body in bodies.items():
        request = parse_review(body)
        answers[scenario] = orjson.loads(orjson.dumps(respond(request["uid"], decide(policy, request))))
    return answers


def verify(server: Server, bodies: dict[str, bytes], expected: dict[str, Any] | None) -> list[str]:
    """POST each scenario once; every answer must be 200 and (for keyguard) exactly the engine's answer."""
    problems = []
    for scenario, body in bodies.items():
        status, payload = server.post("/mutate", body)
        if status != 200:
            problems.append(f"{server.name} {scenario}: HTTP {status}: {payload[:200]!r}")
            continue
        answer = orjson.loads(payload)
        if answer.get("kind") != "AdmissionReview" or "response" not in answer:
            problems.append(f"{server.name} {scenario}: not an AdmissionReview")
        elif expected is not None and answer != expected[scenario]:
            problems.append(f"{server.name} {scenario}: the answer differs from the engine's")
    return problems


def measure(
    server: Server, bodies: list[Path], *, connections: int, duration_s: float, core: int | None
) -> dict[str, Any]:
    (user_before, sys_before), wall_before = server.cpu_split(), time.monotonic()
    result: WrkResult = run_wrk(
        server.url, "/mutate", bodies, connections=connections, duration_s=duration_s, core=core
    )
    user_after, sys_after = server.cpu_split()
    used = user_after - user_before + sys_after - sys_before
    cpu = used / (time.monotonic() - wall_before)
    # CPU per review: on a busy machine the server may get only part of its core; this stays comparable.
    per_review = cpu / result.reviews_per_s * 1e6 if result.reviews_per_s else None
    # The kernel's share (socket and TLS system calls): a slower server pays more of it per answer.
    sys_per_review = per_review * (sys_after - sys_before) / used if per_review and used else None
    return {
        **result.as_dict(),
        "server_cpu": round(cpu, 2),
        "server_cpu_us_per_review": round(per_review, 1) if per_review else None,
        "server_sys_us_per_review": round(sys_per_review, 1) if sys_per_review else None,
    }


def run_http(plan: Plan, work: Path, fixtures_paths: dict[str, list[Path]], bodies: dict[str, bytes]) -> dict[str, Any]:
    server_core, wrk_core = pick_cores()
    ca, cert, key = generate_certs(work / "certs")
    response_file = work / "response.json"
    expected = expected_answers(bodies)
    response_file.write_bytes(orjson.dumps(expected["typical"]))  # the baselines answer what keyguard answers
    typical_only = {"typical": bodies["typical"]}
    sequences = {**fixtures_paths, "mix": mix_sequence(fixtures_paths)}
    http: dict[str, Any] = {"problems": []}

    def serve_args(port: int) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]

    def warm(server: Server, bodies: list[Path]) -> None:
        """A short unrecorded run first (connections, TLS sessions, caches); its failures still count."""
        run = measure(server, bodies, connections=HEADLINE_CONNECTIONS, duration_s=plan.warmup_s, core=wrk_core)
        if run["failures"]:
            http["problems"].append(f"{server.name} warm-up: {run['failures']} failed request(s): {run['errors']}")

    def baseline(name: str, script: str) -> None:
        port = free_port()
        command = [sys.executable, str(BENCH_DIR / script), *serve_args(port), "--response", str(response_file)]
        with running(name, command, port=port, ca_file=ca, log_dir=work, core=server_core) as server:
            http["problems"] += verify(server, typical_only, None)
            warm(server, fixtures_paths["typical"])
            print(f"  {name}: typical x{HEADLINE_CONNECTIONS}", file=sys.stderr)
            run = measure(
                server,
                fixtures_paths["typical"],
                connections=HEADLINE_CONNECTIONS,
                duration_s=plan.duration_s,
                core=wrk_core,
            )
            http[name] = {"typical": {str(HEADLINE_CONNECTIONS): run}, "memory_mib": server.memory_mib()}

    # The raw baseline right before keyguard's headline run, so both see the same machine.
    baseline("baseline_raw", "baseline_raw.py")
    port = free_port()
    command = [str(BIN / "keyguard"), "serve", *serve_args(port)]
    with running("keyguard", command, port=port, ca_file=ca, log_dir=work, core=server_core) as server:
        http["problems"] += verify(server, bodies, expected)
        warm(server, sequences["mix"])
        runs: list[tuple[str, int]] = [("typical", HEADLINE_CONNECTIONS)]
        runs += [(s, HEADLINE_CONNECTIONS) for s in (*SCENARIOS[1:], "mix")]
        runs += [(s, c) for s in ("typical", "mix") for c in plan.sweep if c != HEADLINE_CONNECTIONS]
        keyguard: dict[str, Any] = {}
        for scenario, connections in runs:
            print(f"  keyguard: {scenario} x{connections}", file=sys.stderr)
            keyguard.setdefault(scenario, {})[str(connections)] = measure(
                server, sequences[scenario], connections=connections, duration_s=plan.duration_s, core=wrk_core
            )
        keyguard["memory_mib"] = server.memory_mib()
        http["keyguard"] = keyguard
    baseline("baseline_fastapi", "baseline_fastapi.py")
    return http


def summarize(http: dict[str, Any], engine: dict[str, Any], check: dict[str, Any]) -> dict[str, Any]:
    c = str(HEADLINE_CONNECTIONS)
    head = http["keyguard"]["typical"][c]
    raw = http["baseline_raw"]["typical"][c]["reviews_per_s"]
    steady = check.get("steady", {})
    summary: dict[str, Any] = {
        "reviews_per_s": head["reviews_per_s"],
        "mix_reviews_per_s": http["keyguard"]["mix"][c]["reviews_per_s"],
        "baseline_raw_per_s": raw,
        "baseline_fastapi_per_s": http["baseline_fastapi"]["typical"][c]["reviews_per_s"],
        "ratio_vs_raw": round(head["reviews_per_s"] / raw, 3) if raw else None,
        # the same ratio from CPU time per review (robust when other work shares the server's core)
        "ratio_vs_raw_cpu": _ratio(
            http["baseline_raw"]["typical"][c].get("server_cpu_us_per_review"), head.get("server_cpu_us_per_review")
        ),
        "cpu_us_per_review": head.get("server_cpu_us_per_review"),
        "p50_ms": head["p50_ms"],
        "p99_ms": head["p99_ms"],
        "p99_ms_c1": http["keyguard"]["typical"].get("1", {}).get("p99_ms"),  # the full run's sweep only
        "mix_p99_ms": http["keyguard"]["mix"][c]["p99_ms"],
        "engine_us_p50": engine["typical"]["decide"]["p50_us"],
        "engine_us_p99": engine["typical"]["decide"]["p99_us"],
        "engine_us_p50_large": engine["large"]["decide"]["p50_us"],
        "engine_us_p99_large": engine["large"]["decide"]["p99_us"],
        "parse_us_p50": engine["typical"]["parse"]["p50_us"],
        "parse_us_p50_large": engine["large"]["parse"]["p50_us"],
        "engine_vs_parse": _ratio(engine["typical"]["decide"]["p50_us"], engine["typical"]["parse"]["p50_us"]),
        "engine_vs_parse_large": _ratio(engine["large"]["decide"]["p50_us"], engine["large"]["parse"]["p50_us"]),
        "rss_mib": http["keyguard"]["memory_mib"].get("VmRSS"),
        "check_docs_per_s": check.get("docs_per_s"),
        "check_typical_docs_per_s": steady.get("typical_docs_per_s"),
        "check_vs_libyaml": steady.get("vs_libyaml"),
        "concurrency": HEADLINE_CONNECTIONS,
    }
    return summary


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


def judge(summary: dict[str, Any]) -> dict[str, Any]:
    verdicts = {}
    for key, op, bound in TARGETS:
        value = summary.get(key)
        ok = None if value is None else (value >= bound if op == ">=" else value <= bound)
        verdicts[key] = {"target": f"{op} {bound:g}", "value": value, "pass": ok}
    return verdicts


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def floors(results: dict[str, Any]) -> list[str]:
    """Each figure next to the floor measured in the same run, and their ratio (issue 14 judges the ratios)."""
    s = results["summary"]
    c = str(HEADLINE_CONNECTIONS)
    raw_cpu = results["http"].get("baseline_raw", {}).get("typical", {}).get(c, {}).get("server_cpu_us_per_review")
    steady = results["check"].get("steady", {})
    rows = [
        ("decide typical p50 µs", s["engine_us_p50"], "parse_review", s["parse_us_p50"], s["engine_vs_parse"], "<= 2"),
        (
            "decide large p50 µs",
            s["engine_us_p50_large"],
            "parse_review",
            s["parse_us_p50_large"],
            s["engine_vs_parse_large"],
            "<= 2",
        ),
        ("reviews/s typical", s["reviews_per_s"], "raw ASGI", s["baseline_raw_per_s"], s["ratio_vs_raw"], ">= 0.5"),
        (
            "CPU µs per review",
            s["cpu_us_per_review"],
            "raw ASGI",
            raw_cpu,
            _ratio(s["cpu_us_per_review"], raw_cpu),
            "<= 2",
        ),
        (
            "check s, typical docs",
            steady.get("check_s"),
            "CSafeLoader",
            steady.get("libyaml_s"),
            s["check_vs_libyaml"],
            "<= 1.5",
        ),
    ]
    lines = [f"{'figure':<24}{'value':>12}  {'floor':<14}{'floor value':>12}{'ratio':>8}  goal"]
    for name, value, floor, floor_value, ratio, goal in rows:
        lines.append(f"{name:<24}{_fmt(value):>12}  {floor:<14}{_fmt(floor_value):>12}{_fmt(ratio, 3):>8}  {goal}")
    lines.append(
        f"keyguard check steady state: {_fmt(s['check_typical_docs_per_s'], 0)} typical docs/s in process "
        f"({steady.get('documents')} documents; CSafeLoader alone {_fmt(steady.get('libyaml_docs_per_s'), 0)} docs/s)"
    )
    return lines


def table(results: dict[str, Any]) -> str:
    lines = [
        f"keyguard bench ({'quick' if results['quick'] else 'full'}) — {results['machine']['cpu_model']}, "
        f"{results['machine']['cores']} cores, Python {results['machine']['python']}, "
        f"server on core {results['machine']['server_core']}, wrk on core {results['machine']['wrk_core']}",
        f"engine: {results['machine'].get('engine', 'unknown')}",
        "",
        f"{'server':<18}{'scenario':<10}{'conns':>6}{'req/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}"
        f"{'max ms':>9}{'srv cpu':>8}{'µs cpu/rv':>10}{'of it sys':>10}{'wrk cpu':>8}{'fail':>6}",
    ]
    http = results["http"]
    for name in ("baseline_raw", "baseline_fastapi", "keyguard"):
        for scenario, by_conn in http.get(name, {}).items():
            if scenario == "memory_mib":
                continue
            for conns, r in sorted(by_conn.items(), key=lambda item: int(item[0])):
                lines.append(
                    f"{name:<18}{scenario:<10}{conns:>6}{r['reviews_per_s']:>11,.0f}{r['p50_ms']:>9.2f}"
                    f"{r['p99_ms']:>9.2f}{r['p999_ms']:>10.2f}{r['max_ms']:>9.2f}"
                    f"{_fmt(r.get('server_cpu')):>8}{_fmt(r.get('server_cpu_us_per_review'), 0):>10}"
                    f"{_fmt(r.get('server_sys_us_per_review'), 0):>10}"
                    f"{_fmt(r.get('wrk_cpu')):>8}{r['failures']:>6}"
                )
    lines += [
        "",
        f"{'engine (µs)':<12}{'bytes':>7}{'outcome':>9}  {'decide p50/p99':>16}  {'parse p50/p99':>16}  "
        f"{'parse+decide':>16}  "
        f"{'+respond+dumps':>16}",
    ]
    for scenario, e in results["engine"].items():
        lines.append(
            f"{scenario:<12}{e['body_bytes']:>7}{e['outcome']:>9}  "
            + "  ".join(
                f"{e[k]['p50_us']:>7.1f} /{e[k]['p99_us']:>7.1f}"
                for k in ("decide", "parse", "parse_decide", "pipeline")
            )
        )
    check = results["check"]
    lines += [
        "",
        f"keyguard check: {_fmt(check.get('docs_per_s'), 0)} docs/s over {check.get('documents')} documents"
        + (
            f" ({check['reason']})"
            if check.get("reason")
            else f" (excluding start-up: {_fmt(check.get('docs_per_s_excl_startup'), 0)} docs/s)"
        ),
        f"keyguard RSS after the run: {_fmt(results['summary']['rss_mib'], 1)} MiB "
        f"(peak {_fmt(http['keyguard']['memory_mib'].get('VmHWM'), 1)} MiB)",
        f"keyguard CPU per typical review at {HEADLINE_CONNECTIONS}: "
        f"{_fmt(results['summary'].get('cpu_us_per_review'), 0)} µs; "
        f"ratio to the raw baseline by CPU time: {_fmt(results['summary'].get('ratio_vs_raw_cpu'), 3)}",
        "",
        *floors(results),
        "",
        f"{'target':<24}{'value':>12}  {'goal':<10}result",
    ]
    for key, verdict in results["targets"].items():
        mark = {True: "PASS", False: "FAIL", None: "n/a"}[verdict["pass"]]
        lines.append(f"{key:<24}{_fmt(verdict['value']):>12}  {verdict['target']:<10}{mark}")
    if http["problems"]:
        lines += ["", "PROBLEMS:", *(f"  {p}" for p in http["problems"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="concurrency 32 only and short runs (< 1 minute)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    if wrk_path() is None:
        print("bench: wrk is not installed; run bench/install-wrk.sh (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    plan = Plan(args.quick)
    started = time.monotonic()
    server_core, wrk_core = pick_cores()
    fixtures = build_fixtures()
    first_bodies = {s: f.bodies[0] for s, f in fixtures.items()}
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": plan.quick,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(server_core, wrk_core),
        "plan": {"duration_s": plan.duration_s, "warmup_s": plan.warmup_s, "connections": plan.sweep},
        "fixtures": {s: {"bytes": f.size, "variants": len(f.bodies)} for s, f in fixtures.items()},
    }
    with tempfile.TemporaryDirectory(prefix="keyguard-bench-") as tmp:
        work = Path(tmp)
        paths = write_bodies(fixtures, work / "bodies")
        phases: dict[str, float] = {}
        mark = time.monotonic()
        print("bench: engine micro-benchmark", file=sys.stderr)
        own_affinity = os.sched_getaffinity(0)
        if server_core is not None:
            os.sched_setaffinity(0, {server_core})
        try:
            engine = bench_engine(first_bodies, iterations=plan.engine_iterations, warmup=plan.engine_warmup)
        finally:
            os.sched_setaffinity(0, own_affinity)
        phases["engine"], mark = round(time.monotonic() - mark, 1), time.monotonic()
        print("bench: HTTPS load (wrk)", file=sys.stderr)
        try:
            http = run_http(plan, work, paths, first_bodies)
        except WrkError as error:
            print(f"bench: {error}", file=sys.stderr)
            return 1
        phases["http"], mark = round(time.monotonic() - mark, 1), time.monotonic()
        print("bench: keyguard check", file=sys.stderr)
        check = bench_check(
            BIN / "keyguard",
            work / "manifests",
            documents=plan.check_documents,
            core=server_core,
            timeout_s=plan.check_timeout_s,
        )
        own_affinity = os.sched_getaffinity(0)
        if server_core is not None:
            os.sched_setaffinity(0, {server_core})
        try:
            check["steady"] = bench_check_steady(
                work / "typical-manifests", documents=plan.steady_documents, rounds=plan.steady_rounds
            )
        finally:
            os.sched_setaffinity(0, own_affinity)
        phases["check"] = round(time.monotonic() - mark, 1)
    results.update(http=http, engine=engine, check=check)
    results["summary"] = summary = summarize(http, engine, check)
    results["targets"] = judge(summary)
    results["machine"]["loadavg_after"] = os.getloadavg()
    results["seconds"] = round(time.monotonic() - started, 1)
    results["phase_seconds"] = phases
    failures = sum(
        r["failures"]
        for name in ("baseline_raw", "baseline_fastapi", "keyguard")
        for scenario, by_conn in http[name].items()
        if scenario != "memory_mib"
        for r in by_conn.values()
    )
    results["ok"] = failures == 0 and not http["problems"]
    # the documented keys at the top level, details below them
    document = {**summary, "machine": results["machine"], "targets": results["targets"], **results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    print(table(results))
    print(f"\nwrote {args.out} in {results['seconds']} s")
    if not results["ok"]:
        print(f"bench: FAILED: {failures} failed request(s); {len(http['problems'])} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
