"""`keyguard doctor`: a live cluster's keyguard installation, checked end to end (see webhook.cluster.doctor)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from webhook.commands.common import add_cluster_arguments

MARK = {"ok": "ok", "warning": "WARN", "problem": "FAIL"}


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "doctor",
        help="check a live installation: webhooks, certificates, policy, Flyte namespaces",
        description="Check keyguard's installation through the Kubernetes API: the webhook configurations and "
        "their scope, that caBundle verifies the serving certificate and how long it has left, the policy "
        "ConfigMap, every Flyte namespace's Secret (key names only), task service account and its bindings, and "
        "that a dry-run Flyte task pod is injected. Exit 0 healthy (warnings allowed), 1 a problem, 2 could not "
        "check.",
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="Flyte namespace to check (repeatable; default: every <project>-<domain> namespace)",
    )
    parser.add_argument("--keyguard-namespace", default="keyguard-system", metavar="NS")
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text")
    add_cluster_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from webhook.cluster.connection import api_client
    from webhook.cluster.doctor import Settings, run_doctor

    settings = Settings(namespace=args.keyguard_namespace, flyte_namespaces=tuple(args.namespace))
    report = run_doctor(api_client(args.kubeconfig, args.context), settings)
    if args.output == "json":
        sys.stdout.buffer.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    else:
        width = max((len(c.name) for c in report.checks), default=0)
        for check in report.checks:
            print(f"{MARK[check.status]:<5} {check.name:<{width}}  {check.detail}")
        summary = report.to_dict()["summary"]
        verdict = "healthy" if report.healthy else "NOT healthy"
        print(f"\n{verdict}: {summary['ok']} ok, {summary['warning']} warning(s), {summary['problem']} problem(s)")
    return 0 if report.healthy else 1
