"""`keyguard certs`: create, rotate and inspect the webhook's CA and serving certificate on disk.

Made for two jobs: `make run` needs certificates for localhost without openssl incantations, and an admin without
cert-manager needs the routine serving rotation and the three-step CA roll-over to be one command each, with the
next step printed. Only `certs install` talks to a cluster (webhook/cluster/certificates.py); no key ever reaches
the output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from webhook.certificate_layout import CA_CERT, DEFAULT_CA_DAYS, DEFAULT_SERVING_DAYS, TLS_CERT, TLS_KEY
from webhook.commands.common import add_cluster_arguments
from webhook.errors import UsageError

if TYPE_CHECKING:
    from webhook import certs


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "certs",
        help="create, rotate and inspect the webhook's TLS certificates",
        description="Manage the CA (the webhook's caBundle) and the serving certificate in a directory holding "
        "ca.crt, ca.key, tls.crt and tls.key. Exit 0 ok, 1 when inspect finds a problem, 2 on a usage or "
        "input error.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _register_generate(actions)
    _register_rotate(actions)
    _register_inspect(actions)
    _register_install(actions)


def _add_names(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dns", nargs="+", action="extend", metavar="NAME", help="DNS subject alternative names")
    parser.add_argument("--ip", nargs="+", action="extend", metavar="IP", help="IP subject alternative names")


def _register_generate(actions: Any) -> None:
    parser: argparse.ArgumentParser = actions.add_parser(
        "generate",
        help="create a CA and a serving certificate",
        description="Create a CA and a serving certificate signed by it. Refuses to replace an existing CA "
        "unless --force (a second CA is the 'signed by unknown authority' outage).",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    _add_names(parser)
    parser.add_argument("--days", type=int, default=DEFAULT_SERVING_DAYS, help="serving certificate lifetime")
    parser.add_argument("--ca-days", type=int, default=DEFAULT_CA_DAYS, help="CA lifetime")
    parser.add_argument("--force", action="store_true", help="replace existing files, including the CA")
    parser.set_defaults(func=run_generate)


def _register_rotate(actions: Any) -> None:
    parser: argparse.ArgumentParser = actions.add_parser(
        "rotate",
        help="new serving certificate, or a CA roll-over step",
        description="Without options: a new serving key and certificate from the current CA, keeping the SANs "
        "unless --dns/--ip are given. CA roll-over: --ca (step 1), then a plain rotate (step 2), then "
        "--drop-old-ca (step 3), publishing ca.crt as the caBundle after steps 1 and 3.",
    )
    parser.add_argument("--dir", type=Path, required=True, metavar="DIR")
    step = parser.add_mutually_exclusive_group()
    step.add_argument("--ca", action="store_true", help="step 1: a new CA; ca.crt becomes new + old")
    step.add_argument("--drop-old-ca", action="store_true", help="step 3: keep only the CA that signs tls.crt")
    _add_names(parser)
    parser.add_argument("--days", type=int, help="lifetime of the new certificate (default: 90, or 1826 with --ca)")
    parser.set_defaults(func=run_rotate)


def _register_inspect(actions: Any) -> None:
    parser: argparse.ArgumentParser = actions.add_parser(
        "inspect",
        help="expiry, trust and key of the certificates in a directory",
        description="Show the serving certificate's expiry, whether ca.crt verifies it and whether tls.key "
        "belongs to it. Exit 1 when a problem would fail admissions now.",
    )
    parser.add_argument("--dir", type=Path, required=True, metavar="DIR")
    parser.add_argument("--server-name", metavar="NAME", help="verify for this name (default: the first SAN)")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.set_defaults(func=run_inspect)


def _register_install(actions: Any) -> None:
    parser: argparse.ArgumentParser = actions.add_parser(
        "install",
        help="publish the certificates to the cluster (TLS Secret and caBundle)",
        description="Server-side apply, as field manager 'keyguard': the TLS Secret (tls.crt, tls.key, ca.crt; "
        "never ca.key) and caBundle on every webhook of the keyguard webhook configurations. Other fields, "
        "including an admin's edits, are left as they are. Run after generate, and after each rotate step.",
    )
    parser.add_argument("--dir", type=Path, required=True, metavar="DIR")
    parser.add_argument("--namespace", default="keyguard-system")
    parser.add_argument("--secret", default="keyguard-tls", metavar="NAME", help="the TLS Secret's name")
    parser.add_argument("--webhook-config", default="keyguard", metavar="NAME", help="both configurations' name")
    parser.add_argument("--no-secret", action="store_true", help="only publish the caBundle")
    add_cluster_arguments(parser)
    parser.set_defaults(func=run_install)


def run_install(args: argparse.Namespace) -> int:
    from webhook.cluster.certificates import install
    from webhook.cluster.connection import api_client

    installed = install(
        api_client(args.kubeconfig, args.context),
        args.dir,
        namespace=args.namespace,
        secret_name=args.secret,
        configuration=args.webhook_config,
        write_secret=not args.no_secret,
    )
    if installed.secret:
        print(f"applied Secret {installed.secret} (tls.crt, tls.key, ca.crt)")
    print(f"applied caBundle ({_count(installed.authorities, 'CA')}) to {', '.join(installed.webhooks)}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from webhook import certs  # cryptography: loaded only when a certs command runs

    files = certs.generate(
        args.out,
        args.dns or [],
        args.ip or [],
        ca_days=args.ca_days,
        serving_days=args.days,
        overwrite=args.force,
    )
    inspection = certs.inspect(args.out)
    print(f"wrote {files.ca_cert}, {files.ca_key}, {files.tls_cert}, {files.tls_key}")
    print(f"serve with --tls-cert {files.tls_cert} --tls-key {files.tls_key}; the caBundle is {files.ca_cert}")
    print(f"serving certificate valid until {inspection.not_after:%Y-%m-%d} ({inspection.days_left} days)")
    print(f"keep {files.ca_key} out of the cluster and out of git")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from webhook import certs  # cryptography: loaded only when a certs command runs

    if (args.ca or args.drop_old_ca) and (args.dns or args.ip):
        raise UsageError("--dns and --ip apply to the serving certificate, not to --ca or --drop-old-ca")
    directory: Path = args.dir
    if args.ca:
        days = DEFAULT_CA_DAYS if args.days is None else args.days
        files = certs.rotate_ca(directory, days=days)
        count = len(certs.inspect(directory).authorities)
        print(f"step 1 of 3: new CA in {files.ca_key}; {files.ca_cert} now holds {_count(count, 'CA')} (new first)")
        print(f"publish {files.ca_cert} as the caBundle, wait until every API server uses it, then run")
        print(f"  keyguard certs rotate --dir {directory}")
    elif args.drop_old_ca:
        dropped = certs.drop_old_ca(directory)
        ca_cert = directory / CA_CERT
        if dropped:
            print(f"step 3 of 3: dropped {_count(dropped, 'old CA')}; publish {ca_cert} as the caBundle")
        else:
            print(f"{ca_cert} holds only the CA that signs the serving certificate; nothing to drop")
    else:
        days = DEFAULT_SERVING_DAYS if args.days is None else args.days
        files = certs.rotate(directory, dns_names=args.dns, ip_addresses=args.ip, days=days)
        inspection = certs.inspect(directory)
        print(f"new serving key and certificate in {files.tls_cert} and {files.tls_key}")
        print(f"valid until {inspection.not_after:%Y-%m-%d}; replicas load it within seconds of the files changing")
        if len(inspection.authorities) > 1:
            print("step 2 of 3: once every replica serves it, run")
            print(f"  keyguard certs rotate --dir {directory} --drop-old-ca")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from webhook import certs  # cryptography: loaded only when a certs command runs

    inspection = certs.inspect(args.dir, server_name=args.server_name)
    if args.output == "json":
        sys.stdout.buffer.write(orjson.dumps(inspection.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    else:
        print(_text(inspection, args.dir))
    return 1 if inspection.problems else 0


def _text(inspection: certs.Inspection, directory: Path) -> str:
    serving = inspection.serving
    names = ", ".join(serving.dns_names + serving.ip_addresses) or "(none)"
    signer = (
        f"CA {inspection.signed_by + 1} of {len(inspection.authorities)} in {CA_CERT}"
        if inspection.signed_by is not None
        else f"no CA in {CA_CERT} ({serving.issuer})"
    )
    key = {True: "matches", False: "DOES NOT MATCH", None: f"not checked (no {TLS_KEY})"}
    lines = [
        f"serving certificate  {directory / TLS_CERT}",
        f"  subject            {serving.subject}",
        f"  names              {names}",
        f"  valid              {serving.not_before:%Y-%m-%d %H:%M}Z to {serving.not_after:%Y-%m-%d %H:%M}Z "
        f"({serving.days_left} days left)",
        f"  signed by          {signer}",
        f"  trusted            {'yes' if inspection.trusted else 'NO: ' + str(inspection.trust_error)}",
        f"  private key        {key[inspection.key_matches]}",
        f"CA bundle            {directory / CA_CERT} ({_count(len(inspection.authorities), 'CA')})",
    ]
    for number, ca in enumerate(inspection.authorities, start=1):
        lines.append(f"  {number}. {ca.subject}  until {ca.not_after:%Y-%m-%d} ({ca.days_left} days left)")
    lines += [f"warning: {warning}" for warning in inspection.warnings]
    lines += [f"problem: {problem}" for problem in inspection.problems]
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
