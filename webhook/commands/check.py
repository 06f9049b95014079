"""`keyguard check`: what the webhook would say, before deploying (like `kyverno apply`, `gator`, `polaris audit`).

Scans manifests, Flyte configuration and Flyte Helm values for storage keys with the webhook's own engine and
rules, for CI, pre-commit hooks and audits. Exit 0 clean, 1 findings at or above --fail-on, 2 usage or input
error (file, line and reason; never a traceback, never a value).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO, TypeVar

from webhook.check.model import CheckOptions
from webhook.check.output_json import render as render_json
from webhook.check.output_sarif import render as render_sarif
from webhook.check.output_text import render as render_text
from webhook.check.scan import Progress, check_objects, check_paths
from webhook.commands.common import add_cluster_arguments, add_policy_argument, load_policy_argument
from webhook.errors import UsageError

T = TypeVar("T")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="check manifests, Flyte configuration and Helm values for storage keys",
        description="Check Kubernetes manifests (Pods, PodTemplates, workloads, AdmissionReviews), Flyte "
        "configuration (storage sections, plugins.k8s env, in files or ConfigMaps) and Flyte Helm values "
        "(flyte-core, flyte-binary, sandbox) with the webhook's engine. Exit 0 clean, 1 findings at or above "
        "--fail-on, 2 on a usage or input error.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files, folders (recursive), or - for stdin")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="read the live cluster instead (list on pods, pod templates, workloads and ConfigMaps; no Secrets): "
        "also reports Flyte task pods that were created without the injection",
    )
    parser.add_argument(
        "--namespace", "-n", action="append", default=[], metavar="NS", help="with --cluster: only these namespaces"
    )
    add_cluster_arguments(parser)
    add_policy_argument(parser)
    parser.add_argument("--profile", metavar="NAME", help="judge Flyte pods under this profile (default: match)")
    parser.add_argument("--output", choices=("text", "json", "sarif"), default="text")
    parser.add_argument(
        "--fail-on",
        choices=("warning", "error", "never"),
        default="error",
        help="exit 1 when a finding of this severity or worse exists (default: error)",
    )
    parser.add_argument("--show-patch", action="store_true", help="show what the webhook would inject into Flyte pods")
    parser.add_argument("--verbose", "-v", action="store_true", help="list skipped files and documents")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument(
        "--jobs", "-j", type=int, metavar="N", help="worker processes (default: one per core for large folders)"
    )
    parser.set_defaults(func=run)


def progress_bar(stream: TextIO, interval: float = 0.1) -> Progress:
    """A one-line `\\r` progress bar, redrawn at most every `interval` seconds and cleared at the end."""
    last = 0.0

    def show(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done < total and now - last < interval:
            return
        last = now
        width = 30
        filled = width * done // max(total, 1)
        stream.write(f"\rkeyguard check [{'#' * filled}{'.' * (width - filled)}] {done}/{total} files")
        if done >= total:
            stream.write("\r\033[K")
        stream.flush()

    return show


def counted(items: Iterator[T], stream: TextIO, every: int = 200) -> Iterator[T]:
    """Pass items through, showing how many were read so far (a cluster's size is not known in advance)."""
    count = 0
    for count, item in enumerate(items, start=1):
        if count % every == 0:
            stream.write(f"\rkeyguard check: {count} objects read")
            stream.flush()
        yield item
    stream.write(f"\rkeyguard check: {count} objects read\n")
    stream.flush()


def run(args: argparse.Namespace) -> int:
    policy = load_policy_argument(args)
    if args.profile is not None:
        policy.named_profile(args.profile)  # refuse an unknown name before reading any input
    if args.paths.count("-") > 1:
        raise UsageError("- (stdin) can be given only once")
    if bool(args.paths) == args.cluster:
        raise UsageError("give PATHs to check files, or --cluster to check the live cluster (not both)")
    if args.namespace and not args.cluster:
        raise UsageError("--namespace applies to --cluster")
    show_progress = sys.stderr.isatty() and not args.quiet
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.cluster:
        from webhook.cluster.connection import api_client
        from webhook.cluster.inventory import namespace_labels, objects

        api = api_client(args.kubeconfig, args.context)
        options = CheckOptions(
            policy=policy,
            profile=args.profile,
            show_patch=args.show_patch,
            stored=True,
            namespace_labels=namespace_labels(api, args.namespace),
        )
        source = objects(api, args.namespace)
        report = check_objects(counted(source, sys.stderr) if show_progress else source, options)
    else:
        options = CheckOptions(policy=policy, profile=args.profile, show_patch=args.show_patch)
        progress = progress_bar(sys.stderr) if show_progress else None
        report = check_paths(args.paths, options, progress, jobs=args.jobs)
    if args.output == "json":
        output = render_json(report)
    elif args.output == "sarif":
        output = render_sarif(report)
    else:
        output = render_text(report, verbose=args.verbose)
    sys.stdout.write(output)
    if args.verbose and args.output != "text":
        for skipped in report.skipped:
            where = f"{skipped.file} (document {skipped.document})" if skipped.document else skipped.file
            print(f"skipped {where}: {skipped.reason}", file=sys.stderr)
    sys.stdout.flush()
    return 1 if report.failed(args.fail_on) else 0
