"""Smoke test of the benchmark scripts (bench/): they import, build their fixtures and compute their results.

No timing is asserted and nothing here needs wrk or starts a server: the load-generator path is covered by
parsing a recorded wrk summary, the baselines by calling their ASGI apps directly. `make bench` runs the rest.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests import fake_credentials

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import baseline_fastapi  # noqa: E402
import baseline_raw  # noqa: E402
import check_bench  # noqa: E402
import engine_bench  # noqa: E402
import fixtures  # noqa: E402
import loadgen  # noqa: E402
import run  # noqa: E402

from webhook.engine import decide  # noqa: E402
from webhook.policy import default_policy  # noqa: E402
from webhook.review import parse_review  # noqa: E402

WRK_STDOUT = """Running 1s test @ https://127.0.0.1:8443
  1 threads and 32 connections
WRK_JSON {"requests":20000,"duration_us":2000000,"bytes":30000000,"errors":{"connect":0,"read":0,"write":0,\
"status":0,"timeout":0,"non200":0},"latency_us":{"min":300,"mean":1500.5,"max":9000,"stdev":200.0,\
"p50":1400,"p90":2000,"p99":3100,"p999":5000}}
"""


def test_fixtures_have_the_intended_sizes_and_outcomes() -> None:
    built = fixtures.build_fixtures(variants=2)
    assert set(built) == set(fixtures.SCENARIOS)
    policy = default_policy()
    outcomes = {s: decide(policy, parse_review(f.bodies[0])).outcome for s, f in built.items()}
    assert outcomes == {"typical": "patched", "large": "patched", "denial": "denied", "nonflyte": "ignored"}
    assert 4 * 1024 <= built["typical"].size <= 5 * 1024
    assert 36 * 1024 <= built["large"].size <= 44 * 1024
    assert len(set(built["typical"].bodies)) == 2  # variants differ (UID, name)


def test_mix_follows_the_weights(tmp_path: Path) -> None:
    paths = fixtures.write_bodies(fixtures.build_fixtures(variants=2), tmp_path)
    sequence = fixtures.mix_sequence(paths)
    counts = {s: sum(1 for p in sequence if p.name.startswith(s + "-")) for s in fixtures.SCENARIOS}
    assert counts == {s: 2 * w for s, w in fixtures.MIX_WEIGHTS.items()}
    assert all(p.exists() for p in sequence)


def test_manifests_are_pod_documents(tmp_path: Path) -> None:
    assert fixtures.write_manifests(tmp_path, 23, per_file=10) == 23
    files = sorted(tmp_path.glob("*.yaml"))
    documents = [d for f in files for d in yaml.safe_load_all(f.read_text())]
    assert len(files) == 3
    assert len(documents) == 23
    assert {d["kind"] for d in documents} == {"Pod"}


def test_engine_bench_reports_percentiles() -> None:
    bodies = {s: f.bodies[0] for s, f in fixtures.build_fixtures(variants=1).items()}
    results = engine_bench.bench_engine(bodies, iterations=200, warmup=10)
    for scenario, result in results.items():
        for timing in ("parse", "decide", "parse_decide", "pipeline"):
            assert 0 < result[timing]["p50_us"] <= result[timing]["p99_us"], (scenario, timing)
    assert results["denial"]["outcome"] == "denied"


def test_wrk_summary_is_parsed() -> None:
    result = loadgen.parse_wrk_output(WRK_STDOUT, connections=32)
    assert result.reviews_per_s == 10000.0
    assert (result.p50_ms, result.p99_ms) == (1.4, 3.1)
    assert result.failures == 0
    failing = WRK_STDOUT.replace('"read":0', '"read":2').replace('"non200":0', '"non200":3')
    assert loadgen.parse_wrk_output(failing, connections=32).failures == 5
    with pytest.raises(loadgen.WrkError):
        loadgen.parse_wrk_output("no summary", connections=1)


def test_lua_script_prints_the_marker() -> None:
    script = loadgen.LUA_SCRIPT.read_text()
    assert loadgen.MARKER.strip() in script
    assert "function done(" in script and "function response(" in script


async def _call(app: Any, body: bytes) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/mutate",
        "raw_path": b"/mutate",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8443),
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, payload


@pytest.mark.parametrize("module", [baseline_raw, baseline_fastapi])
def test_baselines_answer_the_fixed_review(module: Any) -> None:
    payload = b'{"kind":"AdmissionReview","response":{"uid":"u","allowed":true}}'
    body = fixtures.build_fixtures(variants=1)["typical"].bodies[0]
    status, answer = asyncio.run(_call(module.make_app(payload), body))
    assert status == 200
    assert answer == payload


def test_check_bench_and_report(tmp_path: Path) -> None:
    keyguard = Path(sys.executable).parent / "keyguard"
    check = check_bench.bench_check(keyguard, tmp_path / "manifests", documents=20, core=None)
    assert check["docs_per_s"] is not None or check["reason"]
    check["steady"] = check_bench.bench_check_steady(tmp_path / "typical", documents=12, rounds=1)
    assert check["steady"]["documents"] == 12 and check["steady"]["files"] == 2
    # the report: summary keys, targets and table from recorded numbers
    wrk = {**loadgen.parse_wrk_output(WRK_STDOUT, 32).as_dict(), "server_cpu": 1.0}
    http = {
        "problems": [],
        "keyguard": {"typical": {"32": wrk}, "mix": {"32": wrk}, "memory_mib": {"VmRSS": 50.0, "VmHWM": 51.0}},
        "baseline_raw": {"typical": {"32": {**wrk, "reviews_per_s": 20000.0}}},
        "baseline_fastapi": {"typical": {"32": wrk}},
    }
    engine = engine_bench.bench_engine(
        {s: f.bodies[0] for s, f in fixtures.build_fixtures(variants=1).items()}, iterations=100, warmup=1
    )
    summary = run.summarize(http, engine, check)
    assert summary["ratio_vs_raw"] == 0.5
    for key in ("reviews_per_s", "baseline_raw_per_s", "baseline_fastapi_per_s", "p50_ms", "p99_ms", "rss_mib"):
        assert summary[key] is not None
    for key in ("parse_us_p50", "parse_us_p50_large", "check_typical_docs_per_s", "check_vs_libyaml"):
        assert summary[key] > 0, key
    assert summary["engine_vs_parse"] == round(summary["engine_us_p50"] / summary["parse_us_p50"], 3)
    assert summary["p99_ms_c1"] is None  # no concurrency-1 run recorded here
    targets = run.judge(summary)
    assert targets["ratio_vs_raw"]["pass"] is True
    assert targets["rss_mib"]["pass"] is True
    results = {
        "quick": True,
        "machine": run.machine(0, 1),
        "http": http,
        "engine": engine,
        "check": check,
        "summary": summary,
        "targets": targets,
    }
    text = run.table(results)
    assert "keyguard" in text and "ratio_vs_raw" in text
    assert "CSafeLoader" in text and "check_vs_libyaml" in text
    orjson.dumps(results)  # JSON-serializable as written to latest.json


def test_the_http_fuzz_leg_attributes_audit_leaks_to_their_own_request() -> None:
    """Half a million pooled random keys share 8-character runs with half a million random UUIDs by chance (the
    first `make fuzz` run reported such a collision as a leak): each decision line is checked against the keys of
    the requests that carried its UID, and the report names the field."""
    import fuzz  # noqa: PLC0415 - bench/ is on sys.path above

    mine, other = fake_credentials.aws_secret_access_key(), fake_credentials.aws_secret_access_key()
    uid = "0123abcd-" + other[:8]  # a UUID-like field that happens to share a run with another request's key
    clean = orjson.dumps({"event": "admission", "uid": uid, "name": "task"}).decode()
    leaking = orjson.dumps({"event": "admission", "uid": "u2", "name": f"x{mine[3:15]}"}).decode()
    pooled = fuzz._fragments([mine, other])
    assert fuzz._audit_leaks(clean, {uid: [mine]}, pooled) == []
    assert fuzz._audit_leaks(leaking, {"u2": [mine]}, pooled) == ["name"]
