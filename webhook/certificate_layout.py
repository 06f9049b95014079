"""Where keyguard's certificates live and how long they last: the facts the CLI needs before any cryptography.

`keyguard certs --help` and every other command's start-up read these without importing `cryptography`
(webhook/certs.py does the work and imports them from here).
"""

from __future__ import annotations

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"

DEFAULT_CA_DAYS = 1826
DEFAULT_SERVING_DAYS = 90
RENEW_BEFORE_DAYS = 30  # a serving certificate with fewer days left should be rotated
CA_WARN_DAYS = 180  # time to plan and run a CA roll-over
