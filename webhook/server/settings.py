"""The server's configuration, read once (from the command line) into one frozen object and passed in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# controller-runtime's limit: a pod can be ~3 MiB and an UPDATE review carries two of them.
MAX_REVIEW_BYTES = 7 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str
    port: int
    tls_cert: Path
    tls_key: Path
    policy_file: Path | None = None
    max_review_bytes: int = MAX_REVIEW_BYTES
    policy_poll_seconds: float = 2.0
    cert_poll_seconds: float = 10.0
    graceful_shutdown_seconds: int = 20
