"""`keyguard fix`: move the storage keys `keyguard check` finds in Flyte values and configs into Secrets.

`--dry-run` (the default) shows the change as a diff with every value masked; `--write` rewrites the file in place
(no backup: a copy would hold the keys); `--apply-secrets` server-side applies the Secrets the fixed file refers
to, from the values in memory. Whatever it does, it ends by telling the admin to rotate the exposed keys. Exit 0
nothing (left) to fix, 1 findings remain (like `check`), 2 usage, input or cluster error.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webhook.check import CheckOptions, check_paths
from webhook.commands.common import add_cluster_arguments, add_policy_argument, load_policy_argument
from webhook.errors import UsageError
from webhook.policy import Policy, Profile
from webhook.selection import choose_profile

if TYPE_CHECKING:  # ruamel.yaml is loaded only when `keyguard fix` runs, never by `keyguard serve`
    from webhook.fix import FixResult, SecretPlan


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "fix",
        help="move storage keys from Flyte values and configs into Secrets",
        description="Rewrite Flyte Helm values (flyte-binary, flyte-core, sandbox) and Flyte configs so that the "
        "storage keys `keyguard check` finds live in Secrets: the chart's Secret reference for the control plane, "
        "the per-namespace Secret keyguard mounts for tasks. Comments and order are kept. Values are never "
        "printed or written anywhere but into the Secrets. Exit 0 nothing left to fix, 1 findings remain, 2 on "
        "a usage, input or cluster error.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE", help="values or config files")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="show the change, masked (the default)")
    mode.add_argument("--write", action="store_true", help="rewrite the files in place")
    parser.add_argument(
        "--apply-secrets",
        action="store_true",
        help="server-side apply the Secrets the fixed files refer to (field manager keyguard)",
    )
    parser.add_argument(
        "--flyte-namespace", default="flyte", metavar="NS", help="Flyte's release namespace (default: flyte)"
    )
    parser.add_argument(
        "--task-namespace",
        action="append",
        default=[],
        metavar="NS",
        help="a Flyte task namespace (<project>-<domain>) that gets its storage Secret; repeat for each",
    )
    add_policy_argument(parser)
    add_cluster_arguments(parser)
    parser.set_defaults(func=run)


def _print_result(result: FixResult) -> None:
    if not result.findings:
        print(f"{result.source}: nothing to fix")
        return
    print(f"{result.source}: {len(result.findings)} finding(s)")
    if result.diff:
        print(result.diff, end="" if result.diff.endswith("\n") else "\n")
    for change in result.changes:
        print(f"  {change}")
    for secret in result.secrets:
        where = "<each Flyte task namespace>" if secret.scope == "tasks" else "<Flyte's namespace>"
        keys = ", ".join(sorted(secret.data))
        print(f"  needs Secret {where}/{secret.name} with key(s) {keys} (referenced by {secret.referenced_by})")
    for path in result.also_at:
        print(f"  note: a moved value also appears at {path}; not a storage setting, left unchanged")
    for finding in result.remaining:
        print(f"  left for you: {finding.path} [{finding.rule.id}]: {finding.fix}")


def _apply(secrets: list[SecretPlan], args: argparse.Namespace, policy: Policy) -> None:
    """Every Secret is validated (profile, expected keys) before the first one is applied."""
    from webhook.cluster.connection import api_client
    from webhook.cluster.secrets import apply_labelled_secret, apply_secret, collect

    tasks: list[tuple[str, Profile, dict[str, str]]] = []
    for secret in (s for s in secrets if s.scope == "tasks"):
        for namespace in args.task_namespace:
            profile = choose_profile(policy, namespace=namespace, pod={})
            if profile is None:
                raise UsageError(f"--task-namespace {namespace}: no profile of the policy matches it")
            tasks.append((namespace, profile, collect(profile, secret.data, prompt=_no_prompt)))
    api = api_client(args.kubeconfig, args.context)
    for secret in (s for s in secrets if s.scope == "control-plane"):
        annotations = {"keyguard.flyte.org/referenced-by": secret.referenced_by}
        apply_labelled_secret(api, args.flyte_namespace, secret.name, secret.data, annotations)
        print(f"applied Secret {args.flyte_namespace}/{secret.name} with key(s) {', '.join(sorted(secret.data))}")
    for namespace, profile, values in tasks:
        apply_secret(api, namespace, profile, values)
        name = profile.credentials.secret_name
        print(f"applied Secret {namespace}/{name} with key(s) {', '.join(sorted(values))}")


def _no_prompt(key: str) -> str:
    raise UsageError(f"no value for {key.rstrip(': ')} in the file")  # pragma: no cover - collect gets values


def _write(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its mode; the temporary file holds the fixed text only."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".keyguard-fix")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write: {error.strerror}") from None


def run(args: argparse.Namespace) -> int:
    from webhook.fix import plan_fix

    policy = load_policy_argument(args)
    options = CheckOptions(policy=policy)
    results: list[FixResult] = []
    for path in args.paths:
        if str(path) == "-" or path.is_dir():
            raise UsageError(f"{path}: keyguard fix rewrites files; give a file, not a folder or stdin")
        report = check_paths([str(path)], options)  # validates the file: exit 2 with file, line and reason
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not UTF-8 text") from None
        results.append(plan_fix(text, str(path), report.findings, options))
    for result in results:
        _print_result(result)
    secrets = [s for r in results for s in r.secrets]
    if args.apply_secrets and secrets:
        if any(s.scope == "tasks" for s in secrets) and not args.task_namespace:
            raise UsageError("--apply-secrets: name each Flyte task namespace with --task-namespace NS")
        _apply(secrets, args, policy)
    if args.write:
        for result, path in zip(results, args.paths, strict=True):
            if result.changed:
                _write(path, result.text)
                print(f"wrote {path}")
    elif any(r.changed for r in results):
        print("dry run: nothing written; --write rewrites the files, --apply-secrets creates the Secrets")
    exposed = [r.source for r in results if r.findings]
    if exposed:
        print(
            f"\nThe keys in {', '.join(exposed)} were exposed (in the file, its history and every copy of it): "
            "rotate them now. Issue new keys at your object store, then put them where the fixed files point:\n"
            "  keyguard secret create --namespace <project>-<domain>    for each Flyte task namespace\n"
            f"  and the control plane's Secret in {args.flyte_namespace} (listed above), then restart Flyte."
        )
    left = [r for r in results if (r.remaining if (args.write or not r.changed) else r.findings)]
    return 1 if left else 0
