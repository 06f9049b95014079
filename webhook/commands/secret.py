"""`keyguard secret create`: put one environment's storage keys into its namespace, the way the policy expects.

Values come from stdin, an env file (`--from-env-file`) or a prompt without echo; never from arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from webhook.commands.common import add_cluster_arguments, add_policy_argument, load_policy_argument, read_input
from webhook.errors import UsageError
from webhook.selection import choose_profile


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "secret",
        help="create or update a namespace's storage-credential Secret",
        description="Manage the per-environment storage-credential Secret that keyguard mounts into task pods.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create: argparse.ArgumentParser = actions.add_parser(
        "create",
        help="create or update the Secret from stdin, an env file or a prompt",
        description="Create or update (server-side apply) the Secret the namespace's profile expects, with its key "
        "names (access_key and secret_key, optional session_token; or credentials). Values are read from "
        "--from-env-file, from stdin when it is not a terminal (key=value lines), or asked for without echo. "
        "Only key names are printed.",
    )
    create.add_argument(
        "--namespace", "-n", required=True, metavar="NS", help="the Flyte namespace, e.g. flytesnacks-production"
    )
    create.add_argument(
        "--profile", metavar="NAME", help="the policy profile (default: the one matching the namespace)"
    )
    create.add_argument("--from-env-file", type=Path, metavar="FILE", help="key=value lines ('-' for stdin)")
    add_policy_argument(create)
    add_cluster_arguments(create)
    create.set_defaults(func=run_create)


def run_create(args: argparse.Namespace) -> int:
    from webhook.cluster.connection import api_client
    from webhook.cluster.secrets import apply_secret, collect, parse_env_text

    policy = load_policy_argument(args)
    if args.profile:
        profile = policy.profile(args.profile)
        if profile is None:
            raise UsageError(
                f"--profile {args.profile}: no such profile ({', '.join(p.name for p in policy.profiles)})"
            )
    else:
        profile = choose_profile(policy, namespace=args.namespace, pod={})
        if profile is None:
            raise UsageError(f"no profile of the policy matches namespace {args.namespace}; pass --profile")
    values = None
    if args.from_env_file is not None:
        source = str(args.from_env_file)
        values = parse_env_text(read_input(source).decode("utf-8", errors="replace"), source)
    elif not sys.stdin.isatty():
        values = parse_env_text(sys.stdin.read(), "stdin")
    values = collect(profile, values)
    apply_secret(api_client(args.kubeconfig, args.context), args.namespace, profile, values)
    name = profile.credentials.secret_name
    print(f"applied Secret {args.namespace}/{name} with keys {', '.join(sorted(values))} (profile {profile.name})")
    return 0
