"""The `keyguard` command line: parse, dispatch, and map every failure to an exit code without a traceback.

Exit codes are the contract with CI and scripts: 0 ok, 1 a policy violation where that applies, 2 a usage or
input error (with the file and the reason).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import NoReturn

from webhook import __version__
from webhook.errors import KeyguardError
from webhook.native import engine_description

# Sub-command modules, in the order `keyguard --help` lists them. Each has `register(subparsers)`.
COMMANDS: tuple[str, ...] = (
    "serve",
    "review",
    "render_credentials",
    "check",
    "fix",
    "certs",
    "secret",
    "doctor",
)


UNRECOGNIZED = "unrecognized arguments: "


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error never echoes an argument's value: someone who pastes a key on the
    command line (`--secret-key=…`) must not see it printed back into logs and CI output."""

    def error(self, message: str) -> NoReturn:
        if message.startswith(UNRECOGNIZED):
            shown = [
                arg.split("=", 1)[0] + ("=…" if "=" in arg else "") if arg.startswith("-") else "…"
                for arg in message.removeprefix(UNRECOGNIZED).split(" ")
            ]
            message = UNRECOGNIZED + " ".join(shown)
        super().error(message)


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="keyguard",
        description="Keep object-storage credentials out of Flyte task pods.",
    )
    parser.add_argument("--version", action="version", version=f"keyguard {__version__}, engine {engine_description()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in commands:
        import_module(f"webhook.commands.{name}").register(subparsers)
    return parser


def _named_command(argv: Sequence[str]) -> tuple[str, ...]:
    """Only the command the first argument names, so its run loads nothing the others need: the renderer init
    container starts under a 100m CPU limit, where loading the policy model cost each task pod about 4 s. Anything
    else (help, a typo, an option first) gets every command."""
    name = argv[0].replace("-", "_") if argv else ""
    return (name,) if name in COMMANDS else COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_named_command(arguments))
    args = parser.parse_args(arguments)
    try:
        code: int = args.func(args)
    except KeyguardError as error:
        print(f"keyguard {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
