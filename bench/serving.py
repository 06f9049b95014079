"""Serve a baseline ASGI app exactly the way `keyguard serve` serves keyguard, so only the app differs.

The uvicorn settings are `keyguard serve`'s own (`webhook.commands.serve.UVICORN_SETTINGS`) and the TLS context
is `webhook.server.tls.CertificateReloader`'s (TLS >= 1.2, the same ciphers, the SNI callback).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn

from webhook.commands.serve import UVICORN_SETTINGS as SERVE_SETTINGS
from webhook.server.tls import CertificateReloader, uvicorn_config

UVICORN_SETTINGS: dict[str, Any] = {**SERVE_SETTINGS, "timeout_graceful_shutdown": 20}


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-cert", type=Path, required=True)
    parser.add_argument("--tls-key", type=Path, required=True)
    parser.add_argument("--response", type=Path, help="the fixed AdmissionReview to answer (JSON file)")
    return parser.parse_args()


def serve(app: Any, args: argparse.Namespace) -> None:
    reloader = CertificateReloader(args.tls_cert, args.tls_key)
    config = uvicorn_config(app, host=args.host, port=args.port, reloader=reloader, **UVICORN_SETTINGS)
    uvicorn.Server(config).run()


DEFAULT_RESPONSE = (
    b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",'
    b'"response":{"uid":"00000000-0000-0000-0000-000000000000","allowed":true}}'
)


def fixed_response(args: argparse.Namespace) -> bytes:
    return args.response.read_bytes() if args.response else DEFAULT_RESPONSE
