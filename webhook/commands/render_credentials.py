"""`keyguard render-credentials`: the injected init container's whole job.

Reads the access key pair from the mounted Secret (files `access_key`, `secret_key`, optional `session_token`)
and writes an AWS shared-credentials file into the pod's in-memory volume, so SDKs find credentials through
`AWS_SHARED_CREDENTIALS_FILE` and no value ever appears in the pod spec or on node disk. The file is written
atomically (temporary file, then rename) with mode 0444: every process of the pod can read it whatever uid and gid
its image runs as, none can change it, and nothing outside the pod can reach the pod's tmpfs
(webhook/credential_files.py says why). Nothing it prints contains a value.

With `--watch` it is the refresher sidecar: after the first render it polls the Secret directory every `--interval`
seconds and renders again when the kubelet has swapped in new keys. The kubelet updates a Secret volume by writing
a new timestamped directory and renaming the `..data` symlink onto it (its atomic writer), so the link's target is
the cheapest exact signal; without it (a plain directory) the files' sizes and mtimes are. Polling, as
controller-runtime's certwatcher also does, needs no inotify and sees a swap it would have missed. A render that
fails (a half-rotated Secret) keeps the last good file and is retried at the next poll; SIGTERM ends the loop at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from webhook.credential_files import ACCESS_KEYS, CREDENTIAL_FILE_MODE
from webhook.errors import UsageError
from webhook.files import write_atomic


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "render-credentials",
        help="write an AWS shared-credentials file from a mounted Secret (init container)",
        description="Read access_key, secret_key and optional session_token from DIR and write an AWS "
        "shared-credentials file (profile 'default', mode 0444).",
    )
    parser.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR")
    parser.add_argument("--to", dest="target", type=Path, required=True, metavar="FILE")
    parser.add_argument("--watch", action="store_true", help="keep running and render again when the Secret changes")
    parser.add_argument("--interval", type=float, default=10.0, metavar="SECONDS", help="--watch poll interval")
    parser.set_defaults(func=run)


def _read_key(path: Path, required: bool) -> str | None:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise UsageError(f"{path}: not found; the Secret must have this key") from None
        return None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
        raise UsageError(f"{path}: cannot read: {reason}") from None
    value = raw.strip()
    if not value:
        raise UsageError(f"{path}: empty")
    if any(c in value for c in "\r\n[]="):
        raise UsageError(f"{path}: contains a line break or one of [ ] =, which a credentials file cannot hold")
    return value


def render(source: Path, target: Path) -> None:
    lines = ["[default]"]
    for key, setting, required in ACCESS_KEYS:
        value = _read_key(source / key, required)
        if value is not None:
            lines.append(f"{setting} = {value}")
    content = ("\n".join(lines) + "\n").encode()
    try:
        write_atomic(target, content, mode=CREDENTIAL_FILE_MODE)
    except OSError as error:
        raise UsageError(f"{target}: cannot write: {error.strerror}") from None


def fingerprint(source: Path) -> tuple[object, ...]:
    """What changes when the kubelet rotates the Secret: the `..data` link target, else each file's size and mtime."""
    try:
        return ("..data", os.readlink(source / "..data"))
    except OSError:
        pass
    try:
        entries = sorted(os.scandir(source), key=lambda e: e.name)
        return tuple((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if not e.name.startswith("."))
    except OSError as error:
        return ("unreadable", error.errno)


def watch(source: Path, target: Path, interval: float, stop: threading.Event, seen: tuple[object, ...]) -> None:
    """Render again whenever the fingerprint changes, until `stop` is set. `seen` was taken before the first
    render, so a rotation that lands between that render and the first poll is not missed."""
    while not stop.wait(interval):
        current = fingerprint(source)
        if current == seen:
            continue
        try:
            render(source, target)
        except UsageError as error:  # says which key and why, never a value; the last good file stays
            print(f"keyguard: kept the previous {target}: {error}", file=sys.stderr, flush=True)
            continue
        seen = current
        print(f"keyguard: the Secret changed; wrote {target} again", flush=True)


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    if args.watch:  # before the first render: a pod deleted at once must still stop promptly
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seen = fingerprint(args.source)
    render(args.source, args.target)
    print(f"keyguard: wrote {args.target} from {args.source}", flush=True)
    if args.watch:
        watch(args.source, args.target, args.interval, stop, seen)
    return 0
