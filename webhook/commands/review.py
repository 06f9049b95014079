"""`keyguard review`: the offline twin of the webhook (like `kwctl run`).

Reads one AdmissionReview and prints exactly the response the server would send for it, byte for byte, so an
admin can replay a review from an API server audit log or a test and see the verdict, warnings and patch.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from webhook.commands.common import add_policy_argument, load_policy_argument, read_input
from webhook.engine import decide
from webhook.errors import BadReview, UsageError
from webhook.review import parse_review, respond


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "review",
        help="print the AdmissionReview response the webhook would send",
        description="Decide one AdmissionReview offline and print the response the webhook would send. "
        "Exit 0 when allowed, 1 when denied, 2 on a usage or input error.",
    )
    parser.add_argument("file", nargs="?", default="-", help="AdmissionReview JSON file, or - for stdin")
    add_policy_argument(parser)
    parser.add_argument("--endpoint", choices=("mutate", "validate"), default="mutate")
    parser.add_argument("--pretty", action="store_true", help="indent the JSON (the server sends it compact)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    policy = load_policy_argument(args)
    body = read_input(args.file)
    try:
        request = parse_review(body)
    except BadReview as error:
        raise UsageError(f"{args.file}: {error}") from None
    decision = decide(policy, request, mutate=args.endpoint == "mutate")
    option = orjson.OPT_INDENT_2 if args.pretty else 0
    sys.stdout.buffer.write(orjson.dumps(respond(request["uid"], decision), option=option) + b"\n")
    sys.stdout.flush()
    return 0 if decision.allowed else 1
