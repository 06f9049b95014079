"""Argument helpers shared by several commands: reading inputs and the --policy option the same way."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webhook.files import read_file
from webhook.policy import Policy, default_policy, load_policy


def add_policy_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", type=Path, metavar="FILE", help="policy file (default: the embedded default policy)"
    )


def load_policy_argument(args: argparse.Namespace) -> Policy:
    """The --policy file, or the embedded default; an invalid file is a UsageError (exit 2)."""
    return default_policy() if args.policy is None else load_policy(args.policy)


def read_input(name: str) -> bytes:
    """Read a file or stdin (`-`); unreadable input is a UsageError naming the file and the reason."""
    if name == "-":
        return sys.stdin.buffer.read()
    return read_file(Path(name))


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", type=Path, metavar="FILE", help="kubeconfig (default: $KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")
