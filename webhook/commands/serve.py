"""`keyguard serve`: run the webhook as deployed — one uvicorn worker, uvloop + httptools, TLS, no access log.

Scaling is the Kubernetes way (more replicas behind the Service), so there is exactly one worker per process.
SIGTERM is handled by uvicorn: it stops accepting, lets in-flight reviews finish, then exits.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from webhook.commands.common import add_policy_argument
from webhook.errors import UsageError
from webhook.server.settings import ServerSettings

# How keyguard is served (the benchmark's baselines and the tests' server use the same): uvloop + httptools with a
# bounded request head (webhook/server/http_limits.py), no access log (the audit log records decisions), no Server
# header, and no proxy headers: the API server calls keyguard directly.
UVICORN_SETTINGS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "webhook.server.http_limits:BoundedHttpToolsProtocol",
    "access_log": False,
    "log_level": "warning",
    "server_header": False,
    "proxy_headers": False,
    # The API server's webhook client keeps an idle connection for 90 s (Go's http.Transport default, kept by
    # client-go) and does not retry a POST on one the server closed meanwhile: that review fails with EOF, and under
    # `failurePolicy: Fail` the pod is refused. So keyguard keeps idle connections longer than its client does and
    # never closes first (uvicorn's default is 5 s). A connection costs a few KiB while idle.
    "timeout_keep_alive": 120,
}


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the admission webhook over HTTPS",
        description="Serve POST /mutate and /validate (AdmissionReview v1) plus /healthz, /readyz and /metrics.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--tls-cert", type=Path, required=True, metavar="FILE")
    parser.add_argument("--tls-key", type=Path, required=True, metavar="FILE")
    add_policy_argument(parser)
    parser.add_argument(
        "--reload-interval",
        type=float,
        metavar="SECONDS",
        help="how often the policy file and the certificate files are checked for changes "
        "(default: policy every 2 s, certificates every 10 s)",
    )
    parser.set_defaults(func=run)


def serve(settings: ServerSettings) -> None:
    # The web stack is imported here, not at the top: `keyguard check` in a pre-commit hook should not pay for it.
    import uvicorn

    from webhook.server.app import ServerState, build_app
    from webhook.server.audit_log import AuditLog
    from webhook.server.metrics import Metrics
    from webhook.server.policy_watch import PolicyHolder
    from webhook.server.tls import CertificateReloader, uvicorn_config

    reloader = CertificateReloader(settings.tls_cert, settings.tls_key)
    state = ServerState(
        policies=PolicyHolder(settings.policy_file),
        metrics=Metrics(),
        audit=AuditLog(),
        certificate=reloader,
        policy_poll_seconds=settings.policy_poll_seconds,
        cert_poll_seconds=settings.cert_poll_seconds,
    )
    app = build_app(state, max_review_bytes=settings.max_review_bytes)
    config = uvicorn_config(
        app,
        host=settings.host,
        port=settings.port,
        reloader=reloader,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        **UVICORN_SETTINGS,
    )
    uvicorn.Server(config).run()


def run(args: argparse.Namespace) -> int:
    intervals: dict[str, Any] = {}
    if args.reload_interval is not None:
        if not 0 < args.reload_interval <= 3600:
            raise UsageError("--reload-interval must be between 0 and 3600 seconds")
        intervals = {"policy_poll_seconds": args.reload_interval, "cert_poll_seconds": args.reload_interval}
    serve(
        ServerSettings(
            host=args.host,
            port=args.port,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            policy_file=args.policy,
            **intervals,
        )
    )
    return 0
