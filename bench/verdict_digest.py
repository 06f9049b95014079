"""A sha256 over keyguard's verdicts on a fixed corpus: an optimisation of the engine must leave it unchanged.

The corpus: the pods of tests/test_check_agreement.py (tests/flyte_pods.py's builders and the pods of the engine,
injection and detection tests), the benchmark's bodies, and `--fuzz` seeded cases of tests/fuzzing.py (mutated,
retyped, ephemeral-container updates). Each is decided under several policies (the default; warn, an extra service
account, exemptions; three environments with the refresher; each credentials format and workload identity), by the
mutating and the validating endpoint; every patched pod is then decided again, both ways, with the patch applied.
What is hashed, per decision: every field of the Decision (findings whole) and the AdmissionReview bytes `respond`
makes. The tests' fake keys come from `secrets`: a seeded generator stands in for it, so two runs hash the same.

    .venv/bin/python bench/verdict_digest.py [--fuzz 2000]   # prints the digest and the number of decisions
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import random
import secrets
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

_SEEDED = random.Random(14)
secrets.choice = _SEEDED.choice  # type: ignore[assignment]  # before the tests' modules build their corpus
uuid.uuid4 = lambda: uuid.UUID(int=_SEEDED.getrandbits(128), version=4)  # type: ignore[assignment]

from fixtures import build_fixtures  # noqa: E402

from tests.conftest import apply_patch  # noqa: E402
from tests.flyte_pods import review  # noqa: E402
from tests.fuzzing import make_case  # noqa: E402
from tests.test_check_agreement import CORPUS, POLICIES  # noqa: E402
from tests.test_properties import ENVIRONMENTS  # noqa: E402
from tests.test_workload_identity import AZURE, GKE, WEB_IDENTITY  # noqa: E402
from webhook.engine import Decision, decide  # noqa: E402
from webhook.errors import BadReview  # noqa: E402
from webhook.policy import Policy, default_policy, parse_policy  # noqa: E402
from webhook.review import parse_review, respond  # noqa: E402


def _one_profile(credentials: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "keyguard.flyte.org/v1",
        "kind": "Policy",
        "profiles": [{"name": "p", "credentials": credentials}],
    }


def policies() -> dict[str, Policy]:
    found = {"default": default_policy(), "environments": ENVIRONMENTS}
    found |= {name: parse_policy(data, name) for name, data in POLICIES.items()}
    formats = {
        "credentials-file": {"format": "credentials-file"},
        "gcs-key": {"format": "gcs-key"},
        "watch": {"refresh": "watch"},
        "web-identity": WEB_IDENTITY,
        "azure": AZURE,
        "gke": GKE,
    }
    found |= {name: parse_policy(_one_profile(credentials), name) for name, credentials in formats.items()}
    return found


def requests(fuzz: int) -> list[tuple[str, dict[str, Any]]]:
    found = [(label, review(copy.deepcopy(pod), uid="u")["request"]) for label, pod in CORPUS]
    for scenario, fixture in build_fixtures(variants=2).items():
        found += [(f"bench {scenario} {i}", parse_review(body)) for i, body in enumerate(fixture.bodies)]
    for seed in range(fuzz):
        try:
            found.append((f"fuzz {seed}", parse_review(make_case(random.Random(seed)).body)))
        except BadReview:
            continue
    return found


def _record(decision: Decision, uid: str) -> bytes:
    fields = {
        "allowed": decision.allowed,
        "outcome": decision.outcome,
        "profile": decision.profile,
        "mode": decision.mode,
        "findings": [(f.rule.id, f.path, f.message, f.container, f.field) for f in decision.findings],
        "patch": decision.patch,
        "warnings": decision.warnings,
        "message": decision.message,
        "response": respond(uid, decision),
    }
    return orjson.dumps(fields)


def digest(fuzz: int) -> tuple[str, int]:
    hasher = hashlib.sha256()
    count = 0
    corpus = requests(fuzz)
    for policy_name, policy in policies().items():
        for label, request in corpus:
            for mutate in (True, False):
                decision = decide(policy, request, mutate=mutate)
                hasher.update(f"{policy_name}|{label}|{mutate}|".encode() + _record(decision, request["uid"]))
                count += 1
                if not (mutate and decision.patch and isinstance(request.get("object"), dict)):
                    continue
                patched = {**request, "object": apply_patch(request["object"], decision.patch)}
                for again in (True, False):
                    second = decide(policy, patched, mutate=again)  # type: ignore[arg-type]
                    hasher.update(f"patched|{again}|".encode() + _record(second, request["uid"]))
                    count += 1
    return hasher.hexdigest(), count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fuzz", type=int, default=2000, help="seeded fuzz cases added to the corpus")
    args = parser.parse_args()
    sys.setrecursionlimit(10_000)  # the fuzz mutator nests values 600 deep
    value, count = digest(args.fuzz)
    print(f"{value} over {count} decisions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
